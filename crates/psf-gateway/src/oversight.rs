//! Human oversight and incident response as operations on the store, shared by the
//! gateway's admin API and the `psf review` / `psf incident` commands, so both check the
//! same things and leave the same records.
//!
//! - Review decisions (HO-2) are made by a person the manifest names as a reviewer of the
//!   decision point; a decision is final and recorded as an `HO-2.review` event.
//! - Overrides (HO-4) correct any delivered answer after the fact: an `HO-4.override`
//!   event naming the request, the person and the reason.
//! - Incidents (IR-2) are checked against the manifest before they are declared, and
//!   recorded as `IR-2.declared` / `IR-2.resolved` events besides their own table; the
//!   post-incident review (IR-3) is due five business days after the declaration.

use jiff::Timestamp;
use jiff::civil::Date;
use psf_core::Manifest;
use psf_core::calendar::review_due;
use psf_detect::{PiiDetector, RedactStyle, redact};
use psf_store::{Event, Incident, NewIncident, Review, ReviewDecision, Store, StoreError};
use serde_json::{Value, json};

use crate::incident::{IncidentAction, IncidentScope};
use psf_core::code::Code;

/// Why an oversight operation was refused.
#[derive(Debug)]
pub enum OversightError {
    /// The request is wrong (names, values); the message says how to fix it.
    Invalid(String),
    /// No such review, incident or request.
    NotFound(String),
    /// It was already done (a decided review, a resolved incident).
    Conflict(String),
    /// The store failed.
    Store(StoreError),
}

impl std::fmt::Display for OversightError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OversightError::Invalid(m) | OversightError::NotFound(m) | OversightError::Conflict(m) => f.write_str(m),
            OversightError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OversightError {}

impl From<StoreError> for OversightError {
    fn from(e: StoreError) -> Self {
        OversightError::Store(e)
    }
}

/// The identities allowed to decide for `point`: its reviewers, by email or by name.
fn is_reviewer(manifest: &Manifest, point: &str, who: &str) -> Result<(), OversightError> {
    let Some(dp) = manifest.decision_points.iter().find(|d| d.id == point) else {
        return Err(OversightError::Invalid(format!("decision point `{point}` is not in the manifest")));
    };
    if dp.reviewers.iter().any(|p| p.email.eq_ignore_ascii_case(who) || p.name == who) {
        return Ok(());
    }
    let listed: Vec<&str> = dp.reviewers.iter().map(|p| p.email.as_str()).collect();
    Err(OversightError::Invalid(if listed.is_empty() {
        format!("decision point `{point}` names no reviewers; add them under `reviewers:` in the manifest")
    } else {
        format!("`{who}` is not a reviewer of `{point}`; its reviewers are {}", listed.join(", "))
    }))
}

/// The text of an event detail with PII redacted: events are audit records too.
fn redacted(pii: &PiiDetector, text: &str) -> String {
    redact(text, &pii.scan(text), RedactStyle::Label)
}

/// A reviewer's edit as decision point `point` delivers it: its output PII policy
/// applied, a class it never releases refused.
fn released(manifest: &Manifest, pii: &PiiDetector, point: &str, text: &str) -> Result<String, OversightError> {
    let Some(dp) = manifest.decision_points.iter().find(|p| p.id == point) else {
        return Ok(redacted(pii, text));
    };
    let findings = pii.scan(text);
    let policy = &dp.output.pii;
    if let Some(f) = findings.iter().find(|f| policy.action(f.class()) == psf_core::manifest::PiiAction::Block) {
        return Err(OversightError::Invalid(format!(
            "the edit contains data `{point}` does not release ({}); remove it",
            f.entity.label()
        )));
    }
    let kept: Vec<_> =
        findings.into_iter().filter(|f| policy.action(f.class()) != psf_core::manifest::PiiAction::Allow).collect();
    Ok(redact(text, &kept, RedactStyle::Label))
}

