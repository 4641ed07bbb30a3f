//! The HTTP server: routes, the request handler that walks the pipeline, streaming
//! responses, key reloading and graceful shutdown. Handlers stay thin; the stages live
//! in `pipeline`, `output` and `router`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use futures_util::StreamExt;
use psf_core::manifest::LowConfidence;
use psf_providers::ChunkStream;
use psf_store::{AuditRecord, Store};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::audit::{self, AuditSender, AuditWriter};
use crate::cluster::{Bucket, Cluster};
use crate::config::{Compiled, Hold, Point};
use crate::error::ApiError;
use crate::incident::{self, KillSwitch, Verdict};
use crate::keys::{KeyOwner, KeyTable, digest_from_hex};
use crate::limits::{self, Limits, Unit};
use crate::metrics::{self, Metrics};
use crate::output::{Confidence, OutputGuard};
use crate::pipeline::{self, Decision, Trail};
use crate::review;
use crate::router::{self, Answer, Attempt, Failure};

/// The header naming whom a request concerns, for erasure (DG-3).
pub const SUBJECT_HEADER: &str = "x-psf-subject";
/// Headers larger than this are refused (431) before any work is done.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Limit hits or blocked injections from one key within a minute that raise an alert.
const ABUSE_THRESHOLD: u32 = 20;

/// How often the retention sweeper runs.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// A running gateway's shared state.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) compiled: Compiled,
    store_keys: RwLock<KeyTable>,
    limits: Limits,
    pub(crate) metrics: Metrics,
    audit: AuditSender,
    pub(crate) store: Store,
    abuse: Mutex<HashMap<String, (Instant, u32)>>,
    /// Incidents in force (IR-2).
    pub(crate) kill: KillSwitch,
    /// Redis, in cluster mode: shared request limits and incident pushes.
    pub(crate) cluster: Option<Cluster>,
    /// When the gateway last said Redis was unreachable (ms), so it says so every 10 s
    /// at most.
    redis_warned_ms: AtomicI64,
    /// For review webhooks.
    pub(crate) http: reqwest::Client,
    /// Alert rules, their baselines and the current minute (OB-1, OB-2).
    pub(crate) alerts: crate::alerts::Alerts,
    /// Per-key usage histories and the model versions providers report (OB-3, HO-5).
    pub(crate) monitor: crate::monitor::Monitor,
}

impl Gateway {
    /// Builds the gateway and starts its audit writer.
    pub async fn new(compiled: Compiled, store: Store) -> Result<(Arc<Gateway>, AuditWriter), psf_store::StoreError> {
        Gateway::clustered(compiled, store, None).await
    }

    /// Builds a gateway of a cluster: limits shared through `cluster`'s Redis.
    pub async fn clustered(
        compiled: Compiled,
        store: Store,
        cluster: Option<Cluster>,
    ) -> Result<(Arc<Gateway>, AuditWriter), psf_store::StoreError> {
        let (audit, writer) = audit::start(store.clone(), compiled.manifest.gateway.audit_queue as usize);
        let gateway = Gateway {
            limits: Limits::new(&compiled.manifest),
            alerts: crate::alerts::Alerts::new(&compiled.manifest),
            monitor: crate::monitor::Monitor::new(
                compiled.manifest.decision_points.iter().map(|d| d.id.clone()).collect(),
            ),
            compiled,
            store_keys: RwLock::new(KeyTable::default()),
            metrics: Metrics::new(),
            audit,
            store,
            abuse: Mutex::new(HashMap::new()),
            kill: KillSwitch::default(),
            cluster,
            redis_warned_ms: AtomicI64::new(0),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default(),
        };
        gateway.reload_keys().await?;
        gateway.reload_incidents().await?;
        Ok((Arc::new(gateway), writer))
    }

    /// The metrics, rendered: OpenMetrics text, or Prometheus text 0.0.4.
    pub fn metrics_text(&self, openmetrics: bool) -> String {
        self.metrics.audit_queue.set(i64::try_from(self.audit.queued()).unwrap_or(i64::MAX));
        if openmetrics { self.metrics.render_openmetrics() } else { self.metrics.render() }
    }

    async fn reload_keys(&self) -> Result<(), psf_store::StoreError> {
        let mut table = KeyTable::default();
        for k in self.store.keys().await? {
            if k.revoked_ms.is_some() || !self.compiled.apps.contains_key(&k.app) {
                continue;
            }
            if let Some(d) = digest_from_hex(&k.sha256) {
                table.insert(d, KeyOwner { key_id: k.id, app: k.app, subject: k.subject });
            }
        }
        *self.store_keys.write().unwrap_or_else(PoisonError::into_inner) = table;
        Ok(())
    }

