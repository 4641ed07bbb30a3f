//! The PSF scorecard and the workflow: `psf assess` run by the console on the manifest
//! served and the gateway's own store (the last 30 days), shown as the 8x5 grid with a
//! page per verdict and its evidence, the CPAP rubric with what the next level needs,
//! and the report and attestation to download; the workflow diagram of the manifest,
//! with the manifest itself, to download.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use psf_assess::{Assessment, Options, ParsedManifest, attest, html as report_html, report};

use crate::Console;
use crate::auth::Session;
use crate::html::{self, esc};

/// The evaluation window, as `psf assess` defaults to.
const WINDOW_DAYS: u32 = 30;
/// How long an assessment is reused: reading the store costs, and a minute is fresh enough.
const FRESH_MS: i64 = 60_000;

/// The latest assessment and when it was made.
#[derive(Debug, Default)]
pub(crate) struct Cache(Mutex<Option<(i64, Arc<Assessment>)>>);

/// The assessment of now, made at most a minute ago. The store is read and scanned on a
/// blocking thread, away from the requests the gateway serves.
async fn assessment(c: &Console) -> Result<Arc<Assessment>, Response> {
    let now = psf_store::now_ms();
    if let Some((at, a)) = c.scorecard.0.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
        && now - at < FRESH_MS
    {
        return Ok(a.clone());
    }
    let (file, text, store) = (c.manifest_file.clone(), c.manifest_text(), c.gw.store().clone());
    let handle = tokio::runtime::Handle::current();
    let made = tokio::task::spawn_blocking(move || {
        let today = crate::today();
        let parsed = ParsedManifest::new(&file, &text, today).map_err(|d| {
            let first = d.first().map(|d| d.message.clone()).unwrap_or_default();
            format!(
                "The manifest {file} has {} errors today (the first: {first}); `psf check {file}` shows them.",
                d.len()
            )
        })?;
        let runtime = handle
            .block_on(psf_assess::runtime::gather(&store, today, WINDOW_DAYS))
            .map_err(|e| format!("The store could not be read: {e}"))?;
        Ok::<_, String>(psf_assess::assess(
            &parsed.input(),
            Some(&runtime),
            &Options { today, window_days: WINDOW_DAYS },
        ))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match made {
        Ok(a) => {
            let a = Arc::new(a);
            *c.scorecard.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((now, a.clone()));
            Ok(a)
        }
        Err(e) => Err(html::error(StatusCode::SERVICE_UNAVAILABLE, "No assessment", &e)),
    }
}

/// `GET /console/scorecard`.
pub(crate) async fn page(State(c): State<Arc<Console>>, session: Session) -> Response {
    let a = match assessment(&c).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut out = format!(
        "<p class=\"summary\">{}</p><p class=\"note\">Assessed {} over the last {} days of this gateway's records; refreshed at most once a minute.</p>\n\
         <p class=\"downloads\">Download: <a href=\"/console/scorecard/report.html\" download>report (HTML)</a> · \
         <a href=\"/console/scorecard/report.json\" download>report (JSON)</a> · {}</p>\n<style>{}</style>\n",
        esc(&a.summary_line()),
        a.date,
        a.window_days,
        if c.signing.is_some() {
            "<a href=\"/console/scorecard/attestation.dsse.json\" download>signed attestation</a>".to_string()
        } else {
            "no attestation: start <code>psf serve</code> with <code>--sign KEY</code> to sign one".to_string()
        },
        report_html::STATUS_STYLE
    );
    report_html::grid(&mut out, &a, &|id| format!("/console/scorecard/{id}"));
    report_html::rubric(&mut out, &a);
    html::page(&session, "/console/scorecard", "PSF scorecard", &out)
}

/// `GET /console/scorecard/{id}`: one verdict and its evidence.
pub(crate) async fn verdict(State(c): State<Arc<Console>>, session: Session, Path(id): Path<String>) -> Response {
    let a = match assessment(&c).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(v) = a.verdicts.iter().find(|v| v.id.eq_ignore_ascii_case(&id)) else {
        return html::not_found(&format!("There is no competency `{id}`; the scorecard links each one."));
    };
    let mut out = format!(
        "<style>{}</style><p>{} {}</p><p><em>{}</em></p>",
        report_html::STATUS_STYLE,
        report_html::badge(v.status),
        esc(&v.summary),
        esc(v.statement)
    );
    if let Some(note) = v.suppression_note() {
        let _ = write!(out, "<p class=\"flash\">{}</p>", esc(&note));
    }
    if let Some(due) = report_html::due(&a, v) {
        let _ = write!(out, "<p>Due {due}; owner {}.</p>", esc(&a.owner));
    }
    if !v.gaps.is_empty() {
        out.push_str("<h2>What would meet it</h2><ul>");
        for g in &v.gaps {
            let _ = write!(out, "<li>{}</li>", esc(g));
        }
        out.push_str("</ul>");
    }
    out.push_str("<h2>Evidence</h2><table><thead><tr><th scope=\"col\">Kind</th><th scope=\"col\">Source</th><th scope=\"col\">Observation</th><th scope=\"col\">Window</th><th scope=\"col\">SHA-256</th></tr></thead><tbody>");
    for e in &v.evidence {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(e.kind),
            esc(&e.source),
            esc(&e.observation),
            esc(e.window.as_deref().unwrap_or("")),
            esc(e.sha256.get(..16).unwrap_or(&e.sha256))
        );
    }
    out.push_str("</tbody></table><p><a href=\"/console/scorecard\">Back to the scorecard</a></p>");
    html::page(&session, "/console/scorecard", &format!("{} {}", v.id, v.title), &out)
}

fn download(content_type: &'static str, name: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    ([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

/// `GET /console/scorecard/report.html`.
pub(crate) async fn report_html(State(c): State<Arc<Console>>, _: Session) -> Response {
    match assessment(&c).await {
        Ok(a) => download("text/html; charset=utf-8", "report.html", report_html::html(&a, c.gw.manifest())),
        Err(r) => r,
    }
}

/// `GET /console/scorecard/report.json`.
pub(crate) async fn report_json(State(c): State<Arc<Console>>, _: Session) -> Response {
    match assessment(&c).await {
        Ok(a) => download("application/json", "report.json", report::json(&a)),
        Err(r) => r,
    }
}

/// `GET /console/scorecard/attestation.dsse.json`: signed with `psf serve --sign`'s key.
pub(crate) async fn attestation(State(c): State<Arc<Console>>, _: Session) -> Response {
    let Some(key) = &c.signing else {
        return html::error(
            StatusCode::NOT_FOUND,
            "No signing key",
            "This gateway was started without `--sign KEY`, so it cannot sign an attestation. `psf assess --sign` signs one from the command line.",
        );
    };
    match assessment(&c).await {
        Ok(a) => download("application/json", "attestation.dsse.json", attest::sign(&a, key)),
        Err(r) => r,
    }
}

/// `GET /console/workflow`: the executive flow view of the manifest.
pub(crate) async fn workflow(State(c): State<Arc<Console>>, session: Session) -> Response {
    let m = c.gw.manifest();
    let mut out = format!(
        "<p>{}: {}. Accountable owner: {} &lt;{}&gt;.</p>\n<p class=\"downloads\">Download: <a href=\"/console/workflow.svg\" download>diagram (SVG)</a> · <a href=\"/console/manifest.yaml\" download>manifest (YAML)</a> · <a href=\"/console/workflow/package.tar.gz\" download>workflow package (manifest, schema, flow view, integration docs)</a></p>\n<figure class=\"workflow\">{}</figure>\n",
        esc(&m.system.name),
        esc(m.system.description.as_deref().unwrap_or("no description in the manifest")),
        esc(&m.system.owner.name),
        esc(&m.system.owner.email),
        report_html::workflow_svg(m)
    );
    out.push_str("<h2>Decision points</h2><table><thead><tr><th scope=\"col\">Decision point</th><th scope=\"col\">Autonomy</th><th scope=\"col\">Stakes</th><th scope=\"col\">Model chain</th><th scope=\"col\">Reviewers</th></tr></thead><tbody>");
    for d in &m.decision_points {
        let chain: Vec<&str> = m.chain(&d.model).iter().map(|x| x.id.as_str()).collect();
        let reviewers: Vec<String> = d.reviewers.iter().map(|p| format!("{} <{}>", p.name, p.email)).collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.id),
            esc(&html::name(d.autonomy)),
            esc(&html::name(d.stakes)),
            esc(&chain.join(" → ")),
            esc(&reviewers.join(", "))
        );
    }
    out.push_str("</tbody></table>");
    html::page(&session, "/console/workflow", "Workflow", &out)
}

