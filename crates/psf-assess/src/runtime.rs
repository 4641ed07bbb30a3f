//! The runtime evidence: what the gateway's records show.
//!
//! Two kinds of fact, read once ([`gather`]) and then only read by the rules:
//! - **Records of the window**: every audit record in `[since, until)`, walked in pages in
//!   bounded memory by a [`Collector`]. Each record is tallied under its decision point by
//!   what its stages decided, what it carried and where it went; each tally is a [`Cited`]
//!   set — its count, the first ids and a SHA-256 over the rows themselves — so a verdict
//!   can name the records it rests on and an assessor can recompute it (`psf verify
//!   --bundle`). Every stored text is scanned for personal data and secrets.
//! - **Obligations and side records** ([`StoreFacts`]): events, incidents, reviews and
//!   exam passes from *all* time, because an obligation (an incident without its review, a
//!   model change without an oversight review, a review past its deadline) does not expire
//!   with the window.
//!
//! The same [`Collector`] reads a bundle's `evidence/audit.jsonl`, so a bundle recomputes
//! to the very verdicts its report states.

use std::collections::BTreeMap;

use psf_detect::PiiDetector;
use psf_store::{AuditRecord, AuditSummary, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// How many audit records are read per page.
pub const PAGE: u32 = 500;

/// How many record ids a tally keeps to cite (its count and digest cover all of them).
pub const CITED_IDS: usize = 10;

/// The pseudo-decision under which a delivered record is tallied for a stage it did not
/// go through: a declared stage that never ran is a finding of its own.
pub const ABSENT: &str = "absent";

/// The stages whose absence from a delivered record the rules may need to see.
pub const TRACKED_STAGES: [&str; 16] = [
    "IG-1.sanitize",
    "IG-1.injection",
    "IG-2.schema",
    "IG-4.rate_limit",
    "IG-5.system_prompt",
    "IG-5.leak",
    "DG-1.pii",
    "DG-1.pii_output",
    "DG-5.residency",
    "OV-2.length",
    "OV-2.schema",
    "OV-3.content",
    "OV-3.scope",
    "OV-4.confidence",
    "OV-5.state",
    "HO-1.review",
];

/// A set of audit records: how many, the first few ids, and a digest over their rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cited {
    /// Records in the set.
    pub count: u64,
    /// The first [`CITED_IDS`] request ids, in store order.
    pub ids: Vec<String>,
    /// SHA-256 over the SHA-256 of each record's row (its JSON line, as
    /// `evidence/audit.jsonl` of a bundle holds it), in store order: one changed,
    /// added or removed record changes it.
    pub sha256: String,
}

impl Cited {
    /// Several sets as one (their counts added, ids and digests kept in order): for
    /// a verdict that rests on more than one tally.
    pub fn join<'a>(sets: impl IntoIterator<Item = &'a Cited>) -> Cited {
        let mut out = Cited::default();
        let mut hasher = Sha256::new();
        for s in sets {
            out.count += s.count;
            for id in &s.ids {
                if out.ids.len() < CITED_IDS && !out.ids.contains(id) {
                    out.ids.push(id.clone());
                }
            }
            hasher.update(s.sha256.as_bytes());
        }
        out.sha256 = crate::context::hex(&hasher.finalize());
        out
    }
}

#[derive(Debug, Clone, Default)]
struct Tally {
    count: u64,
    ids: Vec<String>,
    hasher: Sha256,
}

impl Tally {
    fn add(&mut self, id: &str, row: &[u8]) {
        self.count += 1;
        if self.ids.len() < CITED_IDS {
            self.ids.push(id.to_string());
        }
        self.hasher.update(row);
    }

    fn finish(self) -> Cited {
        Cited { count: self.count, ids: self.ids, sha256: crate::context::hex(&self.hasher.finalize()) }
    }
}

