//! The request path, in named stages: [`authenticate`] → [`admit`] → [`read_input`] →
//! [`route`] → validate and deliver ([`crate::deliver`] for a whole answer,
//! [`crate::stream`] for a stream) → record ([`crate::record`]).
//!
//! Each stage takes the request's [`Ctx`], records its decisions on the trail and either
//! hands the next stage what it needs or ends the request with an [`ApiError`]; only
//! [`handle`] turns an error into a response, through [`Gateway::refuse`].

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use psf_core::code::{Code, Outcome};
use psf_core::manifest::PointKind;
use serde_json::{Map, Value, json};

use crate::config::{Compiled, Hold, Point};
use crate::ctx::{Ctx, SUBJECT_HEADER, bearer, request_id, wants_stream, wants_usage};
use crate::error::ApiError;
use crate::incident::Verdict;
use crate::keys::KeyOwner;
use crate::limits::Unit;
use crate::metrics;
use crate::output::OutputGuard;
use crate::pipeline::{self, Decision, Prepared};
use crate::record::{add_disclosure_field, disclosure_headers, overhead_header};
use crate::router::{self, Answer, Call, Failure};
use crate::state::{Gateway, RateDenied};
use crate::stream::{sse_response, stream_response};

/// Headers larger than this are refused (431) before any work is done.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// `POST /v1/chat/completions`: the pipeline on the body as sent.
pub(crate) async fn chat_completions(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let model = requested_model(&body);
    run(gw, headers, model, Ok(body), request_id()).await
}

/// The pipeline for one request, inside a span that carries the request id, so every
/// log line about the request can be found by it. `body` is a Chat Completions body, or
/// the error a front door met translating its own ([`crate::door`]), refused once the
/// caller and the decision point (by `model`) are known, so it is audited like any other.
pub(crate) async fn run(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    model: Option<String>,
    body: Result<Bytes, ApiError>,
    id: String,
) -> Response {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        decision_point = tracing::field::Empty,
        status = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    handle(gw, headers, model, body, id).instrument(span).await
}

/// How a stage ends a request early.
pub(crate) enum Stop {
    /// Refused, with this error.
    Refuse(ApiError),
    /// An incident in force degrades the service (IR-2), or every model failed (MS-4):
    /// the decision point's degraded response, under this incident.
    Degrade(Option<String>),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Stop {
        Stop::Refuse(e)
    }
}

async fn handle(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    model: Option<String>,
    body: Result<Bytes, ApiError>,
    request_id: String,
) -> Response {
    let mut ctx = Ctx::new(request_id, gw.compiled.manifest.gateway.otlp.is_some());
    let known = authenticate(&gw, &headers, &mut ctx).and_then(|owner| {
        let point = choose(&gw, &owner, model, &mut ctx)?;
        Ok((owner, point))
    });
    let (owner, point) = match known {
        Ok(known) => known,
        Err(e) => return gw.refuse(&ctx, e).await,
    };
    if point.spec.kind == PointKind::Embeddings {
        let e = ApiError::new(
            Code::Ig2Schema,
            format!("`{}` serves embeddings, not answers; send them to POST /v1/embeddings", point.route),
        );
        ctx.trail.record(e.code(), Decision::Block, e.message().to_string(), Instant::now());
        return gw.refuse(&ctx, e).await;
    }
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            ctx.trail.record(e.code(), Decision::Block, e.message().to_string(), Instant::now());
            return gw.refuse(&ctx, e).await;
        }
    };
    let hold = Compiled::holds(&point);
    let walked = async {
        admit(&gw, &owner, &point, &body, &mut ctx).await?;
        let prepared = read_input(&gw, &owner, &point, &body, &mut ctx)?;
        route(&gw, &point, prepared, hold, &mut ctx).await
    }
    .await;
    match walked {
        Ok((Answer::Complete(value), guard)) => crate::deliver::complete(&gw, ctx, &point, guard, value, hold).await,
        Ok((Answer::Stream(first, chunks), guard)) => stream_response(gw.clone(), ctx, point, guard, first, chunks),
        // The router answers what it was asked for; a chat call never gets vectors.
        Ok((Answer::Embedding(_), _)) => {
            gw.refuse(
                &ctx,
                ApiError::new(Code::ConfigNoDecisionPoint, "the router answered a chat call with embeddings"),
            )
            .await
        }
        Err(Stop::Refuse(e)) => gw.refuse(&ctx, e).await,
        Err(Stop::Degrade(incident)) => degraded(&gw, ctx, &point, incident.as_deref()).await,
    }
}

