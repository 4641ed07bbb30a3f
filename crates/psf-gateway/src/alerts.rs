//! Baselines and alerts (OB-1): the manifest's `alerts:` rules judged every minute
//! against what the gateway served, per decision point.
//!
//! The request path only counts: [`Alerts::observe`] adds a finished request to the
//! current minute's bucket under a short lock. A background task closes the minute
//! ([`Alerts::tick`]), works out each rule's metric for each decision point, and
//! compares it with the rule's thresholds and with a rolling baseline: an exponentially
//! weighted mean and variance over `baseline_minutes`, fed only by minutes in which the
//! rule is not breached, so an incident does not teach the baseline that it is normal.
//! A rule fires after `window_minutes` breached minutes in a row and resolves after as
//! many clear ones (no flapping); minutes with fewer than `min_requests` requests do not
//! count either way.
//!
//! Firing and resolving are events: a log line, an `OB-1.alert` event in the store (the
//! console and the assessment read it), the `psf_alerts_firing` gauge, and a JSON POST
//! to each webhook in the rule's `notify` — a body that Slack (`text`) and
//! PagerDuty-style receivers (`event_action`, `dedup_key`, `payload`) both accept. Sends
//! go through a bounded queue to their own tasks with retries and back-off, so a sink
//! that hangs or fails never reaches a request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use psf_core::Manifest;
use psf_core::manifest::{AlertMetric, AlertRule, AlertSeverity};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::{self, Metrics};

/// Latencies kept per decision point per minute for the p99; beyond it, a reservoir
/// sample keeps memory bounded whatever the traffic.
const LATENCY_SAMPLES: usize = 4096;
/// Minutes of baseline needed before a baseline condition can fire.
const WARM_UP: u32 = 5;
/// Notices waiting to be sent; beyond this they are dropped and counted.
const QUEUE: usize = 1024;
/// Sends in flight at once, so one hanging sink cannot hold every notice back.
const SENDERS: usize = 16;
/// Tries per notice, with back-off doubling from [`BACKOFF`].
const TRIES: u32 = 4;
const BACKOFF: Duration = Duration::from_millis(250);
/// Time allowed to one webhook call.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// One finished request, as the alert rules see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observation<'a> {
    pub decision_point: &'a str,
    pub latency_ms: f64,
    pub error: bool,
    pub blocked: bool,
    pub rate_limited: bool,
    pub fallback: bool,
    /// The sampled output's quality score (OB-2), when this request was sampled.
    pub quality: Option<f64>,
}

/// One decision point's requests in the current minute.
#[derive(Debug, Default, Clone)]
struct Bucket {
    requests: u32,
    errors: u32,
    blocked: u32,
    rate_limited: u32,
    fallbacks: u32,
    /// Sum and count of the sampled quality scores.
    quality: (f64, u32),
    latencies: Vec<f64>,
    /// State of the reservoir sampler's generator.
    seed: u64,
}

impl Bucket {
    fn add(&mut self, o: &Observation<'_>) {
        self.requests += 1;
        self.errors += u32::from(o.error);
        self.blocked += u32::from(o.blocked);
        self.rate_limited += u32::from(o.rate_limited);
        self.fallbacks += u32::from(o.fallback);
        if let Some(q) = o.quality {
            self.quality.0 += q;
            self.quality.1 += 1;
        }
        if self.latencies.len() < LATENCY_SAMPLES {
            self.latencies.push(o.latency_ms);
        } else {
            // Reservoir sampling (algorithm R) with a xorshift generator.
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            let j = (self.seed % u64::from(self.requests)) as usize;
            if let Some(slot) = self.latencies.get_mut(j) {
                *slot = o.latency_ms;
            }
        }
    }

