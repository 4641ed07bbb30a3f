//! psf's test kit: what the integration tests of several crates share, so a new test
//! starts from one place.
//!
//! - [`need`]: a test that needs a service or a tool skips without it on a developer's
//!   machine, and **fails** under `CI`: in CI a skipped check is not a green one.
//! - [`app`]: the real gateway on a random 127.0.0.1 port, in front of `psf-mock`
//!   speaking the provider protocols, on a fresh SQLite file (or a given store).
//! - [`manifest`]: the smallest manifest the checker accepts, grown by the test.
//! - [`stage`], [`sse`], [`header`]: reading audit records and responses.
//!
//! The crate is not published; it is a dev-dependency only.

pub mod app;
pub mod manifest;
pub mod need;

use psf_store::AuditRecord;
use serde_json::Value;

/// The stage decision an audit record holds under `code`, if any.
pub fn stage(record: &AuditRecord, code: &str) -> Option<Value> {
    record.stages.as_array()?.iter().find(|s| s["code"] == code).cloned()
}

/// A response header as text, empty when absent.
pub fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// The JSON `data:` events of an SSE body, `[DONE]` left out.
pub async fn sse(r: reqwest::Response) -> Result<Vec<Value>, reqwest::Error> {
    let text = r.text().await?;
    Ok(sse_events(&text))
}

/// The JSON `data:` events of SSE text, `[DONE]` left out.
pub fn sse_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

/// A chat request with one user message, for the route `chat`.
pub fn user(text: &str) -> Value {
    serde_json::json!({"model": "chat", "messages": [{"role": "user", "content": text}]})
}
