//! Anthropic's Messages API as a front door: a `/v1/messages` request becomes a Chat
//! Completions request, and the gateway's answer (whole, streamed, or an error) becomes
//! what the official `anthropic` SDK expects.
//!
//! Request: `system` (text or text blocks) becomes the first system message; a user
//! turn's `tool_result` blocks become `tool` messages ahead of its other content; an
//! assistant turn's `tool_use` blocks become `tool_calls`; tools become function tools;
//! `stop_sequences`, `metadata.user_id` and `tool_choice` are renamed. What Chat
//! Completions cannot say (`top_k`, extended thinking, documents, server tools) is
//! refused by name. `cache_control` markers are accepted and have no effect: they are
//! a caching hint to Anthropic, and psf sends the request on whole.

use serde_json::{Map, Value, json};

use super::{Call, Event, Progress, Refused, Whole, carry_psf_fields, completion, text_parts};

/// Top-level fields this door reads; any other is refused by name.
const FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "service_tier",
];

/// A Messages request as a Chat Completions request.
pub fn request(body: &Map<String, Value>) -> Result<Map<String, Value>, Refused> {
    if let Some(k) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Refused::new(k.as_str(), "is not a Messages API parameter psf can carry; remove it"));
    }
    let mut chat = Map::new();
    match body.get("model") {
        Some(Value::String(m)) => {
            chat.insert("model".into(), json!(m));
        }
        _ => return Err(Refused::new("model", "is required, as text")),
    }
    match body.get("max_tokens").and_then(Value::as_u64) {
        Some(n) if n > 0 => {
            chat.insert("max_tokens".into(), json!(n));
        }
        _ => return Err(Refused::new("max_tokens", "is required, a whole number of at least 1")),
    }
    let mut messages = Vec::new();
    match body.get("system") {
        None | Some(Value::Null) => {}
        Some(system) => {
            let text = text_parts(system, &["text"], "system")?;
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let Some(turns) = body.get("messages").and_then(Value::as_array) else {
        return Err(Refused::new("messages", "is required, a list of {\"role\", \"content\"} turns"));
    };
    for (i, turn) in turns.iter().enumerate() {
        turn_messages(turn, &format!("messages[{i}]"), &mut messages)?;
    }
    chat.insert("messages".into(), Value::Array(messages));
    if body.get("stream") == Some(&Value::Bool(true)) {
        chat.insert("stream".into(), json!(true));
        // The usage goes out in `message_delta`, so the gateway is asked for it.
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            chat.insert(key.into(), v.clone());
        }
    }
    if body.get("top_k").is_some_and(|v| !v.is_null()) {
        return Err(Refused::new("top_k", "cannot be carried by psf's gateway; use `top_p` or `temperature`"));
    }
    match body.get("thinking") {
        None | Some(Value::Null) => {}
        Some(t) if t.get("type").and_then(Value::as_str) == Some("disabled") => {}
        Some(_) => return Err(Refused::new("thinking", "extended thinking is not carried by psf; remove it")),
    }
    match body.get("service_tier").and_then(Value::as_str) {
        None | Some("auto") => {}
        Some(_) => return Err(Refused::new("service_tier", "only `auto` is carried by psf")),
    }
    if let Some(stop) = body.get("stop_sequences").filter(|v| !v.is_null()) {
        match stop.as_array() {
            Some(list) if list.iter().all(Value::is_string) => {
                chat.insert("stop".into(), stop.clone());
            }
            _ => return Err(Refused::new("stop_sequences", "must be a list of text")),
        }
    }
    if let Some(user) = body.get("metadata").and_then(|m| m.get("user_id")).filter(|v| !v.is_null()) {
        chat.insert("user".into(), user.clone());
    }
    if let Some(tools) = body.get("tools").filter(|v| !v.is_null()) {
        chat.insert("tools".into(), Value::Array(translate_tools(tools)?));
    }
    if let Some(choice) = body.get("tool_choice").filter(|v| !v.is_null()) {
        let (c, parallel) = tool_choice(choice)?;
        chat.insert("tool_choice".into(), c);
        if let Some(p) = parallel {
            chat.insert("parallel_tool_calls".into(), json!(p));
        }
    }
    Ok(chat)
}