/// What the records of the window show for one decision point (records with no decision
/// point, refused before one was known, fall under `""`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointRecords {
    /// Every record of the point.
    pub all: Cited,
    /// By outcome (`delivered`, `blocked`, `held`, …).
    pub outcomes: BTreeMap<String, Cited>,
    /// By stage code, then decision; [`ABSENT`] for delivered records without the stage.
    pub stages: BTreeMap<String, BTreeMap<String, Cited>>,
    /// Delivered records by `provider` and the data classes the residency stage says they
    /// carried (`openai|contact,personal`; `openai|` when none).
    pub routes: BTreeMap<String, Cited>,
    /// Records whose stored input or output holds personal data or a secret in clear, by
    /// entity type (`EMAIL`, …).
    pub pii: BTreeMap<String, Cited>,
    /// By the code of the stage that decided the outcome (`MS-4.unavailable`, …).
    pub codes: BTreeMap<String, Cited>,
}

impl PointRecords {
    /// The records where stage `code` decided `decision`.
    pub fn stage(&self, code: &str, decision: &str) -> Option<&Cited> {
        self.stages.get(code).and_then(|d| d.get(decision))
    }

    /// How many records went through stage `code` (absences not counted).
    pub fn ran(&self, code: &str) -> u64 {
        self.stages.get(code).map_or(0, |d| d.iter().filter(|(k, _)| *k != ABSENT).map(|(_, c)| c.count).sum())
    }

    /// Delivered records.
    pub fn delivered(&self) -> u64 {
        self.outcomes.get("delivered").map_or(0, |c| c.count)
    }
}

/// The busiest calendar minute of one caller (a key, an app, or the whole gateway),
/// counting records that were admitted (not refused by the rate limiter or for their key).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// The minute, as ms since the epoch.
    pub minute_ms: i64,
    /// The records admitted in it.
    pub records: Cited,
}

/// Everything the window's records show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Records {
    /// By decision point.
    pub points: BTreeMap<String, PointRecords>,
    /// The busiest admitted minute per key id.
    pub key_peaks: BTreeMap<String, Peak>,
    /// The busiest admitted minute per app.
    pub app_peaks: BTreeMap<String, Peak>,
    /// The busiest admitted minute over the whole gateway.
    pub global_peak: Option<Peak>,
    /// Records whose stored texts were scanned for personal data.
    pub scanned: u64,
}

impl Records {
    /// Every record of the window, over all decision points.
    pub fn all(&self) -> Cited {
        Cited::join(self.points.values().map(|p| &p.all))
    }
}

/// Walks audit records one at a time into [`Records`] and the window's [`AuditSummary`].
pub struct Collector {
    detector: PiiDetector,
    summary: AuditSummary,
    keys: std::collections::BTreeSet<String>,
    days: std::collections::BTreeSet<i64>,
    points: BTreeMap<String, PointTallies>,
    /// Per caller: the current minute, its records, and the busiest minute before it.
    minutes: BTreeMap<(Caller, String), MinuteSlot>,
    scanned: u64,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").field("records", &self.summary.requests).finish_non_exhaustive()
    }
}

/// Whose busiest minute a slot tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Key,
    App,
    Gateway,
}

/// The current minute and its records, and the busiest earlier minute.
type MinuteSlot = (i64, Tally, Option<(i64, Tally)>);

#[derive(Default)]
struct PointTallies {
    all: Tally,
    outcomes: BTreeMap<String, Tally>,
    stages: BTreeMap<String, BTreeMap<String, Tally>>,
    routes: BTreeMap<String, Tally>,
    pii: BTreeMap<String, Tally>,
    codes: BTreeMap<String, Tally>,
}

/// Outcomes of records the rate limiter never admitted.
fn admitted(outcome: &str) -> bool {
    !matches!(outcome, "rate_limited" | "unauthorized")
}

impl Collector {
    /// A collector for the window `[since_ms, until_ms)`, with the PII detector at its
    /// most sensitive: every entity type and the secrets scan.
    pub fn new(since_ms: i64, until_ms: i64) -> Result<Collector, String> {
        Ok(Collector {
            detector: PiiDetector::new().map_err(|e| e.to_string())?,
            summary: AuditSummary { since_ms, until_ms, ..AuditSummary::default() },
            keys: Default::default(),
            days: Default::default(),
            points: BTreeMap::new(),
            minutes: BTreeMap::new(),
            scanned: 0,
        })
    }

