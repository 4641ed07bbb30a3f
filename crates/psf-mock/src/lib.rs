//! psf-mock: a model upstream for tests, demos and benchmarks.
//!
//! It speaks OpenAI Chat Completions (`/v1/chat/completions`, and Azure's
//! `/openai/deployments/{name}/chat/completions`) and Anthropic Messages
//! (`/v1/messages`), streaming and not, and can be told to be slow, to fail, to answer
//! 429, to hang, to stall a stream, to send malformed replies or to call the tool it is
//! offered — per model, so one
//! mock can play a failing primary and a healthy fallback. `GET /__mock/requests`
//! returns the bodies it last received, which is how a test proves what the model saw;
//! `POST /__mock/config` changes its behaviour while it runs.
//!
//! Every reply is labelled: `system_fingerprint: "psf-mock"`, an `x-psf-mock` header,
//! ids starting `mock-`, and, when it echoes, text starting `[mock]`.
#![deny(missing_docs)]

mod behaviour;
mod server;

pub use behaviour::{Behaviour, MockConfig, ToolCall};
pub use server::MockServer;
