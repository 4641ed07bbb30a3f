//! Streamed answers: the output stages run on the chunks as they arrive
//! ([`StreamCheck`], no IO, so the fuzz target drives the same code), with the last chunk
//! and the usage chunk held until the final checks pass; the SSE response around it
//! ([`stream_response`]); and a whole answer written as the events of a stream.
//!
//! A violation ends the stream with an error event, never a silent cut, and a client
//! that goes away still gets its request an audit record (`Drop` of [`Streaming`]).

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use psf_core::code::{Code, Outcome};
use psf_providers::ChunkStream;
use serde_json::{Map, Value, json};

use crate::config::Point;
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::output::{OutputGuard, merge_decisions};
use crate::pipeline::Trail;
use crate::record::{add_disclosure_field, disclosure_headers, overhead_header};
use crate::state::Gateway;

/// The output stages over a stream's chunks, as they come.
#[derive(Debug)]
pub struct StreamCheck {
    point: Arc<Point>,
    /// The output guard: what has been released, the checks' state, the audit text.
    pub guard: OutputGuard,
    /// The chunk that carried `finish_reason`, held until the final checks pass.
    finish: Option<Value>,
    /// The token usage, from whichever chunk carried it (OpenAI puts it on a last chunk
    /// with no choices, LiteLLM and psf's Anthropic translation on the finishing one).
    usage: Option<Value>,
    /// Whether the client asked for usage (`stream_options.include_usage`): psf always
    /// asks the upstream for it, for the audit record, but sends the client a usage
    /// chunk, which has no choices, only when asked; stock loops read `choices[0]`.
    client_usage: bool,
    /// The disclosure field still has to go on the first chunk out.
    disclose: bool,
    /// Each streamed tool call's arguments, by the call's index, under the output policy
    /// ([`OutputGuard::for_arguments`]), with the records of what its checks decided.
    calls: Vec<(u64, OutputGuard, Trail)>,
}

impl StreamCheck {
    /// Checks for a stream at `point`; `client_usage` when the client asked for usage.
    pub fn new(point: Arc<Point>, guard: OutputGuard, client_usage: bool) -> StreamCheck {
        let disclose = point.spec.disclosure.as_ref().is_some_and(|d| d.body_field);
        StreamCheck { point, guard, finish: None, usage: None, client_usage, disclose, calls: Vec::new() }
    }

    /// Takes one upstream chunk; returns the chunk to send now, if any.
    pub fn chunk(&mut self, mut chunk: Value, trail: &mut Trail) -> Result<Option<Value>, ApiError> {
        // Usage goes out, if asked for, in a chunk of its own after the last checks.
        if let Some(usage) = chunk.as_object_mut().and_then(|c| c.remove("usage")).filter(|u| !u.is_null()) {
            self.usage = Some(usage);
        }
        if chunk.get("choices").and_then(Value::as_array).is_none_or(Vec::is_empty) {
            return Ok(None);
        }
        if let Some(choice) = chunk.pointer_mut("/choices/0") {
            self.guard.logprobs(choice);
        }
        let finish = chunk.pointer("/choices/0/finish_reason").filter(|f| !f.is_null()).cloned();
        if let Some(Value::String(content)) = chunk.pointer_mut("/choices/0/delta/content") {
            *content = self.guard.push(content, trail)?;
        }
        self.arguments(&mut chunk, trail)?;
        if finish.is_some() {
            // Hold the last chunk until the final checks have passed.
            self.finish = Some(chunk);
            return Ok(None);
        }
        let delta = chunk.pointer("/choices/0/delta");
        let empty = delta
            .and_then(Value::as_object)
            .is_some_and(|d| d.iter().all(|(k, v)| k == "content" && v.as_str().is_some_and(str::is_empty)));
        // Log-probabilities the client asked for go out even while text is held.
        let logprobs = chunk.pointer("/choices/0/logprobs").is_some_and(|l| !l.is_null());
        if empty && !self.disclose && !logprobs {
            return Ok(None);
        }
        Ok(Some(self.outgoing(chunk)))
    }