    /// Slow-paced chores: escalate reviews past their deadline, refresh the queue gauge.
    async fn housekeeping(&self) {
        match self.store.escalate_overdue_reviews(psf_store::now_ms()).await {
            Ok(overdue) => {
                for r in overdue {
                    tracing::warn!(review = %r.id, decision_point = %r.decision_point, "a held answer passed its review deadline");
                    self.record_event(psf_store::Event {
                        ts_ms: psf_store::now_ms(),
                        kind: "HO-2.review_overdue".into(),
                        severity: "warning".into(),
                        app: r.app.clone(),
                        key_id: r.key_id.clone(),
                        summary: format!("review {} waited past its deadline", r.id),
                        detail: json!({"review_id": r.id, "decision_point": r.decision_point, "deadline_ms": r.deadline_ms}),
                    })
                    .await;
                    if let Some(point) = self.compiled.points.get(&r.decision_point) {
                        review::notify(self, point, review::webhook_body("psf.review.overdue", &r));
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "could not escalate overdue reviews"),
        }
        if let Ok(n) = self.store.pending_reviews().await {
            self.metrics.reviews_pending.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Reads the incidents in force from the store.
    pub(crate) async fn reload_incidents(&self) -> Result<(), psf_store::StoreError> {
        let incidents = self.store.incidents(true).await?;
        self.kill.set(&incidents);
        self.metrics.incidents.set(i64::try_from(incidents.len()).unwrap_or(i64::MAX));
        Ok(())
    }

    /// The rate limits (IG-4): shared across the cluster through Redis when there is one,
    /// this instance's own otherwise, or while Redis cannot be reached.
    async fn rate_check(&self, app: &str, key_id: &str) -> Result<(), limits::Refusal> {
        let Some(cluster) = &self.cluster else { return self.limits.check(app, key_id) };
        self.limits.check_tokens(app, key_id)?;
        let shared = self.limits.shared_buckets(app, key_id);
        let buckets: Vec<Bucket> = shared
            .iter()
            .enumerate()
            .map(|(index, (scope, name, interval_us, tolerance_us))| Bucket {
                index,
                key: cluster.key(scope.as_str(), name),
                interval_us: *interval_us,
                tolerance_us: *tolerance_us,
            })
            .collect();
        match cluster.take(&buckets).await {
            Ok(None) => Ok(()),
            Ok(Some((i, wait))) => {
                let scope = shared.get(i).map_or(limits::Scope::Global, |b| b.0);
                Err(limits::Refusal { scope, unit: Unit::Requests, wait })
            }
            Err(e) => {
                let now = psf_store::now_ms();
                if now - self.redis_warned_ms.load(Ordering::Relaxed) > 10_000 {
                    self.redis_warned_ms.store(now, Ordering::Relaxed);
                    tracing::warn!(error = %e, "Redis is unreachable: rate limits are this instance's own until it is back");
                }
                self.metrics.redis_errors.inc();
                self.limits.check(app, key_id)
            }
        }
    }

    pub(crate) fn owner(&self, key: &str) -> Option<KeyOwner> {
        if let Some(o) = self.compiled.manifest_keys.lookup(key) {
            return Some(o.clone());
        }
        self.store_keys.read().unwrap_or_else(PoisonError::into_inner).lookup(key).cloned()
    }

    /// Counts an abusive event from a key; raises an alert when they pile up.
    fn abuse(&self, app: &str, key_id: &str, what: &str) {
        let mut map = self.abuse.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let entry = map.entry(key_id.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) > Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 == ABUSE_THRESHOLD {
            self.metrics.abuse_alerts.get_or_create(&metrics::AppLabel { app: app.to_string() }).inc();
            tracing::warn!(
                alert = "IG-4.abuse",
                app,
                key_id,
                what,
                count = entry.1,
                "abuse alert: repeated refusals from one key within a minute"
            );
            // Stored as an event too, for the console and the assessment; off the request path.
            let event = psf_store::Event {
                ts_ms: psf_store::now_ms(),
                kind: "IG-4.abuse".into(),
                severity: "warning".into(),
                app: Some(app.to_string()),
                key_id: Some(key_id.to_string()),
                summary: format!("{ABUSE_THRESHOLD} refusals from one key within a minute (latest: {what})"),
                detail: json!({"count": entry.1, "latest": what, "window_s": 60}),
            };
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.insert_event(&event).await {
                    tracing::error!(error = %e, "could not record an abuse alert");
                }
            });
        }
        if map.len() > 10_000 {
            map.retain(|_, (since, _)| now.duration_since(*since) <= Duration::from_secs(60));
        }
    }
}

/// The router for a gateway (tests drive it with `oneshot`, `serve` binds it).
pub fn app(gateway: Arc<Gateway>) -> Router {
    let body_limit = gateway.compiled.max_body_bytes();
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
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
    let reload = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut version = None;
            let mut tick = tokio::time::interval(incident::POLL);
            let mut ticks: u64 = 0;
            // The retention sweeper runs at start and then hourly.
            let mut last_sweep: Option<Instant> = None;
            loop {
                tick.tick().await;
                ticks += 1;
                // Incidents first: the kill switch must reach this instance within a second.
                if let Err(e) = gateway.reload_incidents().await {
                    tracing::error!(error = %e, "could not read the incidents in force");
                }
                match gateway.store.keys_version().await {
                    Ok(v) if Some(v) != version => match gateway.reload_keys().await {
                        Ok(()) => version = Some(v),
                        Err(e) => tracing::error!(error = %e, "could not reload API keys"),
                    },
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "could not read API keys' version"),
                }
                if ticks.is_multiple_of(20) {
                    gateway.limits.shrink();
                    gateway.housekeeping().await;
                }
                if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
                    last_sweep = Some(Instant::now());
                    let (m, pii) = (&gateway.compiled.manifest, &gateway.compiled.pii);
                    match crate::retention::sweep(&gateway.store, m, pii, psf_store::now_ms()).await {
                        Ok(s) => tracing::info!(
                            audit_records = s.audit_records,
                            events = s.events,
                            reviews = s.reviews,
                            anonymised = s.reviews_anonymised,
                            "retention sweep"
                        ),
                        Err(e) => tracing::error!(error = %e, "the retention sweep failed"),
                    }
                }
            }
        })
    };
    let pushes = gateway.cluster.as_ref().map(|c| tokio::spawn(incident_pushes(c.url().to_string(), gateway.clone())));
    let senders = gateway.alerts.start_senders(gateway.http.clone(), gateway.metrics.alert_notices.clone());
    let judge = tokio::spawn(judge_minutes(gateway.clone()));
    // Streamed tokens are small writes: without TCP_NODELAY, Nagle's algorithm holds the
    // last one until the client's delayed ACK (40 ms on Linux) — measured by bench/.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
    reload.abort();
    if let Some(p) = pushes {
        p.abort();
    }
    judge.abort();
    senders.abort();
    let written = writer.finish().await;
    gateway.store.close().await;
    result.map(|()| written)
}

/// The text of the last user message in the (redacted) messages the audit keeps.
fn last_user_text(messages: &Value) -> Option<&str> {
    let last = messages.as_array()?.iter().rev().find(|m| m["role"] == "user")?;
    match &last["content"] {
        Value::String(s) => Some(s),
        Value::Array(parts) => parts.iter().find_map(|p| p["text"].as_str()),
        _ => None,
    }
}

