//! The gateway's shared state: the compiled manifest, the keys, the limits, the store,
//! the audit queue, the kill switch and the monitors every request reads; and the
//! chores on it that requests and background tasks share (key and incident reloads,
//! the cluster-wide rate check, abuse counting, stored events).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use psf_core::code::Code;
use psf_core::manifest::FailMode;
use psf_store::Store;
use serde_json::json;

use crate::audit::{self, AuditSender, AuditWriter};
use crate::cluster::{Bucket, Cluster};
use crate::config::Compiled;
use crate::incident::KillSwitch;
use crate::keys::{KeyOwner, KeyTable, digest_from_hex};
use crate::limits::{self, Limits, Unit};
use crate::metrics::{self, Metrics};

/// Limit hits or blocked injections from one key within a minute that raise an alert.
const ABUSE_THRESHOLD: u32 = 20;

/// Why the rate check refused a request.
#[derive(Debug)]
pub(crate) enum RateDenied {
    /// A limit is reached.
    Limit(limits::Refusal),
    /// The shared limiter did not answer and the fail mode is `fail_closed`.
    Unreachable(String),
}

/// A running gateway's shared state.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) compiled: Compiled,
    store_keys: RwLock<KeyTable>,
    pub(crate) limits: Limits,
    pub(crate) metrics: Metrics,
    pub(crate) audit: AuditSender,
    pub(crate) store: Store,
    abuse: Mutex<HashMap<String, (Instant, u32)>>,
    /// Incidents in force (IR-2).
    pub(crate) kill: KillSwitch,
    /// Redis, in cluster mode: shared request limits and incident pushes.
    pub(crate) cluster: Option<Cluster>,
    /// Whether the last rate check found Redis unreachable: a change either way is logged
    /// and stored once, not once per request.
    redis_down: AtomicBool,
    /// For review webhooks.
    pub(crate) http: reqwest::Client,
    /// Alert rules, their baselines and the current minute (OB-1, OB-2).
    pub(crate) alerts: crate::alerts::Alerts,
    /// Per-key usage histories and the model versions providers report (OB-3, HO-5).
    pub(crate) monitor: crate::monitor::Monitor,
    /// Requests without a valid key, per source address (IG-4): they are refused
    /// without an audit row, and a source that keeps sending them is slowed down.
    pub(crate) unauthenticated: crate::limits::PerSource,
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
            redis_down: AtomicBool::new(false),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default(),
            unauthenticated: crate::limits::PerSource::new(),
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

    pub(crate) async fn reload_keys(&self) -> Result<(), psf_store::StoreError> {
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

    /// Reads the incidents in force from the store.
    pub(crate) async fn reload_incidents(&self) -> Result<(), psf_store::StoreError> {
        let incidents = self.store.incidents(true).await?;
        self.kill.set(&incidents);
        self.metrics.incidents.set(i64::try_from(incidents.len()).unwrap_or(i64::MAX));
        Ok(())
    }

    /// The rate limits (IG-4): shared across the cluster through Redis when there is one,
    /// this instance's own otherwise. While Redis does not answer within its deadline,
    /// `rate_limits.on_store_unreachable` decides: refuse, or this instance's own limits.
    pub(crate) async fn rate_check(&self, app: &str, key_id: &str) -> Result<(), RateDenied> {
        let Some(cluster) = &self.cluster else { return self.limits.check(app, key_id).map_err(RateDenied::Limit) };
        self.limits.check_tokens(app, key_id).map_err(RateDenied::Limit)?;
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
        let taken = cluster.take(&buckets).await;
        self.limiter_reachable(taken.as_ref().err());
        match taken {
            Ok(None) => Ok(()),
            Ok(Some((i, wait))) => {
                let scope = shared.get(i).map_or(limits::Scope::Global, |b| b.0);
                Err(RateDenied::Limit(limits::Refusal { scope, unit: Unit::Requests, wait }))
            }
            Err(e) => {
                self.metrics.redis_errors.inc();
                match self.compiled.manifest.rate_limits.on_store_unreachable {
                    FailMode::FailClosed => Err(RateDenied::Unreachable(e)),
                    FailMode::LocalLimits => self.limits.check(app, key_id).map_err(RateDenied::Limit),
                }
            }
        }
    }

    /// Notes whether the shared limiter answered; logs and stores an `IG-4.limiter` event
    /// when that changes, so an outage and its end are each said once.
    fn limiter_reachable(&self, error: Option<&String>) {
        let down = error.is_some();
        if self.redis_down.swap(down, Ordering::Relaxed) == down {
            return;
        }
        let mode = match self.compiled.manifest.rate_limits.on_store_unreachable {
            FailMode::FailClosed => "requests are refused until it is back (fail_closed)",
            FailMode::LocalLimits => "rate limits are this instance's own until it is back (local_limits)",
        };
        let (severity, summary) = match error {
            Some(e) => {
                tracing::warn!(error = %e, "the shared rate limiter (Redis) is unreachable: {mode}");
                ("warning", format!("the shared rate limiter is unreachable ({e}): {mode}"))
            }
            None => {
                tracing::info!("the shared rate limiter (Redis) answers again: limits are shared");
                ("info", "the shared rate limiter answers again".to_string())
            }
        };
        let event = psf_store::Event {
            ts_ms: psf_store::now_ms(),
            kind: Code::Ig4Limiter.as_str().into(),
            severity: severity.into(),
            app: None,
            key_id: None,
            summary,
            detail: json!({"reachable": !down}),
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.insert_event(&event).await {
                tracing::error!(error = %e, "could not record a limiter event");
            }
        });
    }

    /// Whether the shared limiter answers, for `/readyz`: `None` without a cluster.
    pub(crate) async fn limiter_ready(&self) -> Option<Result<(), String>> {
        let cluster = self.cluster.as_ref()?;
        Some(cluster.ping().await)
    }

    pub(crate) fn owner(&self, key: &str) -> Option<KeyOwner> {
        if let Some(o) = self.compiled.manifest_keys.lookup(key) {
            return Some(o.clone());
        }
        self.store_keys.read().unwrap_or_else(PoisonError::into_inner).lookup(key).cloned()
    }

    /// Counts an abusive event from a key; raises an alert when they pile up.
    pub(crate) fn abuse(&self, app: &str, key_id: &str, what: &str) {
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
                alert = Code::Ig4Abuse.as_str(),
                app,
                key_id,
                what,
                count = entry.1,
                "abuse alert: repeated refusals from one key within a minute"
            );
            // Stored as an event too, for the console and the assessment; off the request path.
            let event = psf_store::Event {
                ts_ms: psf_store::now_ms(),
                kind: Code::Ig4Abuse.as_str().into(),
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

impl Gateway {
    /// Stores an event the gateway raised itself; a store that fails is logged, never
    /// passed on, as no request waits for it.
    pub(crate) async fn record_event(&self, event: psf_store::Event) {
        if let Err(e) = self.store.insert_event(&event).await {
            tracing::error!(error = %e, kind = %event.kind, "could not record an event");
        }
    }

    /// Stores a decision point's sampled quality over the last `minutes` (OB-2): the
    /// series the assessment sets before against after.
    pub(crate) async fn store_quality(&self, point: &str, mean: f64, samples: u32, minutes: u32) {
        self.record_event(psf_store::Event {
            ts_ms: psf_store::now_ms(),
            kind: Code::Ob2Quality.as_str().into(),
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
            kind = f.kind.as_str(),
            app = f.app.as_deref().unwrap_or("-"),
            key_id = f.key_id.as_deref().unwrap_or("-"),
            "{}",
            f.summary
        );
        self.metrics.monitor_events.get_or_create(&metrics::MonitorKind { kind: f.kind.to_string() }).inc();
        self.record_event(psf_store::Event {
            ts_ms: psf_store::now_ms(),
            kind: f.kind.as_str().into(),
            severity: "warning".into(),
            app: f.app,
            key_id: f.key_id,
            summary: f.summary,
            detail: f.detail,
        })
        .await;
    }
}
