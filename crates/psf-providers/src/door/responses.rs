//! OpenAI's Responses API as a front door: a `/v1/responses` request becomes a Chat
//! Completions request, and the gateway's answer becomes a `response` object, or the
//! typed event sequence the official SDKs parse.
//!
//! psf keeps no conversation state, so what needs it (`previous_response_id`,
//! `conversation`, `store: true`, `background`, stored prompts) is refused by name, as
//! is anything else Chat Completions cannot carry (server tools, reasoning items,
//! files). `instructions` become the first system message, under the decision point's
//! system prompt policy (IG-5) like any client system message.

use serde_json::{Map, Value, json};

use super::{Call, Event, Progress, Refused, Usage, Whole, carry_psf_fields, completion, text_parts};

/// Top-level fields this door reads; any other is refused by name.
const FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "stream_options",
    "parallel_tool_calls",
    "user",
    "metadata",
    "store",
    "previous_response_id",
    "conversation",
    "prompt",
    "reasoning",
    "truncation",
    "include",
    "background",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
];

/// A Responses request: the Chat Completions request it becomes, and the request's
/// settings that every `response` object it answers with repeats.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The internal request.
    pub chat: Map<String, Value>,
    /// The `response` object's fields that echo the request.
    pub echo: Map<String, Value>,
}

fn stateful(param: &str) -> Refused {
    Refused::new(
        param,
        "needs state kept between responses, and psf is stateless; send the whole conversation in `input`",
    )
}

/// A Responses request as a Chat Completions request.
pub fn request(body: &Map<String, Value>) -> Result<Translated, Refused> {
    if let Some(k) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Refused::new(k.as_str(), "is not a Responses API parameter psf can carry; remove it"));
    }
    let set = |k: &str| body.get(k).filter(|v| !v.is_null());
    for k in ["previous_response_id", "conversation", "prompt"] {
        if set(k).is_some() {
            return Err(stateful(k));
        }
    }
    if set("store") == Some(&Value::Bool(true)) {
        return Err(stateful("store"));
    }
    if set("background") == Some(&Value::Bool(true)) {
        return Err(Refused::new("background", "background responses are not carried by psf; stream instead"));
    }
    if set("include").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        return Err(Refused::new("include", "extra output data is not carried by psf; remove it"));
    }
    if set("truncation").is_some_and(|t| t != "disabled") {
        return Err(Refused::new("truncation", "only `disabled` is carried by psf"));
    }
    let mut chat = Map::new();
    match set("model") {
        Some(Value::String(m)) => {
            chat.insert("model".into(), json!(m));
        }
        _ => return Err(Refused::new("model", "is required, as text")),
    }
    let mut messages = Vec::new();
    if let Some(instructions) = set("instructions") {
        let text = text_parts(instructions, &["input_text"], "instructions")?;
        messages.push(json!({"role": "system", "content": text}));
    }
    match set("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                item_messages(item, &format!("input[{i}]"), &mut messages)?;
            }
        }
        _ => return Err(Refused::new("input", "is required: text, or a list of input items")),
    }
    chat.insert("messages".into(), Value::Array(messages));
    if set("stream") == Some(&Value::Bool(true)) {
        chat.insert("stream".into(), json!(true));
        // `response.completed` carries the usage, so the gateway is asked for it.
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(n) = set("max_output_tokens") {
        chat.insert("max_completion_tokens".into(), n.clone());
    }
    for k in ["temperature", "top_p", "parallel_tool_calls", "user", "service_tier", "prompt_cache_key"] {
        if let Some(v) = set(k) {
            chat.insert(k.into(), v.clone());
        }
    }
    if let Some(id) = set("safety_identifier") {
        chat.insert("safety_identifier".into(), id.clone());
    }
    if let Some(reasoning) = set("reasoning") {
        if reasoning.get("summary").is_some_and(|s| !s.is_null()) {
            return Err(Refused::new("reasoning.summary", "reasoning summaries are not carried by psf; remove it"));
        }
        if let Some(effort) = reasoning.get("effort").filter(|e| !e.is_null()) {
            chat.insert("reasoning_effort".into(), effort.clone());
        }
    }
    if let Some(tools) = set("tools") {
        chat.insert("tools".into(), Value::Array(translate_tools(tools)?));
    }
    if let Some(choice) = set("tool_choice") {
        chat.insert("tool_choice".into(), tool_choice(choice)?);
    }
    let mut format = json!({"type": "text"});
    if let Some(text) = set("text") {
        if let Some(f) = text.get("format").filter(|f| !f.is_null()) {
            if let Some(rf) = response_format(f)? {
                chat.insert("response_format".into(), rf);
            }
            format = f.clone();
        }
        if let Some(v) = text.get("verbosity").filter(|v| !v.is_null()) {
            chat.insert("verbosity".into(), v.clone());
        }
    }
    let mut echo = Map::new();
    echo.insert("instructions".into(), body.get("instructions").cloned().unwrap_or(Value::Null));
    echo.insert("tools".into(), set("tools").cloned().unwrap_or_else(|| json!([])));
    echo.insert("tool_choice".into(), set("tool_choice").cloned().unwrap_or_else(|| json!("auto")));
    echo.insert("text".into(), json!({"format": format}));
    echo.insert("parallel_tool_calls".into(), set("parallel_tool_calls").cloned().unwrap_or(json!(true)));
    echo.insert("metadata".into(), set("metadata").cloned().unwrap_or_else(|| json!({})));
    for k in ["temperature", "top_p", "max_output_tokens", "user", "reasoning"] {
        echo.insert(k.into(), set(k).cloned().unwrap_or(Value::Null));
    }
    echo.insert("store".into(), json!(false));
    echo.insert("background".into(), json!(false));
    echo.insert("previous_response_id".into(), Value::Null);
    echo.insert("truncation".into(), json!("disabled"));
    Ok(Translated { chat, echo })
}

