//! The overview: the last hour of traffic from the audit log (request rate, latency
//! percentiles, errors, fallbacks, blocked calls per competency), the review queue's
//! depth, incidents in force and alerts firing. The script refreshes it every five
//! seconds; without the script it is as fresh as the page.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use psf_store::AuditPoint;

use crate::Console;
use crate::auth::Session;
use crate::chart::{self, Series};
use crate::html::{self, esc};

const MINUTES: usize = 60;
/// The most records an overview reads: enough for 1,600 requests a minute.
const MAX_POINTS: u32 = 100_000;

/// `GET /console`.
pub(crate) async fn page(State(c): State<Arc<Console>>, session: Session) -> Response {
    match live_html(&c).await {
        Ok(live) => html::page(
            &session,
            "/console",
            "Overview",
            &format!("<div id=\"live\" data-refresh=\"/console/overview/live\" aria-live=\"off\">{live}</div>\n"),
        ),
        Err(r) => r,
    }
}

/// `GET /console/overview/live`: the overview's content alone, for the refresh.
pub(crate) async fn live(State(c): State<Arc<Console>>, _: Session) -> Response {
    match live_html(&c).await {
        Ok(live) => Html(live).into_response(),
        Err(r) => r,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

fn is_error(p: &AuditPoint) -> bool {
    p.status >= 500 || p.outcome == "error"
}

/// The competency a code belongs to: `IG-1` of `IG-1.injection`.
fn competency(code: &str) -> &str {
    code.split('.').next().unwrap_or(code)
}

/// Figures per minute, oldest first.
#[derive(Debug, Default)]
struct Minutes {
    requests: Vec<f64>,
    errors: Vec<f64>,
    fallbacks: Vec<f64>,
    p50: Vec<f64>,
    p95: Vec<f64>,
    p99: Vec<f64>,
}

fn per_minute(points: &[AuditPoint], now: i64) -> Minutes {
    let mut buckets: Vec<Vec<&AuditPoint>> = vec![Vec::new(); MINUTES];
    for p in points {
        let age = (now - p.ts_ms) / 60_000;
        if let Ok(age) = usize::try_from(age)
            && age < MINUTES
        {
            buckets[MINUTES - 1 - age].push(p);
        }
    }
    let mut m = Minutes::default();
    for b in buckets {
        let mut lat: Vec<f64> = b.iter().map(|p| p.latency_ms).collect();
        lat.sort_by(f64::total_cmp);
        m.requests.push(b.len() as f64);
        m.errors.push(b.iter().filter(|p| is_error(p)).count() as f64);
        m.fallbacks.push(b.iter().filter(|p| p.fallback).count() as f64);
        m.p50.push(percentile(&lat, 0.50));
        m.p95.push(percentile(&lat, 0.95));
        m.p99.push(percentile(&lat, 0.99));
    }
    m
}

async fn live_html(c: &Console) -> Result<String, Response> {
    let store = c.gw.store();
    let now = psf_store::now_ms();
    let points =
        store.audit_points(now - MINUTES as i64 * 60_000, MAX_POINTS).await.map_err(|e| html::store_error(&e))?;
    let queue = store.pending_reviews().await.map_err(|e| html::store_error(&e))?;
    let incidents = store.incidents(true).await.map_err(|e| html::store_error(&e))?;
    let alerts = c.gw.alerts_firing();
    let m = per_minute(&points, now);

    let recent: Vec<&AuditPoint> = points.iter().filter(|p| now - p.ts_ms < 15 * 60_000).collect();
    let mut lat: Vec<f64> = recent.iter().map(|p| p.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let errors = recent.iter().filter(|p| is_error(p)).count();
    let error_rate = if recent.is_empty() { 0.0 } else { errors as f64 * 100.0 / recent.len() as f64 };
    let rate = points.iter().filter(|p| now - p.ts_ms < 5 * 60_000).count() as f64 / 5.0;
    let mut blocked: BTreeMap<&str, f64> = BTreeMap::new();
    for p in points.iter().filter(|p| p.outcome == "blocked") {
        *blocked.entry(p.code.as_deref().map_or("other", competency)).or_default() += 1.0;
    }
    let mut blocked: Vec<(String, f64)> = blocked.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    blocked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));

    let mut out = String::new();
    let tile = |out: &mut String, label: &str, value: String, class: &str| {
        let _ = write!(
            out,
            "<div class=\"tile {class}\"><span class=\"label\">{}</span><span class=\"value\">{}</span></div>",
            esc(label),
            esc(&value)
        );
    };
    out.push_str("<section aria-label=\"Now\" class=\"tiles\">");
    tile(&mut out, "Requests / min (5 min)", format!("{rate:.1}"), "");
    tile(
        &mut out,
        "Latency p50 / p95 / p99 (15 min)",
        format!("{:.0} / {:.0} / {:.0} ms", percentile(&lat, 0.5), percentile(&lat, 0.95), percentile(&lat, 0.99)),
        "",
    );
    tile(&mut out, "Error rate (15 min)", format!("{error_rate:.1}%"), if error_rate >= 5.0 { "bad" } else { "" });
    tile(&mut out, "Fallbacks (60 min)", format!("{}", m.fallbacks.iter().sum::<f64>()), "");
    tile(&mut out, "Review queue", queue.to_string(), if queue > 0 { "warn" } else { "" });
    tile(&mut out, "Incidents in force", incidents.len().to_string(), if incidents.is_empty() { "" } else { "bad" });
    tile(&mut out, "Alerts firing", alerts.len().to_string(), if alerts.is_empty() { "" } else { "bad" });
    out.push_str("</section>\n<section aria-label=\"The last hour\" class=\"charts\">");
    out.push_str(&chart::lines(
        "Requests per minute",
        "count",
        &[Series { name: "requests", values: m.requests }, Series { name: "errors", values: m.errors }],
        "60 min ago",
    ));
    out.push_str(&chart::lines(
        "Latency per minute",
        "ms",
        &[
            Series { name: "p50", values: m.p50 },
            Series { name: "p95", values: m.p95 },
            Series { name: "p99", values: m.p99 },
        ],
        "60 min ago",
    ));
    out.push_str(&chart::lines(
        "Fallbacks per minute",
        "count",
        &[Series { name: "fallbacks", values: m.fallbacks }],
        "60 min ago",
    ));
    out.push_str(&chart::bars("Blocked calls per competency (60 min)", &blocked));
    out.push_str("</section>\n");

    out.push_str("<section><h2>Incidents in force</h2>");
    if incidents.is_empty() {
        out.push_str("<p>None. The kill switch is on the <a href=\"/console/incidents\">Incidents</a> page.</p>");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">Incident</th><th scope=\"col\">Action</th><th scope=\"col\">Scope</th><th scope=\"col\">Severity</th><th scope=\"col\">Since</th></tr></thead><tbody>");
        for i in &incidents {
            let _ = write!(
                out,
                "<tr><td><a href=\"/console/incidents/{id}\">{id}</a>{drill}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&i.action),
                esc(&i.scope),
                esc(&i.severity),
                html::time(i.declared_ms),
                id = esc(&i.id),
                drill = if i.drill { " (drill)" } else { "" }
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>\n<section><h2>Alerts firing</h2>");
    if alerts.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Decision point</th><th scope=\"col\">Metric</th><th scope=\"col\">Severity</th><th scope=\"col\">Value</th><th scope=\"col\">Baseline</th></tr></thead><tbody>");
        for a in &alerts {
            let s = |k: &str| esc(&a[k].as_str().map_or_else(|| a[k].to_string(), str::to_string));
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s("rule"),
                s("decision_point"),
                s("metric"),
                s("severity"),
                s("value"),
                s("baseline")
            );
        }
        out.push_str("</tbody></table>");
    }
    let _ = writeln!(
        out,
        "</section>\n<p class=\"note\">From {} audit records of the last hour; updated {}.</p>",
        points.len(),
        html::time(now)
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(age_ms: i64, latency_ms: f64, status: u16, fallback: bool) -> AuditPoint {
        AuditPoint { ts_ms: 10_000_000 - age_ms, status, outcome: "delivered".into(), code: None, latency_ms, fallback }
    }

    #[test]
    fn minutes_bucket_by_age_with_percentiles() {
        let points = vec![
            point(1_000, 10.0, 200, false),
            point(2_000, 30.0, 200, true),
            point(3_000, 20.0, 503, false),
            point(61_000, 5.0, 200, false),
            point(3_700_000, 1.0, 200, false),
        ];
        let m = per_minute(&points, 10_000_000);
        assert_eq!(m.requests.len(), MINUTES);
        assert_eq!(m.requests[MINUTES - 1], 3.0);
        assert_eq!(m.requests[MINUTES - 2], 1.0);
        assert_eq!(m.requests.iter().sum::<f64>(), 4.0, "older than an hour is left out");
        assert_eq!((m.errors[MINUTES - 1], m.fallbacks[MINUTES - 1]), (1.0, 1.0));
        assert_eq!((m.p50[MINUTES - 1], m.p99[MINUTES - 1]), (20.0, 30.0));
        assert_eq!(competency("IG-1.injection"), "IG-1");
    }
}
