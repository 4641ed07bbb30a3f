//! The review queue over HTTP (HO-1, HO-2, HO-4) and the admin API (incidents, IR-2).
//!
//! A held answer becomes `202 Accepted` with a review id and a status URL that the
//! calling app polls with its own key. Reviewers decide through the admin API (the
//! console) or `psf review`; both go through [`crate::oversight`].

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use psf_detect::Vault;
use psf_store::{NewIncident, Review, ReviewDecision};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Point;
use crate::ctx::{Ctx, bearer};
use crate::error::ApiError;
use crate::keys::KeyOwner;
use crate::metrics;
use crate::output::OutputGuard;
use crate::oversight::{self, OversightError};
use crate::pipeline::Decision;
use crate::record::{add_disclosure_field, overhead_header};
use crate::state::Gateway;
use psf_core::code::{Code, Outcome};

/// Minutes a held answer waits before it escalates, unless the manifest says otherwise.
const DEFAULT_DEADLINE_MINUTES: u32 = 60;

/// Why and how an answer is held.
#[derive(Debug)]
pub(crate) struct Held {
    /// `supervised` or `low_confidence`.
    pub reason: &'static str,
    /// Mean token log-probability, where known.
    pub confidence: Option<f64>,
    /// The answer with PII redacted, for the audit record.
    pub audit: String,
}

/// The completion a decision is delivered in: the reply with its first choice only, and
/// that choice's text taken out (the reviewer's decision fills it in).
pub(crate) fn response_template(mut value: Value) -> Value {
    let first = value.pointer("/choices/0").cloned().map(|mut first| {
        if let Some(message) = first.get_mut("message").and_then(Value::as_object_mut) {
            message.insert("content".into(), Value::Null);
        }
        first
    });
    if let (Some(first), Some(obj)) = (first, value.as_object_mut()) {
        obj.insert("choices".into(), json!([first]));
    }
    value
}

/// Puts the decided text into a held answer's template, naming the route's model.
fn fill_template(mut completion: Value, text: String, point: Option<&Point>) -> Value {
    if let Some(message) = completion.pointer_mut("/choices/0/message").and_then(Value::as_object_mut) {
        message.insert("content".into(), Value::String(text));
    }
    if let Some(point) = point {
        if let Some(obj) = completion.as_object_mut() {
            obj.insert("model".into(), Value::String(point.route.clone()));
        }
        add_disclosure_field(&mut completion, point);
    }
    completion
}

fn status_url(id: &str) -> String {
    format!("/v1/psf/reviews/{id}")
}

/// Holds an answer for review and tells the client where to collect the decision.
pub(crate) async fn hold(
    gw: &Gateway,
    ctx: &mut Ctx,
    point: &Point,
    guard: OutputGuard,
    value: Value,
    held: Held,
) -> Response {
    let t = Instant::now();
    // One answer is reviewed: the first choice.
    let output = value.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_string();
    let template = response_template(value);
    let minutes = point.spec.review_deadline_minutes.unwrap_or(DEFAULT_DEADLINE_MINUTES);
    let findings = ctx.trail.to_json();
    ctx.trail.record(Code::Ho1Review, Decision::Hold, format!("held for review ({})", held.reason), t);
    let id = match psf_store::new_id("rev") {
        Ok(id) => id,
        Err(e) => return gw.refuse(ctx, queue_unavailable(&e.to_string())).await,
    };
    let review = Review {
        deadline_ms: Some(ctx.ts_ms + i64::from(minutes) * 60_000),
        app: ctx.app.clone(),
        key_id: ctx.key_id.clone(),
        reason: held.reason.to_string(),
        input_redacted: ctx.input.clone(),
        findings,
        confidence: held.confidence,
        response: template,
        subject: ctx.subject.clone(),
        ..Review::pending(&id, &ctx.request_id, psf_store::now_ms(), &point.spec.id, &output)
    };
    // Never deliver an answer that must be reviewed when it cannot be queued. The
    // caller's values behind its placeholders are sealed under the subject's key.
    let vault = guard.into_vault();
    let values = serde_json::to_vec(&vault.restorations()).unwrap_or_default();
    let kept = async {
        gw.store.insert_review(&review).await?;
        if !vault.is_empty() {
            gw.store.seal_held_values(&id, ctx.subject.as_deref(), &values).await?;
        }
        Ok::<_, psf_store::StoreError>(())
    };
    if let Err(e) = kept.await {
        return gw.refuse(ctx, queue_unavailable(&e.to_string())).await;
    }
    gw.metrics.reviews_held.get_or_create(&metrics::Point { decision_point: point.spec.id.clone() }).inc();
    notify(gw, point, webhook_body("psf.review.pending", &review));
    gw.record(ctx, StatusCode::ACCEPTED, Outcome::Held, Some(Code::Ho1Held), Some(held.audit)).await;
    let body = json!({
        "id": id, "object": "psf.review", "status": "pending", "reason": held.reason,
        "request_id": ctx.request_id, "decision_point": point.spec.id,
        "deadline_ms": review.deadline_ms, "status_url": status_url(&id),
    });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&status_url(&id)) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        h.insert("x-request-id", v);
    }
    overhead_header(h, ctx.overhead());
    response
}

