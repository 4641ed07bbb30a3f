//! psf-detect: the detectors behind psf's input and output controls.
//!
//! The crate is pure: no IO, no async, no global state. Detectors are compiled once
//! (`PiiDetector::new`, `InjectionDetector::new`, `ContentDetector::new`) into immutable `Send + Sync` values
//! and then scan any number of texts. Every finding carries a byte span into the text
//! it came from, so callers can redact, tokenize or point at it.
//!
//! The design choice: patterns only propose candidates; validators decide (checksums,
//! issued ranges, surrounding words), and overlaps go to the strongest evidence. That is
//! what lets a microsecond regex pass reach the precision of heavier tools.
#![deny(missing_docs)]

pub mod classifier;
pub mod content;
mod error;
mod finding;
pub mod injection;
pub mod labelled;
pub mod leak;
pub mod output_schema;
pub mod pii;
pub mod refusal;
pub mod sanitize;
pub mod secrets;
pub mod severe;
pub mod topics;
pub mod transform;

pub use content::{Category, ContentDetector, ContentReport};
pub use error::{BuildError, BuildErrorKind};
pub use finding::{DataClass, EntityType, Evidence, Finding};
pub use injection::{InjectionDetector, InjectionReport, Source};
pub use leak::PromptLeakDetector;
pub use output_schema::{OutputSchema, SchemaCheck, Violation, extract_json, json_nesting};
pub use pii::{PiiDetector, PiiDetectorBuilder, StreamScanner};
pub use sanitize::{SanitizeFinding, Sanitized, sanitize};
pub use severe::{Severe, SevereDetector, SevereFinding};
pub use topics::{OutOfScope, TopicScope};
pub use transform::{Op, RedactStyle, Vault, hash, redact};
