//! The review queue (HO-1, HO-2): held answers, filtered by status and decision point;
//! a case shows the redacted input, the answer, the detectors' findings and the
//! confidence, and a reviewer approves, edits or rejects it with a reason. Keyboard:
//! `j`/`k` move through the list, `Enter` opens; on a case `a` approves, `e` edits,
//! `r` rejects and `n` opens the next pending case.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use psf_store::{Review, ReviewDecision};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Console;
use crate::auth::{self, Posted, Role, Session};
use crate::html::{self, esc};

#[derive(Debug, Deserialize)]
pub(crate) struct Filter {
    status: Option<String>,
    point: Option<String>,
    done: Option<String>,
}

const STATUSES: [&str; 5] = ["pending", "approved", "edited", "rejected", "all"];

/// `GET /console/reviews`.
pub(crate) async fn list(State(c): State<Arc<Console>>, session: Session, Query(f): Query<Filter>) -> Response {
    let status = f.status.as_deref().filter(|s| STATUSES.contains(s)).unwrap_or("pending");
    let point = f.point.as_deref().filter(|p| !p.is_empty());
    let reviews = match c.gw.store().reviews((status != "all").then_some(status), 1000).await {
        Ok(r) => r,
        Err(e) => return html::store_error(&e),
    };
    let reviews: Vec<&Review> = reviews.iter().filter(|r| point.is_none_or(|p| r.decision_point == p)).collect();
    let mut out = html::flash(f.done.as_deref());
    let statuses: Vec<(String, String)> = STATUSES.iter().map(|s| (s.to_string(), s.to_string())).collect();
    let mut points = vec![(String::new(), "every decision point".to_string())];
    points.extend(c.gw.manifest().decision_points.iter().map(|d| (d.id.clone(), d.id.clone())));
    let _ = writeln!(
        out,
        "<form method=\"get\" class=\"filters\">{}{}<button type=\"submit\">Filter</button></form>",
        html::select("status", "Status", &statuses, status),
        html::select("point", "Decision point", &points, point.unwrap_or_default()),
    );
    if reviews.is_empty() {
        let _ = write!(out, "<p>No {status} reviews.</p>");
    } else {
        out.push_str(
            "<p class=\"note\">Keys: <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> opens the selected case.</p>\
             <table class=\"queue\" data-keys=\"list\"><thead><tr><th scope=\"col\">Case</th><th scope=\"col\">Decision point</th>\
             <th scope=\"col\">Why held</th><th scope=\"col\">Status</th><th scope=\"col\">Held at</th><th scope=\"col\">Deadline</th></tr></thead><tbody>",
        );
        for r in &reviews {
            let overdue = if r.escalated_ms.is_some() && r.status == "pending" {
                " <strong class=\"bad\">overdue</strong>"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr><td><a href=\"/console/reviews/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{overdue}</td></tr>",
                esc(&r.decision_point),
                esc(&r.reason),
                esc(&r.status),
                html::time(r.created_ms),
                r.deadline_ms.map(html::time).unwrap_or_default(),
                id = esc(&r.id),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    html::page(&session, "/console/reviews", "Review queue", &out)
}

/// The input as people read it: one line per message, its role first.
fn messages(input: &Value) -> String {
    let mut out = String::from("<ol class=\"messages\">");
    for m in input.as_array().map(Vec::as_slice).unwrap_or_default() {
        let text = match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"),
            other => other.to_string(),
        };
        let _ = write!(
            out,
            "<li><span class=\"role\">{}</span><pre>{}</pre></li>",
            esc(m["role"].as_str().unwrap_or("?")),
            esc(&text)
        );
    }
    out.push_str("</ol>");
    out
}

/// The stages that found something, then the rest in one line.
fn findings(stages: &Value) -> String {
    let list = stages.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut out = String::from(
        "<table><thead><tr><th scope=\"col\">Stage</th><th scope=\"col\">Decision</th><th scope=\"col\">Detail</th></tr></thead><tbody>",
    );
    for s in list {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(s["code"].as_str().unwrap_or("?")),
            esc(s["decision"].as_str().unwrap_or("?")),
            esc(s["detail"].as_str().unwrap_or_default())
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The next pending case after `id`, oldest first.
async fn next_pending(c: &Console, id: &str) -> Option<String> {
    let pending = c.gw.store().reviews(Some("pending"), 1000).await.ok()?;
    let mut oldest_first: Vec<&Review> = pending.iter().collect();
    oldest_first.sort_by_key(|r| (r.created_ms, r.id.clone()));
    let after = oldest_first.iter().position(|r| r.id == id);
    match after {
        Some(i) => oldest_first.get(i + 1).or_else(|| oldest_first.first().filter(|r| r.id != id)),
        None => oldest_first.first(),
    }
    .map(|r| r.id.clone())
}

/// `GET /console/reviews/{id}`.
pub(crate) async fn case(
    State(c): State<Arc<Console>>,
    session: Session,
    Path(id): Path<String>,
    Query(f): Query<Filter>,
) -> Response {
    let r = match c.gw.store().review(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return html::not_found(&format!("There is no review `{id}`.")),
        Err(e) => return html::store_error(&e),
    };
    let next = next_pending(&c, &r.id).await;
    let mut out = html::flash(f.done.as_deref());
    let _ = writeln!(
        out,
        "<dl class=\"facts\"><dt>Decision point</dt><dd>{}</dd><dt>App</dt><dd>{}</dd><dt>Why held</dt><dd>{}</dd>\
         <dt>Confidence</dt><dd>{}</dd><dt>Held at</dt><dd>{}</dd><dt>Deadline</dt><dd>{}</dd><dt>Request</dt>\
         <dd><a href=\"/console/audit/{req}\">{req}</a></dd><dt>Status</dt><dd><strong>{}</strong></dd></dl>",
        esc(&r.decision_point),
        esc(r.app.as_deref().unwrap_or("?")),
        esc(&r.reason),
        r.confidence
            .map_or_else(|| "not given by the model".to_string(), |c| format!("{c:.3} (mean token log-probability)")),
        html::time(r.created_ms),
        r.deadline_ms.map(html::time).unwrap_or_default(),
        esc(&r.status),
        req = esc(&r.request_id),
    );
    let _ = writeln!(
        out,
        "<h2>Input (personal data redacted)</h2>{}\n<h2>Answer held</h2><pre class=\"answer\">{}</pre>\n<h2>Findings</h2>{}",
        messages(&r.input_redacted),
        esc(&r.output),
        findings(&r.findings)
    );
    if r.status == "pending" {
        if session.role == Role::Reviewer {
            let csrf = html::csrf_field(&session);
            let action = format!("/console/reviews/{}", esc(&r.id));
            let _ = writeln!(
                out,
                "<h2>Decide</h2><p class=\"note\">Keys: <kbd>a</kbd> approve, <kbd>e</kbd> edit, <kbd>r</kbd> reject, <kbd>n</kbd> next case.</p>\
                 <div class=\"decide\">\
                 <form method=\"post\" action=\"{action}\" data-key=\"a\">{csrf}<input type=\"hidden\" name=\"decision\" value=\"approve\">\
                 <label for=\"approve-note\">Note (optional)</label><input id=\"approve-note\" name=\"note\">\
                 <button type=\"submit\" id=\"approve\">Approve</button></form>\
                 <form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"decision\" value=\"edit\">\
                 <label for=\"edit-output\">Deliver this text instead</label><textarea id=\"edit-output\" name=\"output\" rows=\"6\" data-key=\"e\">{}</textarea>\
                 <label for=\"edit-note\">Why it was changed</label><input id=\"edit-note\" name=\"note\">\
                 <button type=\"submit\">Deliver edited</button></form>\
                 <form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"decision\" value=\"reject\">\
                 <label for=\"reject-note\">Reason for rejecting (required)</label><input id=\"reject-note\" name=\"note\" required data-key=\"r\">\
                 <button type=\"submit\" class=\"danger\">Reject</button></form></div>",
                esc(&r.output)
            );
        } else {
            out.push_str("<p class=\"note\">Only reviewers decide held answers.</p>");
        }
    } else {
        let _ = write!(
            out,
            "<h2>Decision</h2><p>{} by {} at {}{}</p>",
            esc(&r.status),
            esc(r.reviewer.as_deref().unwrap_or("?")),
            r.decided_ms.map(html::time).unwrap_or_default(),
            r.note.as_deref().map(|n| format!(": {}", esc(n))).unwrap_or_default()
        );
        if r.status == "edited" {
            let _ = write!(out, "<pre class=\"answer\">{}</pre>", esc(r.final_output.as_deref().unwrap_or_default()));
        }
    }
    match next {
        Some(n) => {
            let _ = write!(
                out,
                "<p><a href=\"/console/reviews/{n}\" rel=\"next\" data-key=\"n\">Next pending case</a> · <a href=\"/console/reviews\">Back to the queue</a></p>",
                n = esc(&n)
            );
        }
        None => out.push_str("<p><a href=\"/console/reviews\">Back to the queue</a></p>"),
    }
    html::page(&session, "/console/reviews", &format!("Case {}", r.id), &out)
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    decision: String,
    note: Option<String>,
    output: Option<String>,
}

/// `POST /console/reviews/{id}`: a reviewer's decision, as the signed-in person.
pub(crate) async fn decide(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    posted: Posted<DecisionForm>,
) -> Response {
    let Posted { session, form } = posted;
    if let Err(r) = session.require(Role::Reviewer) {
        return r;
    }
    let note = form.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let decision = match ReviewDecision::parse(&form.decision, form.output) {
        Ok(d) => d,
        Err(e) => return html::error(axum::http::StatusCode::BAD_REQUEST, "Not done", &e),
    };
    match c.gw.decide_review(&id, &decision, &session.user.email, note).await {
        Ok(r) => {
            auth::record(
                &c,
                &session,
                &format!("{} review", decision.status()),
                &id,
                json!({"decision_point": r.decision_point, "request_id": r.request_id}),
            )
            .await;
            let done = serde_urlencoded::to_string([("done", format!("Case {id} {}.", decision.status()))])
                .unwrap_or_default();
            match next_pending(&c, &id).await {
                Some(n) => Redirect::to(&format!("/console/reviews/{n}?{done}")).into_response(),
                None => Redirect::to(&format!("/console/reviews?{done}")).into_response(),
            }
        }
        Err(e) => html::refused(&e),
    }
}