/// Who is calling: the key and its app, and whom the request concerns (DG-3). Oversized
/// headers are refused first, before any work.
pub(crate) fn authenticate(gw: &Gateway, headers: &HeaderMap, ctx: &mut Ctx) -> Result<KeyOwner, ApiError> {
    let header_bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            Code::Ig2Headers,
            format!("request headers are {header_bytes} bytes, more than {MAX_HEADER_BYTES}"),
        ));
    }
    let Some(key) = bearer(headers) else {
        return Err(ApiError::new(Code::AuthMissingKey, "no API key; send `Authorization: Bearer <key>`"));
    };
    let Some(owner) = gw.owner(key) else {
        return Err(ApiError::new(Code::AuthInvalidKey, "this API key is not valid (unknown or revoked)"));
    };
    ctx.app = Some(owner.app.clone());
    ctx.key_id = Some(owner.key_id.clone());
    // Whom the request concerns (DG-3), kept only as a hash, so the subject's records
    // can be found and erased: the header, or the subject of a per-person key.
    ctx.subject = owner.subject.clone();
    if let Some(v) = headers.get(SUBJECT_HEADER) {
        match v.to_str().map(str::trim) {
            Ok(id) if !id.is_empty() && id.len() <= 256 => ctx.subject = Some(psf_store::subject_ref(id)),
            _ => {
                return Err(ApiError::new(
                    Code::Ig2Subject,
                    format!("the `{SUBJECT_HEADER}` header must be 1 to 256 visible characters"),
                ));
            }
        }
    }
    Ok(owner)
}

/// Which decision point: the one among those the key reaches that the request's `model`
/// names (a route, an id or an alias), or the app's own when it names none. A name the
/// key does not reach is OpenAI's `404 model_not_found`, listing what it does reach.
pub(crate) fn choose(
    gw: &Gateway,
    owner: &KeyOwner,
    model: Option<String>,
    ctx: &mut Ctx,
) -> Result<Arc<Point>, ApiError> {
    let reach = gw.compiled.reach(&owner.app);
    let Some(first) = reach.first() else {
        return Err(ApiError::new(Code::ConfigNoDecisionPoint, "this key's app has no decision point"));
    };
    let point = match model {
        Some(model) => match reach.iter().find(|p| p.spec.answers_to(&model)) {
            Some(p) => *p,
            None => {
                // The name itself is not echoed: it is the client's text, and errors are
                // logged and stored.
                let names: Vec<String> = reach.iter().map(|p| format!("`{}`", p.route)).collect();
                return Err(ApiError::new(
                    Code::ModelNotFound,
                    format!(
                        "the requested model does not exist or this API key cannot reach it; it reaches {}",
                        names.join(", ")
                    ),
                ));
            }
        },
        None => *first,
    };
    ctx.point = Some(point.clone());
    Ok(point.clone())
}