/// Decides a pending review as `reviewer`, and records the decision as an event.
pub async fn decide(
    store: &Store,
    manifest: &Manifest,
    pii: &PiiDetector,
    id: &str,
    decision: &ReviewDecision,
    reviewer: &str,
    note: Option<&str>,
) -> Result<Review, OversightError> {
    let Some(review) = store.review(id).await? else {
        return Err(OversightError::NotFound(format!("no review `{id}`; `psf review list` shows the pending ones")));
    };
    is_reviewer(manifest, &review.decision_point, reviewer)?;
    if review.status != "pending" {
        return Err(OversightError::Conflict(format!(
            "review `{id}` was already decided ({} by {})",
            review.status,
            review.reviewer.as_deref().unwrap_or("unknown")
        )));
    }
    if let ReviewDecision::Edit(text) = decision
        && text.trim().is_empty()
    {
        return Err(OversightError::Invalid("an edit needs the text to deliver; to deliver nothing, reject".into()));
    }
    if matches!(decision, ReviewDecision::Reject) && note.is_none_or(|n| n.trim().is_empty()) {
        return Err(OversightError::Invalid("a rejection needs a reason (`--reason`, or `note` in the API)".into()));
    }
    // What people write is personal data like any other: a note is kept redacted, and an
    // edit is what the point delivers, so it is kept as the output policy lets it out.
    let note = note.map(|n| redacted(pii, n));
    let note = note.as_deref();
    let decision = &match decision {
        ReviewDecision::Edit(text) => ReviewDecision::Edit(released(manifest, pii, &review.decision_point, text)?),
        other => other.clone(),
    };
    let now = psf_store::now_ms();
    let decided = store.decide_review(id, decision, reviewer, note, now).await.map_err(|e| {
        if e.to_string().contains("already decided") { OversightError::Conflict(e.to_string()) } else { e.into() }
    })?;
    let mut detail = json!({
        "review_id": id, "request_id": decided.request_id, "decision_point": decided.decision_point,
        "decision": decision.status(), "reviewer": reviewer, "note": note, "reason_held": decided.reason,
        "waited_ms": now - decided.created_ms,
    });
    if let ReviewDecision::Edit(text) = decision {
        detail["edited_output"] = Value::String(redacted(pii, text));
    }
    store
        .insert_event(&Event {
            ts_ms: now,
            kind: Code::Ho2Review.as_str().into(),
            severity: "info".into(),
            app: decided.app.clone(),
            key_id: decided.key_id.clone(),
            summary: format!("review {id} {} by {reviewer}", decision.status()),
            detail,
        })
        .await?;
    Ok(decided)
}

/// Records that a person overrode the answer of a request after the fact (HO-4).
pub async fn record_override(
    store: &Store,
    manifest: &Manifest,
    pii: &PiiDetector,
    request_id: &str,
    who: &str,
    reason: &str,
    corrected: Option<&str>,
) -> Result<Event, OversightError> {
    if reason.trim().is_empty() {
        return Err(OversightError::Invalid("an override needs a reason".into()));
    }
    let query = psf_store::AuditQuery { request_id: Some(request_id.to_string()), ..Default::default() };
    let Some(record) = store.audit_records(&query).await?.into_iter().next() else {
        return Err(OversightError::NotFound(format!("no audit record for request `{request_id}`")));
    };
    let point = record.decision_point.clone().unwrap_or_default();
    let owner = &manifest.system.owner;
    if !(owner.email.eq_ignore_ascii_case(who) || owner.name == who) {
        is_reviewer(manifest, &point, who)
            .map_err(|e| OversightError::Invalid(format!("{e} (the system owner may also override)")))?;
    }
    let event = Event {
        ts_ms: psf_store::now_ms(),
        kind: Code::Ho4Override.as_str().into(),
        severity: "warning".into(),
        app: record.app.clone(),
        key_id: record.key_id.clone(),
        summary: format!("answer to {request_id} overridden by {who}"),
        detail: json!({
            "request_id": request_id, "decision_point": point, "by": who, "reason": redacted(pii, reason),
            "corrected_output": corrected.map(|c| redacted(pii, c)),
        }),
    };
    store.insert_event(&event).await?;
    Ok(event)
}

