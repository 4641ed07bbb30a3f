//! `POST /v1/embeddings`: the input stages and the model chain of a decision point of
//! `kind: embeddings`. The texts go through the same stages as a chat request's messages
//! (size and shape IG-2, sanitising and injection IG-1 at the threshold for retrieved
//! content, PII per class DG-1), by the same code: each text is a `tool` message to
//! [`crate::handler::prepare`]. A vector is not an answer, so there are no output stages;
//! the audit record keeps the texts redacted and says how many vectors went back.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use psf_core::code::{Code, Outcome};
use psf_core::manifest::{PiiAction, PointKind};
use serde_json::{Map, Value, json};

use crate::config::Point;
use crate::ctx::{Ctx, request_id};
use crate::error::ApiError;
use crate::handler::{self, Stop};
use crate::pipeline::{self, Decision};
use crate::record::{disclosure_headers, overhead_header};
use crate::router::{Answer, Call};
use crate::state::Gateway;

/// What `input` holds.
#[derive(Debug, PartialEq)]
enum Input {
    /// Text, one string or a list (`single` when it came as one string).
    Texts { texts: Vec<String>, single: bool },
    /// Token ids, one list or a list of lists: nothing a detector can read.
    Tokens(Value),
}

/// Reads `input`, with errors that say what it must be.
fn input(body: &Map<String, Value>) -> Result<Input, String> {
    let bad = "`input` must be text, a list of text, a list of token ids or a list of such lists";
    match body.get("input") {
        Some(Value::String(s)) => Ok(Input::Texts { texts: vec![s.clone()], single: true }),
        Some(Value::Array(items)) if items.is_empty() => Err("`input` is empty; send at least one text".into()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(Input::Texts {
            texts: items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            single: false,
        }),
        Some(Value::Array(items)) if items.iter().all(Value::is_u64) => Ok(Input::Tokens(Value::Array(items.clone()))),
        Some(Value::Array(items))
            if items.iter().all(|i| i.as_array().is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_u64))) =>
        {
            Ok(Input::Tokens(Value::Array(items.clone())))
        }
        _ => Err(bad.into()),
    }
}

/// `POST /v1/embeddings`, inside a span carrying the request id.
pub(crate) async fn embeddings(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    use tracing::Instrument as _;
    let id = request_id();
    let span = tracing::info_span!("request", request_id = %id, decision_point = tracing::field::Empty);
    handle(gw, headers, body, id).instrument(span).await
}

async fn handle(gw: Arc<Gateway>, headers: HeaderMap, body: Bytes, id: String) -> Response {
    let mut ctx = Ctx::new(id, gw.compiled.manifest.gateway.otlp.is_some());
    let known = handler::authenticate(&gw, &headers, &mut ctx).and_then(|owner| {
        let point = handler::choose(&gw, &owner, handler::requested_model(&body), &mut ctx)?;
        Ok((owner, point))
    });
    let (owner, point) = match known {
        Ok(known) => known,
        Err(e) => return gw.refuse(&ctx, e).await,
    };
    if point.spec.kind != PointKind::Embeddings {
        let e = ApiError::new(
            Code::Ig2Schema,
            format!(
                "`{}` serves answers, not embeddings; send embeddings to a decision point of `kind: embeddings`",
                point.route
            ),
        );
        ctx.trail.record(e.code(), Decision::Block, e.message().to_string(), Instant::now());
        return gw.refuse(&ctx, e).await;
    }
    let walked = async {
        handler::admit(&gw, &owner, &point, &body, &mut ctx).await?;
        let (request, classes) = read(&gw, &owner, &point, &body, &mut ctx)?;
        handler::route_call(&gw, &point, &request, &classes, Call::Embed, &mut ctx).await
    }
    .await;
    let mut reply = match walked {
        Ok(Answer::Embedding(reply)) => reply,
        Ok(_) => {
            let e = ApiError::new(Code::ConfigNoDecisionPoint, "the router answered an embeddings call with text");
            return gw.refuse(&ctx, e).await;
        }
        Err(Stop::Refuse(e)) => return gw.refuse(&ctx, e).await,
        // A vector has no degraded form: a defined refusal, retried later.
        Err(Stop::Degrade(Some(incident))) => {
            let e = ApiError::new(
                Code::Ir2Degraded,
                format!("this service is degraded by incident {incident}; try again later"),
            );
            return gw.refuse(&ctx, e.with_retry_after(30)).await;
        }
        Err(Stop::Degrade(None)) => {
            let e = ApiError::new(
                Code::Ms4Unavailable,
                "every model for this decision point is unavailable; try again later",
            );
            return gw.refuse(&ctx, e.with_retry_after(5)).await;
        }
    };
    ctx.usage(reply.get("usage"));
    let count = reply.get("data").and_then(Value::as_array).map_or(0, Vec::len);
    if let Some(obj) = reply.as_object_mut() {
        obj.insert("model".into(), Value::String(point.route.clone()));
    }
    gw.record(&ctx, StatusCode::OK, Outcome::Delivered, None, Some(format!("{count} embeddings"))).await;
    let mut response = axum::Json(reply).into_response();
    disclosure_headers(response.headers_mut(), &point, &ctx);
    overhead_header(response.headers_mut(), ctx.overhead());
    response
}