/// The request's `model`, when the body is a JSON object with a text `model`; any other
/// body is read_input's to refuse, with its precise message.
pub(crate) fn requested_model(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ModelOnly {
        model: Option<Value>,
    }
    match serde_json::from_slice::<ModelOnly>(body).ok()?.model? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Whether the request may go on now: the kill switch (IR-2), then the rate limits (IG-4).
pub(crate) async fn admit(
    gw: &Gateway,
    owner: &KeyOwner,
    point: &Point,
    body: &[u8],
    ctx: &mut Ctx,
) -> Result<(), Stop> {
    let t = Instant::now();
    match gw.kill.check(&owner.app, &point.spec.id) {
        Verdict::Open => ctx.trail.record(Code::Ir2KillSwitch, Decision::Pass, "", t),
        Verdict::Refuse(id) => {
            ctx.trail.record(Code::Ir2KillSwitch, Decision::Block, format!("incident {id}"), t);
            let e = ApiError::new(
                Code::Ir2Disabled,
                format!("this service is stopped by incident {id} while it is investigated; try again later"),
            );
            return Err(e.with_retry_after(30).into());
        }
        Verdict::Degrade(id) => {
            ctx.trail.record(Code::Ir2KillSwitch, Decision::Transform, format!("incident {id}: degraded"), t);
            ctx.stream = wants_stream(body);
            return Err(Stop::Degrade(Some(id)));
        }
    }
    let t = Instant::now();
    match gw.rate_check(&owner.app, &owner.key_id).await {
        Ok(()) => {}
        Err(RateDenied::Unreachable(e)) => {
            ctx.trail.record(Code::Ig4RateLimit, Decision::Block, "the shared limiter is unreachable", t);
            tracing::debug!(error = %e, "rate check refused: limiter unreachable");
            let e = ApiError::new(
                Code::Ig4LimiterUnavailable,
                "the rate limiter cannot be reached, so no request is admitted; retry shortly",
            );
            return Err(e.with_retry_after(1).into());
        }
        Err(RateDenied::Limit(refusal)) => {
            let wait = refusal.wait;
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let limit = refusal.describe();
            ctx.trail.record(Code::Ig4RateLimit, Decision::Block, limit.clone(), t);
            let unit = match refusal.unit {
                Unit::Requests => "requests",
                Unit::Tokens => "tokens",
            };
            gw.metrics
                .rate_limited
                .get_or_create(&metrics::LimitScope { scope: refusal.scope.as_str().into(), unit: unit.into() })
                .inc();
            gw.abuse(&owner.app, &owner.key_id, "rate limit");
            let e = ApiError::new(Code::Ig4RateLimit, format!("the {limit} is reached; retry after {seconds} s"));
            return Err(e.with_retry_after(seconds.max(1)).into());
        }
    }
    ctx.trail.record(Code::Ig4RateLimit, Decision::Pass, "", t);
    Ok(())
}

/// Input governance: size and nesting from the bytes, then the request's shape (IG-2),
/// sanitising and injection (IG-1), PII per class (DG-1) and the system prompt (IG-5).
fn read_input(gw: &Gateway, owner: &KeyOwner, point: &Point, body: &[u8], ctx: &mut Ctx) -> Result<Prepared, ApiError> {
    let parsed = parse_body(point, body)?;
    ctx.stream = pipeline::validate(point, &parsed, &mut ctx.trail)?;
    ctx.stream_usage = ctx.stream && wants_usage(&parsed);
    prepare(gw, owner, point, parsed, ctx)
}

/// The point's input stages on a validated body: sanitising, injection, PII, the system
/// prompt ([`pipeline::prepare`]), with attempts to override counted.
pub(crate) fn prepare(
    gw: &Gateway,
    owner: &KeyOwner,
    point: &Point,
    parsed: Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<Prepared, ApiError> {
    let override_attempts =
        || gw.metrics.override_attempts.get_or_create(&metrics::Point { decision_point: point.spec.id.clone() });
    let (mut prepared, overrides) =
        pipeline::prepare(point, &gw.compiled.pii, parsed, &mut ctx.trail).inspect_err(|e| {
            if e.code() == Code::Ig1Injection {
                override_attempts().inc();
                gw.abuse(&owner.app, &owner.key_id, "blocked injection");
            }
        })?;
    if overrides > 0 {
        override_attempts().inc_by(u64::from(overrides));
    }
    ctx.input = std::mem::take(&mut prepared.audit_input);
    Ok(prepared)
}

/// The body within the point's size and nesting limits (read from the bytes first, so
/// nothing recursive sees a body nested past the limit), as a JSON object.
pub(crate) fn parse_body(point: &Point, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.len() as u64 > point.spec.input.max_body_bytes {
        return Err(ApiError::new(
            Code::Ig2Size,
            format!(
                "the body is {} bytes, more than this decision point's limit of {}",
                body.len(),
                point.spec.input.max_body_bytes
            ),
        ));
    }
    // Nesting is read from the bytes first: nothing recursive ever sees a body nested
    // past the limit.
    let max_depth = point.spec.input.max_depth;
    if let Err(at) = psf_detect::json_nesting(body, max_depth as usize) {
        let message = format!(
            "the body nests arrays and objects more than {max_depth} levels deep (at byte {at}), \
             this decision point's limit; flatten it"
        );
        return Err(ApiError::new(Code::Ig2Schema, message));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::Ig2Schema, format!("the body is not a JSON object: {e}")))
}

/// The model chain (MS-4), within the regions the request's data allows (DG-5): the
/// first answer, and the output guard that will check it.
async fn route(
    gw: &Arc<Gateway>,
    point: &Arc<Point>,
    prepared: Prepared,
    hold: Hold,
    ctx: &mut Ctx,
) -> Result<(Answer, OutputGuard), Stop> {
    let call = if ctx.stream && hold == Hold::Never { Call::Stream } else { Call::Complete };
    let answer = route_call(gw, point, &prepared.body, &prepared.classes, call, ctx).await?;
    let mut guard = OutputGuard::new(point.clone(), gw.compiled.pii.clone(), prepared.vault, prepared.hide_logprobs);
    if hold != Hold::Never {
        // Values go back in only once it is known the answer is delivered now.
        guard.defer_restore();
    }
    Ok((answer, guard))
}

/// The model chain (MS-4) for `call`, within the regions the request's data (`classes`,
/// the personal data that goes as it is) allows (DG-5): the first answer.
pub(crate) async fn route_call(
    gw: &Arc<Gateway>,
    point: &Arc<Point>,
    body: &Map<String, Value>,
    classes: &[psf_detect::DataClass],
    call: Call,
    ctx: &mut Ctx,
) -> Result<Answer, Stop> {
    let residency: Vec<(&'static str, &[String])> = match &gw.compiled.manifest.residency {
        Some(r) => classes.iter().filter_map(|c| Some((c.as_str(), r.regions_for(*c)?))).collect(),
        None => Vec::new(),
    };
    let guards = router::Guards { kill: &gw.kill, residency };
    let routed = router::route(
        point,
        body,
        call,
        gw.compiled.manifest.gateway.retries,
        gw.compiled.reply_limits,
        &gw.metrics,
        &guards,
    )
    .await;
    ctx.attempts = routed.attempts;
    ctx.upstream = routed.upstream;
    let (answer, index) = match routed.result {
        Ok(ok) => ok,
        Err(Failure::Rejected(e)) => {
            let status = match e.kind {
                psf_providers::ErrorKind::Status { code, .. } => Some(code),
                // What the provider cannot honour is the caller's to change, as a 400.
                psf_providers::ErrorKind::Unsupported => Some(400),
                _ => None,
            };
            let message = format!("the model provider refused the request: {}", e.message);
            return Err(ApiError::upstream_rejected(status, message).into());
        }
        Err(Failure::Unavailable) => return Err(Stop::Degrade(None)),
        Err(Failure::Residency) => {
            let t = Instant::now();
            let carried: Vec<String> = guards
                .residency
                .iter()
                .map(|(class, regions)| format!("{class} (only {})", regions.join(", ")))
                .collect();
            let detail = if carried.is_empty() {
                "no model in the chain is in the deployment's allowed regions".to_string()
            } else {
                format!("the request carries {}, and no model in the chain runs there", carried.join("; "))
            };
            ctx.trail.record(Code::Dg5Residency, Decision::Block, detail.clone(), t);
            return Err(ApiError::new(
                Code::Dg5Residency,
                format!(
                    "the request was refused: {detail}. Remove that data, or ask for a provider in an allowed region."
                ),
            )
            .into());
        }
    };
    if index > 0 {
        gw.metrics.fallbacks.get_or_create(&metrics::Point { decision_point: point.spec.id.clone() }).inc();
    }
    // The router only returns an index of the chain; a missing link would be a bug, and
    // is an error, not a panic.
    let Some(link) = point.chain.get(index) else {
        return Err(ApiError::new(Code::ConfigNoDecisionPoint, "the router chose a model outside the chain").into());
    };
    if gw.compiled.manifest.residency.is_some() {
        let detail = match guards.residency.as_slice() {
            [] => String::new(),
            carried => format!(
                "{} processed in {}",
                carried.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", "),
                link.region.as_deref().unwrap_or("the deployment's own infrastructure")
            ),
        };
        ctx.trail.record(Code::Dg5Residency, Decision::Pass, detail, Instant::now());
    }
    ctx.model = Some(link.model_id.clone());
    ctx.provider = Some(link.provider.id.clone());
    let reported = match &answer {
        Answer::Complete(v) | Answer::Stream(v, _) | Answer::Embedding(v) => {
            v.get("model").and_then(Value::as_str).unwrap_or_default()
        }
    };
    // Every decision point that can reach this model, as first choice or fallback.
    let users = || {
        let mut ids: Vec<String> = gw
            .compiled
            .points
            .values()
            .filter(|p| p.chain.iter().any(|l| l.model_id == link.model_id))
            .map(|p| p.spec.id.clone())
            .collect();
        ids.sort();
        ids
    };
    if let Some(f) = gw.monitor.model_reported(&link.provider.id, &link.model_id, reported, users) {
        let gw = gw.clone();
        tokio::spawn(async move { gw.record_finding(f).await });
    }
    Ok(answer)
}

