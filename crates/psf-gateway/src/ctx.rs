//! What the gateway knows about one request as it walks the path ([`Ctx`]), and the
//! small readings of a request that several stages share (its key, whether it streams).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use crate::config::Point;
use crate::pipeline::Trail;
use crate::router::Attempt;

/// The header naming whom a request concerns, for erasure (DG-3).
pub const SUBJECT_HEADER: &str = "x-psf-subject";

/// What the handler knows about a request as it goes, for the audit record.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) request_id: String,
    pub(crate) ts_ms: i64,
    pub(crate) t0: Instant,
    pub(crate) app: Option<String>,
    pub(crate) key_id: Option<String>,
    pub(crate) point: Option<Arc<Point>>,
    pub(crate) trail: Trail,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) upstream: Duration,
    /// Time spent waiting on the upstream stream after the first chunk; not overhead.
    pub(crate) stream_wait: Duration,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) stream: bool,
    /// A stream whose client asked for usage (`stream_options.include_usage`).
    pub(crate) stream_usage: bool,
    pub(crate) input: Value,
    pub(crate) prompt_tokens: Option<i64>,
    pub(crate) completion_tokens: Option<i64>,
    /// Whom the request concerns, as its hash.
    pub(crate) subject: Option<String>,
}

impl Ctx {
    /// A request that has just arrived: nothing known but its id and time.
    pub(crate) fn new(request_id: String, traced: bool) -> Ctx {
        Ctx {
            request_id,
            ts_ms: psf_store::now_ms(),
            t0: Instant::now(),
            app: None,
            key_id: None,
            point: None,
            trail: Trail { traced, ..Trail::default() },
            attempts: Vec::new(),
            upstream: Duration::ZERO,
            stream_wait: Duration::ZERO,
            model: None,
            provider: None,
            stream: false,
            stream_usage: false,
            input: Value::Null,
            prompt_tokens: None,
            completion_tokens: None,
            subject: None,
        }
    }

    pub(crate) fn overhead(&self) -> Duration {
        self.t0.elapsed().saturating_sub(self.upstream + self.stream_wait)
    }

    pub(crate) fn point_id(&self) -> String {
        self.point.as_ref().map_or_else(|| "none".to_string(), |p| p.spec.id.clone())
    }

    pub(crate) fn usage(&mut self, usage: Option<&Value>) {
        if let Some(u) = usage {
            self.prompt_tokens = u.get("prompt_tokens").and_then(Value::as_i64).or(self.prompt_tokens);
            self.completion_tokens = u.get("completion_tokens").and_then(Value::as_i64).or(self.completion_tokens);
        }
    }
}

/// Whether a request body asks for a stream, read without the full input checks (for
/// answers given before them, like an incident's degraded response).
pub(crate) fn wants_stream(body: &[u8]) -> bool {
    serde_json::from_slice::<Map<String, Value>>(body).is_ok_and(|m| m.get("stream") == Some(&Value::Bool(true)))
}

/// Whether a streamed request's client asked for a usage chunk.
pub(crate) fn wants_usage(request: &Map<String, Value>) -> bool {
    request.get("stream_options").and_then(|o| o.get("include_usage")) == Some(&Value::Bool(true))
}

pub(crate) fn request_id() -> String {
    format!("req_{}", uuid::Uuid::now_v7().simple())
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(str::trim);
    }
    headers.get("api-key").or_else(|| headers.get("x-api-key")).and_then(|v| v.to_str().ok()).map(str::trim)
}
