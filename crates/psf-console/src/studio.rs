//! The studio: the manifest's workflow as a canvas people edit (`assets/studio.js`).
//!
//! The page carries the manifest as JSON; the script draws it, keeps the list of edits
//! (JSON-Patch-like, by pointer: undo and redo walk that list) and asks the server to
//! check them. The server applies the edits to the manifest's *text* with
//! [`psf_core::edit`], so that everything not edited — comments included — stays as it
//! was, and checks the result with `psf check`'s own rules: the diagnostics come back by
//! pointer and the script shows each on its node. Saving writes the file only when the
//! check finds no error; operators save, everyone else sees the canvas read-only.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use psf_core::edit::{self, Edit};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Console;
use crate::auth::{self, Posted, Role, Session};
use crate::html::{self, esc};

fn sha256(text: &str) -> String {
    psf_store::key_digest(text)
}

/// `GET /console/studio`.
pub(crate) async fn page(State(c): State<Arc<Console>>, session: Session) -> Response {
    let text = c.manifest_text();
    let value = match psf_core::yaml::parse(&text) {
        Ok(d) => d.value,
        Err(e) => {
            return html::error(
                StatusCode::CONFLICT,
                "Cannot draw",
                &format!("The manifest is not valid YAML at {}: {}", e.position, e.message),
            );
        }
    };
    let editable = session.role == Role::Operator;
    let data = json!({
        "manifest": value,
        "base_sha256": sha256(&text),
        "editable": editable,
        "savable": editable && c.manifest_path.is_some(),
        "file": c.manifest_file,
    });
    // JSON inside a script element: `<` escaped so the text can never close it.
    let data = data.to_string().replace('<', "\\u003c");
    let note = match (editable, c.manifest_path.is_some()) {
        (true, true) => format!("Edits are checked as you make them, with the rules of <code>psf check</code>; saving writes <code>{}</code> (comments kept) and takes effect when <code>psf serve</code> restarts.", esc(&c.manifest_file)),
        (true, false) => "This console was started without a manifest file (<code>psf demo</code>): edits are checked but cannot be saved.".to_string(),
        (false, _) => "Read-only: operators edit the workflow.".to_string(),
    };
    let body = format!(
        "<p class=\"note\">{note} Keys: <kbd>Tab</kbd> moves between nodes, <kbd>Enter</kbd> selects, arrows pan, <kbd>+</kbd>/<kbd>-</kbd> zoom, <kbd>0</kbd> fits, <kbd>Ctrl</kbd>+<kbd>Z</kbd> undoes, <kbd>Ctrl</kbd>+<kbd>Y</kbd> redoes.</p>\n\
         <div class=\"studio\">\n<div class=\"canvas-wrap\"><div class=\"toolbar\" role=\"toolbar\" aria-label=\"Studio\"></div>\
         <svg id=\"canvas\" tabindex=\"0\" role=\"application\" aria-label=\"The workflow: apps, decision points, models and providers\"></svg></div>\n\
         <aside id=\"panel\" aria-live=\"polite\"></aside>\n</div>\n\
         <form id=\"studio-form\" hidden>{}</form>\n\
         <script type=\"application/json\" id=\"studio-data\">{data}</script>\n\
         <script src=\"/console/assets/studio.js\" defer></script>\n",
        html::csrf_field(&session)
    );
    html::page(&session, "/console/studio", "Studio", &body)
}

#[derive(Debug, Deserialize)]
pub(crate) struct EditsForm {
    /// The edits, as JSON.
    edits: String,
    /// The SHA-256 of the text the edits were made against.
    base_sha256: String,
}

/// The edited text, what `psf check` says of it, and what changed from the saved one.
struct Checked {
    text: String,
    value: Value,
    diagnostics: Vec<psf_core::Diagnostic>,
    changes: Vec<psf_core::diff::Change>,
}

impl Checked {
    fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == psf_core::Severity::Error).count()
    }

    fn body(&self, saved: bool) -> Value {
        let described: Vec<String> = self.changes.iter().map(psf_core::diff::describe).collect();
        json!({"saved": saved, "errors": self.errors(), "diagnostics": self.diagnostics, "manifest": self.value,
               "base_sha256": sha256(&self.text), "changes": self.changes, "described": described})
    }
}

fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Applies the form's edits to the manifest as it is now, and checks the result.
fn apply(c: &Console, form: &EditsForm) -> Result<Checked, Response> {
    let edits: Vec<Edit> = serde_json::from_str(&form.edits).map_err(|e| {
        refusal(StatusCode::BAD_REQUEST, format!("the edits are not a list of add/replace/remove: {e}"))
    })?;
    if edits.len() > 1000 {
        return Err(refusal(StatusCode::PAYLOAD_TOO_LARGE, "more than 1,000 edits at once; save part of them first"));
    }
    let current = c.manifest_text();
    if sha256(&current) != form.base_sha256 {
        return Err(refusal(
            StatusCode::CONFLICT,
            "the manifest changed since this page was opened; reload the studio",
        ));
    }
    let text = edit::apply(&current, &edits).map_err(|e| refusal(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let checked = psf_core::check(&text, &psf_core::CheckOptions { today: crate::today() });
    let value = psf_core::yaml::parse(&text).map(|d| d.value).unwrap_or(Value::Null);
    let before = psf_core::yaml::parse(&current).map(|d| d.value).unwrap_or(Value::Null);
    let changes = psf_core::diff::diff(&before, &value);
    Ok(Checked { text, value, diagnostics: checked.diagnostics, changes })
}

/// `POST /console/studio/check`: the edits applied and checked; nothing is written.
pub(crate) async fn check(State(c): State<Arc<Console>>, posted: Posted<EditsForm>) -> Response {
    if let Err(r) = posted.session.require(Role::Operator) {
        return r;
    }
    match apply(&c, &posted.form) {
        Ok(checked) => Json(checked.body(false)).into_response(),
        Err(r) => r,
    }
}

/// `POST /console/studio/save`: written only when the check finds no error.
pub(crate) async fn save(State(c): State<Arc<Console>>, posted: Posted<EditsForm>) -> Response {
    let Posted { session, form } = posted;
    if let Err(r) = session.require(Role::Operator) {
        return r;
    }
    let Some(path) = c.manifest_path.clone() else {
        return refusal(StatusCode::CONFLICT, "this console has no manifest file to save to (psf demo)");
    };
    let checked = match apply(&c, &form) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if checked.errors() > 0 {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(checked.body(false))).into_response();
    }
    // Written beside the file and renamed over it: a reader never sees half a manifest.
    let tmp = path.with_extension("yaml.psf-tmp");
    let written = std::fs::write(&tmp, &checked.text).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return refusal(StatusCode::INTERNAL_SERVER_ERROR, format!("could not write {}: {e}", path.display()));
    }
    *c.manifest_text.write().unwrap_or_else(std::sync::PoisonError::into_inner) = checked.text.clone();
    let edits: Value = serde_json::from_str(&form.edits).unwrap_or(Value::Null);
    let count = edits.as_array().map_or(0, Vec::len);
    auth::record(
        &c,
        &session,
        "saved the manifest",
        &c.manifest_file,
        json!({"edits": edits, "sha256": sha256(&checked.text)}),
    )
    .await;
    review_due(&c, &session, &checked.changes).await;
    tracing::info!(file = %path.display(), edits = count, "the studio saved the manifest");
    Json(checked.body(true)).into_response()
}

/// A change to a decision point's oversight (its autonomy, reviewers, stakes, or the
/// point itself) calls for an oversight review (HO-5): one `HO-5.review_due` event per
/// decision point it touched, which the assessment reads until a review follows.
async fn review_due(c: &Console, session: &Session, changes: &[psf_core::diff::Change]) {
    let mut points: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for ch in changes.iter().filter(|ch| ch.area == psf_core::diff::Area::Oversight) {
        if let Some(p) = ch.decision_point.as_deref() {
            points.entry(p).or_default().push(psf_core::diff::describe(ch));
        }
    }
    for (point, what) in points {
        let event = psf_store::Event {
            ts_ms: psf_store::now_ms(),
            kind: "HO-5.review_due".into(),
            severity: "warning".into(),
            app: None,
            key_id: None,
            summary: format!(
                "oversight review due for {point}: its oversight changed in the studio ({})",
                what.join("; ")
            ),
            detail: json!({"reason": "scope_change", "decision_points": [point], "changes": what, "by": session.user.email}),
        };
        if let Err(e) = c.gw.store().insert_event(&event).await {
            tracing::error!(error = %e, "could not record that an oversight review is due");
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CompareForm {
    /// Another manifest's text: the one to compare with.
    other: String,
    #[serde(flatten)]
    edits: EditsForm,
}

/// `POST /console/studio/compare`: the changes from another manifest (an older version, a
/// colleague's proposal) to this one as edited; anyone signed in may compare.
pub(crate) async fn compare(State(c): State<Arc<Console>>, posted: Posted<CompareForm>) -> Response {
    let form = posted.form;
    let other = match psf_core::yaml::parse(&form.other) {
        Ok(d) => d.value,
        Err(e) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                format!("the other manifest is not valid YAML at {}: {}", e.position, e.message),
            );
        }
    };
    let checked = match apply(&c, &form.edits) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let changes = psf_core::diff::diff(&other, &checked.value);
    let described: Vec<String> = changes.iter().map(psf_core::diff::describe).collect();
    Json(json!({"changes": changes, "described": described})).into_response()
}
