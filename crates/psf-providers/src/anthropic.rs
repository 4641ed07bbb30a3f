//! Anthropic's Messages API, translated to and from OpenAI Chat Completions.
//!
//! Request: `system` messages become the top-level `system`; `tool` messages become
//! `tool_result` blocks in a user turn; assistant `tool_calls` become `tool_use` blocks;
//! function tools become Anthropic tools; `max_tokens` is required there, so a default
//! is sent when the client gave none. Reply and stream: text blocks become `content`,
//! `tool_use` becomes `tool_calls`, stop reasons and token counts are renamed.

use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use crate::{ChunkStream, ErrorKind, Provider, ProviderError, ReplyLimits, read_json, sse_events};

const VERSION: &str = "2023-06-01";
const DEFAULT_MAX_TOKENS: u64 = 4096;

fn url(p: &Provider) -> String {
    if p.base_url.ends_with("/v1") { format!("{}/messages", p.base_url) } else { format!("{}/v1/messages", p.base_url) }
}

fn config(p: &Provider, message: impl Into<String>) -> ProviderError {
    ProviderError::new(&p.id, ErrorKind::Config, message)
}

/// The text of an OpenAI `content` (a string or a list of parts) as Anthropic blocks.
fn blocks(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => Some(json!({"type": "text", "text": part.get("text").cloned().unwrap_or_default()})),
                Some("image_url") => {
                    let url = part.pointer("/image_url/url").and_then(Value::as_str)?;
                    Some(match url.strip_prefix("data:").and_then(|rest| rest.split_once(";base64,")) {
                        Some((media, data)) => {
                            json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}})
                        }
                        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
                    })
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn text_of(content: &Value) -> String {
    blocks(content).iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
}

/// Appends `block` to the last turn when it has the same role (Anthropic wants turns to
/// alternate), or starts a new turn.
fn push(messages: &mut Vec<Value>, role: &str, mut new: Vec<Value>) {
    if let Some(last) = messages.last_mut()
        && last.get("role").and_then(Value::as_str) == Some(role)
        && let Some(content) = last.get_mut("content").and_then(Value::as_array_mut)
    {
        content.append(&mut new);
        return;
    }
    messages.push(json!({"role": role, "content": new}));
}

/// Refuses what Messages cannot say, rather than send the request without it.
/// (`logprobs` is not among them: the gateway asks for them itself where a decision point
/// checks confidence, and records the check as unavailable when none come back.)
fn refuse_unsupported(p: &Provider, request: &Map<String, Value>) -> Result<(), ProviderError> {
    let unsupported = |what: &str| {
        Err(ProviderError::new(
            &p.id,
            ErrorKind::Unsupported,
            format!("{what}, which Anthropic's Messages API cannot honour"),
        ))
    };
    let set = |k: &str| request.get(k).filter(|v| !v.is_null());
    if set("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return unsupported("the request asks for several choices (`n`); send n: 1");
    }
    if set("response_format").is_some_and(|f| f.get("type").and_then(Value::as_str) != Some("text")) {
        return unsupported(
            "the request asks for a `response_format`; describe the format in the prompt, or use an output JSON schema in the manifest",
        );
    }
    for k in ["seed", "logit_bias", "presence_penalty", "frequency_penalty"] {
        if set(k).is_some() {
            return unsupported(&format!("the request sets `{k}`; remove it"));
        }
    }
    Ok(())
}

pub(crate) fn translate_request(
    p: &Provider,
    request: &Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<Value, ProviderError> {
    refuse_unsupported(p, request)?;
    let empty = Vec::new();
    let openai_messages = request.get("messages").and_then(Value::as_array).unwrap_or(&empty);
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in openai_messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.push(text_of(content)),
            "assistant" => {
                let mut b = blocks(content);
                for call in m.get("tool_calls").and_then(Value::as_array).unwrap_or(&empty) {
                    let args = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}");
                    let input: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
                    b.push(json!({
                        "type": "tool_use",
                        "id": call.get("id").cloned().unwrap_or_default(),
                        "name": call.pointer("/function/name").cloned().unwrap_or_default(),
                        "input": input,
                    }));
                }
                push(&mut messages, "assistant", b);
            }
            "tool" => {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": m.get("tool_call_id").cloned().unwrap_or_default(),
                    "content": text_of(content),
                });
                push(&mut messages, "user", vec![block]);
            }
            _ => push(&mut messages, "user", blocks(content)),
        }
    }
    if messages.is_empty() {
        return Err(config(p, "the request has no user or assistant messages"));
    }
    let max_tokens = request
        .get("max_completion_tokens")
        .or_else(|| request.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let mut body = json!({"model": model, "max_tokens": max_tokens, "messages": messages, "stream": stream});
    let obj = body.as_object_mut().ok_or_else(|| config(p, "internal: body is not an object"))?;
    if !system.is_empty() {
        obj.insert("system".into(), Value::String(system.join("\n\n")));
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = request.get(key) {
            obj.insert(key.into(), v.clone());
        }
    }
    match request.get("stop") {
        Some(Value::String(s)) => {
            obj.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            obj.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(tools) = request.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                json!({
                    "name": f.get("name").cloned().unwrap_or_default(),
                    "description": f.get("description").cloned().unwrap_or_default(),
                    "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"})),
                })
            })
            .collect();
        obj.insert("tools".into(), Value::Array(tools));
    }
    match request.get("tool_choice") {
        Some(Value::String(s)) if s == "required" => {
            obj.insert("tool_choice".into(), json!({"type": "any"}));
        }
        Some(Value::String(s)) if s == "auto" => {
            obj.insert("tool_choice".into(), json!({"type": "auto"}));
        }
        Some(Value::String(s)) if s == "none" => {
            obj.insert("tool_choice".into(), json!({"type": "none"}));
        }
        Some(Value::Object(o)) => {
            if let Some(name) = o.get("function").and_then(|f| f.get("name")) {
                obj.insert("tool_choice".into(), json!({"type": "tool", "name": name}));
            }
        }
        _ => {}
    }
    Ok(body)
}