/// Checks a declaration against the manifest and records it.
pub async fn declare(
    store: &Store,
    manifest: &Manifest,
    pii: &PiiDetector,
    new: &NewIncident,
) -> Result<Incident, OversightError> {
    new.action.parse::<IncidentAction>().map_err(OversightError::Invalid)?;
    let scope: IncidentScope = new.scope.parse().map_err(OversightError::Invalid)?;
    let known = match &scope {
        IncidentScope::All => true,
        IncidentScope::App(a) => manifest.apps.iter().any(|x| &x.id == a),
        IncidentScope::Point(p) => manifest.decision_points.iter().any(|x| &x.id == p),
        IncidentScope::Provider(p) => manifest.providers.iter().any(|x| &x.id == p),
    };
    if !known {
        return Err(OversightError::Invalid(format!("the manifest has nothing named by scope `{scope}`")));
    }
    if !matches!(new.severity.as_str(), "sev1" | "sev2" | "sev3" | "sev4") {
        return Err(OversightError::Invalid(format!("`{}` is not a severity; use sev1 (worst) to sev4", new.severity)));
    }
    if new.reason.trim().is_empty() || new.declared_by.trim().is_empty() {
        return Err(OversightError::Invalid("an incident needs a reason and who declares it".into()));
    }
    // The reason is kept, and shown, with personal data redacted.
    let new = &NewIncident { reason: redacted(pii, &new.reason), ..new.clone() };
    let now = psf_store::now_ms();
    let incident = store.declare_incident(new, now).await?;
    store
        .insert_event(&Event {
            ts_ms: now,
            kind: Code::Ir2Declared.as_str().into(),
            severity: if new.severity == "sev1" { "critical" } else { "warning" }.into(),
            app: None,
            key_id: None,
            summary: format!("{} {} ({}): {}", new.action, new.scope, new.severity, new.reason),
            detail: json!({"incident_id": incident.id, "action": new.action, "scope": new.scope,
                           "severity": new.severity, "by": new.declared_by, "drill": new.drill}),
        })
        .await?;
    Ok(incident)
}

/// Resolves an incident in force, lifting it everywhere.
pub async fn resolve(
    store: &Store,
    pii: &PiiDetector,
    id: &str,
    by: &str,
    resolution: &str,
) -> Result<Incident, OversightError> {
    let resolution = &redacted(pii, resolution);
    let Some(existing) = store.incident(id).await? else {
        return Err(OversightError::NotFound(format!("no incident `{id}`; `psf incident list --all` shows them")));
    };
    if existing.resolved_ms.is_some() {
        return Err(OversightError::Conflict(format!("incident `{id}` is already resolved")));
    }
    let now = psf_store::now_ms();
    let incident = store.resolve_incident(id, by, resolution, now).await?;
    store
        .insert_event(&Event {
            ts_ms: now,
            kind: Code::Ir2Resolved.as_str().into(),
            severity: "info".into(),
            app: None,
            key_id: None,
            summary: format!("incident {id} resolved by {by}"),
            detail: json!({"incident_id": id, "by": by, "resolution": resolution, "drill": incident.drill,
                           "in_force_ms": now - incident.declared_ms}),
        })
        .await?;
    Ok(incident)
}

/// Whether an incident's post-incident review is overdue on `today`: not written, or
/// with actions still open, past its due date. Drills need none.
pub fn review_overdue(incident: &Incident, today: Date) -> bool {
    !incident.drill && !incident.review_written() && psf_core::calendar::review_past_due(incident.declared_ms, today)
}

/// Records the post-incident review (IR-3): root cause and remediation actions, each
/// `WHAT|OWNER` or `WHAT|OWNER|YYYY-MM-DD` (the due date defaults to the review's).
pub async fn post_incident_review(
    store: &Store,
    id: &str,
    root_cause: &str,
    actions: &[String],
) -> Result<Incident, OversightError> {
    let Some(incident) = store.incident(id).await? else {
        return Err(OversightError::NotFound(format!("no incident `{id}`; `psf incident list --all` shows them")));
    };
    if root_cause.trim().is_empty() {
        return Err(OversightError::Invalid("a post-incident review needs its root cause".into()));
    }
    let due = review_due(incident.declared_ms);
    let mut list = Vec::new();
    for a in actions {
        let parts: Vec<&str> = a.split('|').map(str::trim).collect();
        let (what, owner, when) = match parts.as_slice() {
            [what, owner] => (*what, *owner, due),
            [what, owner, date] => {
                let d: Date = date.parse().map_err(|e| {
                    OversightError::Invalid(format!("action `{a}`: `{date}` is not a date (YYYY-MM-DD): {e}"))
                })?;
                (*what, *owner, d)
            }
            _ => return Err(OversightError::Invalid(format!("action `{a}` is not `WHAT|OWNER` or `WHAT|OWNER|DATE`"))),
        };
        if what.is_empty() || owner.is_empty() {
            return Err(OversightError::Invalid(format!("action `{a}` needs both what is done and who owns it")));
        }
        list.push(json!({"action": what, "owner": owner, "due": when.to_string()}));
    }
    let review = json!({
        "root_cause": root_cause, "actions": list, "due": due.to_string(), "written_ms": psf_store::now_ms(),
    });
    Ok(store.set_incident_review(id, &review).await?)
}