/// The quality of one answer (OB-2), from the output checks it went through: the share
/// of schema, length, content, scope, state and confidence checks it passed; `None`
/// when no output check ran (the request never reached a model).
fn quality_score(stages: &[pipeline::StageRecord]) -> Option<f64> {
    const CHECKS: [&str; 6] =
        ["OV-2.schema", "OV-2.length", "OV-3.content", "OV-3.scope", "OV-5.state", "OV-4.confidence"];
    let judged: Vec<bool> = stages
        .iter()
        .filter(|s| CHECKS.contains(&s.code))
        .filter_map(|s| match s.decision {
            Decision::Pass => Some(true),
            Decision::Flag | Decision::Block => Some(false),
            _ => None,
        })
        .collect();
    (!judged.is_empty()).then(|| judged.iter().filter(|ok| **ok).count() as f64 / judged.len() as f64)
}

/// Closes each alert minute: judges the alert rules and the per-key histories. Each
/// alert that fired or resolved is logged, stored as an `OB-1.alert` event and queued
/// for its webhooks; a quality alert that fires marks its decision point for review;
/// anomalies are stored as `OB-3.anomaly` events.
async fn judge_minutes(gw: Arc<Gateway>) {
    let mut tick = tokio::time::interval(gw.alerts.minute());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // Quality since the last stored figure, per decision point: sum, count.
    let summary_every = gw.compiled.manifest.quality_sampling.as_ref().map_or(60, |q| q.summary_minutes.max(1));
    let mut quality_since: std::collections::BTreeMap<String, (f64, u32)> = std::collections::BTreeMap::new();
    let mut minutes: u32 = 0;
    loop {
        tick.tick().await;
        let (alerts, quality) = gw.alerts.tick(psf_store::now_ms());
        for (point, sum, n) in quality {
            gw.metrics.quality.get_or_create(&metrics::Point { decision_point: point.clone() }).set(sum / f64::from(n));
            let acc = quality_since.entry(point).or_default();
            acc.0 += sum;
            acc.1 += n;
        }
        minutes += 1;
        if minutes.is_multiple_of(summary_every) {
            for (point, (sum, n)) in std::mem::take(&mut quality_since) {
                gw.store_quality(&point, sum / f64::from(n), n, summary_every).await;
            }
        }
        let mut findings = gw.monitor.tick(psf_store::now_ms());
        findings.extend(gw.monitor.drift_tick(gw.compiled.manifest.gateway.drift_window_minutes as usize));
        for e in alerts {
            gw.alerts.announce(&e, &gw.metrics);
            if e.metric == "quality_score" && e.state == "firing" {
                findings.push(crate::monitor::quality_review_due(&e.decision_point, &e.summary));
            }
            gw.record_event(psf_store::Event {
                ts_ms: e.ts_ms,
                kind: "OB-1.alert".into(),
                severity: e.severity.into(),
                app: None,
                key_id: None,
                summary: e.summary.clone(),
                detail: serde_json::to_value(&e).unwrap_or_default(),
            })
            .await;
        }
        for f in findings {
            gw.record_finding(f).await;
        }
    }
}

impl Gateway {
    /// Stores an event the gateway raised itself; a store that fails is logged, never
    /// passed on, as no request waits for it.
    async fn record_event(&self, event: psf_store::Event) {
        if let Err(e) = self.store.insert_event(&event).await {
            tracing::error!(error = %e, kind = %event.kind, "could not record an event");
        }
    }

    /// Stores a decision point's sampled quality over the last `minutes` (OB-2): the
    /// series the assessment sets before against after.
    async fn store_quality(&self, point: &str, mean: f64, samples: u32, minutes: u32) {
        self.record_event(psf_store::Event {
            ts_ms: psf_store::now_ms(),
            kind: "OB-2.quality".into(),
            severity: "info".into(),
            app: None,
            key_id: None,
            summary: format!("sampled quality at {point}: {mean:.3} over {samples} answers"),
            detail: json!({"decision_point": point, "mean": mean, "samples": samples, "minutes": minutes}),
        })
        .await;
    }

    /// Logs, counts and stores an anomaly or a review that fell due.
    pub(crate) async fn record_finding(&self, f: crate::monitor::Finding) {
        tracing::warn!(
            kind = f.kind,
            app = f.app.as_deref().unwrap_or("-"),
            key_id = f.key_id.as_deref().unwrap_or("-"),
            "{}",
            f.summary
        );
        self.metrics.monitor_events.get_or_create(&metrics::MonitorKind { kind: f.kind.to_string() }).inc();
        self.record_event(psf_store::Event {
            ts_ms: psf_store::now_ms(),
            kind: f.kind.into(),
            severity: "warning".into(),
            app: f.app,
            key_id: f.key_id,
            summary: f.summary,
            detail: f.detail,
        })
        .await;
    }
}