    /// The row a record is digested as: one JSON line, as a bundle stores it.
    pub fn row(record: &AuditRecord) -> String {
        serde_json::to_string(record).unwrap_or_default()
    }

    /// Adds one record of the window; `row` is [`Collector::row`] of it, made once by the
    /// caller, which may also keep it (a bundle's line).
    pub fn add(&mut self, r: &AuditRecord, row: &str) {
        let row: [u8; 32] = Sha256::digest(row.as_bytes()).into();
        let row = row.as_slice();
        let id = r.request_id.as_str();
        let s = &mut self.summary;
        if let Some(k) = &r.key_id {
            self.keys.insert(k.clone());
        }
        self.days.insert(r.ts_ms.div_euclid(86_400_000));
        s.first_ms = Some(s.first_ms.map_or(r.ts_ms, |f| f.min(r.ts_ms)));
        s.last_ms = Some(s.last_ms.map_or(r.ts_ms, |l| l.max(r.ts_ms)));
        if r.attempts.as_array().is_some_and(|a| a.len() > 1) {
            s.multi_attempt += 1;
        }
        if r.subject.is_some() {
            s.with_subject += 1;
        }
        let point = self.points.entry(r.decision_point.clone().unwrap_or_default()).or_default();
        point.all.add(id, row);
        point.outcomes.entry(r.outcome.clone()).or_default().add(id, row);
        if let Some(code) = &r.code {
            point.codes.entry(code.clone()).or_default().add(id, row);
        }
        let stages = r.stages.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut seen = Vec::new();
        let mut carried = String::new();
        for st in stages {
            let (Some(code), Some(decision)) = (st["code"].as_str(), st["decision"].as_str()) else { continue };
            point.stages.entry(code.to_string()).or_default().entry(decision.to_string()).or_default().add(id, row);
            if code == "DG-5.residency"
                && let Some((classes, _)) = st["detail"].as_str().and_then(|d| d.split_once(" processed in "))
            {
                carried = classes.split(", ").collect::<Vec<_>>().join(",");
            }
            seen.push(code);
        }
        if r.outcome == "delivered" {
            for code in TRACKED_STAGES {
                if !seen.contains(&code) {
                    point.stages.entry(code.to_string()).or_default().entry(ABSENT.into()).or_default().add(id, row);
                }
            }
            let route = format!("{}|{carried}", r.provider.as_deref().unwrap_or(""));
            point.routes.entry(route).or_default().add(id, row);
        }
        // Every stored text, at the detector's most sensitive: the audit copy must hold no
        // value of any class in clear, whatever the policy let through to the model.
        self.scanned += 1;
        let input = r.input_redacted.to_string();
        let mut types = std::collections::BTreeSet::new();
        for text in [Some(input.as_str()), r.output_redacted.as_deref()].into_iter().flatten() {
            for f in self.detector.scan(text) {
                types.insert(f.entity.label());
            }
        }
        for t in types {
            point.pii.entry(t.to_string()).or_default().add(id, row);
        }
        if admitted(&r.outcome) {
            let minute = r.ts_ms.div_euclid(60_000) * 60_000;
            let callers =
                [(Caller::Key, r.key_id.clone()), (Caller::App, r.app.clone()), (Caller::Gateway, Some(String::new()))];
            for (kind, who) in callers {
                let Some(who) = who else { continue };
                let slot = self.minutes.entry((kind, who)).or_insert_with(|| (minute, Tally::default(), None));
                if slot.0 != minute {
                    let done = std::mem::take(&mut slot.1);
                    if slot.2.as_ref().is_none_or(|(_, p)| done.count > p.count) {
                        slot.2 = Some((slot.0, done));
                    }
                    slot.0 = minute;
                }
                slot.1.add(id, row);
            }
        }
    }