    /// The metric's value this minute; `None` when it cannot be judged (too few requests
    /// for a rate or a latency, or a metric the gateway does not measure here).
    fn value(&mut self, metric: AlertMetric, min_requests: u32) -> Option<f64> {
        let n = f64::from(self.requests);
        // One alert minute is the unit, however long it is set to last.
        if metric == AlertMetric::RequestsPerMinute {
            return Some(n);
        }
        // Quality counts the sampled outputs, not all requests.
        if metric == AlertMetric::QualityScore {
            let (sum, k) = self.quality;
            return (k >= min_requests).then(|| sum / f64::from(k));
        }
        if self.requests < min_requests {
            return None;
        }
        let share = |k: u32| f64::from(k) / n;
        match metric {
            AlertMetric::LatencyP99Ms => {
                self.latencies.sort_by(f64::total_cmp);
                let rank = ((self.latencies.len() as f64) * 0.99).ceil() as usize;
                self.latencies.get(rank.saturating_sub(1)).copied()
            }
            AlertMetric::ErrorRate => Some(share(self.errors)),
            AlertMetric::BlockedRate => Some(share(self.blocked)),
            AlertMetric::RateLimitedRate => Some(share(self.rate_limited)),
            AlertMetric::FallbackRate => Some(share(self.fallbacks)),
            AlertMetric::RequestsPerMinute | AlertMetric::QualityScore | AlertMetric::ReviewQueueDepth => None,
        }
    }
}

/// An exponentially weighted mean and variance.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(crate) struct Ewma {
    pub mean: f64,
    pub variance: f64,
    /// Minutes learnt from.
    pub minutes: u32,
}

impl Ewma {
    pub fn learn(&mut self, x: f64, alpha: f64) {
        if self.minutes == 0 {
            self.mean = x;
            self.variance = 0.0;
        } else {
            // West's incremental form: the variance follows the same weights as the mean.
            let diff = x - self.mean;
            let incr = alpha * diff;
            self.mean += incr;
            self.variance = (1.0 - alpha) * (self.variance + diff * incr);
        }
        self.minutes = self.minutes.saturating_add(1);
    }

    /// The standard deviation, floored so a perfectly steady baseline does not turn
    /// every wobble into many deviations: at least 5% of the mean.
    fn sd(&self) -> f64 {
        self.variance.sqrt().max(self.mean.abs() * 0.05).max(f64::EPSILON)
    }
}

/// One rule's state for one decision point.
#[derive(Debug, Default, Clone)]
struct RuleState {
    baseline: Ewma,
    breached: u32,
    clear: u32,
    firing: bool,
    last_value: Option<f64>,
}

/// Why a minute breached a rule, in words.
fn breach(rule: &AlertRule, value: f64, b: &Ewma) -> Option<String> {
    if let Some(above) = rule.above.filter(|a| value > *a) {
        return Some(format!("{} is above {above}", fmt(value)));
    }
    if let Some(below) = rule.below.filter(|x| value < *x) {
        return Some(format!("{} is below {below}", fmt(value)));
    }
    if b.minutes < WARM_UP {
        return None;
    }
    if let Some(k) = rule.baseline_sigmas {
        let sigmas = (value - b.mean) / b.sd();
        if sigmas.abs() > k {
            return Some(format!(
                "{} is {:.1} standard deviations from its baseline {} ± {}",
                fmt(value),
                sigmas,
                fmt(b.mean),
                fmt(b.sd())
            ));
        }
    }
    if let Some(f) = rule.baseline_factor
        && b.mean > 0.0
        && (value > b.mean * f || value < b.mean / f)
    {
        return Some(format!("{} is over {f} times away from its baseline {}", fmt(value), fmt(b.mean)));
    }
    None
}

fn fmt(x: f64) -> String {
    if x.abs() >= 100.0 { format!("{x:.0}") } else { format!("{x:.3}") }
}

fn metric_name(m: AlertMetric) -> String {
    serde_json::to_value(m).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn severity_name(s: AlertSeverity) -> &'static str {
    match s {
        AlertSeverity::Info => "info",
        AlertSeverity::Warning => "warning",
        AlertSeverity::Critical => "critical",
    }
}

/// A change of an alert's state, as stored, logged and sent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlertEvent {
    pub rule: String,
    pub decision_point: String,
    pub metric: String,
    /// `firing` or `resolved`.
    pub state: &'static str,
    pub severity: &'static str,
    pub value: Option<f64>,
    pub baseline: Ewma,
    pub summary: String,
    pub ts_ms: i64,
}

impl AlertEvent {
    /// The webhook body: Slack reads `text`; PagerDuty-style receivers read
    /// `event_action`, `dedup_key` and `payload`.
    pub fn webhook_body(&self) -> Value {
        let action = if self.state == "firing" { "trigger" } else { "resolve" };
        json!({
            "text": format!("[{}] {}", self.state.to_uppercase(), self.summary),
            "event_action": action,
            "dedup_key": format!("psf/{}/{}", self.rule, self.decision_point),
            "payload": {
                "summary": self.summary,
                "source": "psf",
                "severity": self.severity,
                "component": self.decision_point,
                "group": self.rule,
                "class": self.metric,
                "timestamp": self.ts_ms,
                "custom_details": {
                    "value": self.value,
                    "baseline_mean": self.baseline.mean,
                    "baseline_sd": self.baseline.sd(),
                    "baseline_minutes": self.baseline.minutes,
                },
            },
            "psf": self,
        })
    }
}