/// One input item as Chat Completions messages.
fn item_messages(item: &Value, at: &str, out: &mut Vec<Value>) -> Result<(), Refused> {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
    match kind {
        "message" => {
            let role = item.get("role").and_then(Value::as_str).unwrap_or_default();
            let content = item.get("content").unwrap_or(&Value::Null);
            match role {
                "user" | "system" | "developer" => {
                    let content = match content {
                        Value::String(s) => json!(s),
                        Value::Array(parts) => Value::Array(input_parts(parts, &format!("{at}.content"))?),
                        _ => return Err(Refused::new(format!("{at}.content"), "must be text or a list of parts")),
                    };
                    let role = if role == "user" { "user" } else { "system" };
                    out.push(json!({"role": role, "content": content}));
                }
                "assistant" => {
                    let text =
                        text_parts(content, &["output_text", "input_text", "refusal"], &format!("{at}.content"))?;
                    out.push(json!({"role": "assistant", "content": text}));
                }
                _ => {
                    return Err(Refused::new(
                        format!("{at}.role"),
                        "must be `user`, `assistant`, `system` or `developer`",
                    ));
                }
            }
        }
        "function_call" => {
            let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
            let call = json!({"id": s("call_id"), "type": "function", "function": {"name": s("name"), "arguments": s("arguments")}});
            // Calls made in one turn belong to one assistant message, whose results follow.
            match out.last_mut() {
                Some(last) if last.get("role").and_then(Value::as_str) == Some("assistant") => {
                    match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                        Some(calls) => calls.push(call),
                        None => {
                            if let Some(m) = last.as_object_mut() {
                                m.insert("tool_calls".into(), json!([call]));
                            }
                        }
                    }
                }
                _ => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let id = item.get("call_id").and_then(Value::as_str).unwrap_or_default();
            let output = match item.get("output") {
                Some(o) => text_parts(o, &["input_text", "output_text"], &format!("{at}.output"))?,
                None => String::new(),
            };
            out.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
        }
        other => {
            return Err(Refused::new(
                format!("{at}.type"),
                format!("a `{other}` item is not carried by psf; send messages, function calls and their outputs"),
            ));
        }
    }
    Ok(())
}

