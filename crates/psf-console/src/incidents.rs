//! Incidents (IR-2 … IR-4): the kill switch — disable, degrade or isolate, with its
//! scope and a confirmation — the incidents in force and past, each with its timeline,
//! the resolution, the post-incident review with its due dates, and a preview of the
//! manifest's comms templates filled from the incident.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use psf_gateway::oversight;
use psf_store::{Event, Incident, NewIncident};
use serde::Deserialize;
use serde_json::json;

use crate::Console;
use crate::auth::{self, Posted, Role, Session};
use crate::html::{self, esc};

#[derive(Debug, Deserialize)]
pub(crate) struct Shown {
    done: Option<String>,
    template: Option<String>,
    values: Option<String>,
}

fn scopes(c: &Console) -> Vec<(String, String)> {
    let m = c.gw.manifest();
    let mut out = vec![("all".to_string(), "everything (all apps and decision points)".to_string())];
    out.extend(m.apps.iter().map(|a| (format!("app:{}", a.id), format!("app {}", a.id))));
    out.extend(m.decision_points.iter().map(|d| (format!("point:{}", d.id), format!("decision point {}", d.id))));
    out.extend(m.providers.iter().map(|p| (format!("provider:{}", p.id), format!("provider {}", p.id))));
    out
}

fn options(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(v, t)| (v.to_string(), t.to_string())).collect()
}

fn incident_row(out: &mut String, i: &Incident) {
    let state = match i.resolved_ms {
        Some(t) => format!("resolved {}", html::time(t)),
        None => "<strong class=\"bad\">in force</strong>".to_string(),
    };
    let _ = write!(
        out,
        "<tr><td><a href=\"/console/incidents/{id}\">{id}</a>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{state}</td></tr>",
        if i.drill { " (drill)" } else { "" },
        esc(&i.action),
        esc(&i.scope),
        esc(&i.severity),
        esc(&i.reason),
        html::time(i.declared_ms),
        id = esc(&i.id),
    );
}

/// `GET /console/incidents`.
pub(crate) async fn list(State(c): State<Arc<Console>>, session: Session, Query(q): Query<Shown>) -> Response {
    let all = match c.gw.store().incidents(false).await {
        Ok(l) => l,
        Err(e) => return html::store_error(&e),
    };
    let mut out = html::flash(q.done.as_deref());
    if session.role == Role::Operator {
        let _ = writeln!(
            out,
            "<section class=\"kill\"><h2>Kill switch</h2>\
             <p>Takes effect on this gateway at once and on every gateway sharing the store within a second.</p>\
             <form method=\"post\" action=\"/console/incidents\">{}\
             {}{}{}\
             <label for=\"reason\">Reason</label><input id=\"reason\" name=\"reason\" required>\
             <label class=\"check\"><input type=\"checkbox\" name=\"drill\" value=\"true\"> This is a drill (IR-5)</label>\
             <label class=\"check\"><input type=\"checkbox\" id=\"confirm\" name=\"confirm\" value=\"yes\" required> I confirm: calls in this scope change now.</label>\
             <button type=\"submit\" class=\"danger\" id=\"declare\">Declare the incident</button></form></section>",
            html::csrf_field(&session),
            html::select(
                "action",
                "Action",
                &options(&[
                    ("disable", "disable: refuse calls (503 IR-2.disabled)"),
                    ("degrade", "degrade: serve the degraded response, no model"),
                    ("isolate", "isolate: cut a provider out (fallbacks serve), or refuse an app or point"),
                ]),
                "disable"
            ),
            html::select("scope", "Scope", &scopes(&c), "all"),
            html::select(
                "severity",
                "Severity",
                &options(&[("sev1", "sev1 (worst)"), ("sev2", "sev2"), ("sev3", "sev3"), ("sev4", "sev4")]),
                "sev2"
            ),
        );
    }
    out.push_str("<h2>Incidents</h2>");
    if all.is_empty() {
        out.push_str("<p>None recorded.</p>");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">Incident</th><th scope=\"col\">Action</th><th scope=\"col\">Scope</th><th scope=\"col\">Severity</th><th scope=\"col\">Reason</th><th scope=\"col\">Declared</th><th scope=\"col\">State</th></tr></thead><tbody>");
        for i in &all {
            incident_row(&mut out, i);
        }
        out.push_str("</tbody></table>");
    }
    html::page(&session, "/console/incidents", "Incidents", &out)
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeclareForm {
    action: String,
    scope: String,
    severity: String,
    reason: String,
    drill: Option<String>,
    confirm: Option<String>,
}