/// Re-reads incidents whenever another instance announces a change; reconnects after
/// Redis goes away. The 250 ms poll goes on regardless, so nothing depends on a message.
async fn incident_pushes(url: String, gw: Arc<Gateway>) {
    loop {
        let subscribed = async {
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(crate::cluster::INCIDENTS_CHANNEL).await?;
            let mut messages = pubsub.on_message();
            while messages.next().await.is_some() {
                if let Err(e) = gw.reload_incidents().await {
                    tracing::error!(error = %e, "could not read the incidents in force");
                }
            }
            Ok::<_, redis::RedisError>(())
        };
        if let Err(e) = subscribed.await {
            tracing::debug!(error = %e, "incident pushes: Redis unavailable, retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn models(State(gw): State<Arc<Gateway>>) -> Response {
    let data: Vec<Value> = gw
        .compiled
        .manifest
        .decision_points
        .iter()
        .map(|d| json!({"id": d.route.clone().unwrap_or_else(|| d.id.clone()), "object": "model", "owned_by": "psf"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.store.audit_count().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {e}")).into_response(),
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

/// What the handler knows about a request as it goes, for the audit record.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) request_id: String,
    pub(crate) ts_ms: i64,
    pub(crate) t0: Instant,
    pub(crate) app: Option<String>,
    pub(crate) key_id: Option<String>,
    pub(crate) point: Option<Arc<Point>>,
    pub(crate) trail: Trail,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) upstream: Duration,
    /// Time spent waiting on the upstream stream after the first chunk; not overhead.
    pub(crate) stream_wait: Duration,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) stream: bool,
    pub(crate) input: Value,
    pub(crate) prompt_tokens: Option<i64>,
    pub(crate) completion_tokens: Option<i64>,
    /// Whom the request concerns, as its hash.
    pub(crate) subject: Option<String>,
}

impl Ctx {
    pub(crate) fn overhead(&self) -> Duration {
        self.t0.elapsed().saturating_sub(self.upstream + self.stream_wait)
    }

    fn point_id(&self) -> String {
        self.point.as_ref().map_or_else(|| "none".to_string(), |p| p.spec.id.clone())
    }

    fn usage(&mut self, usage: Option<&Value>) {
        if let Some(u) = usage {
            self.prompt_tokens = u.get("prompt_tokens").and_then(Value::as_i64).or(self.prompt_tokens);
            self.completion_tokens = u.get("completion_tokens").and_then(Value::as_i64).or(self.completion_tokens);
        }
    }
}

/// Whether a request body asks for a stream, read without the full input checks (for
/// answers given before them, like an incident's degraded response).
fn wants_stream(body: &[u8]) -> bool {
    serde_json::from_slice::<Map<String, Value>>(body).is_ok_and(|m| m.get("stream") == Some(&Value::Bool(true)))
}

fn request_id() -> String {
    format!("req_{}", uuid::Uuid::now_v7().simple())
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(str::trim);
    }
    headers.get("api-key").or_else(|| headers.get("x-api-key")).and_then(|v| v.to_str().ok()).map(str::trim)
}

impl Gateway {
    /// Writes the audit record and the metrics for a finished request.
    pub(crate) async fn record(
        &self,
        ctx: &Ctx,
        status: StatusCode,
        outcome: &str,
        code: Option<&str>,
        output: Option<String>,
    ) {
        let record = self.audit_record(ctx, status, outcome, code, output);
        self.audit.send(record).await;
    }

    fn audit_record(
        &self,
        ctx: &Ctx,
        status: StatusCode,
        outcome: &str,
        code: Option<&str>,
        output: Option<String>,
    ) -> AuditRecord {
        let point = ctx.point_id();
        let overhead = ctx.overhead();
        let total = ctx.t0.elapsed();
        if ctx.trail.traced {
            // For the exported trace; the log line below says the same.
            let span = tracing::Span::current();
            span.record("decision_point", point.as_str());
            span.record("status", status.as_u16());
            span.record("outcome", outcome);
        }
        // One line per request, ids and codes only: never request text, keys or PII.
        tracing::debug!(
            request_id = %ctx.request_id,
            app = ctx.app.as_deref().unwrap_or("-"),
            decision_point = %point,
            status = status.as_u16(),
            outcome,
            code = code.unwrap_or("-"),
            latency_ms = total.as_secs_f64() * 1000.0,
            overhead_ms = overhead.as_secs_f64() * 1000.0,
            "request finished"
        );
        let decided = |code: &str, decisions: &[Decision]| {
            ctx.trail.stages.iter().any(|s| s.code == code && decisions.contains(&s.decision))
        };
        let quality = self
            .compiled
            .manifest
            .quality_sampling
            .as_ref()
            .filter(|q| self.alerts.sampled(q.rate, &ctx.request_id))
            .and_then(|_| quality_score(&ctx.trail.stages));
        self.alerts.observe(&crate::alerts::Observation {
            decision_point: &point,
            latency_ms: total.as_secs_f64() * 1000.0,
            error: status.is_server_error(),
            blocked: outcome == "blocked",
            rate_limited: outcome == "rate_limited",
            fallback: ctx.attempts.len() > 1,
            quality,
        });
        let injection = decided("IG-1.injection", &[Decision::Block, Decision::Flag]);
        let pii = decided("DG-1.pii", &[Decision::Transform, Decision::Block, Decision::Flag]);
        let out_of_scope = decided("OV-3.scope", &[Decision::Block, Decision::Flag]);
        self.monitor.observe_traffic(
            &point,
            crate::monitor::Traffic {
                script: last_user_text(&ctx.input).and_then(crate::monitor::script_bin),
                out_of_scope,
                prompt_tokens: ctx.prompt_tokens,
                answer_tokens: ctx.completion_tokens,
                injection,
                pii,
            },
        );
        if let (Some(app), Some(key_id)) = (&ctx.app, &ctx.key_id) {
            self.monitor.observe(app, key_id, crate::monitor::KeyUse { injection, pii, out_of_scope }, ctx.ts_ms);
        }
        let m = &self.metrics;
        m.requests
            .get_or_create(&metrics::Outcome { decision_point: point.clone(), outcome: outcome.to_string() })
            .inc();
        m.overhead.get_or_create(&metrics::Point { decision_point: point.clone() }).observe(overhead.as_secs_f64());
        m.duration.get_or_create(&metrics::Point { decision_point: point.clone() }).observe(total.as_secs_f64());
        for s in &ctx.trail.stages {
            m.stages
                .get_or_create(&metrics::Stage { code: s.code.to_string(), decision: s.decision.as_str().to_string() })
                .inc();
        }
        // Token budgets (IG-4) are spent here, where every finished call passes.
        let used =
            [ctx.prompt_tokens, ctx.completion_tokens].iter().flatten().filter_map(|n| u64::try_from(*n).ok()).sum();
        if let (Some(app), Some(key_id), true) = (&ctx.app, &ctx.key_id, used > 0) {
            self.limits.spend(app, key_id, used);
        }
        for (direction, n) in [("in", ctx.prompt_tokens), ("out", ctx.completion_tokens)] {
            if let Some(n) = n.and_then(|n| u64::try_from(n).ok()) {
                m.tokens
                    .get_or_create(&metrics::Tokens { decision_point: point.clone(), direction: direction.into() })
                    .inc_by(n);
            }
        }
        AuditRecord {
            request_id: ctx.request_id.clone(),
            ts_ms: ctx.ts_ms,
            app: ctx.app.clone(),
            key_id: ctx.key_id.clone(),
            decision_point: ctx.point.as_ref().map(|p| p.spec.id.clone()),
            status: status.as_u16(),
            outcome: outcome.to_string(),
            code: code.map(str::to_string),
            model: ctx.model.clone(),
            provider: ctx.provider.clone(),
            stream: ctx.stream,
            latency_ms: total.as_secs_f64() * 1000.0,
            overhead_ms: overhead.as_secs_f64() * 1000.0,
            prompt_tokens: ctx.prompt_tokens,
            completion_tokens: ctx.completion_tokens,
            attempts: serde_json::to_value(&ctx.attempts).unwrap_or(Value::Null),
            stages: ctx.trail.to_json(),
            input_redacted: ctx.input.clone(),
            output_redacted: output,
            subject: ctx.subject.clone(),
        }
    }

    /// Audits a refusal and turns it into the response.
    pub(crate) async fn refuse(&self, ctx: &Ctx, error: ApiError, outcome: &str) -> Response {
        let error = error.with_request_id(&ctx.request_id);
        self.record(ctx, error.status(), outcome, Some(error.code()), None).await;
        let mut response = error.into_response();
        overhead_header(response.headers_mut(), ctx.overhead());
        response
    }
}

pub(crate) fn overhead_header(headers: &mut HeaderMap, overhead: Duration) {
    if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
        headers.insert("x-psf-overhead-ms", v);
    }
}

fn disclosure_headers(headers: &mut HeaderMap, point: &Point, ctx: &Ctx) {
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert("x-request-id", v);
    }
    if point.spec.disclosure.as_ref().is_some_and(|d| d.header) {
        headers.insert("x-psf-ai-generated", HeaderValue::from_static("true"));
    }
    if let Some(v) = ctx.model.as_deref().and_then(|m| HeaderValue::from_str(m).ok()) {
        headers.insert("x-psf-model", v);
    }
}

/// `POST /v1/chat/completions`: the pipeline, inside a span that carries the request id,
/// so every log line about the request can be found by it.
async fn chat_completions(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    use tracing::Instrument as _;
    let id = request_id();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        decision_point = tracing::field::Empty,
        status = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    handle(gw, headers, body, id).instrument(span).await
}

async fn handle(gw: Arc<Gateway>, headers: HeaderMap, body: Bytes, request_id: String) -> Response {
    let mut ctx = Ctx {
        request_id,
        ts_ms: psf_store::now_ms(),
        t0: Instant::now(),
        app: None,
        key_id: None,
        point: None,
        trail: Trail { traced: gw.compiled.manifest.gateway.otlp.is_some(), ..Trail::default() },
        attempts: Vec::new(),
        upstream: Duration::ZERO,
        stream_wait: Duration::ZERO,
        model: None,
        provider: None,
        stream: false,
        input: Value::Null,
        prompt_tokens: None,
        completion_tokens: None,
        subject: None,
    };
    let header_bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        let e = ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "invalid_request_error",
            "IG-2.headers",
            format!("request headers are {header_bytes} bytes, more than {MAX_HEADER_BYTES}"),
        );
        return gw.refuse(&ctx, e, "blocked").await;
    }

    // Who is calling.
    let Some(key) = bearer(&headers) else {
        let e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "auth.missing_key",
            "no API key; send `Authorization: Bearer <key>`",
        );
        return gw.refuse(&ctx, e, "unauthorized").await;
    };
    let Some(owner) = gw.owner(key) else {
        let e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "auth.invalid_key",
            "this API key is not valid (unknown or revoked)",
        );
        return gw.refuse(&ctx, e, "unauthorized").await;
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
                let e = ApiError::refused(
                    "IG-2.subject",
                    format!("the `{SUBJECT_HEADER}` header must be 1 to 256 visible characters"),
                );
                return gw.refuse(&ctx, e, "blocked").await;
            }
        }
    }
    let point = gw.compiled.apps.get(&owner.app).and_then(|p| gw.compiled.points.get(p)).cloned();
    let Some(point) = point else {
        let e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "psf_error",
            "config.no_decision_point",
            "this key's app has no decision point",
        );
        return gw.refuse(&ctx, e, "error").await;
    };
    ctx.point = Some(point.clone());

    // The kill switch (IR-2): incidents in force refuse or degrade before anything else.
    let t = Instant::now();
    match gw.kill.check(&owner.app, &point.spec.id) {
        Verdict::Open => ctx.trail.record("IR-2.kill_switch", pipeline::Decision::Pass, "", t),
        Verdict::Refuse(id) => {
            ctx.trail.record("IR-2.kill_switch", pipeline::Decision::Block, format!("incident {id}"), t);
            let e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "psf_unavailable",
                "IR-2.disabled",
                format!("this service is stopped by incident {id} while it is investigated; try again later"),
            )
            .with_retry_after(30);
            return gw.refuse(&ctx, e, "disabled").await;
        }
        Verdict::Degrade(id) => {
            ctx.trail.record("IR-2.kill_switch", pipeline::Decision::Transform, format!("incident {id}: degraded"), t);
            ctx.stream = wants_stream(&body);
            return degraded(&gw, ctx, &point, Some(&id)).await;
        }
    }

    // Rate limits (IG-4).
    let t = Instant::now();
    if let Err(refusal) = gw.rate_check(&owner.app, &owner.key_id).await {
        let wait = refusal.wait;
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let limit = refusal.describe();
        ctx.trail.record("IG-4.rate_limit", pipeline::Decision::Block, limit.clone(), t);
        let unit = match refusal.unit {
            Unit::Requests => "requests",
            Unit::Tokens => "tokens",
        };
        gw.metrics
            .rate_limited
            .get_or_create(&metrics::LimitScope { scope: refusal.scope.as_str().into(), unit: unit.into() })
            .inc();
        gw.abuse(&owner.app, &owner.key_id, "rate limit");
        let e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "IG-4.rate_limit",
            format!("the {limit} is reached; retry after {seconds} s"),
        )
        .with_retry_after(seconds.max(1));
        return gw.refuse(&ctx, e, "rate_limited").await;
    }
    ctx.trail.record("IG-4.rate_limit", pipeline::Decision::Pass, "", t);

    // Human oversight (HO-1): answers that wait for a reviewer are fetched whole.
    let hold = Compiled::holds(&point);

    // Input governance.
    if body.len() as u64 > point.spec.input.max_body_bytes {
        let e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "IG-2.size",
            format!(
                "the body is {} bytes, more than this decision point's limit of {}",
                body.len(),
                point.spec.input.max_body_bytes
            ),
        );
        return gw.refuse(&ctx, e, "blocked").await;
    }
    // Nesting is read from the bytes first: nothing recursive ever sees a body nested
    // past the limit.
    let max_depth = point.spec.input.max_depth;
    if let Err(at) = psf_detect::json_nesting(&body, max_depth as usize) {
        let message = format!(
            "the body nests arrays and objects more than {max_depth} levels deep (at byte {at}), \
             this decision point's limit; flatten it"
        );
        return gw.refuse(&ctx, ApiError::refused("IG-2.schema", message), "blocked").await;
    }
    let parsed: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(map) => map,
        Err(e) => {
            let e = ApiError::refused("IG-2.schema", format!("the body is not a JSON object: {e}"));
            return gw.refuse(&ctx, e, "blocked").await;
        }
    };
    let stream = match pipeline::validate(&point, &parsed, &mut ctx.trail) {
        Ok(s) => s,
        Err(e) => return gw.refuse(&ctx, e, "blocked").await,
    };
    ctx.stream = stream;
    let prepared = pipeline::prepare(&point, &gw.compiled.pii, parsed, &mut ctx.trail);
    let (prepared, overrides) = match prepared {
        Ok(p) => p,
        Err(e) => {
            if e.code() == "IG-1.injection" {
                gw.metrics
                    .override_attempts
                    .get_or_create(&metrics::Point { decision_point: point.spec.id.clone() })
                    .inc();
                gw.abuse(&owner.app, &owner.key_id, "blocked injection");
            }
            return gw.refuse(&ctx, e, "blocked").await;
        }
    };
    if overrides > 0 {
        gw.metrics
            .override_attempts
            .get_or_create(&metrics::Point { decision_point: point.spec.id.clone() })
            .inc_by(u64::from(overrides));
    }
    ctx.input = prepared.audit_input;

    // The model chain (MS-4), within the regions the request's data allows (DG-5).
    let residency: Vec<(&'static str, &[String])> = match &gw.compiled.manifest.residency {
        Some(r) => prepared.classes.iter().filter_map(|c| Some((c.as_str(), r.regions_for(*c)?))).collect(),
        None => Vec::new(),
    };
    let guards = router::Guards { kill: &gw.kill, residency };
    let routed = router::route(
        &point,
        &prepared.body,
        stream && hold == Hold::Never,
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
                psf_providers::ErrorKind::Status { code, .. }
                    if (400..500).contains(&code) && code != 401 && code != 403 =>
                {
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY)
                }
                _ => StatusCode::BAD_GATEWAY,
            };
            let e = ApiError::new(
                status,
                "upstream_error",
                "MS-4.upstream_rejected",
                format!("the model provider refused the request: {}", e.message),
            );
            return gw.refuse(&ctx, e, "error").await;
        }
        Err(Failure::Unavailable) => return degraded(&gw, ctx, &point, None).await,
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
            ctx.trail.record("DG-5.residency", pipeline::Decision::Block, detail.clone(), t);
            let e = ApiError::refused(
                "DG-5.residency",
                format!(
                    "the request was refused: {detail}. Remove that data, or ask for a provider in an allowed region."
                ),
            );
            return gw.refuse(&ctx, e, "blocked").await;
        }
    };
    if index > 0 {
        gw.metrics.fallbacks.get_or_create(&metrics::Point { decision_point: point.spec.id.clone() }).inc();
    }
    if gw.compiled.manifest.residency.is_some() {
        let detail = match guards.residency.as_slice() {
            [] => String::new(),
            carried => format!(
                "{} processed in {}",
                carried.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", "),
                point.chain[index].region.as_deref().unwrap_or("the deployment's own infrastructure")
            ),
        };
        ctx.trail.record("DG-5.residency", pipeline::Decision::Pass, detail, Instant::now());
    }
    let link = &point.chain[index];
    ctx.model = Some(link.model_id.clone());
    ctx.provider = Some(link.provider.id.clone());
    let reported = match &answer {
        Answer::Complete(v) | Answer::Stream(v, _) => v.get("model").and_then(Value::as_str).unwrap_or_default(),
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
    let mut guard = OutputGuard::new(point.clone(), gw.compiled.pii.clone(), prepared.vault, prepared.hide_logprobs);
    if hold != Hold::Never {
        // Values go back in only once it is known the answer is delivered now.
        guard.defer_restore();
    }
    match answer {
        Answer::Complete(value) => complete(&gw, ctx, &point, guard, value, hold).await,
        Answer::Stream(first, chunks) => stream_response(gw.clone(), ctx, point.clone(), guard, first, chunks),
    }
}

