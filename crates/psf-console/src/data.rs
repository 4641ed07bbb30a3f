//! Data (DG-2, DG-3) and keys (IG-4): retention per data class with the sweeper's last
//! run, erasure requests and their receipts, and the API keys of the apps — created
//! (shown once), listed and revoked.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use psf_gateway::retention::MIN_AUDIT_DAYS;
use serde::Deserialize;
use serde_json::json;

use crate::Console;
use crate::auth::{self, Posted, Role, Session};
use crate::html::{self, esc};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Deserialize)]
pub(crate) struct Shown {
    done: Option<String>,
}

/// `GET /console/data`.
pub(crate) async fn page(State(c): State<Arc<Console>>, session: Session, Query(q): Query<Shown>) -> Response {
    let store = c.gw.store();
    let now = psf_store::now_ms();
    let (summary, sweeps, receipts) = match (
        store.audit_summary(0, now + 1).await,
        store.events(Some("DG-2.retention"), now - 30 * DAY_MS, 10_000).await,
        store.erasures(100).await,
    ) {
        (Ok(s), Ok(e), Ok(r)) => (s, e, r),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return html::store_error(&e),
    };
    let m = c.gw.manifest();
    let audit_days = m.retention.audit_log_days.max(MIN_AUDIT_DAYS);
    let mut out = html::flash(q.done.as_deref());
    out.push_str("<h2>Retention</h2>");
    let oldest = summary.oldest_ms.map(|t| (now - t) / DAY_MS);
    let state = match oldest {
        None => "the log is empty".to_string(),
        Some(age) if age <= i64::from(audit_days) => format!("oldest record {age} days old: within policy"),
        Some(age) => format!(
            "oldest record {age} days old: <strong class=\"bad\">past the {audit_days}-day policy; the next sweep deletes it</strong>"
        ),
    };
    let _ = write!(out, "<p>Audit log: kept {audit_days} days; {state}.</p>");
    let c_ = &m.retention.pii_days;
    out.push_str("<table><thead><tr><th scope=\"col\">Data class</th><th scope=\"col\">Kept</th><th scope=\"col\">What happens then</th></tr></thead><tbody>");
    for (class, days) in [
        ("contact", c_.contact),
        ("financial", c_.financial),
        ("government_id", c_.government_id),
        ("credential", c_.credential),
        ("personal", c_.personal),
        ("location", c_.location),
    ] {
        let (kept, then) = match days {
            Some(d) if d < audit_days => {
                (format!("{d} days"), "held answers are anonymised (labels only); their sealed values are shredded")
            }
            Some(d) => (format!("{d} days"), "deleted with the audit log"),
            None => (format!("{audit_days} days (the audit log's)"), "deleted with the audit log"),
        };
        let _ = write!(out, "<tr><td>{class}</td><td>{}</td><td>{then}</td></tr>", esc(&kept));
    }
    out.push_str("</tbody></table>");
    match sweeps.last() {
        Some(e) => {
            let _ = write!(out, "<p>Last sweep {}: {}.</p>", html::time(e.ts_ms), esc(&e.summary));
        }
        None => out.push_str("<p>No sweep in the last 30 days; the gateway sweeps at start and hourly.</p>"),
    }
    out.push_str("<h2>Erasure (DG-3)</h2>");
    if session.role == Role::Operator {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/console/data/erasures\">{}\
             <label for=\"subject\">Subject (the identifier the requests carried in <code>x-psf-subject</code>, or a key's subject)</label>\
             <input id=\"subject\" name=\"subject\" required autocomplete=\"off\">\
             <label for=\"requested_by\">Who asked for the erasure</label><input id=\"requested_by\" name=\"requested_by\" required>\
             <label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> I confirm: this destroys the subject's data and cannot be undone.</label>\
             <button type=\"submit\" class=\"danger\">Erase</button></form>",
            html::csrf_field(&session)
        );
    }
    if receipts.is_empty() {
        out.push_str("<p>No erasures yet.</p>");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">Receipt</th><th scope=\"col\">Subject (hash)</th><th scope=\"col\">Asked by</th><th scope=\"col\">When</th><th scope=\"col\">Removed</th></tr></thead><tbody>");
        for r in &receipts {
            let _ = write!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{} audit records, {} reviews, {} sealed values, {} keys</td></tr>",
                esc(&r.id),
                esc(&r.subject),
                esc(&r.requested_by),
                html::time(r.erased_ms),
                r.audit_records,
                r.reviews,
                r.held_values,
                r.keys_destroyed
            );
        }
        out.push_str("</tbody></table>");
    }
    html::page(&session, "/console/data", "Data", &out)
}

#[derive(Debug, Deserialize)]
pub(crate) struct EraseForm {
    subject: String,
    requested_by: String,
    confirm: Option<String>,
}

