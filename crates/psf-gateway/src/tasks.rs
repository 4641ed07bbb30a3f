//! The gateway's background tasks: what runs beside the requests, on a timer or on a
//! message, and stops with the server.
//!
//! - the reload loop (every [`incident::POLL`]): incidents in force first, so the kill
//!   switch reaches every instance within a second; API keys when their version moved;
//!   every 20 ticks, limit buckets shrink and overdue reviews escalate; the retention
//!   sweep at start and hourly;
//! - the alert minute: alert rules, per-key histories, drift and sampled quality;
//! - in cluster mode, incident pushes from Redis (the poll goes on regardless);
//! - the alert senders (webhooks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use psf_core::code::Code;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::incident;
use crate::metrics;
use crate::review;
use crate::state::Gateway;

/// How often the retention sweeper runs.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The running tasks; [`Background::stop`] ends them.
pub(crate) struct Background(Vec<JoinHandle<()>>);

impl Background {
    /// Starts every background task of `gateway`.
    pub(crate) fn start(gateway: &Arc<Gateway>) -> Background {
        let mut tasks = vec![tokio::spawn(reload(gateway.clone())), tokio::spawn(judge_minutes(gateway.clone()))];
        if let Some(c) = &gateway.cluster {
            tasks.push(tokio::spawn(incident_pushes(c.url().to_string(), gateway.clone())));
        }
        tasks.push(gateway.alerts.start_senders(gateway.http.clone(), gateway.metrics.alert_notices.clone()));
        Background(tasks)
    }

    /// Aborts them all.
    pub(crate) fn stop(self) {
        for t in self.0 {
            t.abort();
        }
    }
}

/// The reload loop: incidents, keys, housekeeping and the retention sweep.
async fn reload(gateway: Arc<Gateway>) {
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
            housekeeping(&gateway).await;
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
}

/// Slow-paced chores: escalate reviews past their deadline, refresh the queue gauge.
async fn housekeeping(gw: &Gateway) {
    match gw.store.escalate_overdue_reviews(psf_store::now_ms()).await {
        Ok(overdue) => {
            for r in overdue {
                tracing::warn!(review = %r.id, decision_point = %r.decision_point, "a held answer passed its review deadline");
                gw.record_event(psf_store::Event {
                    ts_ms: psf_store::now_ms(),
                    kind: Code::Ho2ReviewOverdue.as_str().into(),
                    severity: "warning".into(),
                    app: r.app.clone(),
                    key_id: r.key_id.clone(),
                    summary: format!("review {} waited past its deadline", r.id),
                    detail: json!({"review_id": r.id, "decision_point": r.decision_point, "deadline_ms": r.deadline_ms}),
                })
                .await;
                if let Some(point) = gw.compiled.points.get(&r.decision_point) {
                    review::notify(gw, point, review::webhook_body("psf.review.overdue", &r));
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "could not escalate overdue reviews"),
    }
    if let Ok(n) = gw.store.pending_reviews().await {
        gw.metrics.reviews_pending.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
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
                kind: Code::Ob1Alert.as_str().into(),
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