/// Every model failed, or an incident degrades the service: the decision point's degraded
/// response, or a defined 503.
async fn degraded(gw: &Gateway, ctx: Ctx, point: &Point, incident: Option<&str>) -> Response {
    let t = Instant::now();
    let mut ctx = ctx;
    if let Some(id) = incident {
        let Some(text) = &point.spec.degraded_response else {
            let e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "psf_unavailable",
                "IR-2.degraded",
                format!("this service is degraded by incident {id} and has no degraded response; try again later"),
            )
            .with_retry_after(30);
            return gw.refuse(&ctx, e, "disabled").await;
        };
        return degraded_answer(gw, ctx, point, text, "IR-2.degraded").await;
    }
    gw.metrics.fallbacks.get_or_create(&metrics::Point { decision_point: point.spec.id.clone() }).inc();
    let Some(text) = &point.spec.degraded_response else {
        ctx.trail.record(
            "MS-4.fallback",
            pipeline::Decision::Block,
            "every model in the chain failed; no degraded response",
            t,
        );
        let e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "psf_unavailable",
            "MS-4.unavailable",
            "every model for this decision point is unavailable; try again later",
        )
        .with_retry_after(5);
        return gw.refuse(&ctx, e, "error").await;
    };
    ctx.trail.record(
        "MS-4.fallback",
        pipeline::Decision::Transform,
        "every model in the chain failed; degraded response served",
        t,
    );
    degraded_answer(gw, ctx, point, text, "MS-4.degraded").await
}

