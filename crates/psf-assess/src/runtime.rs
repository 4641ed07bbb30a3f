//! The runtime evidence: what the gateway's records in the evaluation window show.
//!
//! Gathered once from the store ([`gather`]), then read by the rules. A new source of
//! evidence (reviews, incidents, erasures) is a field here and a line in `gather`.

use std::collections::BTreeMap;

use psf_detect::PiiDetector;
use psf_store::{AuditQuery, AuditSummary, Store, StoreError};
use serde::Serialize;

/// How many of the newest audit records are scanned for PII in clear.
pub const PII_SAMPLE: u32 = 500;

/// What the records in the window show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runtime {
    /// Counts over the audit log.
    pub summary: AuditSummary,
    /// The newest records, scanned for PII left in clear.
    pub pii_sample: PiiSample,
    /// Events in the window by kind (`IG-4.abuse`, …).
    pub events: BTreeMap<String, u64>,
    /// Incidents declared in the window, with their post-incident reviews.
    pub incidents: Vec<psf_store::Incident>,
    /// Reasons the gateway gave in the window for an oversight review (`HO-5.review_due`:
    /// a new model version, drift, a quality drop), oldest first: the day and the summary.
    pub reviews_due: Vec<(jiff::civil::Date, String)>,
    /// The gateway's stored quality figures in the window (`OB-2.quality`), oldest
    /// first: the mean sampled score and the number of samples.
    pub quality: Vec<QualityFigure>,
    /// The window, as dates, for reports.
    pub window: (jiff::civil::Date, jiff::civil::Date),
    /// Each person's latest knowledge-check pass (`psf exam`) up to the window's end, by
    /// email: the day it was taken.
    pub passes: BTreeMap<String, jiff::civil::Date>,
}

/// One stored quality figure.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityFigure {
    /// When it was stored.
    pub day: jiff::civil::Date,
    /// The decision point.
    pub decision_point: String,
    /// The mean sampled score, 0 to 1.
    pub mean: f64,
    /// Answers sampled.
    pub samples: u64,
}

/// The result of scanning audit records for personal data in clear.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PiiSample {
    /// Records scanned.
    pub records: u64,
    /// Findings by entity type.
    pub findings: BTreeMap<String, u64>,
    /// Request ids of records with findings (at most ten), for follow-up.
    pub request_ids: Vec<String>,
}

/// The runtime part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeSummary {
    /// First day of the window.
    pub from: jiff::civil::Date,
    /// Last day of the window.
    pub to: jiff::civil::Date,
    /// Requests in the window.
    pub requests: u64,
    /// Distinct keys.
    pub distinct_keys: u64,
    /// Days with traffic.
    pub active_days: u64,
    /// Requests by outcome.
    pub by_outcome: BTreeMap<String, u64>,
    /// Audit records scanned for PII, and what was found.
    pub pii_sample: PiiSample,
}

impl Runtime {
    /// The window as `from..to`.
    pub fn window_label(&self) -> String {
        format!("{}..{}", self.window.0, self.window.1)
    }

    /// The summary a report carries.
    pub fn summary(&self) -> RuntimeSummary {
        RuntimeSummary {
            from: self.window.0,
            to: self.window.1,
            requests: self.summary.requests,
            distinct_keys: self.summary.distinct_keys,
            active_days: self.summary.active_days,
            by_outcome: self.summary.by_outcome.clone(),
            pii_sample: self.pii_sample.clone(),
        }
    }
}

/// Scans audit records' redacted input and output for PII that should not be there.
pub fn scan_records(detector: &PiiDetector, records: &[psf_store::AuditRecord]) -> PiiSample {
    scan_records_with(detector, records, &mut |_, _| {})
}