    /// The stream ended: the final checks, then the held last chunk and the usage chunk.
    pub fn end(&mut self, trail: &mut Trail) -> Result<Vec<Value>, ApiError> {
        let Some(mut last) = self.finish.take() else {
            return Err(ApiError::new(
                Code::Ms4StreamTruncated,
                "the model's stream ended without finishing its answer",
            ));
        };
        let reason = last.pointer("/choices/0/finish_reason").and_then(Value::as_str).map(str::to_string);
        let rest = self.guard.finish(reason.as_deref(), trail)?;
        // A defined state (OV-5) is told on the last chunk, the stream's headers being gone.
        if let (Some(state), Some(obj)) = (self.guard.state, last.as_object_mut()) {
            obj.insert("psf_answer_state".into(), Value::String(state.into()));
        }
        if let Some(delta) = last.pointer_mut("/choices/0/delta").and_then(Value::as_object_mut) {
            match delta.get_mut("content") {
                Some(Value::String(existing)) => existing.push_str(&rest),
                _ => {
                    delta.insert("content".into(), Value::String(rest));
                }
            }
        }
        // Each tool call's held-back arguments go out with the last chunk.
        let mut rest_of_calls = Vec::new();
        for (index, mut g, mut own) in std::mem::take(&mut self.calls) {
            let rest = g.finish(None, &mut own);
            merge_decisions(trail, &mut own);
            let rest = rest?;
            self.guard.audit.push_str(&format!("\n[tool call] {}", g.audit));
            if !rest.is_empty() {
                rest_of_calls.push(json!({"index": index, "function": {"arguments": rest}}));
            }
        }
        if !rest_of_calls.is_empty()
            && let Some(delta) = last.pointer_mut("/choices/0/delta").and_then(Value::as_object_mut)
        {
            delta.insert("tool_calls".into(), Value::Array(rest_of_calls));
        }
        let usage = self.usage.take().filter(|_| self.client_usage).map(|usage| {
            let mut chunk = last.as_object().cloned().unwrap_or_default();
            chunk.insert("choices".into(), json!([]));
            chunk.insert("usage".into(), usage);
            Value::Object(chunk)
        });
        let mut out = vec![self.outgoing(last)];
        out.extend(usage.map(|u| self.outgoing(u)));
        Ok(out)
    }