/// The degraded response, whole or as a one-chunk stream, audited under `code`.
async fn degraded_answer(gw: &Gateway, ctx: Ctx, point: &Point, text: &str, code: &str) -> Response {
    let id = format!("chatcmpl-{}", ctx.request_id);
    let mut body = json!({
        "id": id, "object": "chat.completion", "created": ctx.ts_ms / 1000, "model": point.route,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "psf_degraded": true,
    });
    add_disclosure_field(&mut body, point);
    gw.record(&ctx, StatusCode::OK, "degraded", Some(code), Some(text.to_string())).await;
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

pub(crate) fn add_disclosure_field(body: &mut Value, point: &Point) {
    if let Some(d) = point.spec.disclosure.as_ref().filter(|d| d.body_field)
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert("psf_disclosure".into(), Value::String(d.text.clone()));
    }
}

/// A whole completion through the output stages; held for review when `hold` says so.
async fn complete(
    gw: &Gateway,
    mut ctx: Ctx,
    point: &Point,
    mut guard: OutputGuard,
    mut value: Value,
    hold: Hold,
) -> Response {
    ctx.usage(value.get("usage"));
    let mut audit_out = Vec::new();
    let mut confidence = Confidence::NotChecked;
    if let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) {
        for (i, choice) in choices.iter_mut().enumerate() {
            guard.logprobs(choice);
            let finish = choice.get("finish_reason").and_then(Value::as_str).map(str::to_string);
            let Some(Value::String(content)) = choice.pointer_mut("/message/content") else { continue };
            let result = guard.push(content, &mut ctx.trail).and_then(|mut out| {
                out.push_str(&guard.finish(finish.as_deref(), &mut ctx.trail)?);
                Ok(out)
            });
            match result {
                Ok(out) => {
                    *content = out;
                    audit_out.push(std::mem::take(&mut guard.audit));
                }
                Err(e) => return gw.refuse(&ctx, e, "blocked").await,
            }
            if i == 0 {
                confidence = guard.confidence();
            }
            // Each choice is its own answer.
            guard.reset();
        }
    }
    if let Some(obj) = value.as_object_mut() {
        obj.insert("model".into(), Value::String(point.route.clone()));
    }
    let reason = match (hold, confidence) {
        (Hold::Always, _) => Some("supervised"),
        (Hold::WhenUnsure, Confidence::Low(_, LowConfidence::Escalate)) => Some("low_confidence"),
        _ => None,
    };
    if let Some(reason) = reason {
        let mean = match confidence {
            Confidence::Low(m, _) | Confidence::Enough(m) => Some(m),
            Confidence::NotChecked | Confidence::Unknown => None,
        };
        let held = review::Held { reason, confidence: mean, audit: audit_out.join("\n---\n") };
        return review::hold(gw, &mut ctx, point, guard, value, held).await;
    }
    if hold != Hold::Never {
        for content in value
            .get_mut("choices")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(|c| c.pointer_mut("/message/content"))
        {
            if let Value::String(text) = content {
                *text = guard.restore(text);
            }
        }
    }
    add_disclosure_field(&mut value, point);
    gw.record(&ctx, StatusCode::OK, "delivered", None, Some(audit_out.join("\n---\n"))).await;
    // An answer fetched whole because it might have been held goes to a streaming
    // client as one chunk.
    let mut response =
        if ctx.stream { sse_response(Body::from(one_chunk_stream(&value))) } else { axum::Json(value).into_response() };
    disclosure_headers(response.headers_mut(), point, &ctx);
    overhead_header(response.headers_mut(), ctx.overhead());
    response
}

