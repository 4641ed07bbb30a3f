//! What a rule sees: the manifest with its positions, the runtime facts, the clock; and
//! the evidence items rules cite, each hashed so a report's appendix can be checked.

use jiff::civil::Date;
use psf_core::Manifest;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::runtime::Cited;
use crate::{ManifestInput, Options, Runtime};

/// One item of evidence a verdict rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// `manifest`, `audit_log`, `incidents` or `events`.
    pub kind: &'static str,
    /// Where: `psf.yaml:42 /decision_points/0/input`, or the store query.
    pub source: String,
    /// What it shows, in one line.
    pub observation: String,
    /// The time window it covers, for runtime evidence (`2026-10-24..2026-11-23`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// SHA-256 of the cited content: the manifest node as JSON; for audit records, the
    /// digest over the cited records' rows ([`crate::runtime::Cited`]); else the query's
    /// result as JSON.
    pub sha256: String,
    /// The audit records it rests on: how many, and the first ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<RecordRefs>,
    /// Whether these records contradict what the manifest declares.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub contradicts: bool,
}

/// The audit records an evidence item cites.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordRefs {
    /// How many records.
    pub count: u64,
    /// The first request ids.
    pub ids: Vec<String>,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    for &b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

pub(crate) struct Ctx<'a> {
    pub input: &'a ManifestInput<'a>,
    pub m: &'a Manifest,
    pub runtime: Option<&'a Runtime>,
    pub today: Date,
    pub window_days: u32,
}

impl<'a> Ctx<'a> {
    pub fn new(input: &'a ManifestInput<'a>, runtime: Option<&'a Runtime>, options: &Options) -> Ctx<'a> {
        Ctx { input, m: input.manifest, runtime, today: options.today, window_days: options.window_days }
    }

    /// Evidence from the manifest node at `pointer`.
    pub fn manifest(&self, pointer: &str, observation: impl Into<String>) -> Evidence {
        let line = self.input.spans.value_position(pointer).line;
        let node = self.input.value.pointer(pointer).map(ToString::to_string).unwrap_or_default();
        let shown = if pointer.is_empty() { "/" } else { pointer };
        Evidence {
            kind: "manifest",
            source: format!("{}:{line} {shown}", self.input.file),
            observation: observation.into(),
            window: None,
            sha256: sha256_hex(node.as_bytes()),
            records: None,
            contradicts: false,
        }
    }

    /// Evidence from a store query and its result.
    pub fn store(
        &self,
        kind: &'static str,
        query: &str,
        observation: impl Into<String>,
        result: &serde_json::Value,
    ) -> Evidence {
        Evidence {
            kind,
            source: query.to_string(),
            observation: observation.into(),
            window: self.runtime.map(Runtime::window_label),
            sha256: sha256_hex(result.to_string().as_bytes()),
            records: None,
            contradicts: false,
        }
    }

    /// Evidence from a set of audit records: the digest is over their rows.
    pub fn records(&self, source: impl Into<String>, observation: impl Into<String>, cited: &Cited) -> Evidence {
        Evidence {
            kind: "audit_log",
            source: source.into(),
            observation: observation.into(),
            window: self.runtime.map(Runtime::window_label),
            sha256: cited.sha256.clone(),
            records: Some(RecordRefs { count: cited.count, ids: cited.ids.clone() }),
            contradicts: false,
        }
    }

    /// Records that contradict the manifest.
    pub fn contradiction(&self, source: impl Into<String>, observation: impl Into<String>, cited: &Cited) -> Evidence {
        Evidence { contradicts: true, ..self.records(source, observation, cited) }
    }

    /// Whether a dated review is fresh: within a year, or within the window if longer.
    pub fn fresh(&self, date: Date) -> bool {
        self.age_days(date).is_some_and(|age| age <= i64::from(self.window_days.max(365)))
    }

    /// Days from `date` to today; `None` for a date in the future.
    pub fn age_days(&self, date: Date) -> Option<i64> {
        (date <= self.today).then(|| i64::from((self.today - date).get_days()))
    }

    /// The runtime facts, if there are records in the window.
    pub fn traffic(&self) -> Option<&'a Runtime> {
        self.runtime.filter(|r| r.summary.requests > 0)
    }
}