/// A notice waiting for its sink.
#[derive(Debug)]
struct Notice {
    url: String,
    body: Value,
}

/// The rules, their state, and the current minute.
#[derive(Debug)]
pub(crate) struct Alerts {
    rules: Vec<AlertRule>,
    points: Vec<String>,
    minute: Duration,
    current: Mutex<HashMap<String, Bucket>>,
    state: Mutex<HashMap<(usize, String), RuleState>>,
    queue: Mutex<Option<mpsc::Sender<Notice>>>,
}

impl Alerts {
    pub fn new(m: &Manifest) -> Alerts {
        let mut rules = m.alerts.clone();
        // `quality_sampling.min_score` is a rule of its own unless one is written.
        if let Some(min) = m.quality_sampling.as_ref().and_then(|q| q.min_score)
            && !rules.iter().any(|r| r.metric == AlertMetric::QualityScore)
        {
            let rule = json!({"id": "quality-sampling", "metric": "quality_score", "below": min, "min_requests": 3});
            if let Ok(rule) = serde_json::from_value(rule) {
                rules.push(rule);
            }
        }
        Alerts {
            rules,
            points: m.decision_points.iter().map(|d| d.id.clone()).collect(),
            minute: Duration::from_millis(m.gateway.alert_minute_ms.max(1)),
            current: Mutex::new(HashMap::new()),
            state: Mutex::new(HashMap::new()),
            queue: Mutex::new(None),
        }
    }

    /// How long one alert minute lasts.
    pub fn minute(&self) -> Duration {
        self.minute
    }

