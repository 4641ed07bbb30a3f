//! The mock's HTTP server.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Behaviour, MockConfig};

const KEEP_REQUESTS: usize = 100;

#[derive(Debug)]
struct Shared {
    config: Mutex<MockConfig>,
    requests: Mutex<VecDeque<Value>>,
    counter: AtomicU64,
}

type St = Arc<Shared>;

/// A running mock upstream.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shared: St,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts a mock on `listener` with `config`.
    pub fn start(listener: TcpListener, config: MockConfig) -> std::io::Result<MockServer> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            requests: Mutex::new(VecDeque::new()),
            counter: AtomicU64::new(seed()),
        });
        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Like a real provider, write tokens as they come (no Nagle delay).
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(MockServer { addr, shared, stop: Some(stop), task: Some(task) })
    }

    /// Binds `addr` and starts a mock there.
    pub async fn bind(addr: &str, config: MockConfig) -> std::io::Result<MockServer> {
        MockServer::start(TcpListener::bind(addr).await?, config)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its OpenAI-style base URL, `http://ADDR/v1`.
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Its base URL for Anthropic clients, `http://ADDR`.
    pub fn anthropic_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the configuration.
    pub fn configure(&self, config: MockConfig) {
        *self.shared.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// The request bodies received, oldest first (the last 100).
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    /// Stops accepting connections and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
}

impl Shared {
    /// A number in [0, 1) from a xorshift generator: enough randomness for fault rates.
    fn chance(&self) -> f64 {
        let mut x = self.counter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.counter.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn behaviour(&self, model: &str) -> Behaviour {
        self.config.lock().unwrap_or_else(PoisonError::into_inner).for_model(model).clone()
    }

    fn record(&self, path: &str, headers: &HeaderMap, body: &Value) {
        let auth = headers.contains_key(header::AUTHORIZATION)
            || headers.contains_key("x-api-key")
            || headers.contains_key("api-key");
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if requests.len() == KEEP_REQUESTS {
            requests.pop_front();
        }
        requests.push_back(json!({"path": path, "authenticated": auth, "body": body}));
    }
}

fn router(shared: St) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/openai/deployments/{deployment}/chat/completions", post(azure))
        .route("/v1/messages", post(anthropic))
        .route("/v1/embeddings", post(embeddings))
        .route("/openai/deployments/{deployment}/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/__mock/requests", get(requests).delete(clear))
        .route("/__mock/config", get(get_config).post(set_config))
        .with_state(shared)
}

async fn models() -> Response {
    axum::Json(json!({"object": "list", "data": [{"id": "mock", "object": "model", "owned_by": "psf-mock"}]}))
        .into_response()
}

async fn requests(State(s): State<St>) -> Response {
    let list: Vec<Value> = s.requests.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn clear(State(s): State<St>) -> StatusCode {
    s.requests.lock().unwrap_or_else(PoisonError::into_inner).clear();
    StatusCode::NO_CONTENT
}

async fn get_config(State(s): State<St>) -> Response {
    let config = s.config.lock().unwrap_or_else(PoisonError::into_inner).clone();
    axum::Json(config).into_response()
}

async fn set_config(State(s): State<St>, body: Bytes) -> Response {
    match serde_json::from_slice::<MockConfig>(&body) {
        Ok(config) => {
            *s.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("not a mock configuration: {e}")).into_response(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
}

async fn azure(State(s): State<St>, Path(deployment): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, Wire::OpenAi, &format!("/openai/deployments/{deployment}/chat/completions"), headers, body).await
}

async fn openai(State(s): State<St>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, Wire::OpenAi, "/v1/chat/completions", headers, body).await
}

async fn anthropic(State(s): State<St>, headers: HeaderMap, body: Bytes) -> Response {
    handle(s, Wire::Anthropic, "/v1/messages", headers, body).await
}

fn error(wire: Wire, status: StatusCode, message: &str) -> Response {
    let body = match wire {
        Wire::OpenAi => json!({"error": {"message": message, "type": "mock_error", "code": status.as_u16()}}),
        Wire::Anthropic => json!({"type": "error", "error": {"type": "api_error", "message": message}}),
    };
    (status, [("x-psf-mock", "true")], axum::Json(body)).into_response()
}

/// The text of the last user message, whatever shape its content has.
fn last_user_text(body: &Value) -> String {
    let messages = body.get("messages").and_then(Value::as_array);
    let last = messages.and_then(|m| m.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user")));
    match last.and_then(|m| m.get("content")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

/// The text of the tool result the conversation ends with, if it ends with one.
fn last_tool_result(wire: Wire, body: &Value) -> Option<String> {
    let last = body.get("messages").and_then(Value::as_array)?.last()?;
    let text = |c: &Value| match c {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    };
    match wire {
        Wire::OpenAi => {
            (last.get("role").and_then(Value::as_str) == Some("tool")).then(|| text(last.get("content")?).into())?
        }
        Wire::Anthropic => {
            let blocks = last.get("content").and_then(Value::as_array)?;
            let result = blocks.iter().find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))?;
            Some(result.get("content").map(text).unwrap_or_default())
        }
    }
}

/// The call the mock makes, with its blanks filled from the first tool offered: its
/// name, and a sample value for each property of its schema.
fn offered(mut call: crate::ToolCall, request: &Value) -> crate::ToolCall {
    let tool = request.pointer("/tools/0");
    // OpenAI nests the function; Anthropic does not.
    let spec = tool.and_then(|t| t.get("function")).or(tool);
    if call.name.is_empty() {
        call.name = spec.and_then(|s| s.get("name")).and_then(Value::as_str).unwrap_or("tool").to_string();
    }
    if call.arguments.is_empty() {
        let schema = spec.and_then(|s| s.get("parameters").or_else(|| s.get("input_schema")));
        call.arguments = schema.map_or_else(|| json!({}), sample).to_string();
    }
    call
}

/// A value that fits a JSON Schema, as a model asked for one would write: each property
/// of an object, the first of an `enum`, one item of an array.
fn sample(schema: &Value) -> Value {
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") | None if schema.get("properties").is_some() => {
            let props = schema.get("properties").and_then(Value::as_object);
            Value::Object(props.into_iter().flatten().map(|(k, p)| (k.clone(), sample(p))).collect())
        }
        Some("object") => json!({}),
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([sample(schema.get("items").unwrap_or(&Value::Null))]),
        Some("null") => Value::Null,
        _ => json!("mock"),
    }
}

/// A tool call's arguments in the pieces a stream sends them in.
fn pieces(arguments: &str) -> Vec<String> {
    let chars: Vec<char> = arguments.chars().collect();
    let size = chars.len().div_ceil(3).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Splits a reply into stream tokens: words with their following space.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// What a behaviour does before any answer: hang, wait, answer 429 or an error, or send
/// a body the protocol does not allow. `None` when it answers.
async fn faults(s: &St, wire: Wire, b: &Behaviour) -> Option<Response> {
    if b.hang {
        std::future::pending::<()>().await;
    }
    if b.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(b.latency_ms)).await;
    }
    if b.rate_limit_rate > 0.0 && s.chance() < b.rate_limit_rate {
        let mut r = error(wire, StatusCode::TOO_MANY_REQUESTS, "mock rate limit");
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Some(r);
    }
    if b.error_rate > 0.0 && s.chance() < b.error_rate {
        let status = StatusCode::from_u16(b.error_status.unwrap_or(500)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(error(wire, status, "mock failure"));
    }
    if b.malformed {
        return Some(
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{\"choices\": [tru").into_response(),
        );
    }
    None
}

/// `POST /v1/embeddings`: a vector per input, derived from its text (the same text, the
/// same vector), `dimensions` long (8 by default), as floats or as base64 of
/// little-endian `f32`s (`encoding_format: base64`, which the OpenAI SDKs ask for).
async fn embeddings(State(s): State<St>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(Wire::OpenAi, StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    s.record("/v1/embeddings", &headers, &request);
    let model = request.get("model").and_then(Value::as_str).unwrap_or("mock").to_string();
    let b = s.behaviour(&model);
    if let Some(fault) = faults(&s, Wire::OpenAi, &b).await {
        return fault;
    }
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            vec![Value::Array(items.clone()).to_string()]
        }
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect()
        }
        _ => return error(Wire::OpenAi, StatusCode::BAD_REQUEST, "`input` must be text, a list of text or tokens"),
    };
    let dims = request.get("dimensions").and_then(Value::as_u64).unwrap_or(8).clamp(1, 4096) as usize;
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = vector(text, dims);
            let embedding = if base64 {
                use base64::Engine as _;
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: usize = inputs.iter().map(|t| tokens(t).len()).sum();
    let body = json!({"object": "list", "data": data, "model": b.report_model.clone().unwrap_or(model),
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    (StatusCode::OK, [("x-psf-mock", "true")], axum::Json(body)).into_response()
}

/// A unit vector from the bytes of `text`: stable, and different for different text.
fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let raw: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The top 24 bits as a value in [-1, 1).
            ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    raw.into_iter().map(|x| x / norm).collect()
}

async fn handle(s: St, wire: Wire, path: &str, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(wire, StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    s.record(path, &headers, &request);
    let model = request.get("model").and_then(Value::as_str).unwrap_or("mock").to_string();
    let b = s.behaviour(&model);
    let model = b.report_model.clone().unwrap_or(model);
    if let Some(fault) = faults(&s, wire, &b).await {
        return fault;
    }
    let tool_result = last_tool_result(wire, &request);
    let offers_tools = request.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty());
    let call = b.tool_call.clone().filter(|_| offers_tools && tool_result.is_none()).map(|c| offered(c, &request));
    // Asked for JSON by a schema, it answers with JSON that fits it, as a model would.
    let schema = request.pointer("/response_format/json_schema/schema");
    let reply = match (&b.reply, &tool_result, schema) {
        (Some(reply), _, _) => reply.clone(),
        (None, Some(result), _) => format!("[mock] The tool said: {result}"),
        (None, None, Some(schema)) => sample(schema).to_string(),
        (None, None, None) => format!("[mock] You said: {}", last_user_text(&request)),
    };
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    // Like OpenAI, log-probabilities only when the request asks for them.
    let logprob = b.logprob.filter(|_| request.get("logprobs") == Some(&Value::Bool(true)));
    let prompt_tokens = tokens(&last_user_text(&request)).len().max(1);
    let id = format!("mock-{:016x}", s.counter.fetch_add(1, Ordering::Relaxed));
    if !stream {
        let completion_tokens = tokens(&reply).len();
        let body = match (wire, &call) {
            (Wire::OpenAi, Some(call)) => json!({
                "id": id, "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                    "tool_calls": [{"id": format!("call_{id}"), "type": "function",
                                    "function": {"name": call.name, "arguments": call.arguments}}]}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 5, "total_tokens": prompt_tokens + 5},
            }),
            (Wire::Anthropic, Some(call)) => json!({
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "tool_use", "id": format!("toolu_{id}"), "name": call.name,
                             "input": serde_json::from_str::<Value>(&call.arguments).unwrap_or_else(|_| json!({}))}],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": prompt_tokens, "output_tokens": 5},
            }),
            (Wire::OpenAi, None) => {
                let mut choice =
                    json!({"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"});
                if let Some(lp) = logprob {
                    let content: Vec<Value> =
                        tokens(&reply).iter().map(|t| json!({"token": t, "logprob": lp})).collect();
                    choice["logprobs"] = json!({"content": content});
                }
                json!({
                    "id": id, "object": "chat.completion", "created": 0, "model": model,
                    "system_fingerprint": "psf-mock",
                    "choices": [choice],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
                })
            }
            (Wire::Anthropic, None) => json!({
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": reply}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
            }),
        };
        return (StatusCode::OK, [("x-psf-mock", "true")], axum::Json(body)).into_response();
    }
    let include_usage = request.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let usage = Usage { prompt_tokens, include: include_usage, on_finish: b.usage_on_finish };
    let events = match &call {
        Some(call) => tool_call_events(wire, &id, &model, call, usage),
        None => stream_events(wire, &id, &model, &reply, usage, logprob),
    };
    let delay = Duration::from_millis(b.token_delay_ms);
    let stall = b.stall_after_tokens;
    let body = futures_util::stream::unfold((events.into_iter(), 0usize), move |(mut it, n)| async move {
        let (event, is_token) = it.next()?;
        if is_token {
            if stall.is_some_and(|limit| n >= limit) {
                std::future::pending::<()>().await;
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
        Some((Ok::<_, Infallible>(Bytes::from(event)), (it, n + usize::from(is_token))))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-psf-mock", "true")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// What a stream says about token usage, and where.
#[derive(Debug, Clone, Copy)]
struct Usage {
    prompt_tokens: usize,
    /// The client asked for it (`stream_options.include_usage`).
    include: bool,
    /// On the finishing chunk rather than a chunk of its own.
    on_finish: bool,
}

/// The SSE events of a streamed reply, each marked whether it carries a token.
fn stream_events(
    wire: Wire,
    id: &str,
    model: &str,
    reply: &str,
    usage: Usage,
    logprob: Option<f64>,
) -> Vec<(String, bool)> {
    let prompt_tokens = usage.prompt_tokens;
    let toks = tokens(reply);
    let n = toks.len();
    let data = |v: Value| format!("data: {v}\n\n");
    let mut out = Vec::new();
    match wire {
        Wire::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "system_fingerprint": "psf-mock",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            out.push((data(chunk(json!({"role": "assistant", "content": ""}), Value::Null)), false));
            for t in toks {
                let mut c = chunk(json!({"content": t}), Value::Null);
                if let Some(lp) = logprob {
                    c["choices"][0]["logprobs"] = json!({"content": [{"token": t, "logprob": lp}]});
                }
                out.push((data(c), true));
            }
            let counts =
                json!({"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n});
            let mut finish = chunk(json!({}), json!("stop"));
            if usage.include && usage.on_finish {
                finish["usage"] = counts.clone();
            }
            out.push((data(finish), false));
            if usage.include && !usage.on_finish {
                out.push((
                    data(
                        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
                                "usage": counts}),
                    ),
                    false,
                ));
            }
            out.push(("data: [DONE]\n\n".to_string(), false));
        }
        Wire::Anthropic => {
            let ev = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
            out.push((
                ev("message_start", json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model, "content": [], "usage": {"input_tokens": prompt_tokens, "output_tokens": 0}}})),
                false,
            ));
            out.push((
                ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                false,
            ));
            out.push((ev("ping", json!({"type": "ping"})), false));
            for t in toks {
                out.push((
                    ev(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}),
                    ),
                    true,
                ));
            }
            out.push((ev("content_block_stop", json!({"type": "content_block_stop", "index": 0})), false));
            out.push((ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": n}})), false));
            out.push((ev("message_stop", json!({"type": "message_stop"})), false));
        }
    }
    out
}