    /// Tool call arguments in a chunk through their guards: what may go out now replaces
    /// each piece; a piece that could still grow into a finding waits.
    fn arguments(&mut self, chunk: &mut Value, trail: &mut Trail) -> Result<(), ApiError> {
        let calls = chunk.pointer_mut("/choices/0/delta/tool_calls").and_then(Value::as_array_mut);
        for (i, call) in calls.into_iter().flatten().enumerate() {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            let Some(Value::String(piece)) = call.pointer_mut("/function/arguments") else { continue };
            let at = match self.calls.iter().position(|(n, _, _)| *n == index) {
                Some(at) => at,
                None => {
                    self.calls.push((
                        index,
                        self.guard.for_arguments(),
                        Trail { traced: trail.traced, ..Trail::default() },
                    ));
                    self.calls.len() - 1
                }
            };
            if let Some((_, g, own)) = self.calls.get_mut(at) {
                match g.push(piece, own) {
                    Ok(out) => *piece = out,
                    Err(e) => {
                        merge_decisions(trail, own);
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    fn outgoing(&mut self, mut chunk: Value) -> Value {
        if let Some(obj) = chunk.as_object_mut() {
            obj.insert("model".into(), Value::String(self.point.route.clone()));
            if self.disclose {
                self.disclose = false;
                add_disclosure_field(&mut chunk, &self.point);
            }
        }
        chunk
    }
}

/// A whole completion as the SSE events of a stream: one chunk per choice, the usage
/// when the client asked for it (`client_usage`), and `[DONE]`.
pub(crate) fn one_chunk_stream(value: &Value, client_usage: bool) -> String {
    let mut out = String::new();
    let mut head: Map<String, Value> = value.as_object().cloned().unwrap_or_default();
    head.insert("object".into(), json!("chat.completion.chunk"));
    let usage = head.remove("usage");
    let choices = head.remove("choices");
    for choice in choices.as_ref().and_then(Value::as_array).into_iter().flatten() {
        let mut chunk = head.clone();
        let mut c = choice.clone();
        if let Some(obj) = c.as_object_mut()
            && let Some(message) = obj.remove("message")
        {
            obj.insert("delta".into(), message);
        }
        chunk.insert("choices".into(), json!([c]));
        out.push_str(&format!("data: {}\n\n", Value::Object(chunk)));
    }
    if let Some(usage) = usage.filter(|u| client_usage && !u.is_null()) {
        let mut chunk = head;
        chunk.insert("choices".into(), json!([]));
        chunk.insert("usage".into(), usage);
        out.push_str(&format!("data: {}\n\n", Value::Object(chunk)));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

pub(crate) fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn sse_data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// A stream in progress. When its client goes away before the end, `Drop` still writes
/// the audit record.
struct Streaming {
    gw: Arc<Gateway>,
    ctx: Ctx,
    point: Arc<Point>,
    check: StreamCheck,
    first: Option<Value>,
    chunks: ChunkStream,
    done: bool,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let record = self.gw.audit_record(
                &self.ctx,
                StatusCode::OK,
                Outcome::ClientClosed,
                Some(Code::StreamClientClosed),
                Some(std::mem::take(&mut self.check.guard.audit)),
            );
            self.gw.audit.send_detached(record);
        }
    }
}

impl Streaming {
    /// The next bytes for the client, or `None` at the end.
    async fn step(&mut self) -> Option<Vec<Bytes>> {
        if self.done {
            return None;
        }
        loop {
            let next = match self.first.take() {
                Some(first) => Some(Ok(first)),
                None => {
                    // The whole stream, idle gaps included, is bounded by the point's
                    // `output.max_stream_ms` from the request's arrival.
                    let limit = std::time::Duration::from_millis(self.point.spec.output.max_stream_ms);
                    let left = limit.saturating_sub(self.ctx.t0.elapsed());
                    let t = Instant::now();
                    let next = tokio::time::timeout(left, self.chunks.next()).await;
                    self.ctx.stream_wait += t.elapsed();
                    match next {
                        Ok(next) => next,
                        Err(_) => {
                            let error = ApiError::new(
                                Code::Ms4StreamFailed,
                                format!(
                                    "the answer's stream ran past this decision point's limit of {} ms \
                                     (`output.max_stream_ms`)",
                                    limit.as_millis()
                                ),
                            );
                            return Some(self.fail(error).await);
                        }
                    }
                }
            };
            match next {
                None => return Some(self.end().await),
                Some(Err(e)) => {
                    let link = self.point.chain.iter().find(|l| Some(&l.provider.id) == self.ctx.provider.as_ref());
                    if let Some(link) = link.filter(|_| e.is_provider_fault()) {
                        link.breaker.failure();
                    }
                    let error = ApiError::new(
                        Code::Ms4StreamFailed,
                        format!("the model's stream failed after it had started: {}", e.message),
                    );
                    return Some(self.fail(error).await);
                }
                Some(Ok(chunk)) => {
                    self.ctx.usage(chunk.get("usage"));
                    match self.check.chunk(chunk, &mut self.ctx.trail) {
                        Ok(Some(out)) => return Some(vec![sse_data(&out)]),
                        Ok(None) => continue,
                        Err(e) => return Some(self.fail(e).await),
                    }
                }
            }
        }
    }

    async fn end(&mut self) -> Vec<Bytes> {
        let last = match self.check.end(&mut self.ctx.trail) {
            Ok(last) => last,
            Err(e) => return self.fail(e).await,
        };
        let mut out: Vec<Bytes> = last.iter().map(sse_data).collect();
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        self.done = true;
        self.gw.answer_state(&self.point, self.check.guard.state);
        let audit = std::mem::take(&mut self.check.guard.audit);
        self.gw.record(&self.ctx, StatusCode::OK, Outcome::Delivered, None, Some(audit)).await;
        out
    }

    /// Ends the stream with an error event: never a silent cut.
    async fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        self.done = true;
        let error = error.with_request_id(&self.ctx.request_id);
        let audit = std::mem::take(&mut self.check.guard.audit);
        self.gw.record(&self.ctx, error.status(), error.outcome(), Some(error.code()), Some(audit)).await;
        vec![sse_data(&error.body())]
    }
}

/// The SSE response for a stream whose first chunk has arrived.
pub(crate) fn stream_response(
    gw: Arc<Gateway>,
    ctx: Ctx,
    point: Arc<Point>,
    guard: OutputGuard,
    first: Value,
    chunks: ChunkStream,
) -> Response {
    let overhead = ctx.overhead();
    let mut headers = HeaderMap::new();
    disclosure_headers(&mut headers, &point, &ctx);
    overhead_header(&mut headers, overhead);
    let check = StreamCheck::new(point.clone(), guard, ctx.stream_usage);
    let state = Streaming { gw, ctx, point, check, first: Some(first), chunks, done: false };
    let body = futures_util::stream::unfold(state, |mut s| async move {
        let bytes = s.step().await?;
        Some((
            Ok::<_, std::convert::Infallible>(futures_util::stream::iter(
                bytes.into_iter().map(Ok::<_, std::convert::Infallible>),
            )),
            s,
        ))
    })
    .map(|r| match r {
        Ok(inner) => inner,
        Err(never) => match never {},
    })
    .flatten();
    let mut response = sse_response(Body::from_stream(body));
    response.headers_mut().extend(headers);
    response
}
