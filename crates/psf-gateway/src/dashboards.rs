//! Grafana dashboards for the gateway's metrics (OB-4): `psf dashboards --grafana`.
//!
//! One dashboard, in rows a person reads top to bottom: traffic and outcomes, latency (in
//! total, inside psf, upstream), controls firing by competency code, model chain health,
//! and oversight (review queue, incidents). Every query names only metrics the gateway
//! registers; a test renders a gateway's `/metrics` and checks each one exists.

use serde_json::{Value, json};

/// A panel: title, unit, and its PromQL queries with their legends.
struct Panel {
    title: &'static str,
    unit: &'static str,
    queries: &'static [(&'static str, &'static str)],
}

const ROWS: &[(&str, &[Panel])] = &[
    (
        "Traffic",
        &[
            Panel {
                title: "Requests by decision point and outcome",
                unit: "reqps",
                queries: &[(
                    "sum by (decision_point, outcome) (rate(psf_requests_total[$__rate_interval]))",
                    "{{decision_point}} {{outcome}}",
                )],
            },
            Panel {
                title: "Tokens in and out",
                unit: "short",
                queries: &[(
                    "sum by (decision_point, direction) (rate(psf_tokens_total[$__rate_interval]))",
                    "{{decision_point}} {{direction}}",
                )],
            },
        ],
    ),
    (
        "Latency",
        &[
            Panel {
                title: "Request latency p50 / p99",
                unit: "s",
                queries: &[
                    (
                        "histogram_quantile(0.5, sum by (le, decision_point) (rate(psf_request_duration_seconds_bucket[$__rate_interval])))",
                        "p50 {{decision_point}}",
                    ),
                    (
                        "histogram_quantile(0.99, sum by (le, decision_point) (rate(psf_request_duration_seconds_bucket[$__rate_interval])))",
                        "p99 {{decision_point}}",
                    ),
                ],
            },
            Panel {
                title: "Time inside psf p99 (upstream excluded)",
                unit: "s",
                queries: &[(
                    "histogram_quantile(0.99, sum by (le, decision_point) (rate(psf_overhead_seconds_bucket[$__rate_interval])))",
                    "{{decision_point}}",
                )],
            },
            Panel {
                title: "Upstream latency p99 by provider",
                unit: "s",
                queries: &[(
                    "histogram_quantile(0.99, sum by (le, provider) (rate(psf_upstream_duration_seconds_bucket[$__rate_interval])))",
                    "{{provider}}",
                )],
            },
        ],
    ),
    (
        "Controls",
        &[
            Panel {
                title: "Blocked and flagged by competency code",
                unit: "reqps",
                queries: &[(
                    "sum by (code, decision) (rate(psf_stage_decisions_total{decision=~\"block|flag|hold|unavailable\"}[$__rate_interval]))",
                    "{{code}} {{decision}}",
                )],
            },
            Panel {
                title: "Rate limited and abuse alerts",
                unit: "reqps",
                queries: &[
                    (
                        "sum by (scope, unit) (rate(psf_rate_limited_total[$__rate_interval]))",
                        "limited {{scope}} {{unit}}",
                    ),
                    ("sum by (app) (increase(psf_abuse_alerts_total[$__rate_interval]))", "abuse alert {{app}}"),
                ],
            },
        ],
    ),
    (
        "Model chain",
        &[
            Panel {
                title: "Upstream attempts by result",
                unit: "reqps",
                queries: &[(
                    "sum by (provider, result) (rate(psf_upstream_attempts_total[$__rate_interval]))",
                    "{{provider}} {{result}}",
                )],
            },
            Panel {
                title: "Fallbacks and open circuit breakers",
                unit: "short",
                queries: &[
                    (
                        "sum by (decision_point) (rate(psf_fallbacks_total[$__rate_interval]))",
                        "fallbacks {{decision_point}}",
                    ),
                    ("max by (provider, model) (psf_circuit_open)", "open {{provider}}/{{model}}"),
                ],
            },
        ],
    ),
    (
        "Oversight and incidents",
        &[
            Panel {
                title: "Review queue",
                unit: "short",
                queries: &[
                    ("max(psf_review_queue_depth)", "waiting"),
                    ("sum(increase(psf_reviews_held_total[$__rate_interval]))", "held"),
                ],
            },
            Panel {
                title: "Incidents in force, audit queue, Redis fallbacks",
                unit: "short",
                queries: &[
                    ("max(psf_incidents_in_force)", "incidents"),
                    ("max(psf_audit_queue_depth)", "audit queue"),
                    ("sum(increase(psf_redis_errors_total[$__rate_interval]))", "Redis fallbacks"),
                ],
            },
        ],
    ),
];

/// The Grafana dashboard (JSON model, schema 39) for a Prometheus data source chosen when
/// it is imported.
pub fn grafana() -> Value {
    let mut panels = Vec::new();
    let mut id = 1;
    let mut y = 0;
    for (row, row_panels) in ROWS {
        panels.push(json!({"type": "row", "id": id, "title": row, "collapsed": false,
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}));
        id += 1;
        y += 1;
        let width = 24 / row_panels.len().max(1);
        for (i, p) in row_panels.iter().enumerate() {
            let targets: Vec<Value> = p
                .queries
                .iter()
                .zip('A'..)
                .map(|((expr, legend), ref_id)| {
                    json!({"refId": ref_id.to_string(), "expr": expr, "legendFormat": legend,
                           "datasource": {"type": "prometheus", "uid": "${datasource}"}})
                })
                .collect();
            panels.push(json!({
                "type": "timeseries", "id": id, "title": p.title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "gridPos": {"h": 8, "w": width, "x": i * width, "y": y},
                "targets": targets,
            }));
            id += 1;
        }
        y += 8;
    }
    json!({
        "title": "psf gateway",
        "uid": "psf-gateway",
        "tags": ["psf", "ai-safety"],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{
            "name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus",
        }]},
        "panels": panels,
    })
}

/// Every metric name the dashboard's queries read, as the gateway exposes them
/// (`_bucket` series named by their histogram).
pub fn metrics_used() -> Vec<String> {
    let mut names: Vec<String> = ROWS
        .iter()
        .flat_map(|(_, ps)| ps.iter())
        .flat_map(|p| p.queries.iter())
        .flat_map(|(expr, _)| {
            expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("psf_"))
                .map(|w| w.trim_end_matches("_bucket").to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn every_query_reads_a_metric_the_gateway_exposes() {
        let metrics = Metrics::new();
        metrics.touch_all();
        let text = metrics.render();
        let used = metrics_used();
        assert!(used.len() >= 15, "{used:?}");
        for name in used {
            assert!(text.contains(&format!("# TYPE {name} ")), "the dashboard reads {name}, which /metrics lacks");
        }
    }
}