/// `POST /console/data/erasures`.
pub(crate) async fn erase(State(c): State<Arc<Console>>, posted: Posted<EraseForm>) -> Response {
    let Posted { session, form } = posted;
    if let Err(r) = session.confirmed_operator(form.confirm.as_deref(), "erase") {
        return r;
    }
    let by = format!("{} for {}", session.actor(), form.requested_by.trim());
    match c.gw.erase_subject(&form.subject, &by).await {
        Ok((receipt, remaining)) => {
            // The subject itself is never recorded: the receipt names its hash.
            auth::record(
                &c,
                &session,
                "erased subject",
                &receipt.subject,
                json!({"receipt": receipt.id, "verified_empty": remaining.is_empty()}),
            )
            .await;
            let done = format!(
                "Erased: receipt {}; {} audit records, {} reviews, {} sealed values removed; {}.",
                receipt.id,
                receipt.audit_records,
                receipt.reviews,
                receipt.held_values,
                if remaining.is_empty() {
                    "nothing of the subject remains"
                } else {
                    "SOMETHING REMAINS: check the store"
                }
            );
            Redirect::to(&format!(
                "/console/data?{}",
                serde_urlencoded::to_string([("done", done)]).unwrap_or_default()
            ))
            .into_response()
        }
        Err(e) => html::refused(&e),
    }
}

fn keys_html(c: &Console, session: &Session, keys: &[psf_store::KeyRecord], created: Option<(&str, &str)>) -> String {
    let mut out = String::new();
    if let Some((id, secret)) = created {
        let _ = write!(
            out,
            "<div class=\"flash\" role=\"status\"><p>Created key <strong>{}</strong>. Copy it now: it is shown once, and psf keeps only its SHA-256.</p><pre id=\"new-key\">{}</pre></div>",
            esc(id),
            esc(secret)
        );
    }
    let apps: Vec<(String, String)> = c.gw.manifest().apps.iter().map(|a| (a.id.clone(), a.id.clone())).collect();
    let _ = write!(
        out,
        "<h2>New key</h2><form method=\"post\" action=\"/console/keys\">{}{}<label for=\"label\">Who holds it</label><input id=\"label\" name=\"label\" required>\
         <button type=\"submit\">Create</button></form><h2>Keys</h2>",
        html::csrf_field(session),
        html::select("app", "App", &apps, apps.first().map_or("", |a| a.0.as_str())),
    );
    out.push_str("<table><thead><tr><th scope=\"col\">Key</th><th scope=\"col\">App</th><th scope=\"col\">Holder</th><th scope=\"col\">Created</th><th scope=\"col\">State</th></tr></thead><tbody>");
    for k in keys {
        let state = match k.revoked_ms {
            Some(t) => format!("revoked {}", html::time(t)),
            None => format!(
                "active <form method=\"post\" action=\"/console/keys/{}/revoke\" class=\"inline\">{}<button type=\"submit\" class=\"danger\">Revoke</button></form>",
                esc(&k.id),
                html::csrf_field(session)
            ),
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{state}</td></tr>",
            esc(&k.id),
            esc(&k.app),
            esc(k.label.as_deref().unwrap_or("")),
            html::time(k.created_ms)
        );
    }
    out.push_str("</tbody></table><p class=\"note\">Keys listed in the manifest itself are not shown; they change with the manifest.</p>");
    out
}

/// `GET /console/keys` (operators).
pub(crate) async fn keys(State(c): State<Arc<Console>>, session: Session, Query(q): Query<Shown>) -> Response {
    if let Err(r) = session.require(Role::Operator) {
        return r;
    }
    match c.gw.store().keys().await {
        Ok(keys) => {
            let body = html::flash(q.done.as_deref()) + &keys_html(&c, &session, &keys, None);
            html::page(&session, "/console/keys", "API keys", &body)
        }
        Err(e) => html::store_error(&e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyForm {
    app: String,
    label: String,
}

/// `POST /console/keys`: a new key, shown on the page it answers with and nowhere else.
pub(crate) async fn create_key(State(c): State<Arc<Console>>, posted: Posted<KeyForm>) -> Response {
    let Posted { session, form } = posted;
    if let Err(r) = session.require(Role::Operator) {
        return r;
    }
    if !c.gw.manifest().apps.iter().any(|a| a.id == form.app) {
        return html::error(
            StatusCode::BAD_REQUEST,
            "Not done",
            &format!("There is no app `{}` in the manifest.", form.app),
        );
    }
    let store = c.gw.store();
    let key = match store.create_key(&form.app, Some(form.label.trim()), None).await {
        Ok(k) => k,
        Err(e) => return html::store_error(&e),
    };
    auth::record(&c, &session, "created API key", &key.record.id, json!({"app": form.app, "label": form.label})).await;
    match store.keys().await {
        Ok(keys) => {
            let body = keys_html(&c, &session, &keys, Some((&key.record.id, &key.secret)));
            html::page(&session, "/console/keys", "API keys", &body)
        }
        Err(e) => html::store_error(&e),
    }
}

/// `POST /console/keys/{id}/revoke`: refused by every gateway within a second.
pub(crate) async fn revoke_key(
    State(c): State<Arc<Console>>,
    Path(id): Path<String>,
    posted: Posted<auth::Empty>,
) -> Response {
    let session = posted.session;
    if let Err(r) = session.require(Role::Operator) {
        return r;
    }
    match c.gw.store().revoke_key(&id).await {
        Ok(true) => {
            auth::record(&c, &session, "revoked API key", &id, json!({})).await;
            Redirect::to(&format!(
                "/console/keys?{}",
                serde_urlencoded::to_string([("done", format!("Revoked {id}."))]).unwrap_or_default()
            ))
            .into_response()
        }
        Ok(false) => html::not_found(&format!("There is no active key `{id}`.")),
        Err(e) => html::store_error(&e),
    }
}
