//! psf-console: the web pages operators, reviewers and auditors work in, served by the
//! gateway itself at `/console` (no separate front-end server, no build step).
//!
//! Pages are rendered on the server as plain HTML forms; one small script adds live
//! charts on the overview and a reviewer's keyboard shortcuts, and every page works
//! without it. Access is by console users (`psf users create`) with one role each:
//!
//! - an **operator** declares and resolves incidents (the kill switch), writes
//!   post-incident reviews, manages API keys and erases subjects;
//! - a **reviewer** decides held answers, where the manifest names them a reviewer of
//!   the decision point;
//! - an **auditor** reads everything and changes nothing.
//!
//! Every change goes through the same operations as the admin API
//! ([`psf_gateway::Gateway`]), and is recorded as a `console.action` event naming the
//! person, besides the event the operation itself records.
#![deny(missing_docs)]
#![expect(
    clippy::result_large_err,
    reason = "handlers answer with axum Responses by value, and a refusal is one of them"
)]

mod audit_log;
pub mod auth;
mod chart;
mod data;
mod exam;
mod html;
mod incidents;
mod overview;
mod reviews;
mod scorecard;
mod studio;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use psf_assess::attest::SigningKey;
use psf_gateway::Gateway;

pub use auth::{Role, hash_password};

/// Forms are small; a body larger than this is refused before it is read.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// What the console serves from.
#[derive(Debug)]
pub struct Console {
    gw: Arc<Gateway>,
    /// The manifest's file name and bytes as served, for the scorecard and downloads.
    manifest_file: String,
    /// Replaced when the studio saves.
    manifest_text: std::sync::RwLock<String>,
    /// Where the studio saves; `None` when the manifest has no file (`psf demo`).
    manifest_path: Option<std::path::PathBuf>,
    /// Signs the attestation the scorecard offers, when `psf serve --sign KEY` gave one.
    signing: Option<SigningKey>,
    /// Whether cookies are marked `Secure` (TLS in front of psf).
    secure_cookies: bool,
    logins: auth::LoginLimiter,
    /// Knowledge-check attempts under way.
    attempts: exam::Attempts,
    scorecard: scorecard::Cache,
}

impl Console {
    /// A console for `gw`, which serves the manifest `manifest_text` read from `manifest_file`.
    pub fn new(gw: Arc<Gateway>, manifest_file: &str, manifest_text: &str) -> Console {
        Console {
            gw,
            manifest_file: manifest_file.to_string(),
            manifest_text: std::sync::RwLock::new(manifest_text.to_string()),
            manifest_path: None,
            signing: None,
            secure_cookies: false,
            logins: auth::LoginLimiter::default(),
            attempts: exam::Attempts::default(),
            scorecard: scorecard::Cache::default(),
        }
    }

    /// Lets the studio save the manifest to `path` (the file `psf serve` read).
    pub fn with_manifest_path(mut self, path: std::path::PathBuf) -> Console {
        self.manifest_path = Some(path);
        self
    }

    /// The manifest's text as it is now.
    fn manifest_text(&self) -> String {
        self.manifest_text.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Signs the scorecard's attestation download with `key`.
    pub fn with_signing_key(mut self, key: SigningKey) -> Console {
        self.signing = Some(key);
        self
    }

    /// Marks cookies `Secure`: set when psf is reached over TLS (a proxy in front). A
    /// request that says `X-Forwarded-Proto: https` gets them too.
    pub fn with_secure_cookies(mut self, secure: bool) -> Console {
        self.secure_cookies = secure;
        self
    }
}

/// The console's routes, all under `/console`, to merge into the gateway's router.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/", get(overview::page))
        .route("/console/overview/live", get(overview::live))
        .route("/console/login", get(auth::login_form).post(auth::login))
        .route("/console/logout", post(auth::logout))
        .route("/console/reviews", get(reviews::list))
        .route("/console/reviews/{id}", get(reviews::case).post(reviews::decide))
        .route("/console/incidents", get(incidents::list).post(incidents::declare))
        .route("/console/incidents/{id}", get(incidents::show))
        .route("/console/incidents/{id}/resolve", post(incidents::resolve))
        .route("/console/incidents/{id}/review", post(incidents::review))
        .route("/console/audit", get(audit_log::search))
        .route("/console/audit/{request_id}", get(audit_log::record))
        .route("/console/data", get(data::page))
        .route("/console/data/erasures", post(data::erase))
        .route("/console/keys", get(data::keys).post(data::create_key))
        .route("/console/keys/{id}/revoke", post(data::revoke_key))
        .route("/console/scorecard", get(scorecard::page))
        .route("/console/scorecard/report.html", get(scorecard::report_html))
        .route("/console/scorecard/report.json", get(scorecard::report_json))
        .route("/console/scorecard/attestation.dsse.json", get(scorecard::attestation))
        .route("/console/scorecard/{id}", get(scorecard::verdict))
        .route("/console/workflow", get(scorecard::workflow))
        .route("/console/exam", get(exam::page))
        .route("/console/exam/start", post(exam::start))
        .route("/console/exam/submit", post(exam::submit))
        .route("/console/studio", get(studio::page))
        .route("/console/studio/check", post(studio::check))
        .route("/console/studio/save", post(studio::save))
        .route("/console/studio/compare", post(studio::compare))
        .route("/console/workflow.svg", get(scorecard::workflow_svg))
        .route("/console/workflow/package.tar.gz", get(scorecard::package))
        .route("/console/manifest.yaml", get(scorecard::manifest))
        .route("/console/assets/console.css", get(|| asset("text/css", include_str!("../assets/console.css"))))
        .route("/console/assets/console.js", get(|| asset("text/javascript", include_str!("../assets/console.js"))))
        .route("/console/assets/studio.js", get(|| asset("text/javascript", include_str!("../assets/studio.js"))))
        // Only the console's own paths: the gateway's API keeps its own answers.
        .route("/console/{*rest}", get(|| async { html::not_found("There is no such console page.") }))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

/// Today (UTC), for `psf check`'s dated rules and the assessment.
fn today() -> jiff::civil::Date {
    jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// Every console response: scripts only from the console itself, no framing, no
/// sniffing, no referrer to other sites, and nothing cached that a later user of the
/// machine could read. (`no-referrer` would make browsers send `Origin: null` with the
/// console's own forms, which the origin check must then refuse.)
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