fn finish_reason(stop: Option<&str>) -> Value {
    match stop {
        Some("max_tokens") => json!("length"),
        Some("tool_use") => json!("tool_calls"),
        Some("refusal") => json!("content_filter"),
        Some(_) => json!("stop"),
        None => Value::Null,
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output})
}

pub(crate) fn translate_reply(p: &Provider, reply: &Value) -> Result<Value, ProviderError> {
    let content = reply
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::new(&p.id, ErrorKind::Malformed, "the reply has no `content`"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block.get("id").cloned().unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or_default(),
                    "arguments": block.get("input").map(|i| i.to_string()).unwrap_or_else(|| "{}".into()),
                },
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let input = reply.pointer("/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
    let output = reply.pointer("/usage/output_tokens").and_then(Value::as_u64).unwrap_or(0);
    Ok(json!({
        "id": reply.get("id").cloned().unwrap_or_default(),
        "object": "chat.completion",
        "created": 0,
        "model": reply.get("model").cloned().unwrap_or_default(),
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(reply.get("stop_reason").and_then(Value::as_str)),
        }],
        "usage": usage(input, output),
    }))
}

async fn send(p: &Provider, body: &Value) -> Result<reqwest::Response, ProviderError> {
    let bytes = serde_json::to_vec(body).map_err(|e| config(p, e.to_string()))?;
    let mut headers = vec![("anthropic-version", VERSION)];
    if let Some(key) = &p.api_key {
        headers.push(("x-api-key", key.as_str()));
    }
    p.post(&url(p), bytes, &headers).await
}

pub(crate) async fn complete(
    p: &Provider,
    request: &Map<String, Value>,
    model: &str,
    limits: ReplyLimits,
) -> Result<Value, ProviderError> {
    let body = translate_request(p, request, model, false)?;
    let response = send(p, &body).await?;
    let reply = read_json(&p.id, response, limits.max_body_bytes).await?;
    translate_reply(p, &reply)
}

/// Turns Anthropic stream events into OpenAI chunks, one event at a time.
#[derive(Debug, Default)]
pub(crate) struct StreamTranslator {
    id: String,
    model: String,
    input_tokens: u64,
    /// Anthropic block index → OpenAI tool call index.
    tool_index: Vec<(u64, usize)>,
}