/// What a review webhook receives: enough to find the review, never its text (the input
/// and answer stay behind the admin API).
pub(crate) fn webhook_body(event: &str, r: &Review) -> Value {
    let text = match event {
        "psf.review.overdue" => format!("A held answer at {} passed its review deadline: {}", r.decision_point, r.id),
        _ => format!("An answer at {} waits for review ({}): {}", r.decision_point, r.reason, r.id),
    };
    json!({
        "event": event, "review_id": r.id, "request_id": r.request_id, "decision_point": r.decision_point,
        "reason": r.reason, "deadline_ms": r.deadline_ms, "admin_url": format!("/v1/psf/admin/reviews/{}", r.id),
        // Slack-style receivers show `text`.
        "text": text,
    })
}

/// Tells the decision point's `review_webhook`, off the request path: three tries with
/// back-off, then a log line. A failing receiver never holds a request up.
pub(crate) fn notify(gw: &Gateway, point: &Point, body: Value) {
    let Some(url) = point.spec.review_webhook.clone() else { return };
    let http = gw.http.clone();
    let payload = body.to_string();
    tokio::spawn(async move {
        for attempt in 0..3u32 {
            let request = http.post(&url).header("content-type", "application/json").body(payload.clone());
            match request.send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::warn!(status = %r.status(), attempt, "a review webhook refused a notice"),
                Err(e) => tracing::warn!(error = %e, attempt, "a review webhook could not be reached"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
        }
        tracing::error!(event = %body["event"], "a review notice was not delivered after three tries");
    });
}

fn queue_unavailable(why: &str) -> ApiError {
    ApiError::new(
        Code::Ho1QueueUnavailable,
        format!("this answer must be reviewed before delivery, and the review queue cannot be written: {why}"),
    )
    .with_retry_after(5)
}

fn not_found(what: String) -> Response {
    ApiError::new(Code::NotFound, what).into_response()
}

fn store_error(e: &psf_store::StoreError) -> Response {
    ApiError::from(e).into_response()
}

/// `GET /v1/psf/reviews/{id}`: the calling app collects the decision on its held answer.
pub(crate) async fn status(State(gw): State<Arc<Gateway>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Some(owner) = bearer(&headers).and_then(|k| gw.owner(k)) else {
        return ApiError::new(Code::AuthInvalidKey, "a valid API key is needed").into_response();
    };
    let review = match gw.store.review(&id).await {
        // Another app's review is as absent as a missing one: ids are not to be probed.
        Ok(Some(r)) if r.app.as_deref() == Some(owner.app.as_str()) => r,
        Ok(_) => return not_found(format!("no review `{id}` for this key's app")),
        Err(e) => return store_error(&e),
    };
    let mut body = json!({"id": review.id, "object": "psf.review", "status": review.status,
                          "request_id": review.request_id, "decision_point": review.decision_point});
    match review.status.as_str() {
        "pending" => {
            body["escalated"] = json!(review.escalated_ms.is_some());
            body["deadline_ms"] = json!(review.deadline_ms);
            return Json(body).into_response();
        }
        "rejected" => body["reason"] = json!(review.note),
        _ => {
            let text = review.final_output.clone().unwrap_or_default();
            let vault = match gw.store.open_held_values(&review.id).await {
                Ok(Some(bytes)) => {
                    serde_json::from_slice::<Vec<(String, String)>>(&bytes).ok().map(Vault::from_restorations)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(review = %review.id, error = %e, "held values cannot be read; delivering with placeholders");
                    None
                }
            };
            let restored = vault.is_some();
            let text = vault.map_or(text.clone(), |v| v.detokenize(&text));
            let point = gw.compiled.points.get(&review.decision_point).map(|p| &**p);
            body["completion"] = fill_template(review.response.clone(), text, point);
            body["edited"] = json!(review.status == "edited");
            body["psf_values_restored"] = json!(restored);
        }
    }
    if let Err(e) = gw.store.mark_review_delivered(&review.id, psf_store::now_ms()).await {
        return store_error(&e);
    }
    // Delivered: the caller's values are not kept any longer (a later collect gets the
    // answer with its placeholders, and says so).
    if let Err(e) = gw.store.forget_held_values(&review.id).await {
        tracing::error!(review = %review.id, error = %e, "held values could not be deleted after delivery");
    }
    let mut response = Json(body).into_response();
    let disclosed = gw.compiled.points.get(&review.decision_point).and_then(|p| p.spec.disclosure.as_ref());
    if review.status != "rejected" && disclosed.is_some_and(|d| d.header) {
        response.headers_mut().insert("x-psf-ai-generated", axum::http::HeaderValue::from_static("true"));
    }
    response
}

/// A JSON body, read only once the caller is known to be an admin.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::AdminInvalid, format!("the body is not what this endpoint takes: {e}")))
}

