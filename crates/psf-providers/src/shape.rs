//! The shape an upstream's reply must have before the gateway reads it.
//!
//! The gateway walks completions and chunks with checked access, but a field of the wrong
//! type would still slip past its output checks (an answer whose `content` is a number is
//! not text to scan). So a reply is checked here, once, at the boundary: one of the wrong
//! shape is a [`ErrorKind::Malformed`] provider error, which the router treats like any
//! other provider fault (it falls back, and counts it against the breaker).

use serde_json::Value;

use crate::{ErrorKind, ProviderError};

/// Checks a whole `chat.completion`: an object whose `choices` is an array of objects,
/// each `message` an object with text or null `content`.
pub fn completion(provider: &str, reply: &Value) -> Result<(), ProviderError> {
    let malformed = |what: String| Err(ProviderError::new(provider, ErrorKind::Malformed, what));
    let Some(obj) = reply.as_object() else { return malformed("the reply is not a JSON object".into()) };
    let Some(choices) = obj.get("choices").and_then(Value::as_array) else {
        return malformed("the reply has no `choices` array".into());
    };
    for (i, choice) in choices.iter().enumerate() {
        let Some(choice) = choice.as_object() else { return malformed(format!("`choices[{i}]` is not an object")) };
        if let Some(message) = choice.get("message") {
            let Some(message) = message.as_object() else {
                return malformed(format!("`choices[{i}].message` is not an object"));
            };
            if let Err((field, problem)) = text_fields(message) {
                return malformed(format!("`choices[{i}].message.{field}` {problem}"));
            }
        }
        if let Err((field, problem)) = choice_fields(choice) {
            return malformed(format!("`choices[{i}].{field}` {problem}"));
        }
    }
    top_fields(obj).or_else(|(field, problem)| malformed(format!("`{field}` {problem}")))
}

/// Checks an embeddings reply: an object whose `data` is an array of objects, each with
/// an `embedding` that is a list of numbers or (for `encoding_format: base64`) text.
pub fn embeddings(provider: &str, reply: &Value) -> Result<(), ProviderError> {
    let malformed = |what: String| Err(ProviderError::new(provider, ErrorKind::Malformed, what));
    let Some(data) = reply.get("data").and_then(Value::as_array) else {
        return malformed("the reply has no `data` array".into());
    };
    for (i, item) in data.iter().enumerate() {
        match item.get("embedding") {
            Some(Value::Array(v)) if v.iter().all(Value::is_number) => {}
            Some(Value::String(_)) => {}
            _ => return malformed(format!("`data[{i}].embedding` is not a list of numbers or base64 text")),
        }
    }
    Ok(())
}

/// Checks one `chat.completion.chunk` of a stream: an object; `choices`, where present,
/// an array of objects whose `delta` is an object with text or null `content`.
pub fn chunk(provider: &str, chunk: &Value) -> Result<(), ProviderError> {
    let malformed = |what: String| Err(ProviderError::new(provider, ErrorKind::Malformed, what));
    let Some(obj) = chunk.as_object() else { return malformed("a stream event is not a JSON object".into()) };
    match obj.get("choices") {
        None | Some(Value::Null) => {}
        Some(Value::Array(choices)) => {
            for (i, choice) in choices.iter().enumerate() {
                let Some(choice) = choice.as_object() else {
                    return malformed(format!("a stream event's `choices[{i}]` is not an object"));
                };
                match choice.get("delta") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(delta)) => {
                        if let Err((field, problem)) = text_fields(delta) {
                            return malformed(format!("a stream event's `choices[{i}].delta.{field}` {problem}"));
                        }
                    }
                    Some(_) => return malformed(format!("a stream event's `choices[{i}].delta` is not an object")),
                }
                if let Err((field, problem)) = choice_fields(choice) {
                    return malformed(format!("a stream event's `choices[{i}].{field}` {problem}"));
                }
            }
        }
        Some(_) => return malformed("a stream event's `choices` is not an array".into()),
    }
    top_fields(obj).or_else(|(field, problem)| malformed(format!("a stream event's `{field}` {problem}")))
}

type Fields = serde_json::Map<String, Value>;
/// A field of the wrong type, and what is wrong with it.
type Wrong = (&'static str, &'static str);

/// The JSON types a field may have (absent and null are always allowed).
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Array,
    Object,
}

/// Checks that each named field of `fields` is absent, null or of its kind.
fn kinds(fields: &Fields, expected: &[(&'static str, Kind)]) -> Result<(), Wrong> {
    for (name, kind) in expected {
        let ok = matches!(
            (fields.get(*name), kind),
            (None | Some(Value::Null), _)
                | (Some(Value::String(_)), Kind::Text)
                | (Some(Value::Array(_)), Kind::Array)
                | (Some(Value::Object(_)), Kind::Object)
        );
        if !ok {
            let problem = match kind {
                Kind::Text => "is neither text nor null",
                Kind::Array => "is not an array",
                Kind::Object => "is not an object",
            };
            return Err((name, problem));
        }
    }
    Ok(())
}

/// A message's or delta's `content` (text) and `tool_calls` (an array).
fn text_fields(m: &Fields) -> Result<(), Wrong> {
    kinds(m, &[("content", Kind::Text), ("tool_calls", Kind::Array)])
}

/// A choice's `finish_reason` (text) and `logprobs` (an object).
fn choice_fields(c: &Fields) -> Result<(), Wrong> {
    kinds(c, &[("finish_reason", Kind::Text), ("logprobs", Kind::Object)])
}

/// `usage` (an object) and `model` (text).
fn top_fields(o: &Fields) -> Result<(), Wrong> {
    kinds(o, &[("usage", Kind::Object), ("model", Kind::Text)])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_well_formed_completion_and_chunk_pass() {
        let c = json!({"id": "x", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1}});
        assert!(completion("p", &c).is_ok());
        let k = json!({"choices": [{"index": 0, "delta": {"content": "h"}, "finish_reason": null}]});
        assert!(chunk("p", &k).is_ok());
        assert!(chunk("p", &json!({"choices": [], "usage": {"completion_tokens": 2}})).is_ok());
    }

    #[test]
    fn wrong_shapes_are_malformed_and_say_where() {
        for (reply, at) in [
            (json!([1]), "not a JSON object"),
            (json!({"choices": {}}), "`choices` array"),
            (json!({"choices": [3]}), "`choices[0]` is not"),
            (json!({"choices": [{"message": "hi"}]}), "`choices[0].message` is not"),
            (json!({"choices": [{"message": {"content": 7}}]}), "`choices[0].message.content`"),
            (json!({"choices": [{"message": {"content": [{"text": "x"}]}}]}), "content` is neither"),
            (json!({"choices": [], "usage": 5}), "`usage` is not"),
        ] {
            let e = completion("p", &reply).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Malformed);
            assert!(e.message.contains(at), "{reply}: {}", e.message);
            assert!(e.is_retryable(), "a malformed reply falls back");
        }
        for k in [
            json!("x"),
            json!({"choices": 1}),
            json!({"choices": [{"delta": []}]}),
            json!({"choices": [{"delta": {"content": {}}}]}),
            json!({"choices": [{"finish_reason": 1}]}),
        ] {
            assert_eq!(chunk("p", &k).unwrap_err().kind, ErrorKind::Malformed, "{k}");
        }
    }
}
