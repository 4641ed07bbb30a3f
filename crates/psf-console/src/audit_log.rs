//! The audit log (OB-4): search by time, app, decision point, code and request id; a
//! record shows every stage's decision and every upstream attempt. The log holds
//! redacted text only (the gateway redacts before a record exists), so that is all
//! this page can show.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use psf_store::AuditQuery;
use serde::Deserialize;

use crate::Console;
use crate::auth::Session;
use crate::html::{self, esc};

/// Records a search shows at most.
const PAGE: u32 = 200;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    since: Option<String>,
    until: Option<String>,
    app: Option<String>,
    point: Option<String>,
    code: Option<String>,
    request_id: Option<String>,
}

/// A time from the form (UTC): `2026-11-30T05:13`, `2026-11-30 05:13:20` or `2026-11-30`.
fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let dt = s
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| s.parse::<jiff::civil::Date>().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
        .map_err(|_| format!("`{s}` is not a time; write it as 2026-11-30T05:13 or 2026-11-30 (UTC)"))?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp().as_millisecond()).map_err(|e| e.to_string())
}

fn given(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn field(name: &str, label: &str, value: Option<&String>, placeholder: &str) -> String {
    format!(
        "<label for=\"{name}\">{label}</label><input id=\"{name}\" name=\"{name}\" value=\"{}\" placeholder=\"{placeholder}\">",
        esc(value.map_or("", String::as_str))
    )
}

/// `GET /console/audit`.
pub(crate) async fn search(State(c): State<Arc<Console>>, session: Session, Query(s): Query<Search>) -> Response {
    let mut problems = Vec::new();
    let mut time = |v: Option<&String>| match given(v).map(|t| parse_time(&t)) {
        Some(Ok(ms)) => Some(ms),
        Some(Err(e)) => {
            problems.push(e);
            None
        }
        None => None,
    };
    let q = AuditQuery {
        since_ms: time(s.since.as_ref()),
        until_ms: time(s.until.as_ref()),
        app: given(s.app.as_ref()),
        decision_point: given(s.point.as_ref()),
        code: given(s.code.as_ref()),
        request_id: given(s.request_id.as_ref()),
        limit: Some(PAGE),
    };
    let mut out = format!(
        "<form method=\"get\" class=\"filters\">{}{}{}{}{}{}<button type=\"submit\">Search</button></form>\n\
         <p class=\"note\">Times are UTC. A code ending in a dot (<code>IG-1.</code>) finds its whole family. Inputs and outputs are shown as the log keeps them: personal data redacted.</p>\n",
        field("since", "From", s.since.as_ref(), "2026-11-30T00:00"),
        field("until", "Until", s.until.as_ref(), "2026-12-01"),
        field("app", "App", s.app.as_ref(), "app id"),
        field("point", "Decision point", s.point.as_ref(), "decision point id"),
        field("code", "Code", s.code.as_ref(), "IG-1.injection"),
        field("request_id", "Request id", s.request_id.as_ref(), "req_…"),
    );
    if !problems.is_empty() {
        for p in &problems {
            let _ = write!(out, "<p class=\"flash error\" role=\"alert\">{}</p>", esc(p));
        }
        let mut r = html::page(&session, "/console/audit", "Audit log", &out);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    }
    let records = match c.gw.store().audit_records(&q).await {
        Ok(r) => r,
        Err(e) => return html::store_error(&e),
    };
    let _ = write!(
        out,
        "<p>{} records{}.</p>",
        records.len(),
        if records.len() as u32 == PAGE { " (the newest; narrow the search for older ones)" } else { "" }
    );
    out.push_str("<table class=\"audit\"><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Request</th><th scope=\"col\">App</th><th scope=\"col\">Decision point</th><th scope=\"col\">Status</th><th scope=\"col\">Outcome</th><th scope=\"col\">Code</th><th scope=\"col\">Latency</th></tr></thead><tbody>");
    for r in &records {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><a href=\"/console/audit/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} ms</td></tr>",
            html::time(r.ts_ms),
            esc(r.app.as_deref().unwrap_or("")),
            esc(r.decision_point.as_deref().unwrap_or("")),
            r.status,
            esc(&r.outcome),
            esc(r.code.as_deref().unwrap_or("")),
            r.latency_ms,
            id = esc(&r.request_id),
        );
    }
    out.push_str("</tbody></table>");
    html::page(&session, "/console/audit", "Audit log", &out)
}

