//! psf-gateway: the OpenAI-compatible gateway that enforces the PSF on every call.
//!
//! A request walks one pipeline (DESIGN.md): auth → rate limits → input governance
//! (schema and limits, sanitising, injection, PII per class, system prompt) → the model
//! chain with fallbacks and breakers → output validation (length, schema, PII, prompt
//! leakage, refusal and truncation as defined states) → detokenize → disclosure →
//! audit record and metrics. Every stage records a typed decision under a stable code
//! naming its competency, and every refusal is a defined error in OpenAI's shape.
//!
//! Streaming takes the same path: the output stages run on the stream as it arrives,
//! with a bounded hold-back, and a violation ends the stream with an error event.
#![deny(missing_docs)]

mod alerts;
mod audit;
mod breaker;
pub mod cluster;
mod config;
mod ctx;
pub mod dashboards;
mod deliver;
mod door;
mod embed;
mod error;
mod handler;
pub mod incident;
mod keys;
mod limits;
mod listen;
mod metrics;
mod monitor;
mod operations;
mod output;
pub mod oversight;
mod pipeline;
mod record;
pub mod replay;
pub mod retention;
mod review;
mod router;
mod routes;
mod state;
mod stream;
mod tasks;

pub use audit::{AuditSender, AuditWriter};
pub use config::{Compiled, ConfigError};
pub use error::ApiError;
pub use routes::{app, serve, serve_app};
pub use state::Gateway;
