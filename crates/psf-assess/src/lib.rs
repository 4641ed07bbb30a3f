//! psf-assess: the assessment. Every PSF competency is decided from evidence — the
//! manifest, and what the gateway's records show it did — and the CPAP rubric's five
//! dimensions are scored from the verdicts and the records.
//!
//! The shape: [`runtime::gather`] reads the store once into [`Runtime`] (counts computed in
//! the database, a sample of audit records scanned for PII); [`assess`] is then a pure
//! function of the manifest, the runtime facts and [`Options`] (the clock is an input), so
//! reports are reproducible and golden tests hold. Each competency has one rule in
//! `rules`; a new source of evidence is a field on [`Runtime`] and the rules that read it.
//!
//! Fail closed: a verdict that passes (`enforced`, `evidenced`) needs evidence that exists,
//! parses and falls inside its time window; anything else is `partial` or `missing` with
//! the gap spelled out. Runtime evidence beats a claim: PII found in the audit log makes
//! IG-3 `missing` whatever the manifest says.
#![deny(missing_docs)]

pub mod attest;
mod context;
pub mod html;
pub mod oscal;
pub mod package;
mod person;
pub mod report;
pub mod rubric;
mod rules;
pub mod runtime;

use jiff::civil::Date;
use psf_core::Manifest;
use psf_core::yaml::SpanMap;
use serde::Serialize;

pub use context::Evidence;
pub use rubric::{Dimension, Level};
pub use runtime::Runtime;

/// The version of the JSON report's schema (`docs/assessment-schema.md`).
pub const SCHEMA_VERSION: &str = "psf.assessment/v1";

/// What an assessment needs besides the evidence.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Today, for dated evidence (reviews, drills, terms).
    pub today: Date,
    /// The evaluation window in days: runtime records older than this are not read, and
    /// dated reviews older than a year (or this window, if longer) are stale.
    pub window_days: u32,
}

/// A manifest's text, where it came from, and its parsed forms.
#[derive(Debug)]
pub struct ManifestInput<'a> {
    /// The file name, as reports show it.
    pub file: &'a str,
    /// The typed manifest (valid: `psf check` passed).
    pub manifest: &'a Manifest,
    /// The manifest as JSON, for hashing the node each evidence item cites.
    pub value: &'a serde_json::Value,
    /// Where each node is in the file.
    pub spans: &'a SpanMap,
    /// The SHA-256 of the file's bytes.
    pub sha256: String,
    /// The errors `psf check` found in it: each makes the competencies it bears on unmet.
    pub errors: &'a [psf_core::Diagnostic],
}

/// A manifest checked and parsed, owning what [`ManifestInput`] borrows.
#[derive(Debug)]
pub struct ParsedManifest {
    file: String,
    manifest: Manifest,
    doc: psf_core::yaml::Document,
    sha256: String,
    errors: Vec<psf_core::Diagnostic>,
}

impl ParsedManifest {
    /// Checks `text` as `psf check` does; a manifest with errors cannot be assessed, and
    /// its diagnostics come back to be shown.
    pub fn new(file: &str, text: &str, today: Date) -> Result<ParsedManifest, Vec<psf_core::Diagnostic>> {
        let parsed = ParsedManifest::with_errors(file, text, today)?;
        if parsed.errors.is_empty() { Ok(parsed) } else { Err(parsed.errors) }
    }

    /// Checks `text` as `psf check` does, and keeps a manifest that has errors but can
    /// still be read as a manifest: it is assessed, and every competency an error bears on
    /// is not met, citing the error ([`ParsedManifest::errors`]). Only a manifest that
    /// cannot be read at all (YAML or schema errors) comes back as `Err`.
    pub fn with_errors(file: &str, text: &str, today: Date) -> Result<ParsedManifest, Vec<psf_core::Diagnostic>> {
        let checked = psf_core::check(text, &psf_core::CheckOptions { today });
        let errors: Vec<_> =
            checked.diagnostics.iter().filter(|d| d.severity == psf_core::Severity::Error).cloned().collect();
        let Some(manifest) = checked.manifest else { return Err(errors) };
        let doc = psf_core::yaml::parse(text).map_err(|_| errors.clone())?;
        Ok(ParsedManifest {
            file: file.to_string(),
            manifest,
            doc,
            sha256: context::sha256_hex(text.as_bytes()),
            errors,
        })
    }

    /// The `psf check` errors the manifest has (none from [`ParsedManifest::new`]).
    pub fn errors(&self) -> &[psf_core::Diagnostic] {
        &self.errors
    }

    /// The typed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// What [`assess`] reads.
    pub fn input(&self) -> ManifestInput<'_> {
        ManifestInput {
            file: &self.file,
            manifest: &self.manifest,
            value: &self.doc.value,
            spans: &self.doc.spans,
            sha256: self.sha256.clone(),
            errors: &self.errors,
        }
    }
}

