//! The route table, the small endpoints (models, health, readiness, metrics) and the
//! server's life: serve, run the background tasks, drain, flush the audit log.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use psf_core::code::Code;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::audit::AuditWriter;
use crate::door;
use crate::embed;
use crate::error::ApiError;
use crate::handler;
use crate::review;
use crate::state::Gateway;
use crate::tasks::Background;

/// The router for a gateway (tests drive it with `oneshot`, `serve` binds it).
pub fn app(gateway: Arc<Gateway>) -> Router {
    let body_limit = gateway.compiled.max_body_bytes();
    Router::new()
        .route("/v1/chat/completions", post(handler::chat_completions))
        .route("/v1/responses", post(door::responses))
        .route("/v1/messages", post(door::messages))
        .route("/v1/embeddings", post(embed::embeddings))
        .route("/v1/models", get(models))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .route("/v1/psf/reviews/{id}", get(review::status))
        .route("/v1/psf/admin/reviews", get(review::list_reviews))
        .route("/v1/psf/admin/reviews/{id}", get(review::show_review))
        .route("/v1/psf/admin/reviews/{id}/decision", post(review::decide))
        .route("/v1/psf/admin/overrides", post(review::override_answer))
        .route("/v1/psf/admin/incidents", get(review::list_incidents).post(review::declare))
        .route("/v1/psf/admin/alerts", get(review::list_alerts))
        .route("/v1/psf/admin/incidents/{id}/resolve", post(review::resolve))
        .route("/v1/psf/admin/drills", post(review::record_drill))
        .route("/v1/psf/admin/erasures", post(review::erase))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(gateway.clone(), unauthenticated_limit))
        .layer(axum::middleware::from_fn(coded_errors))
        .layer(axum::middleware::from_fn_with_state(gateway.clone(), crate::listen::body_deadline))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(gateway)
}

/// Serves until `shutdown` resolves, then drains in-flight requests and flushes the
/// audit log. Returns the number of audit records written.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    writer: AuditWriter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<u64> {
    let router = app(gateway.clone());
    serve_app(listener, gateway, router, writer, shutdown).await
}

/// [`serve`] with a router of the caller's: the gateway's [`app`] with more routes
/// merged in (the console). Handlers see the client's address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_app(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    router: Router,
    writer: AuditWriter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<u64> {
    let background = Background::start(&gateway);
    let result = crate::listen::serve(listener, router, &gateway.compiled.manifest.gateway, shutdown).await;
    background.stop();
    let written = writer.finish().await;
    gateway.store.close().await;
    result.map(|()| written)
}

/// Model calls without a valid key, limited per source address before any other work
/// (IG-4); a valid key is never slowed down here, nor are health, metrics and the admin
/// API (which has keys of its own).
async fn unauthenticated_limit(
    State(gw): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/v1/") || path.starts_with("/v1/psf/") {
        return next.run(request).await;
    }
    let known = crate::ctx::bearer(request.headers()).is_some_and(|k| gw.owner(k).is_some());
    let source = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if let (false, Some(source)) = (known, source)
        && let Err(wait) = gw.unauthenticated.check(source)
    {
        gw.metrics
            .rate_limited
            .get_or_create(&crate::metrics::LimitScope { scope: "source".into(), unit: "requests".into() })
            .inc();
        let seconds = wait.as_secs().max(1);
        return ApiError::new(
            Code::Ig4RateLimit,
            format!("too many requests without a valid API key from this address; retry after {seconds} s"),
        )
        .with_retry_after(seconds)
        .into_response();
    }
    next.run(request).await
}

/// The refusals the HTTP layer writes itself (a wrong method, a body over the limit) in
/// the same coded shape as every other, with a request id, never as bare text.
async fn coded_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        return response;
    }
    let error = match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(Code::MethodNotAllowed, "this path does not take this HTTP method")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(Code::Ig2Size, "the body is larger than the gateway's limit; send less")
        }
        _ => return response,
    };
    error.with_request_id(&crate::ctx::request_id()).into_response()
}

/// Any path the gateway does not serve: a 404 in OpenAI's error shape, naming the path.
async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::new(Code::NotFound, format!("psf serves no `{}`; see /v1/models for what it offers", uri.path()))
        .into_response()
}

/// `GET /v1/models`, for a valid key only: the names the key reaches (routes and
/// aliases), in OpenAI's list shape, or in Anthropic's when the client speaks Anthropic
/// (it sends `anthropic-version`).
async fn models(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let mut ctx = crate::ctx::Ctx::new(crate::ctx::request_id(), false);
    let owner = match handler::authenticate(&gw, &headers, &mut ctx) {
        Ok(owner) => owner,
        Err(e) => return e.with_request_id(&ctx.request_id).into_response(),
    };
    let names: Vec<&str> = gw
        .compiled
        .reach(&owner.app)
        .into_iter()
        .flat_map(|p| std::iter::once(p.route.as_str()).chain(p.spec.aliases.iter().map(String::as_str)))
        .collect();
    if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        let body = json!({"data": data, "has_more": false, "first_id": names.first(), "last_id": names.last()});
        return axum::Json(body).into_response();
    }
    let data: Vec<Value> =
        names.iter().map(|n| json!({"id": n, "object": "model", "created": 0, "owned_by": "psf"})).collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    if let Err(e) = gw.store.audit_count().await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {e}")).into_response();
    }
    match gw.limiter_ready().await {
        Some(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("rate limiter unavailable: {e}")).into_response(),
        Some(Ok(())) | None => (StatusCode::OK, "ready").into_response(),
    }
}

/// `/metrics`: OpenMetrics for a scraper that asks for it, Prometheus text otherwise.
async fn metrics_handler(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let content_type = if open {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    ([(header::CONTENT_TYPE, content_type)], gw.metrics_text(open)).into_response()
}