/// `GET /console/audit/{request_id}`.
pub(crate) async fn record(
    State(c): State<Arc<Console>>,
    session: Session,
    Path(request_id): Path<String>,
) -> Response {
    let q = AuditQuery { request_id: Some(request_id.clone()), limit: Some(1), ..AuditQuery::default() };
    let r = match c.gw.store().audit_records(&q).await {
        Ok(list) => match list.into_iter().next() {
            Some(r) => r,
            None => return html::not_found(&format!("The audit log has no request `{request_id}`.")),
        },
        Err(e) => return html::store_error(&e),
    };
    let pretty = |v: &serde_json::Value| esc(&serde_json::to_string_pretty(v).unwrap_or_default());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<dl class=\"facts\"><dt>Time</dt><dd>{}</dd><dt>App</dt><dd>{}</dd><dt>Key</dt><dd>{}</dd><dt>Decision point</dt><dd>{}</dd>\
         <dt>Status</dt><dd>{} {}</dd><dt>Code</dt><dd>{}</dd><dt>Model</dt><dd>{} ({})</dd><dt>Latency</dt><dd>{:.1} ms (psf {:.2} ms)</dd>\
         <dt>Tokens</dt><dd>{} in, {} out</dd><dt>Stream</dt><dd>{}</dd></dl>",
        html::time(r.ts_ms),
        esc(r.app.as_deref().unwrap_or("")),
        esc(r.key_id.as_deref().unwrap_or("")),
        esc(r.decision_point.as_deref().unwrap_or("")),
        r.status,
        esc(&r.outcome),
        esc(r.code.as_deref().unwrap_or("none")),
        esc(r.model.as_deref().unwrap_or("none")),
        esc(r.provider.as_deref().unwrap_or("none")),
        r.latency_ms,
        r.overhead_ms,
        r.prompt_tokens.map_or_else(|| "?".into(), |t| t.to_string()),
        r.completion_tokens.map_or_else(|| "?".into(), |t| t.to_string()),
        if r.stream { "yes" } else { "no" },
    );
    out.push_str("<h2>Stages</h2><table><thead><tr><th scope=\"col\">Stage</th><th scope=\"col\">Decision</th><th scope=\"col\">Detail</th><th scope=\"col\">µs</th></tr></thead><tbody>");
    for s in r.stages.as_array().map(Vec::as_slice).unwrap_or_default() {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(s["code"].as_str().unwrap_or("?")),
            esc(s["decision"].as_str().unwrap_or("?")),
            esc(s["detail"].as_str().unwrap_or_default()),
            s["us"].as_u64().unwrap_or(0)
        );
    }
    out.push_str("</tbody></table>");
    let _ = write!(
        out,
        "<h2>Upstream attempts</h2><pre>{}</pre><h2>Input (redacted)</h2><pre>{}</pre><h2>Output (redacted)</h2><pre>{}</pre>",
        pretty(&r.attempts),
        pretty(&r.input_redacted),
        esc(r.output_redacted.as_deref().unwrap_or("(none)"))
    );
    html::page(&session, "/console/audit", &format!("Request {}", r.request_id), &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_utc_and_bad_ones_say_how_to_write_them() {
        assert_eq!(parse_time("1970-01-01T00:01"), Ok(60_000));
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_time(" 1970-01-01 00:00:01 "), Ok(1000));
        assert!(parse_time("yesterday").unwrap_err().contains("2026-11-30T05:13"));
    }
}