/// `GET /console/workflow/package.tar.gz`: the workflow package, as `psf export --package` writes it.
pub(crate) async fn package(State(c): State<Arc<Console>>, _: Session) -> Response {
    let text = c.manifest_text();
    let checked = psf_core::check(&text, &psf_core::CheckOptions { today: crate::today() });
    let Some(m) = checked.manifest.as_ref().filter(|_| checked.is_valid()) else {
        return html::error(
            StatusCode::CONFLICT,
            "No package",
            "The manifest has errors today; `psf check` shows them.",
        );
    };
    let name = c.manifest_file.rsplit('/').next().unwrap_or("psf.yaml");
    match psf_assess::package::tar_gz(&psf_assess::package::files(name, &text, m), crate::today()) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/gzip".to_string()),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"workflow-package.tar.gz\"".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => html::error(StatusCode::INTERNAL_SERVER_ERROR, "No package", &e.to_string()),
    }
}

/// `GET /console/workflow.svg`.
pub(crate) async fn workflow_svg(State(c): State<Arc<Console>>, _: Session) -> Response {
    let svg = format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}\n", report_html::workflow_svg(c.gw.manifest()));
    download("image/svg+xml", "workflow.svg", svg)
}

/// `GET /console/manifest.yaml`: the manifest as served, byte for byte.
pub(crate) async fn manifest(State(c): State<Arc<Console>>, _: Session) -> Response {
    download("application/yaml", "psf.yaml", c.manifest_text())
}