/// The SSE events of a streamed tool call: the call named, then its arguments in
/// pieces (each marked as a token), then the finish.
fn tool_call_events(wire: Wire, id: &str, model: &str, call: &crate::ToolCall, usage: Usage) -> Vec<(String, bool)> {
    let data = |v: Value| format!("data: {v}\n\n");
    let mut out = Vec::new();
    match wire {
        Wire::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            let named = json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": format!("call_{id}"),
                "type": "function", "function": {"name": call.name, "arguments": ""}}]});
            out.push((data(chunk(named, Value::Null)), false));
            for piece in pieces(&call.arguments) {
                let delta = json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
                out.push((data(chunk(delta, Value::Null)), true));
            }
            let counts = json!({"prompt_tokens": usage.prompt_tokens, "completion_tokens": 5,
                                "total_tokens": usage.prompt_tokens + 5});
            let mut finish = chunk(json!({}), json!("tool_calls"));
            if usage.include && usage.on_finish {
                finish["usage"] = counts.clone();
            }
            out.push((data(finish), false));
            if usage.include && !usage.on_finish {
                let last = json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                                  "choices": [], "usage": counts});
                out.push((data(last), false));
            }
            out.push(("data: [DONE]\n\n".to_string(), false));
        }
        Wire::Anthropic => {
            let ev = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
            let start = json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
                "model": model, "content": [], "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": 0}}});
            out.push((ev("message_start", start), false));
            let block = json!({"type": "tool_use", "id": format!("toolu_{id}"), "name": call.name, "input": {}});
            out.push((
                ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": block})),
                false,
            ));
            for piece in pieces(&call.arguments) {
                let delta = json!({"type": "input_json_delta", "partial_json": piece});
                out.push((
                    ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": delta})),
                    true,
                ));
            }
            out.push((ev("content_block_stop", json!({"type": "content_block_stop", "index": 0})), false));
            let delta =
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}});
            out.push((ev("message_delta", delta), false));
            out.push((ev("message_stop", json!({"type": "message_stop"})), false));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_every_character() {
        let text = "Hello there, general Kenobi ";
        assert_eq!(tokens(text).concat(), text);
        assert_eq!(tokens(text).len(), 4);
    }

    #[tokio::test]
    async fn echoes_and_records() -> Result<(), Box<dyn std::error::Error>> {
        let mock = MockServer::bind("127.0.0.1:0", MockConfig::default()).await?;
        let client = reqwest::Client::new();
        let reply: Value = serde_json::from_slice(
            &client
                .post(format!("{}/chat/completions", mock.openai_url()))
                .body(json!({"model": "m", "messages": [{"role": "user", "content": "hi there"}]}).to_string())
                .send()
                .await?
                .bytes()
                .await?,
        )?;
        assert_eq!(reply["choices"][0]["message"]["content"], "[mock] You said: hi there");
        assert_eq!(mock.requests().len(), 1);
        assert_eq!(mock.requests()[0]["body"]["messages"][0]["content"], "hi there");
        mock.stop().await;
        Ok(())
    }
}