/// One Anthropic turn as Chat Completions messages.
fn turn_messages(turn: &Value, at: &str, out: &mut Vec<Value>) -> Result<(), Refused> {
    let role = turn.get("role").and_then(Value::as_str).unwrap_or_default();
    if role != "user" && role != "assistant" {
        return Err(Refused::new(format!("{at}.role"), "must be `user` or `assistant`"));
    }
    let blocks = match turn.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => return Err(Refused::new(format!("{at}.content"), "must be text or a list of content blocks")),
    };
    let mut content = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let here = format!("{at}.content[{j}]");
        match (role, block.get("type").and_then(Value::as_str).unwrap_or_default()) {
            (_, "text") => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or_default();
                content.push(json!({"type": "text", "text": text}));
            }
            ("user", "image") => content.push(image(block, &here)?),
            ("user", "tool_result") => {
                let id = block.get("tool_use_id").and_then(Value::as_str).unwrap_or_default();
                let text = match block.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(c) => text_parts(c, &["text"], &format!("{here}.content"))?,
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            ("assistant", "tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": block.get("id").cloned().unwrap_or_default(),
                    "type": "function",
                    "function": {"name": block.get("name").cloned().unwrap_or_default(), "arguments": input.to_string()},
                }));
            }
            (_, kind) => {
                return Err(Refused::new(
                    format!("{here}.type"),
                    format!("a `{kind}` block in a {role} turn is not carried by psf"),
                ));
            }
        }
    }
    if role == "assistant" {
        let text: Vec<&str> = content.iter().filter_map(|c| c.get("text").and_then(Value::as_str)).collect();
        let mut m = json!({"role": "assistant", "content": text.join("")});
        if !calls.is_empty() {
            m["tool_calls"] = Value::Array(calls);
        }
        out.push(m);
    } else if !content.is_empty() {
        out.push(json!({"role": "user", "content": content}));
    }
    Ok(())
}

fn image(block: &Value, at: &str) -> Result<Value, Refused> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = source.get("media_type").and_then(Value::as_str).unwrap_or("image/png");
            let data = source.get("data").and_then(Value::as_str).unwrap_or_default();
            format!("data:{media};base64,{data}")
        }
        Some("url") => source.get("url").and_then(Value::as_str).unwrap_or_default().to_string(),
        _ => return Err(Refused::new(format!("{at}.source.type"), "must be `base64` or `url`")),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn translate_tools(tools: &Value) -> Result<Vec<Value>, Refused> {
    let Some(list) = tools.as_array() else {
        return Err(Refused::new("tools", "must be a list"));
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            if let Some(kind) = t.get("type").and_then(Value::as_str).filter(|k| *k != "custom") {
                return Err(Refused::new(
                    format!("tools[{i}].type"),
                    format!("the server tool `{kind}` is not carried by psf; declare your own tools"),
                ));
            }
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                return Err(Refused::new(format!("tools[{i}].name"), "is required"));
            };
            let mut function = json!({
                "name": name,
                "parameters": t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"})),
            });
            if let Some(d) = t.get("description") {
                function["description"] = d.clone();
            }
            Ok(json!({"type": "function", "function": function}))
        })
        .collect()
}

/// The tool choice, and whether parallel calls are allowed when it says.
fn tool_choice(choice: &Value) -> Result<(Value, Option<bool>), Refused> {
    let parallel = choice.get("disable_parallel_tool_use").and_then(Value::as_bool).map(|d| !d);
    let c = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => return Err(Refused::new("tool_choice.name", "is required when the type is `tool`")),
        },
        _ => return Err(Refused::new("tool_choice.type", "must be `auto`, `any`, `tool` or `none`")),
    };
    Ok((c, parallel))
}

fn stop_reason(finish: Option<&str>) -> Value {
    match finish {
        Some("length") => json!("max_tokens"),
        Some("tool_calls") => json!("tool_use"),
        Some("content_filter") => json!("refusal"),
        Some(_) => json!("end_turn"),
        None => Value::Null,
    }
}

/// A tool call's arguments as the `input` object Anthropic's blocks carry.
fn input(arguments: &str) -> Value {
    serde_json::from_str::<Value>(arguments).ok().filter(Value::is_object).unwrap_or_else(|| json!({}))
}

