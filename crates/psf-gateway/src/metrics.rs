//! Prometheus metrics on `/metrics`. Labels are bounded: decision point, provider and
//! code come from the manifest or from psf's own code list, never from request data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Outcome {
    pub decision_point: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Point {
    pub decision_point: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Stage {
    pub code: String,
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Attempt {
    pub provider: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ProviderLabel {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabel {
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Tokens {
    pub decision_point: String,
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitScope {
    pub scope: String,
    /// `requests` or `tokens`.
    pub unit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AppLabel {
    pub app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AlertLabel {
    /// The rule's id from the manifest.
    pub rule: String,
    pub decision_point: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AnswerState {
    pub decision_point: String,
    /// `refusal`, `truncated` or `content_filter` (OV-5).
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MonitorKind {
    /// `OB-3.anomaly` or `HO-5.review_due`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AlertSink {
    /// `sent`, `failed` or `dropped`.
    pub result: String,
}

/// Time inside psf is sub-millisecond when all is well; these bounds resolve it.
fn overhead_buckets() -> impl Iterator<Item = f64> {
    [0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5]
        .into_iter()
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
        .into_iter()
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<Outcome, Counter>,
    pub(crate) stages: Family<Stage, Counter>,
    pub(crate) overhead: Family<Point, Histogram>,
    pub(crate) duration: Family<Point, Histogram>,
    pub(crate) upstream: Family<ProviderLabel, Histogram>,
    pub(crate) attempts: Family<Attempt, Counter>,
    pub(crate) fallbacks: Family<Point, Counter>,
    pub(crate) tokens: Family<Tokens, Counter>,
    pub(crate) breaker_open: Family<ModelLabel, Gauge>,
    pub(crate) rate_limited: Family<LimitScope, Counter>,
    pub(crate) abuse_alerts: Family<AppLabel, Counter>,
    pub(crate) override_attempts: Family<Point, Counter>,
    pub(crate) audit_queue: Gauge,
    pub(crate) reviews_held: Family<Point, Counter>,
    pub(crate) reviews_pending: Gauge,
    pub(crate) incidents: Gauge,
    pub(crate) redis_errors: Counter,
    pub(crate) alerts_firing: Family<AlertLabel, Gauge>,
    pub(crate) alert_notices: Family<AlertSink, Counter>,
    pub(crate) quality: Family<Point, Gauge<f64, AtomicU64>>,
    pub(crate) monitor_events: Family<MonitorKind, Counter>,
    pub(crate) answer_states: Family<AnswerState, Counter>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("psf");
        let requests = Family::<Outcome, Counter>::default();
        registry.register("requests", "Requests by decision point and outcome", requests.clone());
        let stages = Family::<Stage, Counter>::default();
        registry.register("stage_decisions", "Pipeline stage decisions by competency code", stages.clone());
        let overhead = Family::<Point, Histogram>::new_with_constructor(|| Histogram::new(overhead_buckets()));
        registry.register("overhead_seconds", "Time spent in psf per request, upstream excluded", overhead.clone());
        let duration = Family::<Point, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register("request_duration_seconds", "Total time per request, upstream included", duration.clone());
        let upstream = Family::<ProviderLabel, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register("upstream_duration_seconds", "Time per upstream attempt", upstream.clone());
        let attempts = Family::<Attempt, Counter>::default();
        registry.register("upstream_attempts", "Upstream attempts by provider and result", attempts.clone());
        let fallbacks = Family::<Point, Counter>::default();
        registry.register(
            "fallbacks",
            "Requests answered by a model other than the primary, or degraded",
            fallbacks.clone(),
        );
        let tokens = Family::<Tokens, Counter>::default();
        registry.register("tokens", "Model tokens by direction", tokens.clone());
        let breaker_open = Family::<ModelLabel, Gauge>::default();
        registry.register("circuit_open", "1 while a model endpoint's circuit breaker is open", breaker_open.clone());
        let rate_limited = Family::<LimitScope, Counter>::default();
        registry.register("rate_limited", "Requests refused by a rate limit", rate_limited.clone());
        let abuse_alerts = Family::<AppLabel, Counter>::default();
        registry.register(
            "abuse_alerts",
            "Abuse alerts raised (repeated limit hits or blocked injections)",
            abuse_alerts.clone(),
        );
        let override_attempts = Family::<Point, Counter>::default();
        registry.register(
            "system_override_attempts",
            "Client system messages refused or demoted, and flagged injections (IG-5)",
            override_attempts.clone(),
        );
        let audit_queue = Gauge::default();
        registry.register("audit_queue_depth", "Audit records waiting to be written", audit_queue.clone());
        let reviews_held = Family::<Point, Counter>::default();
        registry.register("reviews_held", "Answers held for human review", reviews_held.clone());
        let reviews_pending = Gauge::default();
        registry.register("review_queue_depth", "Held answers waiting for a reviewer", reviews_pending.clone());
        let incidents = Gauge::default();
        registry.register("incidents_in_force", "Incidents in force (kill switch)", incidents.clone());
        let redis_errors = Counter::default();
        registry.register(
            "redis_errors",
            "Rate-limit checks that fell back to this instance's limiter",
            redis_errors.clone(),
        );
        let alerts_firing = Family::<AlertLabel, Gauge>::default();
        registry.register(
            "alerts_firing",
            "1 while an alert rule fires for a decision point (OB-1)",
            alerts_firing.clone(),
        );
        let alert_notices = Family::<AlertSink, Counter>::default();
        registry.register("alert_notices", "Alert webhook notices by result", alert_notices.clone());
        let quality = Family::<Point, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "quality_score",
            "Mean quality of the last minute's sampled outputs, 0 to 1 (OB-2)",
            quality.clone(),
        );
        let monitor_events = Family::<MonitorKind, Counter>::default();
        registry.register(
            "monitor_events",
            "Usage anomalies and oversight reviews due, by kind",
            monitor_events.clone(),
        );
        let answer_states = Family::<AnswerState, Counter>::default();
        registry.register(
            "answer_states",
            "Delivered answers in a defined state (refusal, truncated, content_filter) by decision point (OV-5)",
            answer_states.clone(),
        );
        Metrics {
            registry,
            requests,
            stages,
            overhead,
            duration,
            upstream,
            attempts,
            fallbacks,
            tokens,
            breaker_open,
            rate_limited,
            abuse_alerts,
            override_attempts,
            audit_queue,
            reviews_held,
            reviews_pending,
            incidents,
            redis_errors,
            alerts_firing,
            alert_notices,
            quality,
            monitor_events,
            answer_states,
        }
    }

    /// The Prometheus text exposition.
    /// The metrics in OpenMetrics text, as prometheus-client writes them.
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The metrics in Prometheus's text format 0.0.4, which `promtool check metrics` and
    /// scrapers that do not ask for OpenMetrics read.
    pub fn render(&self) -> String {
        to_prometheus_text(&self.render_openmetrics())
    }
}

/// OpenMetrics text to Prometheus text 0.0.4: a counter family is named with its `_total`
/// in HELP and TYPE (OpenMetrics names the family without it), and the `# UNIT` and
/// `# EOF` lines, which 0.0.4 does not have, are dropped.
fn to_prometheus_text(open: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        open.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(kind);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
impl Metrics {
    /// One sample in every family, so that every metric shows in a render (empty
    /// families are not written). A family added to `Metrics` belongs here too.
    pub(crate) fn touch_all(&self) {
        let s = String::new;
        self.requests.get_or_create(&Outcome { decision_point: s(), outcome: s() }).inc();
        self.stages.get_or_create(&Stage { code: s(), decision: s() }).inc();
        self.overhead.get_or_create(&Point { decision_point: s() }).observe(0.0);
        self.duration.get_or_create(&Point { decision_point: s() }).observe(0.0);
        self.upstream.get_or_create(&ProviderLabel { provider: s() }).observe(0.0);
        self.attempts.get_or_create(&Attempt { provider: s(), result: s() }).inc();
        self.fallbacks.get_or_create(&Point { decision_point: s() }).inc();
        self.tokens.get_or_create(&Tokens { decision_point: s(), direction: s() }).inc();
        self.breaker_open.get_or_create(&ModelLabel { provider: s(), model: s() }).set(0);
        self.rate_limited.get_or_create(&LimitScope { scope: s(), unit: s() }).inc();
        self.abuse_alerts.get_or_create(&AppLabel { app: s() }).inc();
        self.override_attempts.get_or_create(&Point { decision_point: s() }).inc();
        self.reviews_held.get_or_create(&Point { decision_point: s() }).inc();
        self.redis_errors.inc();
        self.alerts_firing.get_or_create(&AlertLabel { rule: s(), decision_point: s() }).set(0);
        self.alert_notices.get_or_create(&AlertSink { result: s() }).inc();
        self.quality.get_or_create(&Point { decision_point: s() }).set(1.0);
        self.monitor_events.get_or_create(&MonitorKind { kind: s() }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_counters_become_prometheus_text() {
        let open = "# HELP psf_requests Requests.\n# TYPE psf_requests counter\npsf_requests_total{a=\"b\"} 1\n# HELP psf_q Queue.\n# TYPE psf_q gauge\npsf_q 0\n# EOF\n";
        assert_eq!(
            to_prometheus_text(open),
            "# HELP psf_requests_total Requests.\n# TYPE psf_requests_total counter\npsf_requests_total{a=\"b\"} 1\n# HELP psf_q Queue.\n# TYPE psf_q gauge\npsf_q 0\n"
        );
    }
}