/// Every model failed, or an incident degrades the service: the decision point's degraded
/// response, or a defined 503.
async fn degraded(gw: &Gateway, mut ctx: Ctx, point: &Point, incident: Option<&str>) -> Response {
    let t = Instant::now();
    if let Some(id) = incident {
        let Some(text) = &point.spec.degraded_response else {
            let e = ApiError::new(
                Code::Ir2Degraded,
                format!("this service is degraded by incident {id} and has no degraded response; try again later"),
            );
            return gw.refuse(&ctx, e.with_retry_after(30)).await;
        };
        return degraded_answer(gw, ctx, point, text, Code::Ir2Degraded).await;
    }
    gw.metrics.fallbacks.get_or_create(&metrics::Point { decision_point: point.spec.id.clone() }).inc();
    let Some(text) = &point.spec.degraded_response else {
        ctx.trail.record(
            Code::Ms4Fallback,
            Decision::Block,
            "every model in the chain failed; no degraded response",
            t,
        );
        let e =
            ApiError::new(Code::Ms4Unavailable, "every model for this decision point is unavailable; try again later");
        return gw.refuse(&ctx, e.with_retry_after(5)).await;
    };
    ctx.trail.record(
        Code::Ms4Fallback,
        Decision::Transform,
        "every model in the chain failed; degraded response served",
        t,
    );
    degraded_answer(gw, ctx, point, text, Code::Ms4Degraded).await
}

/// The degraded response, whole or as a one-chunk stream, audited under `code`.
async fn degraded_answer(gw: &Gateway, ctx: Ctx, point: &Point, text: &str, code: Code) -> Response {
    let id = format!("chatcmpl-{}", ctx.request_id);
    let mut body = json!({
        "id": id, "object": "chat.completion", "created": ctx.ts_ms / 1000, "model": point.route,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "psf_degraded": true,
    });
    add_disclosure_field(&mut body, point);
    gw.record(&ctx, StatusCode::OK, Outcome::Degraded, Some(code), Some(text.to_string())).await;
    let mut response = if ctx.stream {
        let chunk = json!({"id": id, "object": "chat.completion.chunk", "created": ctx.ts_ms / 1000, "model": point.route,
                           "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": "stop"}], "psf_degraded": true});
        let sse = format!("data: {chunk}\n\ndata: [DONE]\n\n");
        sse_response(Body::from(sse))
    } else {
        axum::Json(body).into_response()
    };
    disclosure_headers(response.headers_mut(), point, &ctx);
    response.headers_mut().insert("x-psf-degraded", HeaderValue::from_static("true"));
    overhead_header(response.headers_mut(), ctx.overhead());
    response
}
