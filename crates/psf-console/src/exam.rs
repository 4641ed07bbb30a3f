//! The knowledge check in the console: the same bank, draw and scoring as `psf exam`, for
//! the signed-in person; the result is stored with their name, the date and the bank's
//! version, and the page shows who on the team holds a current pass — the evidence the
//! assessment reads for reviewers (HO-2) and people on call (IR-5).
//!
//! An attempt is kept in memory, by person, until it is submitted; its deadline is the
//! server's. A submission more than a minute after the deadline counts no answers.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use psf_core::exam::{self, Attempt};
use serde_json::json;

use crate::Console;
use crate::auth::{self, Empty, Posted, Session};
use crate::html::{self, esc};

/// Grace after the deadline for a form already on its way.
const GRACE_MS: i64 = 60_000;

/// Attempts under way, by user id.
#[derive(Debug, Default)]
pub(crate) struct Attempts(Mutex<HashMap<String, Attempt>>);

fn pass_mark(c: &Console) -> f64 {
    c.gw.manifest().knowledge_check.as_ref().map_or(exam::PASS_MARK, |k| k.pass_mark)
}

/// The people the team's evidence is about: console users, reviewers and people on call.
fn team(c: &Console, users: &[psf_store::ConsoleUser]) -> BTreeMap<String, (String, Vec<&'static str>)> {
    let mut out: BTreeMap<String, (String, Vec<&'static str>)> = BTreeMap::new();
    let mut add = |email: &str, name: &str, role: &'static str| {
        let e = out.entry(email.trim().to_lowercase()).or_insert_with(|| (name.to_string(), Vec::new()));
        if !e.1.contains(&role) {
            e.1.push(role);
        }
    };
    for u in users.iter().filter(|u| u.disabled_ms.is_none()) {
        add(
            &u.email,
            &u.name,
            match u.role.as_str() {
                "operator" => "operator",
                "reviewer" => "reviewer",
                _ => "auditor",
            },
        );
    }
    let m = c.gw.manifest();
    for p in m.decision_points.iter().flat_map(|d| &d.reviewers) {
        add(&p.email, &p.name, "reviewer (manifest)");
    }
    for e in m.incident_plan.iter().flat_map(|p| &p.escalation) {
        add(&e.contact.email, &e.contact.name, "on call (manifest)");
    }
    out
}

