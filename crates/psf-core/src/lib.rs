//! psf-core: the Production Safety Framework catalog and the deployment manifest.
//!
//! This crate holds what every other part of psf agrees on, and no IO: the forty
//! competencies as static data ([`catalog`]), the typed manifest ([`Manifest`]), and the
//! checker that turns a manifest's text into a typed value or a list of problems, each
//! pointing at a line and column of the file ([`check`]), and the gateway's codes and
//! outcomes ([`code`]), so the gateway, the store, the console and the assessment name
//! each decision alike.
//!
//! The key decision: the manifest is parsed once into a JSON value with a map of source
//! positions ([`yaml`]), and everything after that — the JSON Schema pass, serde, the
//! semantic rules — reports problems by JSON pointer, which the map turns back into
//! `file:line:col`. One schema, derived from the types, serves both `psf check` and the
//! editor completion that `psf schema` feeds.
#![deny(missing_docs)]

pub mod calendar;
pub mod catalog;
mod check;
pub mod code;
pub mod diagnostic;
pub mod diff;
pub mod edit;
pub mod exam;
pub mod manifest;
pub mod starter;
pub mod yaml;

pub use check::{CheckOptions, Checked, check, load};
pub use diagnostic::{Code, Diagnostic, Severity};
pub use manifest::Manifest;