/// A whole completion as the SSE events of a stream: one chunk per choice, the usage,
/// and `[DONE]`.
fn one_chunk_stream(value: &Value) -> String {
    let mut out = String::new();
    let mut head = value.clone();
    if let Some(obj) = head.as_object_mut() {
        obj.insert("object".into(), json!("chat.completion.chunk"));
        obj.remove("usage");
        obj.remove("choices");
    }
    for choice in value.get("choices").and_then(Value::as_array).into_iter().flatten() {
        let mut chunk = head.clone();
        let mut c = choice.clone();
        if let Some(obj) = c.as_object_mut()
            && let Some(message) = obj.remove("message")
        {
            obj.insert("delta".into(), message);
        }
        chunk["choices"] = json!([c]);
        out.push_str(&format!("data: {chunk}\n\n"));
    }
    if let Some(usage) = value.get("usage") {
        let mut chunk = head.clone();
        chunk["choices"] = json!([]);
        chunk["usage"] = usage.clone();
        out.push_str(&format!("data: {chunk}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn sse_data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// A stream in progress. When its client goes away before the end, `Drop` still writes
/// the audit record.
struct Streaming {
    gw: Arc<Gateway>,
    ctx: Ctx,
    point: Arc<Point>,
    guard: OutputGuard,
    first: Option<Value>,
    chunks: ChunkStream,
    finish: Option<Value>,
    usage: Option<Value>,
    disclose: bool,
    done: bool,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let record = self.gw.audit_record(
                &self.ctx,
                StatusCode::OK,
                "client_closed",
                Some("stream.client_closed"),
                Some(std::mem::take(&mut self.guard.audit)),
            );
            self.gw.audit.send_detached(record);
        }
    }
}

impl Streaming {
    /// The next bytes for the client, or `None` at the end.
    async fn step(&mut self) -> Option<Vec<Bytes>> {
        if self.done {
            return None;
        }
        loop {
            let next = match self.first.take() {
                Some(first) => Some(Ok(first)),
                None => {
                    let t = Instant::now();
                    let next = self.chunks.next().await;
                    self.ctx.stream_wait += t.elapsed();
                    next
                }
            };
            match next {
                None => return Some(self.end().await),
                Some(Err(e)) => {
                    let link = self.point.chain.iter().find(|l| Some(&l.provider.id) == self.ctx.provider.as_ref());
                    if let Some(link) = link.filter(|_| e.is_provider_fault()) {
                        link.breaker.failure();
                    }
                    let error = ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "upstream_error",
                        "MS-4.stream_failed",
                        format!("the model's stream failed after it had started: {}", e.message),
                    );
                    return Some(self.fail(error, "error").await);
                }
                Some(Ok(mut chunk)) => {
                    self.ctx.usage(chunk.get("usage"));
                    let choices_empty = chunk.get("choices").and_then(Value::as_array).is_none_or(Vec::is_empty);
                    if choices_empty {
                        // The usage chunk; it goes out after the last checks.
                        if chunk.get("usage").is_some() {
                            self.usage = Some(chunk);
                        }
                        continue;
                    }
                    if let Some(choice) = chunk.pointer_mut("/choices/0") {
                        self.guard.logprobs(choice);
                    }
                    let finish = chunk.pointer("/choices/0/finish_reason").filter(|f| !f.is_null()).cloned();
                    let content = chunk.pointer("/choices/0/delta/content").and_then(Value::as_str).map(str::to_string);
                    if let Some(content) = content {
                        match self.guard.push(&content, &mut self.ctx.trail) {
                            Ok(released) => {
                                if let Some(slot) = chunk.pointer_mut("/choices/0/delta/content") {
                                    *slot = Value::String(released);
                                }
                            }
                            Err(e) => return Some(self.fail(e, "blocked").await),
                        }
                    }
                    if finish.is_some() {
                        // Hold the last chunk until the final checks have passed.
                        self.finish = Some(chunk);
                        continue;
                    }
                    let delta = chunk.pointer("/choices/0/delta");
                    let empty = delta.and_then(Value::as_object).is_some_and(|d| {
                        d.iter().all(|(k, v)| k == "content" && v.as_str().is_some_and(str::is_empty))
                    });
                    // Log-probabilities the client asked for go out even while text is held.
                    let logprobs = chunk.pointer("/choices/0/logprobs").is_some_and(|l| !l.is_null());
                    if empty && !self.disclose && !logprobs {
                        continue;
                    }
                    return Some(vec![sse_data(&self.outgoing(chunk))]);
                }
            }
        }
    }

    fn outgoing(&mut self, mut chunk: Value) -> Value {
        if let Some(obj) = chunk.as_object_mut() {
            obj.insert("model".into(), Value::String(self.point.route.clone()));
            if self.disclose {
                self.disclose = false;
                add_disclosure_field(&mut chunk, &self.point);
            }
        }
        chunk
    }

    async fn end(&mut self) -> Vec<Bytes> {
        let Some(mut last) = self.finish.take() else {
            let error = ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "MS-4.stream_truncated",
                "the model's stream ended without finishing its answer",
            );
            return self.fail(error, "error").await;
        };
        let reason = last.pointer("/choices/0/finish_reason").and_then(Value::as_str).map(str::to_string);
        let rest = match self.guard.finish(reason.as_deref(), &mut self.ctx.trail) {
            Ok(rest) => rest,
            Err(e) => return self.fail(e, "blocked").await,
        };
        if let Some(slot) = last.pointer_mut("/choices/0/delta") {
            let existing = slot.get("content").and_then(Value::as_str).unwrap_or_default().to_string();
            slot["content"] = Value::String(existing + &rest);
        }
        let mut out = vec![sse_data(&self.outgoing(last))];
        if let Some(usage) = self.usage.take() {
            out.push(sse_data(&self.outgoing(usage)));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        self.done = true;
        let audit = std::mem::take(&mut self.guard.audit);
        self.gw.record(&self.ctx, StatusCode::OK, "delivered", None, Some(audit)).await;
        out
    }

    /// Ends the stream with an error event: never a silent cut.
    async fn fail(&mut self, error: ApiError, outcome: &str) -> Vec<Bytes> {
        self.done = true;
        let error = error.with_request_id(&self.ctx.request_id);
        let audit = std::mem::take(&mut self.guard.audit);
        self.gw.record(&self.ctx, error.status(), outcome, Some(error.code()), Some(audit)).await;
        vec![sse_data(&error.body())]
    }
}

fn stream_response(
    gw: Arc<Gateway>,
    ctx: Ctx,
    point: Arc<Point>,
    guard: OutputGuard,
    first: Value,
    chunks: ChunkStream,
) -> Response {
    let overhead = ctx.overhead();
    let disclose = point.spec.disclosure.as_ref().is_some_and(|d| d.body_field);
    let mut headers = HeaderMap::new();
    disclosure_headers(&mut headers, &point, &ctx);
    overhead_header(&mut headers, overhead);
    let state = Streaming {
        gw,
        ctx,
        point,
        guard,
        first: Some(first),
        chunks,
        finish: None,
        usage: None,
        disclose,
        done: false,
    };
    let body = futures_util::stream::unfold(state, |mut s| async move {
        let bytes = s.step().await?;
        Some((
            Ok::<_, std::convert::Infallible>(futures_util::stream::iter(
                bytes.into_iter().map(Ok::<_, std::convert::Infallible>),
            )),
            s,
        ))
    })
    .map(|r| match r {
        Ok(inner) => inner,
        Err(never) => match never {},
    })
    .flatten();
    let mut response = sse_response(Body::from_stream(body));
    response.headers_mut().extend(headers);
    response
}
