//! An upstream reply through the gateway's output path, without a server or a network:
//! the boundary's shape check, then the same output stages a live request runs (whole:
//! every choice, the review template, the one-chunk stream; streamed: the SSE decoder,
//! each chunk, the end). The fuzz target `upstream_reply` drives it with arbitrary
//! bytes; whatever they are, the answer is a value or an error, never a panic.

use std::sync::Arc;

use psf_detect::Vault;
use psf_providers::{ProviderError, shape, sse};
use serde_json::Value;

use crate::config::{Compiled, Point};

/// A compiled decision point, as [`Compiled::points`] holds it.
pub type ReplayPoint = Point;
use crate::error::ApiError;
use crate::output::OutputGuard;
use crate::pipeline::Trail;
use crate::stream::{StreamCheck, one_chunk_stream};

/// A decision point with every output control on that needs no network: the fuzz
/// target and the tests replay replies against it.
pub const REPLAY_MANIFEST: &str = r#"
version: 1
system:
  name: Replay
  owner: {name: Tess Ownby, email: tess.ownby@example.com}
decision_points:
  - id: chat
    autonomy: autonomous
    model: m
    system_prompt: You are the assistant of Example Shop and answer questions about parcels only.
    disclosure: {text: "You are talking to an AI.", body_field: true}
    output:
      max_chars: 200
      pii: {contact: redact, government_id: block}
models:
  - {id: m, provider: up, model: x}
providers:
  - {id: up, kind: openai_compatible, base_url: "http://127.0.0.1:9", self_hosted: true}
"#;

/// Why a replayed reply was not delivered.
#[derive(Debug)]
pub enum Refused {
    /// The reply is not what the protocol promises (the router would fall back).
    Provider(ProviderError),
    /// An output control refused it.
    Output(ApiError),
}

/// [`REPLAY_MANIFEST`] compiled, and its decision point `chat`: what the fuzz target and
/// the tests replay against.
pub fn compiled() -> Result<(Compiled, Arc<Point>), String> {
    let options = psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 23) };
    let manifest = psf_core::load(REPLAY_MANIFEST, &options, &|_| None).map_err(|d| format!("{d:?}"))?;
    let compiled = Compiled::new(manifest, &|_| None).map_err(|e| e.to_string())?;
    let point = compiled.points.get("chat").cloned().ok_or("the replay manifest has no decision point `chat`")?;
    Ok((compiled, point))
}

/// A reply that is not what the protocol promises.
fn malformed(why: impl std::fmt::Display) -> Refused {
    Refused::Provider(ProviderError::new("replay", psf_providers::ErrorKind::Malformed, why.to_string()))
}

fn guard(compiled: &Compiled, point: &Arc<Point>) -> OutputGuard {
    OutputGuard::new(point.clone(), compiled.pii.clone(), Vault::new(), false)
}

/// A whole reply (the bytes of a `chat.completion` body) at `point`: what the client
/// would get, as JSON, and the same answer as the events of a stream.
pub fn whole(compiled: &Compiled, point: &Arc<Point>, bytes: &[u8]) -> Result<(Value, String), Refused> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(malformed)?;
    shape::completion("replay", &value).map_err(Refused::Provider)?;
    let mut trail = Trail::default();
    guard(compiled, point).check_completion(&mut value, &mut trail).map_err(Refused::Output)?;
    // A held answer's template is made from the checked reply too.
    let _template = crate::review::response_template(value.clone());
    let events = one_chunk_stream(&value, true);
    Ok((value, events))
}

/// A streamed reply (the bytes of an SSE body of `chat.completion.chunk` events) at
/// `point`: the chunks the client would get, in order, for a client that asked for usage.
pub fn streamed(compiled: &Compiled, point: &Arc<Point>, bytes: &[u8]) -> Result<Vec<Value>, Refused> {
    let mut decoder = sse::Decoder::new(compiled.reply_limits.max_event_bytes);
    let mut events = decoder.push(bytes).map_err(malformed)?;
    events.extend(decoder.finish());
    let mut check = StreamCheck::new(point.clone(), guard(compiled, point), true);
    let mut trail = Trail::default();
    let mut out = Vec::new();
    for event in events {
        if event.data.trim() == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(&event.data).map_err(malformed)?;
        shape::chunk("replay", &chunk).map_err(Refused::Provider)?;
        out.extend(check.chunk(chunk, &mut trail).map_err(Refused::Output)?);
    }
    out.extend(check.end(&mut trail).map_err(Refused::Output)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled() -> (Compiled, Arc<Point>) {
        super::compiled().unwrap()
    }

    #[test]
    fn a_good_reply_is_delivered_whole_and_streamed() {
        let (c, p) = compiled();
        let reply = br#"{"id":"x","model":"x","choices":[{"index":0,"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
        let (value, events) = whole(&c, &p, reply).unwrap();
        assert_eq!(value["choices"][0]["message"]["content"], "Hello.");
        assert!(events.ends_with("data: [DONE]\n\n"));
        let sse = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo.\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let chunks = streamed(&c, &p, sse).unwrap();
        let text: String =
            chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
        assert_eq!(text, "Hello.");
    }

    #[test]
    fn wrong_shapes_are_provider_errors_and_long_answers_output_refusals() {
        let (c, p) = compiled();
        for bad in [&b"[]"[..], br#"{"choices":[{"message":"hi"}]}"#, br#"{"choices":[{"message":{"content":1}}]}"#] {
            assert!(matches!(whole(&c, &p, bad), Err(Refused::Provider(_))));
        }
        let long =
            format!(r#"{{"choices":[{{"message":{{"content":"{}"}},"finish_reason":"stop"}}]}}"#, "a".repeat(300));
        assert!(matches!(whole(&c, &p, long.as_bytes()), Err(Refused::Output(_))));
        assert!(matches!(streamed(&c, &p, b"data: {\"choices\":[{\"delta\":7}]}\n\n"), Err(Refused::Provider(_))));
        assert!(matches!(
            streamed(&c, &p, b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"),
            Err(Refused::Output(_))
        ));
    }
}