/// What the assessment decided about one competency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The gateway enforces it and the records in the window show it working.
    Enforced,
    /// The manifest or a record documents it, and the documentation passes its checks.
    Evidenced,
    /// Some of what it needs is there.
    Partial,
    /// Nothing that meets it, or evidence that contradicts it.
    Missing,
    /// No automated check exists; a person must look. Never counted as a pass.
    Manual,
    /// Declared not applicable in the manifest, with a reason.
    NotApplicable,
}

impl Status {
    /// Every status, in report order.
    pub const ALL: [Status; 6] =
        [Status::Enforced, Status::Evidenced, Status::Partial, Status::Missing, Status::Manual, Status::NotApplicable];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enforced => "enforced",
            Status::Evidenced => "evidenced",
            Status::Partial => "partial",
            Status::Missing => "missing",
            Status::Manual => "manual",
            Status::NotApplicable => "not applicable",
        }
    }

    /// Whether the competency is met.
    pub fn is_met(self) -> bool {
        matches!(self, Status::Enforced | Status::Evidenced | Status::NotApplicable)
    }

    /// How serious the gap is, for `--fail-on` (None when met or manual).
    pub fn severity(self) -> Option<FindingSeverity> {
        match self {
            Status::Missing => Some(FindingSeverity::High),
            Status::Partial => Some(FindingSeverity::Medium),
            _ => None,
        }
    }
}

/// The severity of a finding, for CI gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingSeverity {
    /// A partial competency.
    Medium,
    /// A missing competency (or one the records contradict).
    High,
}

/// The verdict on one competency.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The competency id, `IG-1` … `EA-5`.
    pub id: &'static str,
    /// Its domain id.
    pub domain: &'static str,
    /// Its short title.
    pub title: &'static str,
    /// The PSF statement it paraphrases.
    pub statement: &'static str,
    /// The decision.
    pub status: Status,
    /// One sentence on why.
    pub summary: String,
    /// What was looked at.
    pub evidence: Vec<Evidence>,
    /// What exactly would meet it, when it is not met.
    pub gaps: Vec<String>,
    /// Whether records (or the manifest's own check errors) contradict the manifest's
    /// claim here; the contradicting evidence comes first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub contradicted: bool,
    /// The manifest's suppression of its gap, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppressed>,
}

/// A gap the manifest accepts for a time (`suppressions:`). While active it does not
/// fail `--fail-on`; it never hides the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    /// Why the gap is accepted.
    pub reason: String,
    /// The last day it holds.
    pub expires: Date,
    /// Who accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Whether the assessment day is on or before the expiry.
    pub active: bool,
}

impl Verdict {
    /// Whether an active suppression covers this verdict's gap.
    pub fn is_suppressed(&self) -> bool {
        !self.status.is_met() && self.suppression.as_ref().is_some_and(|s| s.active)
    }

    /// How the suppression reads in a report: `suppressed until 2027-01-31 (reason)`, or
    /// that it has expired.
    pub fn suppression_note(&self) -> Option<String> {
        let s = self.suppression.as_ref()?;
        let by = s.approved_by.as_deref().map(|p| format!(", accepted by {p}")).unwrap_or_default();
        Some(if s.active {
            format!("suppressed until {}{by}: {}", s.expires, s.reason)
        } else {
            format!("suppression expired on {}{by}; the gap counts again: {}", s.expires, s.reason)
        })
    }
}

/// One whole assessment.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// [`SCHEMA_VERSION`].
    pub schema: &'static str,
    /// psf's version.
    pub psf_version: &'static str,
    /// The PSF version of the catalog.
    pub catalog_version: &'static str,
    /// The system assessed.
    pub system: String,
    /// Its accountable owner (EA-1), `Name <email>`: who the gaps fall to.
    pub owner: String,
    /// The manifest file and its SHA-256.
    pub manifest: ManifestRef,
    /// The day of the assessment.
    pub date: Date,
    /// The evaluation window in days.
    pub window_days: u32,
    /// Whether runtime records were read (a store was given).
    pub runtime: Option<runtime::RuntimeSummary>,
    /// How many competencies have each status.
    pub counts: Counts,
    /// One verdict per competency, in catalog order.
    pub verdicts: Vec<Verdict>,
    /// The CPAP rubric's five dimensions.
    pub rubric: Vec<Dimension>,
    /// The risk register, scored.
    pub risks: Vec<rubric::ScoredRisk>,
    /// What changed since a previous assessment, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_previous: Option<Comparison>,
}

/// An assessment set against an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The earlier assessment's day.
    pub previous_date: String,
    /// Competencies whose status changed, in catalog order.
    pub changes: Vec<Change>,
}

/// One competency's change of status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The competency id.
    pub id: &'static str,
    /// Its status before (as the earlier report wrote it).
    pub from: String,
    /// Its status now.
    pub to: Status,
}

impl Change {
    /// Whether the competency got better: from unmet to met, or from missing to partial.
    pub fn is_improvement(&self) -> bool {
        let rank = |s: &str| match s {
            "enforced" | "evidenced" | "not applicable" | "not_applicable" => 3,
            "partial" => 2,
            "manual" => 1,
            _ => 0,
        };
        rank(self.to.as_str()) > rank(&self.from)
    }
}