/// `GET /console/exam`.
pub(crate) async fn page(State(c): State<Arc<Console>>, session: Session) -> Response {
    let now = psf_store::now_ms();
    let bank = match exam::bank() {
        Ok(b) => b,
        Err(e) => return html::error(StatusCode::INTERNAL_SERVER_ERROR, "No exam", &e),
    };
    let attempt = c.attempts.0.lock().unwrap_or_else(PoisonError::into_inner).get(&session.user.id).cloned();
    if let Some(a) = attempt {
        return html::page(&session, "/console/exam", "Knowledge check", &attempt_form(&session, &a, now));
    }
    let store = c.gw.store();
    let (mine, users, passes) = match (
        store.exam_results(Some(&session.user.email), 20).await,
        store.console_users().await,
        store.latest_passes().await,
    ) {
        (Ok(a), Ok(b), Ok(p)) => (a, b, p),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return html::store_error(&e),
    };
    let mut out = format!(
        "<p>{} questions across the eight PSF domains, at least two from each, in {} minutes; the pass mark is {:.0}%. \
         Question bank {}. A pass counts for a year, and it is the evidence the assessment reads for reviewers and people on call.</p>\n\
         <form method=\"post\" action=\"/console/exam/start\">{}<button type=\"submit\" id=\"start-exam\">Start the knowledge check</button></form>\n",
        exam::QUESTIONS,
        exam::MINUTES,
        pass_mark(&c) * 100.0,
        esc(&bank.version),
        html::csrf_field(&session)
    );
    out.push_str("<h2>Your results</h2>");
    if mine.is_empty() {
        out.push_str("<p>None yet.</p>");
    } else {
        out.push_str("<table><thead><tr><th scope=\"col\">Taken</th><th scope=\"col\">Score</th><th scope=\"col\">Result</th><th scope=\"col\">Bank</th></tr></thead><tbody>");
        for r in &mine {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{} of {}</td><td>{}</td><td>{}</td></tr>",
                html::time(r.taken_ms),
                r.right,
                r.total,
                if r.passed { "passed" } else { "not passed" },
                esc(&r.bank_version)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<h2>The team</h2><table id=\"team\"><thead><tr><th scope=\"col\">Person</th><th scope=\"col\">Roles</th><th scope=\"col\">Latest pass</th><th scope=\"col\">Current</th></tr></thead><tbody>");
    for (email, (name, roles)) in team(&c, &users) {
        let (latest, current) = match passes.get(&email) {
            Some(p) if now - p.taken_ms <= i64::from(exam::PASS_VALID_DAYS) * 86_400_000 => {
                (html::time(p.taken_ms), "<strong>yes</strong>".to_string())
            }
            Some(p) => (html::time(p.taken_ms), "<strong class=\"bad\">lapsed</strong>".to_string()),
            None => ("never".to_string(), "<strong class=\"bad\">no</strong>".to_string()),
        };
        let _ = write!(
            out,
            "<tr><td>{} &lt;{}&gt;</td><td>{}</td><td>{latest}</td><td>{current}</td></tr>",
            esc(&name),
            esc(&email),
            esc(&roles.join(", "))
        );
    }
    out.push_str("</tbody></table>");
    html::page(&session, "/console/exam", "Knowledge check", &out)
}

fn attempt_form(session: &Session, a: &Attempt, now: i64) -> String {
    let mut out = format!(
        "<p class=\"countdown\" role=\"timer\">Time left: <strong id=\"countdown\" data-deadline-ms=\"{}\" data-now-ms=\"{now}\">{}</strong></p>\n\
         <form method=\"post\" action=\"/console/exam/submit\" id=\"exam-form\">{}\n",
        a.deadline_ms,
        {
            let s = a.remaining_ms(now) / 1000;
            format!("{:02}:{:02}", s / 60, s % 60)
        },
        html::csrf_field(session)
    );
    for (i, asked) in a.asked.iter().enumerate() {
        let _ = write!(
            out,
            "<fieldset class=\"question\" data-question=\"{}\"><legend>{}. {}</legend>",
            esc(&asked.question.id),
            i + 1,
            esc(&asked.question.stem)
        );
        for (k, option) in asked.shown().iter().enumerate() {
            let letter = char::from(b'a' + k as u8);
            let _ = write!(
                out,
                "<label class=\"check\"><input type=\"radio\" name=\"q{i}\" value=\"{letter}\"> {letter}) {}</label>",
                esc(option)
            );
        }
        out.push_str("</fieldset>\n");
    }
    out.push_str("<button type=\"submit\" id=\"submit-exam\">Submit my answers</button></form>\n");
    out
}

/// `POST /console/exam/start`.
pub(crate) async fn start(State(c): State<Arc<Console>>, posted: Posted<Empty>) -> Response {
    let session = posted.session;
    let bank = match exam::bank() {
        Ok(b) => b,
        Err(e) => return html::error(StatusCode::INTERNAL_SERVER_ERROR, "No exam", &e),
    };
    let mut seed = [0u8; 8];
    if getrandom::fill(&mut seed).is_err() {
        return html::error(StatusCode::SERVICE_UNAVAILABLE, "Try again", "No randomness for a draw.");
    }
    let attempt = Attempt::new(exam::draw(&bank, u64::from_le_bytes(seed)), psf_store::now_ms(), exam::MINUTES);
    c.attempts.0.lock().unwrap_or_else(PoisonError::into_inner).insert(session.user.id.clone(), attempt);
    Redirect::to("/console/exam").into_response()
}

/// `POST /console/exam/submit`: scored, stored, and shown with the explanations of what
/// was missed.
pub(crate) async fn submit(State(c): State<Arc<Console>>, posted: Posted<BTreeMap<String, String>>) -> Response {
    let Posted { session, form } = posted;
    let Some(mut attempt) = c.attempts.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&session.user.id) else {
        return Redirect::to("/console/exam").into_response();
    };
    let bank_version = exam::bank().map(|b| b.version).unwrap_or_default();
    let now = psf_store::now_ms();
    let late = now > attempt.deadline_ms + GRACE_MS;
    if !late {
        // An answer inside the grace counts as given at the deadline's last moment.
        let at = now.min(attempt.deadline_ms - 1);
        for i in 0..attempt.asked.len() {
            if let Some(k) =
                form.get(&format!("q{i}")).and_then(|v| v.bytes().next()).filter(|b| (b'a'..=b'd').contains(b))
            {
                let _ = attempt.answer(i, usize::from(k - b'a'), at);
            }
        }
    }
    let score = attempt.score(pass_mark(&c));
    let result = psf_store::ExamResult {
        id: String::new(),
        email: session.user.email.clone(),
        name: session.user.name.clone(),
        taken_ms: now,
        bank_version: bank_version.clone(),
        right: score.right,
        total: score.total,
        pass_mark: score.pass_mark,
        passed: score.passed,
        per_domain: score.per_domain.clone(),
    };
    let stored = match c.gw.store().insert_exam_result(&result).await {
        Ok(r) => r,
        Err(e) => return html::store_error(&e),
    };
    auth::record(
        &c,
        &session,
        "took the knowledge check",
        &stored.id,
        json!({"right": score.right, "total": score.total, "passed": score.passed, "bank": bank_version}),
    )
    .await;
    let mut out = format!(
        "<p class=\"flash\" role=\"status\" id=\"exam-result\">{} of {} ({:.0}%): <strong>{}</strong> (pass mark {:.0}%).{}</p>\n",
        score.right,
        score.total,
        score.share * 100.0,
        if score.passed { "passed" } else { "not passed" },
        score.pass_mark * 100.0,
        if late { " The time was up before the answers arrived, so none were counted." } else { "" }
    );
    out.push_str("<table><thead><tr><th scope=\"col\">Domain</th><th scope=\"col\">Right</th></tr></thead><tbody>");
    for d in &psf_core::catalog::DOMAINS {
        if let Some((r, t)) = score.per_domain.get(d.id) {
            let _ = write!(out, "<tr><td>{} {}</td><td>{r} of {t}</td></tr>", d.id, esc(d.name));
        }
    }
    out.push_str("</tbody></table>");
    if !score.missed.is_empty() {
        out.push_str("<h2>To read again</h2>");
        for q in &score.missed {
            let _ = write!(
                out,
                "<div class=\"verdict\"><p><strong>{}</strong></p><p>Best answer: {}</p><p class=\"note\">{}</p></div>",
                esc(&q.stem),
                esc(q.options.get(q.answer).map_or("", String::as_str)),
                esc(&q.explanation)
            );
        }
    }
    out.push_str("<p><a href=\"/console/exam\">Back to the knowledge check</a></p>");
    html::page(&session, "/console/exam", "Knowledge check: result", &out)
}