    /// Whether a request is in the quality sample: decided by its id, so the choice is
    /// reproducible and needs no random source.
    pub fn sampled(&self, rate: f64, request_id: &str) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in request_id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        ((h >> 11) as f64 / (1u64 << 53) as f64) < rate
    }

    /// Counts a finished request. On the request path: a short lock, no allocation
    /// after the decision point's first request.
    pub fn observe(&self, o: &Observation<'_>) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        match current.get_mut(o.decision_point) {
            Some(b) => b.add(o),
            // Only the manifest's decision points: request data never makes a key.
            None if self.points.iter().any(|p| p == o.decision_point) => {
                let mut b = Bucket { seed: 0x9e37_79b9_7f4a_7c15, ..Bucket::default() };
                b.add(o);
                current.insert(o.decision_point.to_string(), b);
            }
            None => {}
        }
    }

    /// Closes the current minute: judges every rule for every decision point it
    /// watches, and returns the alerts that fired or resolved, and the minute's sampled
    /// quality (sum of scores and count) per decision point that had samples.
    pub fn tick(&self, now_ms: i64) -> (Vec<AlertEvent>, Vec<(String, f64, u32)>) {
        let mut buckets = std::mem::take(&mut *self.current.lock().unwrap_or_else(PoisonError::into_inner));
        let quality: Vec<(String, f64, u32)> = buckets
            .iter()
            .filter(|(_, b)| b.quality.1 > 0)
            .map(|(p, b)| (p.clone(), b.quality.0, b.quality.1))
            .collect();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut events = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let alpha = 2.0 / (f64::from(rule.baseline_minutes.max(2)) + 1.0);
            for point in self.points.iter().filter(|p| rule.decision_point.as_ref().is_none_or(|d| d == *p)) {
                let bucket = buckets.entry(point.clone()).or_default();
                let Some(value) = bucket.value(rule.metric, rule.min_requests.max(1)) else { continue };
                let s = state.entry((i, point.clone())).or_default();
                s.last_value = Some(value);
                let why = breach(rule, value, &s.baseline);
                match &why {
                    Some(_) => {
                        s.breached += 1;
                        s.clear = 0;
                    }
                    None => {
                        s.clear += 1;
                        s.breached = 0;
                        s.baseline.learn(value, alpha);
                    }
                }
                let window = rule.window_minutes.max(1);
                let change = match (&why, s.firing) {
                    (Some(why), false) if s.breached >= window => Some(("firing", why.clone())),
                    (None, true) if s.clear >= window => Some((
                        "resolved",
                        format!("{} is back within the rule ({} clear minutes)", fmt(value), s.clear),
                    )),
                    _ => None,
                };
                if let Some((to, why)) = change {
                    s.firing = to == "firing";
                    let metric = metric_name(rule.metric);
                    events.push(AlertEvent {
                        rule: rule.id.clone(),
                        decision_point: point.clone(),
                        summary: format!("alert {} at {point}: {metric} {why}", rule.id),
                        metric,
                        state: to,
                        severity: severity_name(rule.severity),
                        value: Some(value),
                        baseline: s.baseline,
                        ts_ms: now_ms,
                    });
                }
            }
        }
        (events, quality)
    }

    /// The alerts firing now, for the admin API.
    pub fn firing(&self) -> Vec<Value> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Value> = state
            .iter()
            .filter(|(_, s)| s.firing)
            .filter_map(|((i, point), s)| {
                let rule = self.rules.get(*i)?;
                Some(json!({
                    "rule": rule.id, "decision_point": point, "metric": metric_name(rule.metric),
                    "severity": severity_name(rule.severity), "value": s.last_value, "baseline": s.baseline,
                }))
            })
            .collect();
        out.sort_by_key(Value::to_string);
        out
    }

    /// Starts the senders; returns the task that drains the queue.
    pub fn start_senders(
        &self,
        http: reqwest::Client,
        notices: Family<metrics::AlertSink, Counter>,
    ) -> tokio::task::JoinHandle<()> {
        let (tx, mut rx) = mpsc::channel::<Notice>(QUEUE);
        *self.queue.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        let permits = Arc::new(Semaphore::new(SENDERS));
        tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let (http, notices) = (http.clone(), notices.clone());
                tokio::spawn(async move {
                    let result = send(&http, &notice).await;
                    let label = metrics::AlertSink { result: if result.is_ok() { "sent" } else { "failed" }.into() };
                    notices.get_or_create(&label).inc();
                    if let Err(e) = result {
                        tracing::error!(sink = %redact_url(&notice.url), error = %e, "an alert could not be delivered");
                    }
                    drop(permit);
                });
            }
        })
    }

    /// Logs the event and queues it for the rule's webhooks; never waits.
    pub fn announce(&self, e: &AlertEvent, metrics: &Metrics) {
        match e.state {
            "firing" => {
                tracing::warn!(alert = %e.rule, decision_point = %e.decision_point, severity = e.severity, "{}", e.summary)
            }
            _ => tracing::info!(alert = %e.rule, decision_point = %e.decision_point, "{}", e.summary),
        }
        let label = metrics::AlertLabel { rule: e.rule.clone(), decision_point: e.decision_point.clone() };
        metrics.alerts_firing.get_or_create(&label).set(i64::from(e.state == "firing"));
        let Some(rule) = self.rules.iter().find(|r| r.id == e.rule) else { return };
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(queue) = queue else { return };
        for url in rule.notify.iter().filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
            if queue.try_send(Notice { url: url.clone(), body: e.webhook_body() }).is_err() {
                metrics.alert_notices.get_or_create(&metrics::AlertSink { result: "dropped".into() }).inc();
                tracing::error!(sink = %redact_url(url), "the alert queue is full; a notice was dropped");
            }
        }
    }
}

/// Posts a notice, retrying a failure or a non-2xx answer with back-off.
async fn send(http: &reqwest::Client, n: &Notice) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
        }
        let request = http.post(&n.url).header("content-type", "application/json").body(n.body.to_string());
        match tokio::time::timeout(SEND_TIMEOUT, request.send()).await {
            Ok(Ok(r)) if r.status().is_success() => return Ok(()),
            Ok(Ok(r)) => last = format!("answered {}", r.status()),
            Ok(Err(e)) => last = e.without_url().to_string(),
            Err(_) => last = format!("no answer within {} s", SEND_TIMEOUT.as_secs()),
        }
    }
    Err(format!("{last} after {TRIES} tries"))
}