    /// The records' facts and the window's summary (its `oldest_ms` left for the caller).
    /// The summary's counts by outcome, decision point and stage are the tallies' own.
    pub fn finish(self) -> (Records, AuditSummary) {
        let mut summary = self.summary;
        summary.distinct_keys = self.keys.len() as u64;
        summary.active_days = self.days.len() as u64;
        for (point, t) in &self.points {
            summary.requests += t.all.count;
            if !point.is_empty() {
                summary.by_decision_point.insert(point.clone(), t.all.count);
            }
            for (outcome, o) in &t.outcomes {
                *summary.by_outcome.entry(outcome.clone()).or_default() += o.count;
            }
            for (code, by) in &t.stages {
                for (decision, d) in by.iter().filter(|(d, _)| *d != ABSENT) {
                    *summary.stages.entry(code.clone()).or_default().entry(decision.clone()).or_default() += d.count;
                }
            }
        }
        let finish_map = |m: BTreeMap<String, Tally>| m.into_iter().map(|(k, t)| (k, t.finish())).collect();
        let points = self
            .points
            .into_iter()
            .map(|(p, t)| {
                let stages = t.stages.into_iter().map(|(c, d)| (c, finish_map(d))).collect();
                let pr = PointRecords {
                    all: t.all.finish(),
                    outcomes: finish_map(t.outcomes),
                    stages,
                    routes: finish_map(t.routes),
                    pii: finish_map(t.pii),
                    codes: finish_map(t.codes),
                };
                (p, pr)
            })
            .collect();
        let mut records = Records { points, scanned: self.scanned, ..Records::default() };
        for ((kind, who), (minute, current, peak)) in self.minutes {
            let best = match peak {
                Some((m, p)) if p.count >= current.count => Peak { minute_ms: m, records: p.finish() },
                _ => Peak { minute_ms: minute, records: current.finish() },
            };
            match kind {
                Caller::Key => {
                    records.key_peaks.insert(who, best);
                }
                Caller::App => {
                    records.app_peaks.insert(who, best);
                }
                Caller::Gateway => records.global_peak = Some(best),
            }
        }
        (records, summary)
    }
}

/// A held answer's review, as the obligations need it (never its text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewFact {
    /// `rev_…`.
    pub id: String,
    /// The request held.
    pub request_id: String,
    /// The decision point.
    pub decision_point: String,
    /// When it was held.
    pub created_ms: i64,
    /// When it was due.
    pub deadline_ms: Option<i64>,
    /// `pending`, `approved`, `edited` or `rejected`.
    pub status: String,
    /// When it was decided.
    pub decided_ms: Option<i64>,
}

/// Records besides the audit log, from all time up to the window's end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreFacts {
    /// The oldest audit record of the whole log.
    pub oldest_ms: Option<i64>,
    /// Every event, oldest first.
    pub events: Vec<psf_store::Event>,
    /// Every incident up to the window's end, drills included (obligations outlive the
    /// window).
    pub incidents: Vec<psf_store::Incident>,
    /// Every review of a held answer.
    pub reviews: Vec<ReviewFact>,
    /// Each person's latest knowledge-check pass, by email: when it was taken.
    pub passes: BTreeMap<String, i64>,
}

impl StoreFacts {
    /// The events of one kind, oldest first.
    pub fn events_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a psf_store::Event> + 'a {
        self.events.iter().filter(move |e| e.kind == kind)
    }
}

/// What the records show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runtime {
    /// Counts over the window's audit records.
    pub summary: AuditSummary,
    /// The window's records, tallied.
    pub records: Records,
    /// Events in the window by kind (`IG-4.abuse`, …).
    pub events: BTreeMap<String, u64>,
    /// Reasons the gateway gave for an oversight review (`HO-5.review_due`: a new model
    /// version, drift, a quality drop), from all time, oldest first: the day and summary.
    pub reviews_due: Vec<(jiff::civil::Date, String)>,
    /// The gateway's stored quality figures in the window (`OB-2.quality`), oldest first.
    pub quality: Vec<QualityFigure>,
    /// The window, as dates, both included.
    pub window: (jiff::civil::Date, jiff::civil::Date),
    /// Each person's latest knowledge-check pass up to the window's end, by email.
    pub passes: BTreeMap<String, jiff::civil::Date>,
    /// The side records as read, for rules that need them whole and for bundles.
    pub facts: StoreFacts,
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
    /// Records scanned (every record of the window).
    pub records: u64,
    /// Records with findings, by entity type.
    pub findings: BTreeMap<String, u64>,
    /// Request ids of records with findings (at most ten), for follow-up.
    pub request_ids: Vec<String>,
}

