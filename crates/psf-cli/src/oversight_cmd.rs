//! `psf review` and `psf incident`: human oversight and incident response from a shell,
//! against the store the gateways share. They go through `psf_gateway::oversight`, the
//! same checks and records as the admin API.

use std::io::{self, Write as _};
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use psf_gateway::oversight::{self, OversightError};
use psf_store::{Incident, NewIncident, Review, ReviewDecision, Store};

use crate::{OutputFormat, read_manifest, today};

/// `psf review …`.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// List held answers (pending by default).
    List {
        /// pending, approved, edited, rejected or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Show one held answer: the redacted input, the output, the findings, the confidence.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Deliver the answer as it is.
    Approve {
        id: String,
        /// Who decides: a reviewer the manifest names for the decision point.
        #[arg(long)]
        reviewer: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Deliver this text instead of the answer.
    Edit {
        id: String,
        #[arg(long)]
        reviewer: String,
        /// The text to deliver.
        #[arg(long)]
        output: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Deliver nothing; the client is told the answer was rejected and why.
    Reject {
        id: String,
        #[arg(long)]
        reviewer: String,
        #[arg(long)]
        reason: String,
    },
    /// Record that a delivered answer was overridden after the fact (HO-4).
    Override {
        /// The request id (`x-request-id`).
        request_id: String,
        /// Who overrides: a reviewer of its decision point, or the system owner.
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
        /// The corrected answer, if there is one.
        #[arg(long)]
        output: Option<String>,
    },
}

/// `psf incident …`.
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Declare an incident: in force on every gateway sharing the store within a second.
    Declare {
        /// disable (refuse calls), degrade (serve the degraded response) or isolate (cut a provider or app).
        #[arg(long)]
        action: String,
        /// all, app:ID, point:ID or provider:ID.
        #[arg(long)]
        scope: String,
        /// sev1 (worst) to sev4.
        #[arg(long)]
        severity: String,
        #[arg(long)]
        reason: String,
        /// Who declares it.
        #[arg(long)]
        by: String,
        /// A rehearsal (no post-incident review is due).
        #[arg(long)]
        drill: bool,
    },
    /// Resolve an incident: calls flow again.
    Resolve {
        id: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        resolution: String,
    },
    /// List incidents in force (all with `--all`), with overdue post-incident reviews marked.
    List {
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Record the post-incident review (IR-3): root cause and remediation actions.
    Review {
        id: String,
        #[arg(long)]
        root_cause: String,
        /// `WHAT|OWNER` or `WHAT|OWNER|YYYY-MM-DD`; repeat for each action.
        #[arg(long = "action")]
        actions: Vec<String>,
    },
    /// Render a comms template from the manifest for an incident (IR-4).
    Comms {
        id: String,
        #[arg(long)]
        template: String,
        /// A value for one of the template's own placeholders: `NAME=VALUE`; repeat.
        #[arg(long = "set", value_parser = name_value)]
        values: Vec<(String, String)>,
    },
}

/// `psf retention …`.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Delete and anonymise what the manifest's retention says has expired, now (the
    /// gateway does it hourly); the run is recorded as a `DG-2.retention` event.
    Sweep {
        /// Sweep as if it were this instant (RFC 3339), to see what a later run removes.
        #[arg(long)]
        now: Option<jiff::Timestamp>,
    },
}

/// `psf retention …`.
pub fn retention(command: RetentionCommand, manifest_path: &Path, store: &str) -> io::Result<ExitCode> {
    let RetentionCommand::Sweep { now } = command;
    let m = match manifest(manifest_path) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let pii = psf_detect::PiiDetector::new().map_err(io::Error::other)?;
    let now_ms = now.map_or_else(psf_store::now_ms, |t| t.as_millisecond());
    runtime()?.block_on(async {
        let s = match Store::open(store).await {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let result = psf_gateway::retention::sweep(&s, &m, &pii, now_ms).await;
        s.close().await;
        match result {
            Ok(w) => {
                writeln!(
                    io::stdout().lock(),
                    "deleted {} audit records, {} events, {} reviews; anonymised {} reviews",
                    w.audit_records,
                    w.events,
                    w.reviews,
                    w.reviews_anonymised
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => fail(&e.to_string()),
        }
    })
}

/// `psf erase`: erases a subject (DG-3) and prints the receipt and the verification.
pub fn erase(subject: &str, by: &str, store: &str, format: OutputFormat) -> io::Result<ExitCode> {
    runtime()?.block_on(async {
        let s = match Store::open(store).await {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let result = oversight::erase(&s, subject, by).await;
        s.close().await;
        let (receipt, remaining) = match result {
            Ok(r) => r,
            Err(e) => return refused(&e),
        };
        if matches!(format, OutputFormat::Json) {
            return print_json(&serde_json::json!({"receipt": receipt, "remaining": remaining}));
        }
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "erasure {} for subject {} (requested by {})",
            receipt.id, receipt.subject, receipt.requested_by
        )?;
        writeln!(out, "  data keys destroyed  {}", receipt.keys_destroyed)?;
        writeln!(out, "  held values deleted  {}", receipt.held_values)?;
        writeln!(out, "  audit records        {}", receipt.audit_records)?;
        writeln!(out, "  reviews              {}", receipt.reviews)?;
        if remaining.is_empty() {
            writeln!(out, "verified: nothing of this subject remains in the store")?;
            Ok(ExitCode::SUCCESS)
        } else {
            writeln!(out, "NOT VERIFIED: still there: {remaining:?}")?;
            Ok(ExitCode::from(1))
        }
    })
}

/// `psf migrate`: applies the store's migrations and says where it stands.
pub fn migrate(store: &str) -> io::Result<ExitCode> {
    runtime()?.block_on(async {
        let s = match Store::open(store).await {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let version = s.schema_version().await;
        s.close().await;
        match version {
            Ok(v) => {
                writeln!(io::stdout().lock(), "{} store at schema {v}", s.backend_name())?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => fail(&e.to_string()),
        }
    })
}

fn name_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

fn fail(message: &str) -> io::Result<ExitCode> {
    eprintln!("psf: {message}");
    Ok(ExitCode::from(2))
}

/// The manifest, checked (values from the environment are not needed here).
fn manifest(path: &Path) -> Result<psf_core::Manifest, String> {
    let text = read_manifest(path)?;
    psf_core::check(&text, &psf_core::CheckOptions { today: today() }).manifest.ok_or_else(|| {
        format!("{}: the manifest has errors; `psf check {}` shows them", path.display(), path.display())
    })
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

fn refused(e: &OversightError) -> io::Result<ExitCode> {
    fail(&e.to_string())
}

fn print_json(value: &impl serde::Serialize) -> io::Result<ExitCode> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    writeln!(io::stdout().lock(), "{text}")?;
    Ok(ExitCode::SUCCESS)
}

fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
}

/// `psf review …`.
pub fn review(command: ReviewCommand, manifest_path: &Path, store: &str) -> io::Result<ExitCode> {
    runtime()?.block_on(async {
        let s = match Store::open(store).await {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let code = review_on(&s, command, manifest_path).await;
        s.close().await;
        code
    })
}

async fn review_on(s: &Store, command: ReviewCommand, manifest_path: &Path) -> io::Result<ExitCode> {
    let mut out = io::stdout().lock();
    let (id, decision, reviewer, note) = match command {
        ReviewCommand::List { status, format } => {
            let filter = if status == "all" { None } else { Some(status.as_str()) };
            let list = match s.reviews(filter, 10_000).await {
                Ok(l) => l,
                Err(e) => return fail(&e.to_string()),
            };
            if matches!(format, OutputFormat::Json) {
                return print_json(&list);
            }
            writeln!(
                out,
                "{:<36} {:<20} {:<15} {:<9} {:<21} DEADLINE",
                "ID", "DECISION POINT", "REASON", "STATUS", "HELD"
            )?;
            for r in &list {
                let deadline = r.deadline_ms.map(when).unwrap_or_default();
                let late = if r.escalated_ms.is_some() { " (escalated)" } else { "" };
                writeln!(
                    out,
                    "{:<36} {:<20} {:<15} {:<9} {:<21} {deadline}{late}",
                    r.id,
                    r.decision_point,
                    r.reason,
                    r.status,
                    when(r.created_ms)
                )?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        ReviewCommand::Show { id, format } => {
            let r = match s.review(&id).await {
                Ok(Some(r)) => r,
                Ok(None) => return fail(&format!("no review `{id}`; `psf review list` shows the pending ones")),
                Err(e) => return fail(&e.to_string()),
            };
            if matches!(format, OutputFormat::Json) {
                return print_json(&r);
            }
            show(&mut out, &r)?;
            return Ok(ExitCode::SUCCESS);
        }
        ReviewCommand::Override { request_id, by, reason, output } => {
            let m = match manifest(manifest_path) {
                Ok(m) => m,
                Err(e) => return fail(&e),
            };
            let pii = psf_detect::PiiDetector::new().map_err(io::Error::other)?;
            return match oversight::record_override(s, &m, &pii, &request_id, &by, &reason, output.as_deref()).await {
                Ok(_) => {
                    writeln!(out, "recorded: the answer to {request_id} was overridden by {by}")?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => refused(&e),
            };
        }
        ReviewCommand::Approve { id, reviewer, note } => (id, ReviewDecision::Approve, reviewer, note),
        ReviewCommand::Edit { id, reviewer, output, note } => (id, ReviewDecision::Edit(output), reviewer, note),
        ReviewCommand::Reject { id, reviewer, reason } => (id, ReviewDecision::Reject, reviewer, Some(reason)),
    };
    let m = match manifest(manifest_path) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let pii = psf_detect::PiiDetector::new().map_err(io::Error::other)?;
    match oversight::decide(s, &m, &pii, &id, &decision, &reviewer, note.as_deref()).await {
        Ok(r) => {
            writeln!(out, "{id}: {} by {reviewer}; the client collects it from its status URL", r.status)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refused(&e),
    }
}

fn show(out: &mut impl io::Write, r: &Review) -> io::Result<()> {
    writeln!(out, "review      {}", r.id)?;
    writeln!(out, "request     {}", r.request_id)?;
    writeln!(out, "point       {} (held: {})", r.decision_point, r.reason)?;
    writeln!(out, "status      {}", r.status)?;
    writeln!(out, "held        {}", when(r.created_ms))?;
    if let Some(d) = r.deadline_ms {
        let late = if r.escalated_ms.is_some() { " — passed, escalated" } else { "" };
        writeln!(out, "deadline    {}{late}", when(d))?;
    }
    if let Some(c) = r.confidence {
        writeln!(out, "confidence  mean log-probability {c:.2}")?;
    }
    writeln!(out, "\ninput (PII redacted):")?;
    for m in r.input_redacted.as_array().into_iter().flatten() {
        let role = m.get("role").and_then(|v| v.as_str()).unwrap_or("?");
        let text =
            m.get("content").map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string)).unwrap_or_default();
        writeln!(out, "  {role}: {text}")?;
    }
    writeln!(out, "\noutput (placeholders stand for the caller's own values):\n  {}", r.output)?;
    let flagged: Vec<String> = r
        .findings
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f.get("decision").and_then(|d| d.as_str()) != Some("pass"))
        .map(|f| {
            let code = f.get("code").and_then(|v| v.as_str()).unwrap_or("?");
            let decision = f.get("decision").and_then(|v| v.as_str()).unwrap_or("?");
            let detail = f.get("detail").and_then(|v| v.as_str()).unwrap_or("");
            format!("  {code}: {decision} {detail}")
        })
        .collect();
    writeln!(out, "\nfindings:\n{}", if flagged.is_empty() { "  none".to_string() } else { flagged.join("\n") })?;
    if let Some(who) = &r.reviewer {
        writeln!(out, "\ndecided by {who}: {}", r.note.as_deref().unwrap_or(""))?;
    }
    Ok(())
}

/// `psf incident …`.
pub fn incident(command: IncidentCommand, manifest_path: &Path, store: &str) -> io::Result<ExitCode> {
    runtime()?.block_on(async {
        let s = match Store::open(store).await {
            Ok(s) => s,
            Err(e) => return fail(&e.to_string()),
        };
        let code = incident_on(&s, command, manifest_path).await;
        s.close().await;
        code
    })
}

async fn incident_on(s: &Store, command: IncidentCommand, manifest_path: &Path) -> io::Result<ExitCode> {
    let mut out = io::stdout().lock();
    match command {
        IncidentCommand::Declare { action, scope, severity, reason, by, drill } => {
            let m = match manifest(manifest_path) {
                Ok(m) => m,
                Err(e) => return fail(&e),
            };
            let new = NewIncident { declared_by: by, action, scope, severity, reason, drill };
            let pii = psf_detect::PiiDetector::new().map_err(io::Error::other)?;
            match oversight::declare(s, &m, &pii, &new).await {
                Ok(i) => {
                    writeln!(out, "declared {}: {} {} ({})", i.id, i.action, i.scope, i.severity)?;
                    writeln!(
                        out,
                        "in force on every gateway using this store within a second; `psf incident resolve {}` lifts it",
                        i.id
                    )?;
                    if !i.drill {
                        let due = psf_core::calendar::review_due(i.declared_ms);
                        writeln!(out, "post-incident review due {due} (`psf incident review {}`)", i.id)?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => refused(&e),
            }
        }
        IncidentCommand::Resolve { id, by, resolution } => match oversight::resolve(
            s,
            &psf_detect::PiiDetector::new().map_err(io::Error::other)?,
            &id,
            &by,
            &resolution,
        )
        .await
        {
            Ok(i) => {
                writeln!(
                    out,
                    "resolved {} after {} s",
                    i.id,
                    (i.resolved_ms.unwrap_or(i.declared_ms) - i.declared_ms) / 1000
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => refused(&e),
        },
        IncidentCommand::List { all, format } => {
            let list = match s.incidents(!all).await {
                Ok(l) => l,
                Err(e) => return fail(&e.to_string()),
            };
            let day = today();
            if matches!(format, OutputFormat::Json) {
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|i| {
                        let mut v = serde_json::to_value(i).unwrap_or_default();
                        v["review_due"] = serde_json::json!(psf_core::calendar::review_due(i.declared_ms).to_string());
                        v["review_overdue"] = serde_json::json!(oversight::review_overdue(i, day));
                        v
                    })
                    .collect();
                return print_json(&rows);
            }
            writeln!(out, "{:<36} {:<8} {:<24} {:<5} {:<21} STATE", "ID", "ACTION", "SCOPE", "SEV", "DECLARED")?;
            for i in &list {
                writeln!(
                    out,
                    "{:<36} {:<8} {:<24} {:<5} {:<21} {}",
                    i.id,
                    i.action,
                    i.scope,
                    i.severity,
                    when(i.declared_ms),
                    state(i, day)
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCommand::Review { id, root_cause, actions } => {
            match oversight::post_incident_review(s, &id, &root_cause, &actions).await {
                Ok(i) => {
                    let n = i.review.as_ref().and_then(|r| r["actions"].as_array().map(Vec::len)).unwrap_or(0);
                    writeln!(out, "recorded the post-incident review of {id} ({n} actions)")?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => refused(&e),
            }
        }
        IncidentCommand::Comms { id, template, values } => {
            let m = match manifest(manifest_path) {
                Ok(m) => m,
                Err(e) => return fail(&e),
            };
            let i = match s.incident(&id).await {
                Ok(Some(i)) => i,
                Ok(None) => return fail(&format!("no incident `{id}`; `psf incident list --all` shows them")),
                Err(e) => return fail(&e.to_string()),
            };
            match oversight::render_comms(&m, &template, &i, &values) {
                Ok(text) => {
                    writeln!(out, "{text}")?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => refused(&e),
            }
        }
    }
}

fn state(i: &Incident, day: jiff::civil::Date) -> String {
    let mut s = if i.resolved_ms.is_some() { "resolved".to_string() } else { "IN FORCE".to_string() };
    if i.drill {
        s.push_str(", drill");
    } else if oversight::review_overdue(i, day) {
        s.push_str(&format!(", review overdue (due {})", psf_core::calendar::review_due(i.declared_ms)));
    } else if i.review_written() {
        s.push_str(", reviewed");
    }
    s
}