/// A whole Chat Completions answer as a Messages reply with id `id`.
pub fn reply(chat: &Value, id: &str) -> Value {
    let Whole { text, calls, finish, usage } = completion(chat);
    let mut content = Vec::new();
    if !text.is_empty() || calls.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for Call { id: call_id, name, arguments } in &calls {
        content.push(json!({"type": "tool_use", "id": call_id, "name": name, "input": input(arguments)}));
    }
    let usage = usage.unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("type".into(), json!("message"));
    out.insert("role".into(), json!("assistant"));
    out.insert("model".into(), chat.get("model").cloned().unwrap_or_default());
    out.insert("content".into(), Value::Array(content));
    out.insert("stop_reason".into(), stop_reason(finish));
    out.insert("stop_sequence".into(), Value::Null);
    out.insert("usage".into(), json!({"input_tokens": usage.prompt, "output_tokens": usage.completion}));
    carry_psf_fields(chat, &mut out);
    Value::Object(out)
}

/// Anthropic's error type for an HTTP status, as its SDK reads it.
fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// An OpenAI-shaped error body (`{"error": {...}}`) in Anthropic's shape, keeping psf's
/// code and request id beside the message.
pub fn error(status: u16, openai: &Value) -> Value {
    let e = openai.get("error").unwrap_or(&Value::Null);
    json!({
        "type": "error",
        "error": {
            "type": error_type(status),
            "message": e.get("message").and_then(Value::as_str).unwrap_or("the request failed"),
            "psf_code": e.get("code"),
        },
        "request_id": e.get("request_id"),
    })
}

/// The block a stream is writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    /// A tool call: the Chat Completions index it came from.
    Tool(u64),
}

/// Turns the gateway's chunks into Anthropic's event sequence: `message_start`, per
/// block `content_block_start`, deltas and `content_block_stop`, then `message_delta`
/// with the stop reason and usage, and `message_stop`.
#[derive(Debug)]
pub struct Events {
    id: String,
    progress: Progress,
    open: Open,
    /// Blocks opened so far; the next block's index.
    blocks: u64,
}

impl Events {
    /// A translator for a message with id `id`, answered by `model`.
    pub fn new(id: &str, model: &str) -> Events {
        Events { id: id.to_string(), progress: Progress::new(model), open: Open::None, blocks: 0 }
    }

    fn event(out: &mut Vec<Event>, name: &str, data: Value) {
        out.push(Event { name: name.to_string(), data });
    }