fn input_parts(parts: &[Value], at: &str) -> Result<Vec<Value>, Refused> {
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| match p.get("type").and_then(Value::as_str).unwrap_or_default() {
            "input_text" | "output_text" => {
                Ok(json!({"type": "text", "text": p.get("text").and_then(Value::as_str).unwrap_or_default()}))
            }
            "input_image" => match p.get("image_url").and_then(Value::as_str) {
                Some(url) => {
                    let mut image = json!({"url": url});
                    if let Some(detail) = p.get("detail").filter(|d| !d.is_null()) {
                        image["detail"] = detail.clone();
                    }
                    Ok(json!({"type": "image_url", "image_url": image}))
                }
                None => Err(Refused::new(
                    format!("{at}[{i}]"),
                    "an image by `file_id` is not carried by psf; send `image_url`",
                )),
            },
            kind => Err(Refused::new(format!("{at}[{i}].type"), format!("`{kind}` parts are not carried by psf"))),
        })
        .collect()
}

fn translate_tools(tools: &Value) -> Result<Vec<Value>, Refused> {
    let Some(list) = tools.as_array() else {
        return Err(Refused::new("tools", "must be a list"));
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or_default();
            if kind != "function" {
                return Err(Refused::new(
                    format!("tools[{i}].type"),
                    format!("the `{kind}` tool is not carried by psf; declare function tools"),
                ));
            }
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                return Err(Refused::new(format!("tools[{i}].name"), "is required"));
            };
            let mut function = json!({"name": name});
            for k in ["description", "parameters", "strict"] {
                if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
                    function[k] = v.clone();
                }
            }
            Ok(json!({"type": "function", "function": function}))
        })
        .collect()
}

fn tool_choice(choice: &Value) -> Result<Value, Refused> {
    match choice {
        Value::String(s) if ["auto", "none", "required"].contains(&s.as_str()) => Ok(choice.clone()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o.get("name").and_then(Value::as_str) {
                Some(name) => Ok(json!({"type": "function", "function": {"name": name}})),
                None => Err(Refused::new("tool_choice.name", "is required for a function")),
            }
        }
        _ => Err(Refused::new("tool_choice", "must be `auto`, `none`, `required` or a function by name")),
    }
}

/// `text.format` as Chat Completions' `response_format` (`None` for plain text).
fn response_format(format: &Value) -> Result<Option<Value>, Refused> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let Some(name) = format.get("name").and_then(Value::as_str) else {
                return Err(Refused::new("text.format.name", "is required for a JSON schema"));
            };
            let mut schema =
                json!({"name": name, "schema": format.get("schema").cloned().unwrap_or_else(|| json!({}))});
            for k in ["strict", "description"] {
                if let Some(v) = format.get(k).filter(|v| !v.is_null()) {
                    schema[k] = v.clone();
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(Refused::new("text.format.type", "must be `text`, `json_object` or `json_schema`")),
    }
}

fn usage(u: Usage) -> Value {
    json!({
        "input_tokens": u.prompt, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": u.completion, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.prompt + u.completion,
    })
}

/// The status a finish reason gives a response, and why it is incomplete.
fn status(finish: Option<&str>) -> (&'static str, Value) {
    match finish {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id, "type": "message", "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    })
}

fn call_item(index: usize, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"id": format!("fc_{index}_{call_id}"), "type": "function_call", "status": status,
           "call_id": call_id, "name": name, "arguments": arguments})
}

/// A `response` object: the echoed request, with `fields` over it.
fn response(echo: &Map<String, Value>, id: &str, created_at: i64, model: &str, fields: Value) -> Value {
    let mut r = Map::new();
    r.insert("id".into(), json!(id));
    r.insert("object".into(), json!("response"));
    r.insert("created_at".into(), json!(created_at));
    r.insert("model".into(), json!(model));
    r.insert("status".into(), json!("in_progress"));
    r.insert("error".into(), Value::Null);
    r.insert("incomplete_details".into(), Value::Null);
    r.insert("output".into(), json!([]));
    r.insert("usage".into(), Value::Null);
    r.extend(echo.clone());
    r.extend(fields.as_object().cloned().unwrap_or_default());
    Value::Object(r)
}