/// The input stages: the request to send, and the classes of personal data it carries
/// as they are (for residency).
fn read(
    gw: &Gateway,
    owner: &crate::keys::KeyOwner,
    point: &Point,
    body: &[u8],
    ctx: &mut Ctx,
) -> Result<(Map<String, Value>, Vec<psf_detect::DataClass>), ApiError> {
    let t = Instant::now();
    let mut request = handler::parse_body(point, body)?;
    let limits = &point.spec.input;
    let fail = |ctx: &mut Ctx, message: String| {
        ctx.trail.record(Code::Ig2Schema, Decision::Block, message.clone(), t);
        Err(ApiError::new(Code::Ig2Schema, message))
    };
    if request.get("stream").is_some_and(|s| s != &Value::Bool(false) && !s.is_null()) {
        return fail(ctx, "embeddings are not streamed; remove `stream`".into());
    }
    let (texts, single) = match input(&request) {
        Err(message) => return fail(ctx, message),
        Ok(Input::Tokens(tokens)) => {
            // Token ids hide their text from every detector: they pass only where the
            // policy lets every class through as it is.
            let all_allowed = psf_detect::DataClass::ALL.iter().all(|c| limits.pii.action(*c) == PiiAction::Allow);
            if !all_allowed {
                let message = "the input is token ids, which cannot be checked for personal data, and this \
                               decision point's policy acts on some classes; send the text instead";
                ctx.trail.record(Code::Dg1Pii, Decision::Block, message, t);
                return Err(ApiError::new(Code::Dg1Pii, message));
            }
            ctx.trail.record(Code::Ig2Schema, Decision::Pass, "token ids", t);
            ctx.trail.record(Code::Dg1Pii, Decision::Unavailable, "token ids cannot be read", t);
            ctx.input = json!({"tokens": tokens.as_array().map_or(0, Vec::len)});
            request.insert("input".into(), tokens);
            return Ok((request, Vec::new()));
        }
        Ok(Input::Texts { texts, single }) => (texts, single),
    };
    if texts.len() > limits.max_messages as usize {
        return fail(
            ctx,
            format!("{} texts, more than this decision point's limit of {}", texts.len(), limits.max_messages),
        );
    }
    if let Some((i, n)) =
        texts.iter().map(|t| t.chars().count()).enumerate().find(|(_, n)| *n > limits.max_chars_per_message as usize)
    {
        return fail(
            ctx,
            format!("input[{i}] has {n} characters, more than the limit of {}", limits.max_chars_per_message),
        );
    }
    // The texts as `tool` messages, the input stages' own shape for retrieved content.
    let messages: Vec<Value> = texts.iter().map(|t| json!({"role": "tool", "content": t})).collect();
    let mut pseudo = Map::new();
    pseudo.insert("messages".into(), Value::Array(messages));
    pipeline::validate(point, &pseudo, &mut ctx.trail)?;
    let prepared = handler::prepare(gw, owner, point, pseudo, ctx)?;
    let sent: Vec<Value> = prepared
        .body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .map(|m| m.get("content").cloned().unwrap_or_default())
        .collect();
    let audit: Vec<Value> =
        ctx.input.as_array().into_iter().flatten().map(|m| m.get("content").cloned().unwrap_or_default()).collect();
    ctx.input = Value::Array(audit);
    let input = match (single, sent.as_slice()) {
        (true, [one]) => one.clone(),
        _ => Value::Array(sent),
    };
    request.insert("input".into(), input);
    Ok((request, prepared.classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_input(v: Value) -> Result<Input, String> {
        input(v.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn input_is_text_lists_or_token_ids() {
        assert_eq!(read_input(json!({"input": "a"})), Ok(Input::Texts { texts: vec!["a".into()], single: true }));
        assert_eq!(
            read_input(json!({"input": ["a", "b"]})),
            Ok(Input::Texts { texts: vec!["a".into(), "b".into()], single: false })
        );
        assert!(matches!(read_input(json!({"input": [1, 2]})), Ok(Input::Tokens(_))));
        assert!(matches!(read_input(json!({"input": [[1], [2, 3]]})), Ok(Input::Tokens(_))));
        assert!(read_input(json!({"input": []})).is_err());
        assert!(read_input(json!({"input": ["a", 1]})).is_err());
        assert!(read_input(json!({"input": [[]]})).is_err());
        assert!(read_input(json!({})).is_err());
    }
}