/// The runtime part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeSummary {
    /// First day of the window (included).
    pub from: jiff::civil::Date,
    /// Last day of the window (included).
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

/// The UTC day of a time.
pub(crate) fn day(ts_ms: i64) -> Option<jiff::civil::Date> {
    jiff::Timestamp::from_millisecond(ts_ms).ok().map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
}

impl Runtime {
    /// The window as `from..to`, both days included.
    pub fn window_label(&self) -> String {
        format!("{}..{}", self.window.0, self.window.1)
    }

    /// Every record's PII findings, over all decision points.
    pub fn pii(&self) -> PiiSample {
        let mut sample = PiiSample { records: self.records.scanned, ..PiiSample::default() };
        for p in self.records.points.values() {
            for (t, c) in &p.pii {
                *sample.findings.entry(t.clone()).or_default() += c.count;
                for id in &c.ids {
                    if sample.request_ids.len() < CITED_IDS && !sample.request_ids.contains(id) {
                        sample.request_ids.push(id.clone());
                    }
                }
            }
        }
        sample
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
            pii_sample: self.pii(),
        }
    }

    /// The records of one decision point (empty when it had none).
    pub fn point(&self, id: &str) -> Option<&PointRecords> {
        self.records.points.get(id)
    }

    /// The runtime facts from the window's records and the side records, for the window of
    /// `window_days` days ending with `today` (both included).
    pub fn build(
        records: Records,
        mut summary: AuditSummary,
        facts: StoreFacts,
        today: jiff::civil::Date,
        window_days: u32,
    ) -> Runtime {
        let (since_ms, until_ms) = (summary.since_ms, summary.until_ms);
        summary.oldest_ms = facts.oldest_ms;
        let mut events = BTreeMap::new();
        for e in facts.events.iter().filter(|e| (since_ms..until_ms).contains(&e.ts_ms)) {
            *events.entry(e.kind.clone()).or_default() += 1;
        }
        let reviews_due = facts
            .events_of("HO-5.review_due")
            .filter(|e| e.ts_ms < until_ms)
            .filter_map(|e| Some((day(e.ts_ms)?, e.summary.clone())))
            .collect();
        let quality = facts
            .events_of("OB-2.quality")
            .filter(|e| (since_ms..until_ms).contains(&e.ts_ms))
            .filter_map(|e| {
                Some(QualityFigure {
                    day: day(e.ts_ms)?,
                    decision_point: e.detail["decision_point"].as_str()?.to_string(),
                    mean: e.detail["mean"].as_f64()?,
                    samples: e.detail["samples"].as_u64()?,
                })
            })
            .collect();
        let passes = facts
            .passes
            .iter()
            .filter(|(_, ms)| **ms < until_ms)
            .filter_map(|(e, ms)| Some((e.clone(), day(*ms)?)))
            .collect();
        let from = window_start(today, window_days);
        Runtime { summary, records, events, reviews_due, quality, window: (from, today), passes, facts }
    }
}

/// The first day of a window of `days` days that ends with `today`.
pub fn window_start(today: jiff::civil::Date, days: u32) -> jiff::civil::Date {
    today.checked_sub(jiff::Span::new().days(i64::from(days.max(1)) - 1)).unwrap_or(today)
}

/// The window `[since_ms, until_ms)` of `days` whole UTC days ending with `today`.
pub fn window_ms(today: jiff::civil::Date, days: u32) -> Result<(i64, i64), String> {
    let ms = |d: jiff::civil::Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp().as_millisecond()).map_err(|e| e.to_string())
    };
    let end = today.tomorrow().map_err(|e| e.to_string())?;
    Ok((ms(window_start(today, days))?, ms(end)?))
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