/// An admin call's JSON body, read only once the caller's key is an admin key
/// (`gateway.admin_keys`): nothing is parsed for anyone else.
pub(crate) struct AdminJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<Arc<Gateway>> for AdminJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, gw: &Arc<Gateway>) -> Result<Self, Response> {
        admin(gw, req.headers()).map_err(IntoResponse::into_response)?;
        let body = Bytes::from_request(req, gw).await.map_err(IntoResponse::into_response)?;
        parse(&body).map(AdminJson).map_err(IntoResponse::into_response)
    }
}

/// An admin call without a body: its key must be an admin key.
pub(crate) struct Admin;

impl FromRequestParts<Arc<Gateway>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, Response> {
        admin(gw, &parts.headers).map(|_| Admin).map_err(IntoResponse::into_response)
    }
}

/// The admin key's owner, or the refusal.
fn admin(gw: &Gateway, headers: &HeaderMap) -> Result<KeyOwner, ApiError> {
    match bearer(headers).and_then(|k| gw.compiled.admin_keys.lookup(k)) {
        Some(o) => Ok(o.clone()),
        None => Err(ApiError::new(Code::AuthAdminKey, "the admin API needs a key from `gateway.admin_keys`")),
    }
}

fn oversight_error(e: OversightError) -> Response {
    ApiError::from(e).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    #[serde(default)]
    all: bool,
}

/// `GET /v1/psf/admin/reviews[?status=pending]`.
pub(crate) async fn list_reviews(State(gw): State<Arc<Gateway>>, _: Admin, Query(q): Query<ListQuery>) -> Response {
    match gw.store.reviews(q.status.as_deref(), 1000).await {
        Ok(list) => Json(json!({"object": "list", "data": list})).into_response(),
        Err(e) => store_error(&e),
    }
}

