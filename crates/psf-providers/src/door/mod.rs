//! Front doors: the wire shapes clients speak besides Chat Completions, translated to
//! the one internal request (a Chat Completions body) and back, so input governance,
//! routing, output validation, oversight, audit, limits and metrics stay one code path.
//!
//! Each door has three pure parts, with no IO, so they are tested (and fuzzed) alone:
//! a request translation that refuses, naming the parameter, anything it cannot carry
//! (never a parameter silently dropped); a reply translation for a whole completion;
//! and an event translator that turns the gateway's Chat Completions stream, chunk by
//! chunk, into the door's own event sequence.
//!
//! - [`responses`]: OpenAI's Responses API (`POST /v1/responses`).
//! - [`messages`]: Anthropic's Messages API (`POST /v1/messages`).

pub mod messages;
pub mod responses;

use std::fmt;

use serde_json::{Map, Value};

/// A request a front door cannot carry: which parameter, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Where in the request (`tools[2].type`, `previous_response_id`).
    pub param: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Refused {
    fn new(param: impl Into<String>, message: impl Into<String>) -> Refused {
        Refused { param: param.into(), message: message.into() }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.param, self.message)
    }
}

impl std::error::Error for Refused {}

/// One server-sent event a door writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The `event:` field (the door's event type).
    pub name: String,
    /// The `data:` payload.
    pub data: Value,
}

impl Event {
    /// The event as SSE text.
    pub fn to_sse(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.name, self.data)
    }
}

/// What one Chat Completions stream chunk says, read the same way for every door.
#[derive(Debug, Default)]
struct Parts<'a> {
    text: Option<&'a str>,
    calls: Vec<CallDelta<'a>>,
    finish: Option<&'a str>,
    usage: Option<Usage>,
}

/// A piece of a tool call in a stream chunk: the first piece of a call names it.
#[derive(Debug)]
struct CallDelta<'a> {
    index: u64,
    id: Option<&'a str>,
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Token counts, as Chat Completions reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    prompt: u64,
    completion: u64,
}

impl Usage {
    fn of(usage: Option<&Value>) -> Option<Usage> {
        let u = usage.filter(|u| u.is_object())?;
        Some(Usage {
            prompt: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
            completion: u.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
        })
    }
}

/// Reads a chunk's first choice (doors never ask for `n` above 1) and its usage.
fn parts(chunk: &Value) -> Parts<'_> {
    let choice = chunk.pointer("/choices/0");
    let delta = choice.and_then(|c| c.get("delta"));
    let calls = delta
        .and_then(|d| d.get("tool_calls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, call)| CallDelta {
            index: call.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
            id: call.get("id").and_then(Value::as_str),
            name: call.pointer("/function/name").and_then(Value::as_str),
            arguments: call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or_default(),
        })
        .collect();
    Parts {
        text: delta.and_then(|d| d.get("content")).and_then(Value::as_str).filter(|t| !t.is_empty()),
        calls,
        finish: choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str),
        usage: Usage::of(chunk.get("usage")),
    }
}

/// What every door's stream translator tracks the same way: whether it has begun and
/// ended, the answering model and psf's fields from the first chunk, how the answer
/// finished and its usage.
#[derive(Debug, Default)]
struct Progress {
    started: bool,
    ended: bool,
    model: String,
    extra: Map<String, Value>,
    finish: Option<String>,
    usage: Option<Usage>,
}

impl Progress {
    fn new(model: &str) -> Progress {
        Progress { model: model.to_string(), ..Progress::default() }
    }

    /// Reads a chunk: the first names the model; any may carry psf's fields (the
    /// disclosure first, the answer's state last), the finish and the usage.
    fn read<'a>(&mut self, chunk: &'a Value) -> Parts<'a> {
        carry_psf_fields(chunk, &mut self.extra);
        if !self.started
            && let Some(m) = chunk.get("model").and_then(Value::as_str)
        {
            self.model = m.to_string();
        }
        let p = parts(chunk);
        if p.usage.is_some() {
            self.usage = p.usage;
        }
        if let Some(f) = p.finish {
            self.finish = Some(f.to_string());
        }
        p
    }

    /// Marks the stream ended; `false` when it already was, so an end is written once.
    fn end(&mut self) -> bool {
        !std::mem::replace(&mut self.ended, true)
    }
}

/// A whole completion's first choice, read the same way for every door.
#[derive(Debug)]
struct Whole<'a> {
    text: String,
    calls: Vec<Call>,
    finish: Option<&'a str>,
    usage: Option<Usage>,
}

/// A whole tool call.
#[derive(Debug)]
struct Call {
    id: String,
    name: String,
    arguments: String,
}

/// Reads a whole completion's first choice: its text, tool calls, finish and usage.
fn completion(chat: &Value) -> Whole<'_> {
    let choice = chat.pointer("/choices/0");
    let message = choice.and_then(|c| c.get("message"));
    let text = message.and_then(|m| m.get("content")).and_then(Value::as_str).unwrap_or_default().to_string();
    let calls = message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |p: &str| c.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            Call { id: s("/id"), name: s("/function/name"), arguments: s("/function/arguments") }
        })
        .collect();
    let finish = choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str);
    Whole { text, calls, finish, usage: Usage::of(chat.get("usage")) }
}

/// Fields psf adds to a body (the AI disclosure, the degraded marker), carried over to
/// the door's own body so those controls hold for every door.
fn carry_psf_fields(from: &Value, to: &mut Map<String, Value>) {
    for (k, v) in from.as_object().into_iter().flatten() {
        if k.starts_with("psf_") {
            to.insert(k.clone(), v.clone());
        }
    }
}

/// The text of a content value that must be text: a string, or a list of text parts
/// whose `type` is one of `kinds`.
fn text_parts(content: &Value, kinds: &[&str], param: &str) -> Result<String, Refused> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
                if !kinds.contains(&kind) {
                    return Err(Refused::new(
                        format!("{param}[{i}].type"),
                        format!("`{kind}` is not accepted here; send {}", kinds.join(" or ")),
                    ));
                }
                out.push(part.get("text").and_then(Value::as_str).unwrap_or_default());
            }
            Ok(out.join("\n"))
        }
        _ => Err(Refused::new(param, "must be text or a list of text parts")),
    }
}

/// A gateway stream for the doors' tests: text in two pieces, then one tool call whose
/// arguments come in the two `arguments` pieces, then the usage chunk.
#[cfg(test)]
fn sample_stream(arguments: [&str; 2]) -> Vec<Value> {
    let chunk = |delta: Value, finish: Value| serde_json::json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let named = serde_json::json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": arguments[0]}}]});
    let rest = serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments[1]}}]});
    vec![
        chunk(serde_json::json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(serde_json::json!({"content": "Hel"}), Value::Null),
        chunk(serde_json::json!({"content": "lo"}), Value::Null),
        chunk(named, Value::Null),
        chunk(rest, serde_json::json!("tool_calls")),
        serde_json::json!({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}),
    ]
}