/// [`scan_records`], telling `progress` how many records are done, every 50.
fn scan_records_with(
    detector: &PiiDetector,
    records: &[psf_store::AuditRecord],
    progress: &mut dyn FnMut(u64, u64),
) -> PiiSample {
    let mut sample = PiiSample::default();
    let total = records.len() as u64;
    for (i, r) in records.iter().enumerate() {
        if i % 50 == 0 {
            progress(i as u64, total);
        }
        sample.records += 1;
        let input = r.input_redacted.to_string();
        let mut found = false;
        for text in [Some(input.as_str()), r.output_redacted.as_deref()].into_iter().flatten() {
            for f in detector.scan(text) {
                *sample.findings.entry(f.entity.label().to_string()).or_default() += 1;
                found = true;
            }
        }
        if found && sample.request_ids.len() < 10 {
            sample.request_ids.push(r.request_id.clone());
        }
    }
    progress(total, total);
    sample
}

/// A step of [`gather_with`], for a progress display: what is being read, and how far
/// it has got (`done` of `total`, both 0 when it cannot be counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// What is being read.
    pub step: &'static str,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// Reads the runtime evidence for the window `[today - window_days, today]` (UTC days),
/// `until_ms` being the end of the window.
pub async fn gather(
    store: &Store,
    today: jiff::civil::Date,
    window_days: u32,
    until_ms: i64,
) -> Result<Runtime, StoreError> {
    gather_with(store, today, window_days, until_ms, &mut |_| {}).await
}

/// [`gather`], telling `progress` each step as it starts and, while audit records are
/// scanned, how many are done: a large store takes a while, and a person waiting should
/// see it move.
pub async fn gather_with(
    store: &Store,
    today: jiff::civil::Date,
    window_days: u32,
    until_ms: i64,
    progress: &mut dyn FnMut(Progress),
) -> Result<Runtime, StoreError> {
    let since_ms = until_ms - i64::from(window_days) * 86_400_000;
    let mut step = |step: &'static str, done: u64, total: u64| progress(Progress { step, done, total });
    step("counting the audit log", 0, 0);
    let summary = store.audit_summary(since_ms, until_ms).await?;
    step("reading the newest audit records", 0, 0);
    let records = store
        .audit_records(&AuditQuery { since_ms: Some(since_ms), limit: Some(PII_SAMPLE), ..AuditQuery::default() })
        .await?;
    let detector = PiiDetector::new().map_err(|e| StoreError::other(e.to_string()))?;
    let pii_sample = scan_records_with(&detector, &records, &mut |done, total| {
        step("scanning records for personal data", done, total)
    });
    step("counting events", 0, 0);
    let events = store.event_counts(since_ms, until_ms).await?;
    step("reading incidents", 0, 0);
    let incidents =
        store.incidents(false).await?.into_iter().filter(|i| (since_ms..until_ms).contains(&i.declared_ms)).collect();
    let day =
        |ts_ms: i64| jiff::Timestamp::from_millisecond(ts_ms).ok().map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date());
    let reviews_due = store
        .events(Some("HO-5.review_due"), since_ms, 1000)
        .await?
        .into_iter()
        .filter(|e| e.ts_ms < until_ms)
        .filter_map(|e| Some((day(e.ts_ms)?, e.summary)))
        .collect();
    let from = today.checked_sub(jiff::Span::new().days(i64::from(window_days))).unwrap_or(today);
    let quality = store
        .events(Some("OB-2.quality"), since_ms, 100_000)
        .await?
        .into_iter()
        .filter(|e| e.ts_ms < until_ms)
        .filter_map(|e| {
            Some(QualityFigure {
                day: day(e.ts_ms)?,
                decision_point: e.detail["decision_point"].as_str()?.to_string(),
                mean: e.detail["mean"].as_f64()?,
                samples: e.detail["samples"].as_u64()?,
            })
        })
        .collect();
    step("reading knowledge-check passes", 0, 0);
    let passes = store
        .latest_passes()
        .await?
        .into_values()
        .filter(|r| r.taken_ms < until_ms)
        .filter_map(|r| Some((r.email, day(r.taken_ms)?)))
        .collect();
    Ok(Runtime { summary, pii_sample, events, incidents, reviews_due, quality, window: (from, today), passes })
}