/// Renders a comms template (IR-4) for an incident: `{placeholders}` filled from `values`
/// first, then from the incident and the manifest. A placeholder left unfilled is an
/// error naming every one of them, never a message sent with `{braces}` in it.
pub fn render_comms(
    manifest: &Manifest,
    template: &str,
    incident: &Incident,
    values: &[(String, String)],
) -> Result<String, OversightError> {
    let Some(t) = manifest.incident_plan.as_ref().and_then(|p| p.comms_templates.iter().find(|t| t.id == template))
    else {
        return Err(OversightError::NotFound(format!("no comms template `{template}` in the manifest")));
    };
    let declared = Timestamp::from_millisecond(incident.declared_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let status = if incident.resolved_ms.is_some() { "resolved" } else { "ongoing" };
    let mut out = String::with_capacity(t.text.len());
    let mut missing = Vec::new();
    let mut rest = t.text.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = &rest[open + 1..open + close];
        let value = match (values.iter().find(|(k, _)| k == name), name) {
            (Some((_, v)), _) => v.clone(),
            (None, "system") => manifest.system.name.clone(),
            (None, "incident_id") => incident.id.clone(),
            (None, "severity") => incident.severity.clone(),
            (None, "reason") => incident.reason.clone(),
            (None, "scope") => incident.scope.clone(),
            (None, "status") => status.to_string(),
            (None, "declared_at") => declared.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            (None, "contact") => manifest.system.owner.email.clone(),
            (None, other) => {
                missing.push(other.to_string());
                String::new()
            }
        };
        out.push_str(&value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    if !missing.is_empty() {
        return Err(OversightError::Invalid(format!(
            "comms template `{template}` needs {}; give each with `--set NAME=VALUE` (psf fills system, incident_id, severity, reason, scope, status, declared_at, contact)",
            missing.iter().map(|m| format!("{{{m}}}")).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(out)
}

/// Records a drill (IR-5): the incident it declared and, per gateway, the time until
/// calls were refused and until they flowed again. The incident must be a drill.
pub async fn record_drill(
    store: &Store,
    incident_id: &str,
    by: &str,
    gateways: &[Value],
) -> Result<Event, OversightError> {
    let Some(incident) = store.incident(incident_id).await? else {
        return Err(OversightError::NotFound(format!("no incident `{incident_id}`")));
    };
    if !incident.drill {
        return Err(OversightError::Invalid(format!("incident `{incident_id}` is not a drill")));
    }
    let worst = |field: &str| gateways.iter().filter_map(|g| g.get(field).and_then(Value::as_f64)).reduce(f64::max);
    let (disable, recover) = (worst("time_to_disable_ms"), worst("time_to_recover_ms"));
    let Some(disable_ms) = disable else {
        return Err(OversightError::Invalid("a drill records `time_to_disable_ms` for each gateway".into()));
    };
    let event = Event {
        ts_ms: psf_store::now_ms(),
        kind: Code::Ir5Drill.as_str().into(),
        severity: "info".into(),
        app: None,
        key_id: None,
        summary: format!("drill {incident_id}: disabled in {disable_ms:.0} ms on {} gateways", gateways.len()),
        detail: json!({"incident_id": incident_id, "by": by, "scope": incident.scope, "gateways": gateways,
                       "time_to_disable_ms": disable_ms, "time_to_recover_ms": recover}),
    };
    store.insert_event(&event).await?;
    Ok(event)
}

/// Erases a subject (DG-3): destroys its data key and its records, records the erasure
/// as a `DG-3.erasure` event (with the subject's hash only), and verifies that nothing
/// of it remains.
pub async fn erase(
    store: &Store,
    subject: &str,
    by: &str,
) -> Result<(psf_store::Erasure, psf_store::Remaining), OversightError> {
    if subject.trim().is_empty() || by.trim().is_empty() {
        return Err(OversightError::Invalid("an erasure needs the subject and who asks for it".into()));
    }
    let receipt = store.erase_subject(subject.trim(), by).await?;
    let remaining = store.subject_remaining(subject.trim()).await?;
    store
        .insert_event(&Event {
            ts_ms: receipt.erased_ms,
            kind: Code::Dg3Erasure.as_str().into(),
            severity: "info".into(),
            app: None,
            key_id: None,
            summary: format!("subject {} erased at the request of {by}", receipt.subject),
            detail: json!({"receipt": receipt, "verified_empty": remaining.is_empty()}),
        })
        .await?;
    Ok((receipt, remaining))
}