/// A whole Chat Completions answer as a `response` object with id `id`.
pub fn reply(echo: &Map<String, Value>, id: &str, created_at: i64, chat: &Value) -> Value {
    let Whole { text, calls, finish, usage: u } = completion(chat);
    let mut output = Vec::new();
    if !text.is_empty() || calls.is_empty() {
        output.push(message_item(&format!("msg_{id}"), &text, "completed"));
    }
    for (i, Call { id: call_id, name, arguments }) in calls.iter().enumerate() {
        output.push(call_item(i, call_id, name, arguments, "completed"));
    }
    let (status, incomplete) = status(finish);
    let model = chat.get("model").and_then(Value::as_str).unwrap_or_default();
    let fields = json!({"status": status, "incomplete_details": incomplete, "output": output,
                        "usage": u.map(usage)});
    let mut r = response(echo, id, created_at, model, fields);
    if let Some(obj) = r.as_object_mut() {
        carry_psf_fields(chat, obj);
    }
    r
}

/// A response held for review (HO-1): `queued`, with the review's status URL in
/// `psf_review`, as a background response would be.
pub fn queued(echo: &Map<String, Value>, id: &str, created_at: i64, model: &str, review: &Value) -> Value {
    response(echo, id, created_at, model, json!({"status": "queued", "psf_review": review}))
}

/// The item a stream is writing.
#[derive(Debug)]
enum Open {
    None,
    Text { id: String, text: String },
    Call { chat_index: u64, call_id: String, name: String, arguments: String },
}

/// Turns the gateway's chunks into the Responses event sequence: `response.created`,
/// per output item `response.output_item.added`, its deltas and `.done` events, then
/// `response.completed` (or `.incomplete`) with the whole response and its usage.
#[derive(Debug)]
pub struct Events {
    echo: Map<String, Value>,
    id: String,
    created_at: i64,
    progress: Progress,
    sequence: u64,
    open: Open,
    output: Vec<Value>,
    calls: usize,
}

impl Events {
    /// A translator for a response with id `id`, echoing `echo`.
    pub fn new(echo: Map<String, Value>, id: &str, created_at: i64, model: &str) -> Events {
        Events {
            echo,
            id: id.to_string(),
            created_at,
            progress: Progress::new(model),
            sequence: 0,
            open: Open::None,
            output: Vec::new(),
            calls: 0,
        }
    }

    fn push(&mut self, out: &mut Vec<Event>, name: &str, mut data: Value) {
        if let Some(d) = data.as_object_mut() {
            d.insert("type".into(), json!(name));
            d.insert("sequence_number".into(), json!(self.sequence));
        }
        self.sequence += 1;
        out.push(Event { name: name.to_string(), data });
    }

    fn snapshot(&self, fields: Value) -> Value {
        let mut r = response(&self.echo, &self.id, self.created_at, &self.progress.model, fields);
        if let Some(obj) = r.as_object_mut() {
            obj.extend(self.progress.extra.clone());
        }
        r
    }

