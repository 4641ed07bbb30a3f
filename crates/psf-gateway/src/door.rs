//! The front doors besides Chat Completions: OpenAI's Responses API and Anthropic's
//! Messages API. Each request is translated ([`psf_providers::door`]) into the one
//! internal request and walks the same path as a Chat Completions call
//! ([`handler::run`]); the answer, whole, streamed, held or refused, is translated back
//! here, so every control and record is the same for every door.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use psf_core::code::Code;
use psf_providers::door::{Event, Refused, messages, responses};
use psf_providers::sse;
use serde_json::{Map, Value};

use crate::ctx::request_id;
use crate::error::ApiError;
use crate::handler;
use crate::state::Gateway;

/// The gateway's own answers are read back whole up to this size (a completion the
/// pipeline has already bounded), and stream events up to this size each.
const MAX_OWN_BYTES: usize = 64 << 20;

/// `POST /v1/messages`: Anthropic's Messages API.
pub(crate) async fn messages(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let id = request_id();
    let (model, chat) = match parse(&body) {
        Ok(b) => (model_of(&b), messages::request(&b).map_err(refused)),
        Err(e) => (None, Err(e)),
    };
    let stream = chat.as_ref().is_ok_and(|c| c.get("stream") == Some(&Value::Bool(true)));
    let message_id = format!("msg_{}", id.trim_start_matches("req_"));
    let response = handler::run(gw, headers, model, chat.and_then(encode), id).await;
    translate(response, Door::Messages { id: message_id }, stream).await
}

/// `POST /v1/responses`: OpenAI's Responses API.
pub(crate) async fn responses(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let id = request_id();
    let (model, translated) = match parse(&body) {
        Ok(b) => (model_of(&b), responses::request(&b).map_err(refused)),
        Err(e) => (None, Err(e)),
    };
    let (chat, echo) = match translated {
        Ok(t) => (Ok(t.chat), t.echo),
        Err(e) => (Err(e), Map::new()),
    };
    let stream = chat.as_ref().is_ok_and(|c| c.get("stream") == Some(&Value::Bool(true)));
    let door = Door::Responses {
        id: format!("resp_{}", id.trim_start_matches("req_")),
        created_at: psf_store::now_ms() / 1000,
        model: model.clone().unwrap_or_default(),
        echo,
    };
    let response = handler::run(gw, headers, model, chat.and_then(encode), id).await;
    translate(response, door, stream).await
}

fn parse(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::Ig2Schema, format!("the body is not a JSON object: {e}")))
}

fn model_of(body: &Map<String, Value>) -> Option<String> {
    body.get("model").and_then(Value::as_str).map(str::to_string)
}

fn refused(r: Refused) -> ApiError {
    ApiError::new(Code::Ig2Schema, r.to_string())
}

fn encode(chat: Map<String, Value>) -> Result<Bytes, ApiError> {
    serde_json::to_vec(&chat)
        .map(Bytes::from)
        .map_err(|e| ApiError::new(Code::Ig2Schema, format!("the request could not be translated: {e}")))
}

/// Which door, and what its answers need.
enum Door {
    Messages { id: String },
    Responses { id: String, created_at: i64, model: String, echo: Map<String, Value> },
}

/// A door's stream translator.
enum Events {
    Messages(messages::Events),
    Responses(responses::Events),
}

impl Events {
    fn chunk(&mut self, chunk: &Value) -> Vec<Event> {
        match self {
            Events::Messages(e) => e.chunk(chunk),
            Events::Responses(e) => e.chunk(chunk),
        }
    }

    fn done(&mut self) -> Vec<Event> {
        match self {
            Events::Messages(e) => e.done(),
            Events::Responses(e) => e.done(),
        }
    }

    fn error(&mut self, error: &Value) -> Vec<Event> {
        match self {
            Events::Messages(e) => e.error(status_of(error).as_u16(), error),
            Events::Responses(e) => e.error(error),
        }
    }

    fn ended(&self) -> bool {
        match self {
            Events::Messages(e) => e.ended(),
            Events::Responses(e) => e.ended(),
        }
    }
}