/// `POST /console/incidents`: the kill switch.
pub(crate) async fn declare(State(c): State<Arc<Console>>, posted: Posted<DeclareForm>) -> Response {
    let Posted { session, form } = posted;
    if let Err(r) = session.confirmed_operator(form.confirm.as_deref(), "declare an incident") {
        return r;
    }
    let new = NewIncident {
        declared_by: session.actor(),
        action: form.action,
        scope: form.scope,
        severity: form.severity,
        reason: form.reason,
        drill: form.drill.as_deref() == Some("true"),
    };
    match c.gw.declare_incident(&new).await {
        Ok(i) => {
            auth::record(
                &c,
                &session,
                "declared incident",
                &i.id,
                json!({"action": i.action, "scope": i.scope, "severity": i.severity, "drill": i.drill}),
            )
            .await;
            Redirect::to(&format!(
                "/console/incidents/{}?done={}",
                i.id,
                enc(&format!("Declared: {} {}.", i.action, i.scope))
            ))
            .into_response()
        }
        Err(e) => html::refused(&e),
    }
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|q| q.trim_start_matches('=').to_string()).unwrap_or_default()
}

/// Whether an event belongs on an incident's timeline.
fn concerns(e: &Event, id: &str) -> bool {
    e.detail["incident_id"] == id || e.detail["target"] == id
}

/// `GET /console/incidents/{id}`.
pub(crate) async fn show(
    State(c): State<Arc<Console>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<Shown>,
) -> Response {
    let store = c.gw.store();
    let i = match store.incident(&id).await {
        Ok(Some(i)) => i,
        Ok(None) => return html::not_found(&format!("There is no incident `{id}`.")),
        Err(e) => return html::store_error(&e),
    };
    // The timeline: the incident's own events, and the alerts around it.
    let events = match store.events(None, i.declared_ms - 3_600_000, 5000).await {
        Ok(e) => e,
        Err(e) => return html::store_error(&e),
    };
    let until = i.resolved_ms.unwrap_or(i64::MAX);
    let timeline: Vec<&Event> =
        events.iter().filter(|e| concerns(e, &i.id) || (e.kind == "OB-1.alert" && e.ts_ms <= until)).collect();
    let mut out = html::flash(q.done.as_deref());
    let _ = writeln!(
        out,
        "<dl class=\"facts\"><dt>Action</dt><dd>{}</dd><dt>Scope</dt><dd>{}</dd><dt>Severity</dt><dd>{}</dd><dt>Reason</dt><dd>{}</dd>\
         <dt>Declared</dt><dd>{} by {}</dd><dt>State</dt><dd>{}</dd>{}</dl>",
        esc(&i.action),
        esc(&i.scope),
        esc(&i.severity),
        esc(&i.reason),
        html::time(i.declared_ms),
        esc(&i.declared_by),
        match i.resolved_ms {
            Some(t) => format!(
                "resolved {} by {}: {}",
                html::time(t),
                esc(i.resolved_by.as_deref().unwrap_or("?")),
                esc(i.resolution.as_deref().unwrap_or_default())
            ),
            None => "<strong class=\"bad\">in force</strong>".into(),
        },
        if i.drill { "<dt>Drill</dt><dd>yes</dd>" } else { "" },
    );
    out.push_str("<h2>Timeline</h2><ol class=\"timeline\">");
    for e in &timeline {
        let _ = write!(
            out,
            "<li><time>{}</time> <code>{}</code> {}</li>",
            html::time(e.ts_ms),
            esc(&e.kind),
            esc(&e.summary)
        );
    }
    out.push_str("</ol>");
    let operator = session.role == Role::Operator;
    let csrf = html::csrf_field(&session);
    if i.resolved_ms.is_none() && operator {
        let _ = write!(
            out,
            "<h2>Resolve</h2><form method=\"post\" action=\"/console/incidents/{id}/resolve\">{csrf}\
             <label for=\"resolution\">What was done</label><input id=\"resolution\" name=\"resolution\" required>\
             <button type=\"submit\" id=\"resolve\">Resolve and lift</button></form>",
            id = esc(&i.id)
        );
    }
    let due = psf_core::calendar::review_due(i.declared_ms);
    let _ = write!(out, "<h2>Post-incident review</h2><p>Due {due} (five business days after the declaration).</p>");
    if let Some(r) = &i.review {
        let _ = write!(
            out,
            "<p><strong>Root cause:</strong> {}</p><table><thead><tr><th scope=\"col\">Action</th><th scope=\"col\">Owner</th><th scope=\"col\">Due</th></tr></thead><tbody>",
            esc(r["root_cause"].as_str().unwrap_or_default())
        );
        for a in r["actions"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let s = |k: &str| esc(a[k].as_str().unwrap_or_default());
            let _ = write!(out, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", s("action"), s("owner"), s("due"));
        }
        out.push_str("</tbody></table>");
    }
    if operator {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/console/incidents/{id}/review\">{csrf}\
             <label for=\"root_cause\">Root cause</label><textarea id=\"root_cause\" name=\"root_cause\" rows=\"3\" required></textarea>\
             <label for=\"actions\">Actions, one per line: <code>what | owner</code> or <code>what | owner | YYYY-MM-DD</code> (due {due} unless given)</label>\
             <textarea id=\"actions\" name=\"actions\" rows=\"4\"></textarea>\
             <button type=\"submit\">Save the review</button></form>",
            id = esc(&i.id)
        );
    }
    comms(&mut out, &c, &i, &q);
    html::page(&session, "/console/incidents", &format!("Incident {}", i.id), &out)
}