/// A webhook URL for the log: scheme and host only, as its path often holds a token.
fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}/…", rest.split('/').next().unwrap_or_default()),
        None => "(not a URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule from JSON (the manifest's YAML maps onto the same type).
    fn rule(json_text: &str) -> AlertRule {
        serde_json::from_str(json_text).unwrap()
    }

    fn obs(ms: f64) -> Observation<'static> {
        Observation {
            decision_point: "dp",
            latency_ms: ms,
            error: false,
            blocked: false,
            rate_limited: false,
            fallback: false,
            quality: None,
        }
    }

    fn alerts(rules: Vec<AlertRule>) -> Alerts {
        Alerts {
            rules,
            points: vec!["dp".into()],
            minute: Duration::from_secs(60),
            current: Mutex::new(HashMap::new()),
            state: Mutex::new(HashMap::new()),
            queue: Mutex::new(None),
        }
    }

    #[test]
    fn a_latency_step_fires_after_the_hold_and_resolves_after_as_many_clear_minutes() {
        let a = alerts(vec![rule(
            r#"{"id": "lat", "metric": "latency_p99_ms", "baseline_sigmas": 3, "window_minutes": 2, "min_requests": 3}"#,
        )]);
        let minute = |ms: f64| {
            for k in 0..10 {
                a.observe(&obs(ms + f64::from(k % 3)));
            }
            a.tick(0).0
        };
        for _ in 0..8 {
            assert!(minute(50.0).is_empty(), "a steady baseline is quiet");
        }
        assert!(minute(400.0).is_empty(), "one breached minute is not enough");
        let fired = minute(400.0);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].state, "firing");
        assert!(fired[0].summary.contains("standard deviations from its baseline"), "{}", fired[0].summary);
        assert!((fired[0].baseline.mean - 51.0).abs() < 2.0, "the step did not leak into the baseline");
        assert_eq!(a.firing().len(), 1);
        assert!(minute(400.0).is_empty(), "firing once, not every minute");
        assert!(minute(50.0).is_empty());
        let resolved = minute(50.0);
        assert_eq!(resolved[0].state, "resolved");
        assert!(a.firing().is_empty());
    }

    #[test]
    fn quiet_minutes_and_unknown_decision_points_count_for_nothing() {
        let a = alerts(vec![rule(r#"{"id": "err", "metric": "error_rate", "above": 0.5, "window_minutes": 1}"#)]);
        // Two failing requests: fewer than the default minimum of five.
        for _ in 0..2 {
            a.observe(&Observation { error: true, ..obs(10.0) });
        }
        a.observe(&Observation { decision_point: "not-in-the-manifest", ..obs(10.0) });
        assert!(a.tick(0).0.is_empty());
        assert!(a.current.lock().unwrap_or_else(PoisonError::into_inner).is_empty());
        for _ in 0..6 {
            a.observe(&Observation { error: true, ..obs(10.0) });
        }
        let fired = a.tick(0).0;
        assert_eq!(fired.len(), 1);
        assert!(fired[0].summary.contains("1.000 is above 0.5"), "{}", fired[0].summary);
    }

    #[test]
    fn the_webhook_body_suits_slack_and_pagerduty_style_receivers() {
        let e = AlertEvent {
            rule: "lat".into(),
            decision_point: "dp".into(),
            metric: "latency_p99_ms".into(),
            state: "resolved",
            severity: "critical",
            value: Some(51.0),
            baseline: Ewma { mean: 50.0, variance: 4.0, minutes: 10 },
            summary: "alert lat at dp: back".into(),
            ts_ms: 1,
        };
        let b = e.webhook_body();
        assert_eq!(b["text"], "[RESOLVED] alert lat at dp: back");
        assert_eq!(b["event_action"], "resolve");
        assert_eq!(b["dedup_key"], "psf/lat/dp");
        assert_eq!(b["payload"]["severity"], "critical");
        assert_eq!(b["payload"]["source"], "psf");
    }

    #[test]
    fn webhook_urls_are_logged_without_their_path() {
        assert_eq!(redact_url("https://hooks.slack.com/services/T000/B000/XXXX"), "https://hooks.slack.com/…");
    }

    #[test]
    fn the_latency_sample_stays_bounded() {
        let mut b = Bucket { seed: 1, ..Bucket::default() };
        for i in 0..(LATENCY_SAMPLES * 3) {
            b.add(&obs(i as f64));
        }
        assert_eq!(b.latencies.len(), LATENCY_SAMPLES);
        assert_eq!(b.requests as usize, LATENCY_SAMPLES * 3);
    }
}