/// The manifest an assessment read.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestRef {
    /// As given on the command line.
    pub file: String,
    /// The SHA-256 of its bytes.
    pub sha256: String,
}

/// How many competencies have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Enforced.
    pub enforced: usize,
    /// Evidenced.
    pub evidenced: usize,
    /// Partial.
    pub partial: usize,
    /// Missing.
    pub missing: usize,
    /// Manual.
    pub manual: usize,
    /// Not applicable.
    pub not_applicable: usize,
}

impl Counts {
    fn of(verdicts: &[Verdict]) -> Counts {
        let mut c = Counts::default();
        for v in verdicts {
            *match v.status {
                Status::Enforced => &mut c.enforced,
                Status::Evidenced => &mut c.evidenced,
                Status::Partial => &mut c.partial,
                Status::Missing => &mut c.missing,
                Status::Manual => &mut c.manual,
                Status::NotApplicable => &mut c.not_applicable,
            } += 1;
        }
        c
    }

    /// The count for one status.
    pub fn get(&self, status: Status) -> usize {
        match status {
            Status::Enforced => self.enforced,
            Status::Evidenced => self.evidenced,
            Status::Partial => self.partial,
            Status::Missing => self.missing,
            Status::Manual => self.manual,
            Status::NotApplicable => self.not_applicable,
        }
    }
}

impl Assessment {
    /// The summary line: "40 competencies: 28 enforced, 7 partial, 3 missing, 2 manual".
    pub fn summary_line(&self) -> String {
        let parts: Vec<String> = Status::ALL
            .iter()
            .filter(|s| self.counts.get(**s) > 0)
            .map(|s| format!("{} {}", self.counts.get(*s), s.as_str()))
            .collect();
        let suppressed = self.verdicts.iter().filter(|v| v.is_suppressed()).count();
        let note = match suppressed {
            0 => String::new(),
            1 => " (1 gap suppressed)".to_string(),
            n => format!(" ({n} gaps suppressed)"),
        };
        format!("{} competencies: {}{note}", self.verdicts.len(), parts.join(", "))
    }

    /// Sets [`Assessment::since_previous`] from an earlier JSON report
    /// (`psf.assessment/v1`); the error says what in it is unreadable.
    pub fn compare_with(&mut self, previous: &serde_json::Value) -> Result<(), String> {
        if previous["schema"] != SCHEMA_VERSION {
            return Err(format!("not a {SCHEMA_VERSION} report (its `schema` is {})", previous["schema"]));
        }
        if previous["system"] != self.system.as_str() {
            return Err(format!("the earlier report is of another system ({})", previous["system"]));
        }
        let previous_date = previous["date"].as_str().ok_or("the earlier report has no `date`")?.to_string();
        let before: std::collections::HashMap<&str, &str> = previous["verdicts"]
            .as_array()
            .ok_or("the earlier report has no `verdicts` list")?
            .iter()
            .filter_map(|v| Some((v["id"].as_str()?, v["status"].as_str()?)))
            .collect();
        let changes = self
            .verdicts
            .iter()
            .filter_map(|v| {
                let from = before.get(v.id).copied().unwrap_or("not assessed");
                let now = serde_json::to_value(v.status).ok()?;
                (now.as_str() != Some(from)).then(|| Change { id: v.id, from: from.replace('_', " "), to: v.status })
            })
            .collect();
        self.since_previous = Some(Comparison { previous_date, changes });
        Ok(())
    }

    /// The most serious finding that no active suppression covers, if any.
    pub fn worst(&self) -> Option<FindingSeverity> {
        self.verdicts.iter().filter(|v| !v.is_suppressed()).filter_map(|v| v.status.severity()).max()
    }
}

/// Assesses a manifest, with the gateway's records when there are some.
pub fn assess(input: &ManifestInput<'_>, runtime: Option<&Runtime>, options: &Options) -> Assessment {
    let ctx = context::Ctx::new(input, runtime, options);
    let verdicts: Vec<Verdict> = psf_core::catalog::COMPETENCIES.iter().map(|c| rules::decide(&ctx, c)).collect();
    let risks = rubric::scored_risks(input.manifest, &verdicts);
    let rubric = rubric::score(input.manifest, runtime, &verdicts, &risks);
    let owner = &input.manifest.system.owner;
    Assessment {
        schema: SCHEMA_VERSION,
        psf_version: env!("CARGO_PKG_VERSION"),
        catalog_version: psf_core::catalog::PSF_VERSION,
        system: input.manifest.system.name.clone(),
        owner: format!("{} <{}>", owner.name, owner.email),
        manifest: ManifestRef { file: input.file.to_string(), sha256: input.sha256.clone() },
        date: options.today,
        window_days: options.window_days,
        runtime: runtime.map(Runtime::summary),
        counts: Counts::of(&verdicts),
        verdicts,
        rubric,
        risks,
        since_previous: None,
    }
}