impl StreamTranslator {
    fn chunk(&self, delta: Value, finish: Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    /// The chunks for one event; `Err` for an `error` event.
    pub(crate) fn event(&mut self, provider: &str, data: &Value) -> Result<Vec<Value>, ProviderError> {
        let kind = data.get("type").and_then(Value::as_str).unwrap_or_default();
        Ok(match kind {
            "message_start" => {
                let m = data.get("message").unwrap_or(&Value::Null);
                self.id = m.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                self.model = m.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
                self.input_tokens = m.pointer("/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
                vec![self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)]
            }
            "content_block_start" => {
                let block = data.get("content_block").unwrap_or(&Value::Null);
                if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                    return Ok(Vec::new());
                }
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let n = self.tool_index.len();
                self.tool_index.push((index, n));
                vec![self.chunk(
                    json!({"tool_calls": [{
                        "index": n,
                        "id": block.get("id").cloned().unwrap_or_default(),
                        "type": "function",
                        "function": {"name": block.get("name").cloned().unwrap_or_default(), "arguments": ""},
                    }]}),
                    Value::Null,
                )]
            }
            "content_block_delta" => {
                let delta = data.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        vec![
                            self.chunk(json!({"content": delta.get("text").cloned().unwrap_or_default()}), Value::Null),
                        ]
                    }
                    Some("input_json_delta") => {
                        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let n = self.tool_index.iter().find(|(i, _)| *i == index).map_or(0, |(_, n)| *n);
                        let args = delta.get("partial_json").cloned().unwrap_or_default();
                        vec![
                            self.chunk(
                                json!({"tool_calls": [{"index": n, "function": {"arguments": args}}]}),
                                Value::Null,
                            ),
                        ]
                    }
                    _ => Vec::new(),
                }
            }
            "message_delta" => {
                let stop = data.pointer("/delta/stop_reason").and_then(Value::as_str);
                let output = data.pointer("/usage/output_tokens").and_then(Value::as_u64).unwrap_or(0);
                let mut last = self.chunk(json!({}), finish_reason(stop));
                last["usage"] = usage(self.input_tokens, output);
                vec![last]
            }
            "error" => {
                let code = if data.pointer("/error/type").and_then(Value::as_str) == Some("overloaded_error") {
                    529
                } else {
                    500
                };
                // Summarised like an error status: the event's type, never its text.
                let summary = ProviderError::status(provider, code, None, &data.to_string());
                return Err(ProviderError { message: format!("an error event: {}", summary.message), ..summary });
            }
            _ => Vec::new(),
        })
    }
}

pub(crate) async fn stream(
    p: &Provider,
    request: &Map<String, Value>,
    model: &str,
    limits: ReplyLimits,
) -> Result<ChunkStream, ProviderError> {
    let body = translate_request(p, request, model, true)?;
    let response = send(p, &body).await?;
    let id = p.id.clone();
    let mut translator = StreamTranslator::default();
    let chunks = sse_events(p.id.clone(), response, limits)
        .take_while(|e| std::future::ready(!matches!(e, Ok(event) if event.event == "message_stop")))
        .flat_map(move |event| {
            let result = event.and_then(|event| {
                let data: Value = serde_json::from_str(&event.data).map_err(|e| {
                    ProviderError::new(&id, ErrorKind::Malformed, format!("a stream event is not JSON: {e}"))
                })?;
                translator.event(&id, &data)
            });
            let items: Vec<Result<Value, ProviderError>> = match result {
                Ok(chunks) => chunks.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures_util::stream::iter(items)
        });
    Ok(Box::pin(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;

    fn provider() -> Provider {
        Provider::new("anthropic", Protocol::Anthropic, "https://api.anthropic.com", None, reqwest::Client::new())
    }

    #[test]
    fn request_moves_system_and_tools() {
        let req = json!({
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "4 degrees"},
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "max_tokens": 50,
            "stop": "END",
        });
        let body = translate_request(&provider(), req.as_object().unwrap_or(&Map::new()), "claude-x", false);
        let body = body.unwrap_or_default();
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(body["max_tokens"], 50);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(body["messages"][1]["content"][0]["input"]["city"], "Oslo");
        assert_eq!(body["messages"][2]["role"], "user");
        assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
        assert_eq!(body["tools"][0]["name"], "weather");
    }

    #[test]
    fn what_messages_cannot_say_is_refused_not_dropped() {
        let base = json!({"messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in [
            ("n", json!(2)),
            ("response_format", json!({"type": "json_object"})),
            ("seed", json!(7)),
            ("logit_bias", json!({"1": 2})),
        ] {
            let mut req = base.as_object().cloned().unwrap_or_default();
            req.insert(k.into(), v);
            let e = translate_request(&provider(), &req, "claude-x", false).err();
            assert_eq!(e.map(|e| e.kind), Some(ErrorKind::Unsupported), "{k}");
        }
        let mut req = base.as_object().cloned().unwrap_or_default();
        req.insert("response_format".into(), json!({"type": "text"}));
        req.insert("n".into(), json!(1));
        assert!(translate_request(&provider(), &req, "claude-x", false).is_ok());
    }

    #[test]
    fn reply_and_stream_become_openai() {
        let reply = json!({"id": "msg_1", "model": "claude-x", "content": [{"type": "text", "text": "Hi"}], "stop_reason": "max_tokens", "usage": {"input_tokens": 3, "output_tokens": 2}});
        let out = translate_reply(&provider(), &reply).unwrap_or_default();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi");
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        assert_eq!(out["usage"]["total_tokens"], 5);

        let mut t = StreamTranslator::default();
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 7}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        ];
        let chunks: Vec<Value> = events.iter().flat_map(|e| t.event("a", e).unwrap_or_default()).collect();
        let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(chunks.last().map(|c| c["choices"][0]["finish_reason"].clone()), Some(json!("stop")));
        assert_eq!(chunks.last().map(|c| c["usage"]["prompt_tokens"].clone()), Some(json!(7)));
        assert!(
            t.event("a", &json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})).is_err()
        );
    }
}