/// `GET /v1/psf/admin/reviews/{id}`.
pub(crate) async fn show_review(State(gw): State<Arc<Gateway>>, _: Admin, Path(id): Path<String>) -> Response {
    match gw.store.review(&id).await {
        Ok(Some(r)) => Json(r).into_response(),
        Ok(None) => not_found(format!("no review `{id}`")),
        Err(e) => store_error(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    /// `approve`, `edit` or `reject`.
    decision: String,
    /// Who decides: a reviewer the manifest names for the decision point.
    reviewer: String,
    note: Option<String>,
    /// The text to deliver, for `edit`.
    output: Option<String>,
}

/// `POST /v1/psf/admin/reviews/{id}/decision`.
pub(crate) async fn decide(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    AdminJson(b): AdminJson<DecisionBody>,
) -> Response {
    let decision = match ReviewDecision::parse(&b.decision, b.output) {
        Ok(d) => d,
        Err(e) => return oversight_error(OversightError::Invalid(e)),
    };
    match gw.decide_review(&id, &decision, &b.reviewer, b.note.as_deref()).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => oversight_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverrideBody {
    request_id: String,
    by: String,
    reason: String,
    output: Option<String>,
}

/// `POST /v1/psf/admin/overrides`: an answer corrected after the fact (HO-4).
pub(crate) async fn override_answer(State(gw): State<Arc<Gateway>>, AdminJson(b): AdminJson<OverrideBody>) -> Response {
    let m = &gw.compiled.manifest;
    let pii = &gw.compiled.pii;
    match oversight::record_override(&gw.store, m, pii, &b.request_id, &b.by, &b.reason, b.output.as_deref()).await {
        Ok(event) => (StatusCode::CREATED, Json(event)).into_response(),
        Err(e) => oversight_error(e),
    }
}

/// `GET /v1/psf/admin/incidents[?all=true]`.
pub(crate) async fn list_incidents(State(gw): State<Arc<Gateway>>, _: Admin, Query(q): Query<ListQuery>) -> Response {
    match gw.store.incidents(!q.all).await {
        Ok(list) => Json(json!({"object": "list", "data": list})).into_response(),
        Err(e) => store_error(&e),
    }
}

/// `GET /v1/psf/admin/alerts`: the alerts firing now, and the alert events of the last
/// day (fired and resolved), oldest first.
pub(crate) async fn list_alerts(State(gw): State<Arc<Gateway>>, _: Admin) -> Response {
    let since = psf_store::now_ms() - 24 * 3600 * 1000;
    match gw.store.events(Some("OB-1.alert"), since, 500).await {
        Ok(events) => Json(json!({"firing": gw.alerts.firing(), "events": events})).into_response(),
        Err(e) => store_error(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeclareBody {
    action: String,
    scope: String,
    severity: String,
    reason: String,
    declared_by: String,
    #[serde(default)]
    drill: bool,
}

/// `POST /v1/psf/admin/incidents`: declares an incident; in force here at once, and on
/// every instance sharing the store within a second.
pub(crate) async fn declare(State(gw): State<Arc<Gateway>>, AdminJson(b): AdminJson<DeclareBody>) -> Response {
    let new = NewIncident {
        declared_by: b.declared_by,
        action: b.action,
        scope: b.scope,
        severity: b.severity,
        reason: b.reason,
        drill: b.drill,
    };
    match gw.declare_incident(&new).await {
        Ok(i) => (StatusCode::CREATED, Json(i)).into_response(),
        Err(e) => oversight_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveBody {
    resolved_by: String,
    resolution: String,
}

/// `POST /v1/psf/admin/incidents/{id}/resolve`.
pub(crate) async fn resolve(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    AdminJson(b): AdminJson<ResolveBody>,
) -> Response {
    match gw.resolve_incident(&id, &b.resolved_by, &b.resolution).await {
        Ok(i) => Json(i).into_response(),
        Err(e) => oversight_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DrillBody {
    incident_id: String,
    by: String,
    /// Per gateway: `url`, `time_to_disable_ms`, `time_to_recover_ms`.
    gateways: Vec<Value>,
}

/// `POST /v1/psf/admin/drills`: records a drill's timings (IR-5) as evidence.
pub(crate) async fn record_drill(State(gw): State<Arc<Gateway>>, AdminJson(b): AdminJson<DrillBody>) -> Response {
    match oversight::record_drill(&gw.store, &b.incident_id, &b.by, &b.gateways).await {
        Ok(event) => (StatusCode::CREATED, Json(event)).into_response(),
        Err(e) => oversight_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseBody {
    /// The subject identifier the requests carried in `x-psf-subject`.
    subject: String,
    /// Who asked for the erasure.
    by: String,
}

/// `POST /v1/psf/admin/erasures`: erases a subject (DG-3) and answers with the receipt and
/// the verification that nothing of it remains.
pub(crate) async fn erase(State(gw): State<Arc<Gateway>>, AdminJson(b): AdminJson<EraseBody>) -> Response {
    match gw.erase_subject(&b.subject, &b.by).await {
        Ok((receipt, remaining)) => {
            (StatusCode::CREATED, Json(json!({"receipt": receipt, "remaining": remaining}))).into_response()
        }
        Err(e) => oversight_error(e),
    }
}