    fn start(&mut self, out: &mut Vec<Event>) {
        if self.progress.started {
            return;
        }
        self.progress.started = true;
        let mut message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.progress.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        });
        if let Some(m) = message.as_object_mut() {
            m.extend(self.progress.extra.clone());
        }
        Self::event(out, "message_start", json!({"type": "message_start", "message": message}));
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if self.open != Open::None {
            let index = self.blocks - 1;
            Self::event(out, "content_block_stop", json!({"type": "content_block_stop", "index": index}));
            self.open = Open::None;
        }
    }

    fn open(&mut self, out: &mut Vec<Event>, kind: Open, block: Value) {
        self.close(out);
        Self::event(
            out,
            "content_block_start",
            json!({"type": "content_block_start", "index": self.blocks, "content_block": block}),
        );
        self.blocks += 1;
        self.open = kind;
    }

    /// The events for one chunk of the gateway's stream.
    pub fn chunk(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        let p = self.progress.read(chunk);
        self.start(&mut out);
        if let Some(text) = p.text {
            if self.open != Open::Text {
                self.open(&mut out, Open::Text, json!({"type": "text", "text": ""}));
            }
            let delta = json!({"type": "text_delta", "text": text});
            let index = self.blocks - 1;
            Self::event(
                &mut out,
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            );
        }
        for call in &p.calls {
            if self.open != Open::Tool(call.index) {
                let block = json!({
                    "type": "tool_use", "id": call.id.unwrap_or_default(),
                    "name": call.name.unwrap_or_default(), "input": {},
                });
                self.open(&mut out, Open::Tool(call.index), block);
            }
            if !call.arguments.is_empty() {
                let delta = json!({"type": "input_json_delta", "partial_json": call.arguments});
                let index = self.blocks - 1;
                Self::event(
                    &mut out,
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": delta}),
                );
            }
        }
        out
    }

    /// The stream's end (`[DONE]`): the open block closed, the stop reason and usage.
    pub fn done(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.progress.end() {
            return out;
        }
        self.start(&mut out);
        if self.blocks == 0 {
            // A message has at least one block, even when empty.
            self.open(&mut out, Open::Text, json!({"type": "text", "text": ""}));
        }
        self.close(&mut out);
        let delta = json!({"stop_reason": stop_reason(self.progress.finish.as_deref()), "stop_sequence": null});
        let u = self.progress.usage.unwrap_or_default();
        let usage = json!({"input_tokens": u.prompt, "output_tokens": u.completion});
        let mut data = json!({"type": "message_delta", "delta": delta, "usage": usage});
        // psf's fields that came late (the answer's state) go with the stop reason.
        if let Some(d) = data.as_object_mut() {
            d.extend(self.progress.extra.clone());
        }
        Self::event(&mut out, "message_delta", data);
        Self::event(&mut out, "message_stop", json!({"type": "message_stop"}));
        out
    }

    /// Whether the stream has been ended (stopped or failed).
    pub fn ended(&self) -> bool {
        self.progress.ended
    }

    /// An error in the gateway's stream (`{"error": {...}}`), as Anthropic's `error`
    /// event; the stream ends there.
    pub fn error(&mut self, status: u16, openai: &Value) -> Vec<Event> {
        self.progress.ended = true;
        vec![Event { name: "error".into(), data: error(status, openai) }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_request_with_system_tools_and_results_becomes_chat() {
        let body = map(json!({
            "model": "claude-x", "max_tokens": 100,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Oslo"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "4 degrees"}, {"type": "text", "text": "And tomorrow?"}]},
            ],
            "tools": [{"name": "weather", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}, "stream": true,
        }));
        let chat = request(&body).unwrap_or_default();
        let m = &chat["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(m[2]["content"], "Checking.");
        assert_eq!(m[3], json!({"role": "tool", "tool_call_id": "t1", "content": "4 degrees"}));
        assert_eq!(m[4]["content"][0]["text"], "And tomorrow?");
        assert_eq!(chat["tools"][0]["function"]["name"], "weather");
        assert_eq!(chat["tool_choice"], "required");
        assert_eq!(chat["parallel_tool_calls"], false);
        assert_eq!(chat["stop"], json!(["END"]));
        assert_eq!(chat["user"], "u-1");
        assert_eq!(chat["stream_options"]["include_usage"], true);
    }

    #[test]
    fn what_chat_cannot_say_is_refused_by_name() {
        let base = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        let with = |k: &str, v: Value| {
            let mut b = map(base.clone());
            b.insert(k.into(), v);
            request(&b).err().map(|e| e.param)
        };
        assert_eq!(with("top_k", json!(5)), Some("top_k".into()));
        assert_eq!(with("thinking", json!({"type": "enabled", "budget_tokens": 1024})), Some("thinking".into()));
        assert_eq!(with("surprise", json!(1)), Some("surprise".into()));
        assert_eq!(with("tools", json!([{"type": "web_search_20250305", "name": "w"}])), Some("tools[0].type".into()));
        let mut no_max = map(base.clone());
        no_max.remove("max_tokens");
        assert_eq!(request(&no_max).err().map(|e| e.param), Some("max_tokens".into()));
        let doc = json!([{"role": "user", "content": [{"type": "document", "source": {}}]}]);
        assert_eq!(with("messages", doc), Some("messages[0].content[0].type".into()));
    }

    #[test]
    fn a_reply_with_a_tool_call_becomes_blocks() {
        let chat = json!({"model": "r", "psf_disclosure": "AI", "choices": [{"message": {"content": "", "tool_calls": [{"id": "c1", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let r = reply(&chat, "msg_1");
        assert_eq!(
            r["content"],
            json!([{"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}}])
        );
        assert_eq!(r["stop_reason"], "tool_use");
        assert_eq!(r["usage"], json!({"input_tokens": 3, "output_tokens": 4}));
        assert_eq!(r["psf_disclosure"], "AI");
    }

    #[test]
    fn a_stream_becomes_the_event_sequence() {
        let mut t = Events::new("msg_1", "r");
        let mut events = Vec::new();
        for chunk in super::super::sample_stream(["", "{}"]) {
            events.extend(t.chunk(&chunk));
        }
        events.extend(t.done());
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[5].data["index"], 1);
        assert_eq!(events[5].data["content_block"]["type"], "tool_use");
        assert_eq!(events[8].data["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[8].data["usage"]["output_tokens"], 3);
        assert!(t.done().is_empty(), "the end is written once");
    }

    #[test]
    fn errors_take_anthropics_shape() {
        let e =
            error(429, &json!({"error": {"message": "slow down", "code": "IG-4.rate_limit", "request_id": "req_1"}}));
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], "rate_limit_error");
        assert_eq!(e["error"]["message"], "slow down");
        assert_eq!(e["request_id"], "req_1");
    }
}