    fn start(&mut self, out: &mut Vec<Event>) {
        if self.progress.started {
            return;
        }
        self.progress.started = true;
        let r = self.snapshot(json!({}));
        self.push(out, "response.created", json!({"response": r}));
        self.push(out, "response.in_progress", json!({"response": r}));
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        let index = self.output.len();
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Text { id, text } => {
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut e = at.clone();
                e["text"] = json!(text);
                e["logprobs"] = json!([]);
                self.push(out, "response.output_text.done", e);
                let mut e = at;
                e["part"] = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                self.push(out, "response.content_part.done", e);
                let item = message_item(&id, &text, "completed");
                self.push(out, "response.output_item.done", json!({"output_index": index, "item": item}));
                self.output.push(item);
            }
            Open::Call { call_id, name, arguments, .. } => {
                let item = call_item(self.calls, &call_id, &name, &arguments, "completed");
                self.calls += 1;
                let item_id = item["id"].clone();
                self.push(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "arguments": arguments, "name": name}),
                );
                self.push(out, "response.output_item.done", json!({"output_index": index, "item": item}));
                self.output.push(item);
            }
        }
    }

    /// The events for one chunk of the gateway's stream.
    pub fn chunk(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        let p = self.progress.read(chunk);
        self.start(&mut out);
        if let Some(text) = p.text {
            if !matches!(self.open, Open::Text { .. }) {
                self.close(&mut out);
                let id = format!("msg_{}", self.id);
                let item =
                    json!({"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []});
                let index = self.output.len();
                self.push(&mut out, "response.output_item.added", json!({"output_index": index, "item": item}));
                let part = json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
                self.push(
                    &mut out,
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                self.open = Open::Text { id, text: String::new() };
            }
            let index = self.output.len();
            if let Open::Text { id, text: all } = &mut self.open {
                all.push_str(text);
                let e = json!({"item_id": id.clone(), "output_index": index, "content_index": 0, "delta": text, "logprobs": []});
                self.push(&mut out, "response.output_text.delta", e);
            }
        }
        for call in &p.calls {
            let same = matches!(&self.open, Open::Call { chat_index, .. } if *chat_index == call.index);
            if !same {
                self.close(&mut out);
                let call_id = call.id.unwrap_or_default().to_string();
                let name = call.name.unwrap_or_default().to_string();
                let item = call_item(self.calls, &call_id, &name, "", "in_progress");
                let index = self.output.len();
                self.push(&mut out, "response.output_item.added", json!({"output_index": index, "item": item}));
                self.open = Open::Call { chat_index: call.index, call_id, name, arguments: String::new() };
            }
            if !call.arguments.is_empty() {
                let index = self.output.len();
                let n = self.calls;
                if let Open::Call { call_id, arguments, .. } = &mut self.open {
                    arguments.push_str(call.arguments);
                    let e =
                        json!({"item_id": format!("fc_{n}_{call_id}"), "output_index": index, "delta": call.arguments});
                    self.push(&mut out, "response.function_call_arguments.delta", e);
                }
            }
        }
        out
    }

    /// The stream's end (`[DONE]`): open items closed, then the whole response.
    pub fn done(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.progress.end() {
            return out;
        }
        self.start(&mut out);
        self.close(&mut out);
        let (status, incomplete) = status(self.progress.finish.as_deref());
        let r = self.snapshot(json!({"status": status, "incomplete_details": incomplete,
                                     "output": self.output, "usage": self.progress.usage.map(usage)}));
        let name = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.push(&mut out, name, json!({"response": r}));
        out
    }

    /// Whether the stream has been ended (completed or failed).
    pub fn ended(&self) -> bool {
        self.progress.ended
    }

    /// A response held for review, as a stream: `response.created` and
    /// `response.queued` with the [`queued`] response, and nothing after.
    pub fn queued(&mut self, response: Value) -> Vec<Event> {
        let mut out = Vec::new();
        self.progress.started = true;
        self.progress.ended = true;
        self.push(&mut out, "response.created", serde_json::json!({"response": response}));
        self.push(&mut out, "response.queued", serde_json::json!({"response": response}));
        out
    }

    /// An error in the gateway's stream (`{"error": {...}}`): an `error` event, then
    /// `response.failed`; the stream ends there.
    pub fn error(&mut self, openai: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.progress.end() {
            return out;
        }
        self.start(&mut out);
        let e = openai.get("error").unwrap_or(&Value::Null);
        let code = e.get("code").cloned().unwrap_or(Value::Null);
        let message = e.get("message").cloned().unwrap_or_else(|| json!("the response failed"));
        self.push(&mut out, "error", json!({"code": code, "message": message, "param": null}));
        let r = self.snapshot(json!({"status": "failed", "error": {"code": code, "message": message},
                                     "output": self.output, "usage": self.progress.usage.map(usage)}));
        self.push(&mut out, "response.failed", json!({"response": r}));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn items_become_messages_with_calls_and_results() {
        let body = map(json!({
            "model": "m", "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
                {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
                {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": "{\"city\":\"Rome\"}"},
                {"type": "function_call_output", "call_id": "c1", "output": "4 degrees"},
                {"type": "function_call_output", "call_id": "c2", "output": "20 degrees"},
            ],
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": true}],
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
            "max_output_tokens": 50, "stream": true, "store": false,
        }));
        let t = request(&body).unwrap_or_else(|e| panic!("{e}"));
        let m = &t.chat["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(m[1]["content"][0], json!({"type": "text", "text": "Weather?"}));
        assert_eq!(m[2]["tool_calls"].as_array().map(Vec::len), Some(2));
        assert_eq!(m[3], json!({"role": "tool", "tool_call_id": "c1", "content": "4 degrees"}));
        assert_eq!(t.chat["tools"][0]["function"]["strict"], true);
        assert_eq!(t.chat["response_format"]["json_schema"]["name"], "w");
        assert_eq!(t.chat["max_completion_tokens"], 50);
        assert_eq!(t.chat["stream_options"]["include_usage"], true);
        assert_eq!(t.echo["text"]["format"]["type"], "json_schema");
    }

    #[test]
    fn state_and_server_tools_are_refused_by_name() {
        let with = |k: &str, v: Value| {
            let mut b = map(json!({"model": "m", "input": "hi"}));
            b.insert(k.into(), v);
            request(&b).err().map(|e| e.param)
        };
        assert_eq!(with("previous_response_id", json!("resp_1")), Some("previous_response_id".into()));
        assert_eq!(with("store", json!(true)), Some("store".into()));
        assert_eq!(with("store", json!(false)), None);
        assert_eq!(with("tools", json!([{"type": "web_search"}])), Some("tools[0].type".into()));
        assert_eq!(with("input", json!([{"type": "reasoning", "id": "r"}])), Some("input[0].type".into()));
        assert_eq!(with("modalities", json!(["text"])), Some("modalities".into()));
    }

    #[test]
    fn a_reply_becomes_a_response_object() {
        let echo = request(&map(json!({"model": "m", "input": "hi", "metadata": {"k": "v"}}))).map(|t| t.echo);
        let echo = echo.unwrap_or_default();
        let chat = json!({"model": "r", "choices": [{"message": {"content": "Hi", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "length"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let r = reply(&echo, "resp_1", 7, &chat);
        assert_eq!(r["object"], "response");
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(r["output"][0]["content"][0]["text"], "Hi");
        assert_eq!(r["output"][1]["call_id"], "c1");
        assert_eq!(r["usage"]["total_tokens"], 7);
        assert_eq!(r["metadata"]["k"], "v");
    }

    #[test]
    fn a_stream_becomes_typed_events_in_order() {
        let mut t = Events::new(Map::new(), "resp_1", 7, "r");
        let mut events = Vec::new();
        for chunk in super::super::sample_stream([r#"{"a""#, ":1}"]) {
            events.extend(t.chunk(&chunk));
        }
        events.extend(t.done());
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let seq: Vec<u64> = events.iter().filter_map(|e| e.data["sequence_number"].as_u64()).collect();
        assert_eq!(seq, (0..events.len() as u64).collect::<Vec<_>>());
        assert_eq!(events[6].data["text"], "Hello");
        assert_eq!(events[12].data["arguments"], "{\"a\":1}");
        assert_eq!(events[12].data["output_index"], 1);
        let done = &events[14].data["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(done["usage"]["output_tokens"], 3);
    }

    #[test]
    fn an_error_mid_stream_fails_the_response() {
        let mut t = Events::new(Map::new(), "resp_1", 7, "r");
        let events = t.error(&json!({"error": {"code": "OV-1.pii", "message": "blocked"}}));
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["response.created", "response.in_progress", "error", "response.failed"]);
        assert_eq!(events[3].data["response"]["error"]["code"], "OV-1.pii");
        assert!(t.done().is_empty());
    }
}