/// The HTTP status psf's table gives the code in an error body.
fn status_of(error: &Value) -> StatusCode {
    let code = error.pointer("/error/code").and_then(Value::as_str).unwrap_or_default();
    Code::ALL
        .iter()
        .find(|c| c.as_str() == code)
        .and_then(|c| c.refusal())
        .and_then(|r| StatusCode::from_u16(r.status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The pipeline's answer in the door's shape; its headers (request id, disclosure,
/// `retry-after`, overhead) are kept.
async fn translate(response: Response, door: Door, stream: bool) -> Response {
    let (mut head, body) = response.into_parts();
    head.headers.remove(header::CONTENT_LENGTH);
    let is_sse = head.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if is_sse {
        let events = match door {
            Door::Messages { id } => Events::Messages(messages::Events::new(&id, "")),
            Door::Responses { id, created_at, model, echo } => {
                Events::Responses(responses::Events::new(echo, &id, created_at, &model))
            }
        };
        return Response::from_parts(head, Body::from_stream(events_stream(body, events)));
    }
    let value: Value = match axum::body::to_bytes(body, MAX_OWN_BYTES).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let status = head.status;
    let (status, out) = match (&door, status) {
        (Door::Messages { id }, StatusCode::OK) => (status, messages::reply(&value, id)),
        (Door::Messages { .. }, StatusCode::ACCEPTED) => {
            // Anthropic's API has no pending answer: a typed error the SDK raises, not
            // retried (unlike 409), with the review's status URL in it.
            let url = value.get("status_url").and_then(Value::as_str).unwrap_or_default();
            let held = ApiError::new(
                Code::Ho1Pending,
                format!("the answer is held for human review; poll {url} for the decision"),
            );
            let mut error = held.body();
            if let Some(e) = error.get_mut("error").and_then(Value::as_object_mut) {
                e.insert("request_id".into(), value.get("request_id").cloned().unwrap_or(Value::Null));
            }
            let mut out = messages::error(held.status().as_u16(), &error);
            if let Some(o) = out.as_object_mut() {
                o.insert("psf_review".into(), value);
            }
            (held.status(), out)
        }
        (Door::Messages { .. }, _) => (status, messages::error(status.as_u16(), &value)),
        (Door::Responses { id, created_at, echo, .. }, StatusCode::OK) => {
            (status, responses::reply(echo, id, *created_at, &value))
        }
        (Door::Responses { id, created_at, model, echo }, StatusCode::ACCEPTED) => {
            let queued = responses::queued(echo, id, *created_at, model, &value);
            if stream {
                head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                let mut events = responses::Events::new(echo.clone(), id, *created_at, model);
                let sse: String = events.queued(queued).iter().map(Event::to_sse).collect();
                head.status = StatusCode::OK;
                return Response::from_parts(head, Body::from(sse));
            }
            (status, queued)
        }
        // Refusals are already in OpenAI's error shape, which the Responses API shares.
        (Door::Responses { .. }, _) => (status, value),
    };
    head.status = status;
    head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(head, Body::from(out.to_string()))
}

/// The pipeline's Chat Completions stream as the door's events.
fn events_stream(
    body: Body,
    events: Events,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    let state = (body.into_data_stream(), sse::Decoder::new(MAX_OWN_BYTES), events, false);
    futures_util::stream::unfold(state, |(mut body, mut decoder, mut events, finished)| async move {
        if finished {
            return None;
        }
        let (out, finished) = match body.next().await {
            Some(Ok(bytes)) => {
                let out: Vec<Event> = match decoder.push(&bytes) {
                    Ok(sse) => sse.iter().flat_map(|e| translate_event(&mut events, e)).collect(),
                    Err(e) => events.error(&cut(&e.to_string())),
                };
                (out, events.ended())
            }
            // The pipeline always ends with `[DONE]` or an error event; anything else is a
            // cut stream, said so rather than passed off as complete.
            Some(Err(e)) => (events.error(&cut(&e.to_string())), true),
            None if events.ended() => (Vec::new(), true),
            None => (events.error(&cut("the stream ended before its end")), true),
        };
        let text: String = out.iter().map(Event::to_sse).collect();
        Some((Ok(Bytes::from(text)), (body, decoder, events, finished)))
    })
}

fn translate_event(events: &mut Events, e: &sse::Event) -> Vec<Event> {
    if e.data == "[DONE]" {
        return events.done();
    }
    let Ok(value) = serde_json::from_str::<Value>(&e.data) else {
        return events.error(&cut("the stream carried an event that is not JSON"));
    };
    if value.get("error").is_some() { events.error(&value) } else { events.chunk(&value) }
}

fn cut(message: &str) -> Value {
    ApiError::new(Code::Ms4StreamFailed, format!("the answer's stream failed: {message}")).body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_codes_status() {
        let e = ApiError::new(Code::Ig4RateLimit, "slow").body();
        assert_eq!(status_of(&e), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(status_of(&Value::Null), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