/// The comms template preview (IR-4): any template of the manifest, filled from the
/// incident and the values given; nothing is sent.
fn comms(out: &mut String, c: &Console, i: &Incident, q: &Shown) {
    let templates = c.gw.manifest().incident_plan.as_ref().map(|p| p.comms_templates.as_slice()).unwrap_or_default();
    out.push_str("<h2>Comms</h2>");
    if templates.is_empty() {
        out.push_str("<p>The manifest has no comms templates (<code>incident_plan.comms_templates</code>).</p>");
        return;
    }
    let list: Vec<(String, String)> =
        templates.iter().map(|t| (t.id.clone(), format!("{} (to {})", t.id, html::name(t.audience)))).collect();
    let chosen = q.template.clone().unwrap_or_else(|| templates[0].id.clone());
    let _ = write!(
        out,
        "<form method=\"get\" class=\"filters\">{}<label for=\"values\">Values, one <code>name=value</code> per line</label>\
         <textarea id=\"values\" name=\"values\" rows=\"2\">{}</textarea><button type=\"submit\">Preview</button></form>",
        html::select("template", "Template", &list, &chosen),
        esc(q.values.as_deref().unwrap_or_default())
    );
    let values: Vec<(String, String)> = q
        .values
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    match oversight::render_comms(c.gw.manifest(), &chosen, i, &values) {
        Ok(text) => {
            let _ = write!(out, "<blockquote class=\"comms\" id=\"comms-preview\">{}</blockquote>", esc(&text));
        }
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"flash error\" id=\"comms-preview\">{}</p>",
                esc(&e.to_string().replace("`--set NAME=VALUE`", "a `name=value` line"))
            );
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResolveForm {
    resolution: String,
}

/// `POST /console/incidents/{id}/resolve`.
pub(crate) async fn resolve(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    posted: Posted<ResolveForm>,
) -> Response {
    let Posted { session, form } = posted;
    if let Err(r) = session.require(Role::Operator) {
        return r;
    }
    if form.resolution.trim().is_empty() {
        return html::error(StatusCode::BAD_REQUEST, "Not done", "Say what was done to resolve the incident.");
    }
    match c.gw.resolve_incident(&id, &session.actor(), form.resolution.trim()).await {
        Ok(i) => {
            auth::record(&c, &session, "resolved incident", &i.id, json!({"resolution": i.resolution})).await;
            Redirect::to(&format!("/console/incidents/{}?done={}", i.id, enc("Resolved; calls flow again.")))
                .into_response()
        }
        Err(e) => html::refused(&e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReviewForm {
    root_cause: String,
    #[serde(default)]
    actions: String,
}

/// `POST /console/incidents/{id}/review`: the post-incident review (IR-3).
pub(crate) async fn review(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    posted: Posted<ReviewForm>,
) -> Response {
    let Posted { session, form } = posted;
    if let Err(r) = session.require(Role::Operator) {
        return r;
    }
    let actions: Vec<String> =
        form.actions.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    match oversight::post_incident_review(c.gw.store(), &id, form.root_cause.trim(), &actions).await {
        Ok(i) => {
            auth::record(&c, &session, "wrote the post-incident review of", &i.id, json!({"actions": actions.len()}))
                .await;
            Redirect::to(&format!("/console/incidents/{}?done={}", i.id, enc("Post-incident review saved.")))
                .into_response()
        }
        Err(e) => html::refused(&e),
    }
}