/// Reads the side records up to `until_ms` from the store.
pub async fn store_facts(store: &Store, until_ms: i64) -> Result<StoreFacts, StoreError> {
    let oldest_ms = store.oldest_audit_ms().await?;
    let events = store.events(None, 0, 1_000_000).await?.into_iter().filter(|e| e.ts_ms < until_ms).collect();
    let incidents = store.incidents(false).await?.into_iter().filter(|i| i.declared_ms < until_ms).collect();
    let reviews = store
        .reviews(None, 1_000_000)
        .await?
        .into_iter()
        .filter(|r| r.created_ms < until_ms)
        .map(|r| ReviewFact {
            id: r.id,
            request_id: r.request_id,
            decision_point: r.decision_point,
            created_ms: r.created_ms,
            deadline_ms: r.deadline_ms,
            status: r.status,
            decided_ms: r.decided_ms,
        })
        .collect();
    let passes = store
        .latest_passes()
        .await?
        .into_values()
        .filter(|r| r.taken_ms < until_ms)
        .map(|r| (r.email, r.taken_ms))
        .collect();
    Ok(StoreFacts { oldest_ms, events, incidents, reviews, passes })
}

/// Reads the runtime evidence for the window of `window_days` days ending with `today`.
pub async fn gather(store: &Store, today: jiff::civil::Date, window_days: u32) -> Result<Runtime, StoreError> {
    gather_with(store, today, window_days, &mut |_| {}, &mut |_| {}).await
}

/// [`gather`], telling `progress` each step and how many records are done, and handing
/// each record of the window to `each` as its row ([`Collector::row`]): `psf export`
/// writes those lines into the bundle.
pub async fn gather_with(
    store: &Store,
    today: jiff::civil::Date,
    window_days: u32,
    progress: &mut dyn FnMut(Progress),
    each: &mut dyn FnMut(&str),
) -> Result<Runtime, StoreError> {
    let (since_ms, until_ms) = window_ms(today, window_days).map_err(StoreError::other)?;
    let mut step = |step: &'static str, done: u64, total: u64| progress(Progress { step, done, total });
    step("counting the audit log", 0, 0);
    let total = store.audit_count_between(since_ms, until_ms).await?;
    let mut collector = Collector::new(since_ms, until_ms).map_err(StoreError::other)?;
    let mut after = 0;
    let mut done = 0;
    step("reading and scanning audit records", 0, total);
    loop {
        let page = store.audit_page(since_ms, until_ms, after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, r) in &page {
            let row = Collector::row(r);
            collector.add(r, &row);
            each(&row);
        }
        done += page.len() as u64;
        step("reading and scanning audit records", done, total);
    }
    step("reading events, incidents, reviews and passes", 0, 0);
    let facts = store_facts(store, until_ms).await?;
    let (records, summary) = collector.finish();
    Ok(Runtime::build(records, summary, facts, today, window_days))
}

/// Recomputes the runtime evidence from a bundle: its audit records as JSON lines (in
/// store order) and its side records.
pub fn from_bundle(
    audit_jsonl: &str,
    facts: StoreFacts,
    today: jiff::civil::Date,
    window_days: u32,
) -> Result<Runtime, String> {
    let (since_ms, until_ms) = window_ms(today, window_days)?;
    let mut collector = Collector::new(since_ms, until_ms)?;
    for (i, line) in audit_jsonl.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let r: AuditRecord = serde_json::from_str(line)
            .map_err(|e| format!("evidence/audit.jsonl:{}: not an audit record: {e}", i + 1))?;
        if !(since_ms..until_ms).contains(&r.ts_ms) {
            return Err(format!("evidence/audit.jsonl:{}: record {} is outside the window", i + 1, r.request_id));
        }
        collector.add(&r, &Collector::row(&r));
    }
    let (records, summary) = collector.finish();
    Ok(Runtime::build(records, summary, facts, today, window_days))
}
