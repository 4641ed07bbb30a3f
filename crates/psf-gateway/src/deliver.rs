//! A whole answer's last stages: the output checks on every choice, the hold for review
//! where oversight asks for it (HO-1), the caller's values put back, disclosure, the
//! audit record, and the response (whole, or one chunk for a streaming client whose
//! answer had to be fetched whole because it might be held).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use psf_core::code::{Code, Outcome};
use psf_core::manifest::LowConfidence;
use serde_json::Value;

use crate::config::{Hold, Point};
use crate::ctx::Ctx;
use crate::output::{Confidence, OutputGuard};
use crate::record::{add_disclosure_field, disclosure_headers, overhead_header};
use crate::review;
use crate::state::Gateway;
use crate::stream::{one_chunk_stream, sse_response};

/// A whole completion through the output stages; held for review when `hold` says so.
pub(crate) async fn complete(
    gw: &Gateway,
    mut ctx: Ctx,
    point: &Point,
    mut guard: OutputGuard,
    mut value: Value,
    hold: Hold,
) -> Response {
    ctx.usage(value.get("usage"));
    let checked = match guard.check_completion(&mut value, &mut ctx.trail) {
        Ok(c) => c,
        Err(e) => return gw.refuse(&ctx, e).await,
    };
    let audit = checked.audit.join("\n---\n");
    if let Some(obj) = value.as_object_mut() {
        obj.insert("model".into(), Value::String(point.route.clone()));
    }
    let reason = match (hold, checked.confidence) {
        (Hold::Always, _) => Some("supervised"),
        (Hold::WhenUnsure, Confidence::Low(_, LowConfidence::Escalate)) => Some("low_confidence"),
        _ => None,
    };
    if let Some(reason) = reason {
        let mean = match checked.confidence {
            Confidence::Low(m, _) | Confidence::Enough(m) => Some(m),
            Confidence::NotChecked | Confidence::Unknown => None,
        };
        let held = review::Held { reason, confidence: mean, audit };
        return review::hold(gw, &mut ctx, point, guard, value, held).await;
    }
    if hold != Hold::Never {
        for message in value
            .get_mut("choices")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get_mut("message"))
        {
            if let Some(Value::String(text)) = message.get_mut("content") {
                *text = guard.restore(text);
            }
            let calls = message.get_mut("tool_calls").and_then(Value::as_array_mut);
            for call in calls.into_iter().flatten() {
                if let Some(Value::String(arguments)) = call.pointer_mut("/function/arguments") {
                    *arguments = guard.restore(arguments);
                }
            }
        }
    }
    add_disclosure_field(&mut value, point);
    if let (Some(state), Some(obj)) = (checked.state, value.as_object_mut()) {
        obj.insert("psf_answer_state".into(), Value::String(state.into()));
    }
    gw.answer_state(point, checked.state);
    gw.record(&ctx, StatusCode::OK, Outcome::Delivered, None::<Code>, Some(audit)).await;
    let mut response = if ctx.stream {
        sse_response(Body::from(one_chunk_stream(&value, ctx.stream_usage)))
    } else {
        axum::Json(value).into_response()
    };
    disclosure_headers(response.headers_mut(), point, &ctx);
    overhead_header(response.headers_mut(), ctx.overhead());
    if let Some(v) = checked.state.map(axum::http::HeaderValue::from_static) {
        response.headers_mut().insert("x-psf-answer-state", v);
    }
    response
}
