//! One rule per competency: what the manifest and the records must show for it to be met.
//!
//! Each rule returns an [`Out`]: a status, a sentence, the evidence it looked at and, when
//! not met, what would meet it. Rules for competencies the gateway enforces start from
//! the configuration and are raised to `enforced` only by [`runtime_stage`], when records
//! in the window show the stage running and never unable to run.

use psf_core::catalog::Competency;
use psf_core::manifest::{
    Action, AlertMetric, Audience, Autonomy, ComplianceStatus, DecisionPoint, EvaluationKind, FailureKind, PiiAction,
    ReviewTrigger, Stakes,
};
use serde_json::json;

use crate::context::{Ctx, Evidence};
use psf_detect::DataClass;

use crate::runtime::{ABSENT, Cited};
use crate::{Status, Suppressed, Verdict};

pub(crate) struct Out {
    status: Status,
    summary: String,
    evidence: Vec<Evidence>,
    gaps: Vec<String>,
}

impl Out {
    fn new(status: Status, summary: impl Into<String>) -> Out {
        Out { status, summary: summary.into(), evidence: Vec::new(), gaps: Vec::new() }
    }
    fn ev(mut self, e: Evidence) -> Out {
        self.evidence.push(e);
        self
    }
    fn gap(mut self, g: impl Into<String>) -> Out {
        self.gaps.push(g.into());
        self
    }
    /// A new status and summary on the same evidence (the gaps are the new verdict's own).
    fn becomes(self, status: Status, summary: impl Into<String>) -> Out {
        Out { evidence: self.evidence, ..Out::new(status, summary) }
    }
}

fn met(summary: impl Into<String>) -> Out {
    Out::new(Status::Evidenced, summary)
}
fn partial(summary: impl Into<String>) -> Out {
    Out::new(Status::Partial, summary)
}
fn missing(summary: impl Into<String>) -> Out {
    Out::new(Status::Missing, summary)
}
fn manual(summary: impl Into<String>) -> Out {
    Out::new(Status::Manual, summary)
}

/// All, some or none of `total` items satisfy a condition.
fn share(ok: usize, total: usize, all: Out, some: Out, none: Out) -> Out {
    if total > 0 && ok == total {
        all
    } else if ok > 0 {
        some
    } else {
        none
    }
}

pub(crate) fn decide(ctx: &Ctx<'_>, c: &'static Competency) -> Verdict {
    let out = match ctx.m.not_applicable.iter().position(|na| na.competency == c.id) {
        Some(i) => {
            Out::new(Status::NotApplicable, format!("declared not applicable: {}", ctx.m.not_applicable[i].reason))
                .ev(ctx.manifest(&format!("/not_applicable/{i}"), "a reason is given"))
        }
        None => rule(ctx, c.id),
    };
    let out = check_errors(ctx, c.id, out);
    let mut evidence = out.evidence;
    let suppression = ctx.m.suppressions.iter().position(|s| s.competency == c.id).map(|i| {
        let s = &ctx.m.suppressions[i];
        evidence.push(ctx.manifest(&format!("/suppressions/{i}"), format!("gap accepted until {}", s.expires)));
        Suppressed {
            reason: s.reason.clone(),
            expires: s.expires,
            approved_by: s.approved_by.clone(),
            active: ctx.today <= s.expires,
        }
    });
    let contradicted = evidence.iter().any(|e| e.contradicts);
    Verdict {
        contradicted,
        id: c.id,
        domain: c.domain,
        title: c.title,
        statement: c.statement,
        status: out.status,
        summary: out.summary,
        evidence,
        gaps: if out.status.is_met() { Vec::new() } else { out.gaps },
        suppression,
    }
}

/// The competencies a `psf check` error bears on: by its code, else by where it is.
fn bears_on(d: &psf_core::Diagnostic) -> Vec<&'static str> {
    use psf_core::Code;
    let by_code: &[&str] = match d.code {
        Code::OwnerNotAPerson => &["EA-1"],
        Code::RetentionTooShort => &["OB-5", "DG-2"],
        Code::SecretInClear => &["DG-1"],
        Code::BadOutputSchema => &["OV-2"],
        Code::RegionNotAllowed => &["DG-5"],
        Code::NoReviewers => &["HO-1", "HO-2"],
        Code::UnknownModel | Code::UnknownProvider | Code::UnknownFallback | Code::FallbackCycle => &["MS-4"],
        Code::AlertWithoutCondition | Code::AlertUnknownDecisionPoint => &["OB-1"],
        Code::UnmitigatedRisk => &["EA-3"],
        _ => &[],
    };
    if !by_code.is_empty() {
        return by_code.to_vec();
    }
    let p = d.pointer.as_str();
    let prefixes: [(&str, &[&'static str]); 12] = [
        ("/system/owner", &["EA-1"]),
        ("/retention", &["OB-5", "DG-2"]),
        ("/residency", &["DG-5"]),
        ("/providers", &["MS-5"]),
        ("/models", &["MS-1"]),
        ("/rate_limits", &["IG-4"]),
        ("/apps", &["IG-4"]),
        ("/alerts", &["OB-1"]),
        ("/incident_plan", &["IR-1"]),
        ("/drills", &["IR-5"]),
        ("/regulations", &["EA-3"]),
        ("/data_sources", &["DG-4"]),
    ];
    if let Some((_, ids)) = prefixes.iter().find(|(pre, _)| p.starts_with(pre)) {
        return ids.to_vec();
    }
    if p.starts_with("/decision_points") {
        if p.contains("/output") {
            return vec!["OV-2"];
        }
        if p.contains("/input") {
            return vec!["IG-2"];
        }
        return vec!["HO-1"];
    }
    Vec::new()
}

/// A competency a manifest error bears on is not met, whatever else shows.
fn check_errors(ctx: &Ctx<'_>, id: &str, out: Out) -> Out {
    let errors: Vec<&psf_core::Diagnostic> = ctx.input.errors.iter().filter(|d| bears_on(d).contains(&id)).collect();
    let Some(first) = errors.first() else { return out };
    let mut failed = missing(format!(
        "the manifest fails `psf check` here: error[{}] at line {}: {}",
        first.code.as_str(),
        first.position.line,
        first.message
    ));
    for d in &errors {
        let said = format!("{}:{}: error[{}]: {}", ctx.input.file, d.position.line, d.code.as_str(), d.message);
        failed.evidence.push(Evidence { contradicts: true, ..ctx.manifest(&d.pointer, said) });
    }
    failed.evidence.extend(out.evidence);
    for d in &errors {
        failed = failed.gap(format!("fix error[{}]: {}", d.code.as_str(), d.help.as_deref().unwrap_or(&d.message)));
    }
    failed
}

/// Where the manifest asks for a knowledge check (`knowledge_check:`) and the store was
/// read: each of `people` must hold a pass (`psf exam`, the console's exam) from the last
/// year. The passes are evidence; a person without one lowers a met verdict to partial.
fn knowledge(ctx: &Ctx<'_>, out: Out, people: &[&psf_core::manifest::Person], who: &str) -> Out {
    let Some(rt) = ctx.runtime.filter(|_| ctx.input.manifest.knowledge_check.is_some()) else { return out };
    let mut seen = std::collections::BTreeSet::new();
    let people: Vec<_> = people.iter().filter(|p| seen.insert(p.email.to_lowercase())).collect();
    if people.is_empty() {
        return out;
    }
    let (mut current, mut lacking) = (Vec::new(), Vec::new());
    for p in &people {
        match rt.passes.get(&p.email.to_lowercase()) {
            Some(day) if (ctx.today - *day).get_days() <= psf_core::exam::PASS_VALID_DAYS => {
                current.push(format!("{} ({day})", p.email))
            }
            Some(day) => lacking.push(format!("{} <{}> (last passed {day})", p.name, p.email)),
            None => lacking.push(format!("{} <{}> (never passed)", p.name, p.email)),
        }
    }
    let ev = ctx.store(
        "exam_results",
        "latest pass per person from exam_results",
        format!("{} of {} {who} hold a knowledge-check pass from the last year", current.len(), people.len()),
        &json!({"current": current, "lacking": lacking}),
    );
    if lacking.is_empty() {
        return out.ev(ev);
    }
    let gap = format!(
        "have {} pass the knowledge check (`psf exam`, or the console's exam); a pass counts for a year",
        lacking.join(", ")
    );
    if out.status.is_met() {
        let summary =
            format!("{}; but {who} without a current knowledge-check pass: {}", out.summary, lacking.join(", "));
        out.becomes(Status::Partial, summary).ev(ev).gap(gap)
    } else {
        out.ev(ev).gap(gap)
    }
}

/// Adds the count of `kind` events in the window as evidence, and raises a met control
/// to enforced when there are any.
fn event_evidence(ctx: &Ctx<'_>, out: Out, kind: &str, what: &str) -> Out {
    let Some(rt) = ctx.traffic() else { return out };
    let n = rt.events.get(kind).copied().unwrap_or(0);
    let query = format!("COUNT(*) from events where kind = {kind}");
    let ev = ctx.store("events", &query, format!("{n} {what} in the window"), &json!(n));
    if n > 0 && out.status == Status::Evidenced {
        let summary = format!("{}; {n} {what} recorded in the window", out.summary);
        out.becomes(Status::Enforced, summary).ev(ev)
    } else {
        out.ev(ev)
    }
}

/// Any decision is as declared (the stage only has to have run).
const ANY: &[&str] = &["pass", "flag", "block", "transform", "hold"];
/// The stage either passed or refused.
const PASS_OR_BLOCK: &[&str] = &["pass", "block"];
/// A PII stage that let no value through as it was.
const ACTED: &[&str] = &["pass", "transform", "block"];

fn pii_action_name(a: PiiAction) -> &'static str {
    match a {
        PiiAction::Allow => "allow",
        PiiAction::Redact => "redact",
        PiiAction::Tokenize => "tokenize",
        PiiAction::Block => "block",
    }
}

/// A time as `2026-11-23 14:05 UTC`.
fn minute(ts_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ts_ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| ts_ms.to_string())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Whether a model's rationale says something: enough words, and either what the choice
/// rests on (an evaluation, a measure, a risk) or words of the use case itself. "It is the
/// best model." says neither.
fn rationale_has_substance(rationale: &str, m: &psf_core::Manifest) -> bool {
    const CRITERIA: [&str; 32] = [
        "evaluat",
        "benchmark",
        "test",
        "accura",
        "agree",
        "latency",
        "cost",
        "cheap",
        "price",
        "safe",
        "risk",
        "privacy",
        "residen",
        "region",
        "hosted",
        "dpa",
        "refus",
        "hallucinat",
        "ground",
        "context",
        "tool",
        "language",
        "quality",
        "outage",
        "fail",
        "fallback",
        "complian",
        "licen",
        "rate",
        "%",
        "replay",
        "review",
    ];
    let lower = rationale.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    if words.len() < 6 {
        return false;
    }
    if CRITERIA.iter().any(|c| lower.contains(c)) || lower.chars().any(|c| c.is_ascii_digit()) {
        return true;
    }
    let mut use_case = m.system.description.clone().unwrap_or_default();
    for p in &m.decision_points {
        use_case.push(' ');
        use_case.push_str(p.description.as_deref().unwrap_or_default());
    }
    let use_case = use_case.to_lowercase();
    words.iter().filter(|w| w.len() >= 5).any(|w| use_case.contains(*w))
}

/// The decisions a stage may take where its action is declared `action`: a declared
/// `block` must never have let a finding through (`flag`).
fn permitted(action: Action) -> &'static [&'static str] {
    match action {
        Action::Block => &["pass", "block", "transform"],
        Action::Flag => &["pass", "flag", "block", "transform"],
        Action::Allow => &["pass", "flag", "block", "transform", "hold"],
    }
}

/// One stage as the manifest declares it: the decision points it applies to and the
/// decisions each declaration permits. Every delivered answer at those points must show it.
pub(crate) struct StageCheck<'a> {
    pub code: &'static str,
    pub points: Vec<(&'a DecisionPoint, &'static [&'static str])>,
}

impl<'a> StageCheck<'a> {
    fn new(
        code: &'static str,
        ctx: &Ctx<'a>,
        f: impl Fn(&'a DecisionPoint) -> Option<&'static [&'static str]>,
    ) -> StageCheck<'a> {
        // An embeddings point gives no answer: the stages on answers and on the system
        // prompt do not apply to it, and its records are never judged by them.
        let on_answers = ["OV-", "HO-", "DG-1.pii_output", "IG-5."].iter().any(|prefix| code.starts_with(prefix));
        let applies = |p: &DecisionPoint| !(on_answers && p.kind == psf_core::manifest::PointKind::Embeddings);
        StageCheck {
            code,
            points: ctx.m.decision_points.iter().filter(|p| applies(p)).filter_map(|p| Some((p, f(p)?))).collect(),
        }
    }
}

/// What the records show of declared stages: the contradicting records first.
#[derive(Default)]
pub(crate) struct Findings {
    pub contradictions: Vec<Evidence>,
    pub unavailable: Vec<Evidence>,
    pub ran: Vec<Evidence>,
    pub decisions: u64,
    /// Declared points with delivered traffic.
    pub covered: Vec<String>,
}

fn stage_findings(ctx: &Ctx<'_>, checks: &[StageCheck<'_>]) -> Findings {
    let mut f = Findings::default();
    let Some(rt) = ctx.traffic() else { return f };
    for check in checks {
        let code = check.code;
        for (p, allowed) in &check.points {
            let Some(pr) = rt.point(&p.id) else { continue };
            if pr.delivered() > 0 && !f.covered.contains(&p.id) {
                f.covered.push(p.id.clone());
            }
            let by = pr.stages.get(code);
            for (decision, cited) in by.into_iter().flatten() {
                let source = format!("audit_log where decision_point = {} and stage {code} = {decision}", p.id);
                if decision == ABSENT {
                    f.contradictions.push(ctx.contradiction(
                        source,
                        format!(
                            "{} delivered answers at `{}` never went through `{code}`, which the manifest declares",
                            cited.count, p.id
                        ),
                        cited,
                    ));
                } else if decision == "unavailable" {
                    f.unavailable.push(ctx.records(
                        source,
                        format!("`{code}` could not run on {} requests at `{}`", cited.count, p.id),
                        cited,
                    ));
                } else if !allowed.contains(&decision.as_str()) {
                    f.contradictions.push(ctx.contradiction(
                        source,
                        format!(
                            "`{code}` decided `{decision}` on {} requests at `{}`, where the manifest permits only {}",
                            cited.count,
                            p.id,
                            allowed.join(", ")
                        ),
                        cited,
                    ));
                } else {
                    f.decisions += cited.count;
                    f.ran.push(ctx.records(
                        source,
                        format!("`{code}` decided `{decision}` on {} requests at `{}`", cited.count, p.id),
                        cited,
                    ));
                }
            }
        }
    }
    f
}

/// A configured control, judged by its records: `enforced` when every declared stage ran
/// as declared and no record contradicts it; not met (`missing`) when one does, citing
/// those records first; `partial` when a stage could not run.
fn enforce(ctx: &Ctx<'_>, configured: Out, checks: &[StageCheck<'_>], more: Vec<Evidence>) -> Out {
    let codes: Vec<&str> = checks.iter().map(|c| c.code).collect();
    let mut f = stage_findings(ctx, checks);
    f.contradictions.extend(more);
    judge(ctx, configured, f, &codes.join(" or "))
}

fn judge(ctx: &Ctx<'_>, configured: Out, f: Findings, what: &str) -> Out {
    if !f.contradictions.is_empty() {
        let first = f.contradictions[0].observation.clone();
        let more = match f.contradictions.len() {
            1 => String::new(),
            n => format!(" (and {} more contradictions)", n - 1),
        };
        let Out { evidence, gaps, .. } = configured;
        let mut out = missing(format!("the records contradict the manifest: {first}{more}"));
        out.evidence = f.contradictions;
        out.evidence.extend(evidence);
        out.evidence.extend(f.ran);
        out.gaps = gaps;
        return out.gap(
            "find why the gateway acted otherwise than declared (an older configuration, a gateway run \
             with another manifest, rows written by another tool), fix it, and re-assess once the window \
             holds no contradicting record",
        );
    }
    if configured.status != Status::Evidenced {
        let mut out = configured;
        out.evidence.extend(f.ran);
        return out;
    }
    let Some(rt) = ctx.traffic() else {
        return configured.gap(
            "no gateway records in the window show it working: send traffic through `psf serve` and assess with `--store`",
        );
    };
    if !f.unavailable.is_empty() {
        let n: u64 = f.unavailable.iter().filter_map(|e| e.records.as_ref()).map(|r| r.count).sum();
        let mut out = configured
            .becomes(Status::Partial, format!("configured, but the check could not run on {n} requests in the window"))
            .gap("give this decision point a model that supports the check (log-probabilities for OV-4), or declare another policy");
        out.evidence.extend(f.unavailable);
        out.evidence.extend(f.ran);
        return out;
    }
    if f.decisions == 0 {
        return configured
            .ev(ctx.store(
                "audit_log",
                &format!("audit_log stages {what}"),
                format!("no decisions recorded among {} requests", rt.summary.requests),
                &json!(0),
            ))
            .gap(format!(
                "no request in the window went through {what}; until one does, only the configuration shows it"
            ));
    }
    let summary = format!(
        "{}; the records show it acting as declared on {} decisions at {}",
        configured.summary,
        f.decisions,
        if f.covered.is_empty() { "the declared decision points".to_string() } else { f.covered.join(", ") }
    );
    let mut out = configured.becomes(Status::Enforced, summary);
    out.evidence.extend(f.ran);
    out
}

fn points_where(
    ctx: &Ctx<'_>,
    scope: impl Fn(&psf_core::manifest::DecisionPoint) -> bool,
    f: impl Fn(&psf_core::manifest::DecisionPoint) -> bool,
) -> (usize, usize, Vec<String>) {
    let points: Vec<_> = ctx.m.decision_points.iter().filter(|p| scope(p)).collect();
    let bad: Vec<String> = points.iter().filter(|p| !f(p)).map(|p| p.id.clone()).collect();
    (points.len() - bad.len(), points.len(), bad)
}

/// Whether a decision point gives answers (an embeddings point gives vectors: the
/// requirements on answers, their system prompt and their disclosure do not apply).
fn answers(p: &psf_core::manifest::DecisionPoint) -> bool {
    p.kind == psf_core::manifest::PointKind::Chat
}

/// A requirement every decision point must meet, in words: met when all do, partial when
/// some do, missing when none do. `{points}` in `some` and `fix` is replaced by the ids of
/// the decision points that fall short.
struct PerPoint {
    all: &'static str,
    some: &'static str,
    none: &'static str,
    /// What the manifest shows, after "N of M decision points".
    shows: &'static str,
    fix: &'static str,
}

fn every_point(ctx: &Ctx<'_>, words: &PerPoint, f: impl Fn(&psf_core::manifest::DecisionPoint) -> bool) -> Out {
    points_meet(ctx, words, |_| true, "decision points", f)
}

/// [`every_point`] over the decision points that give answers ([`answers`]).
fn every_answering_point(
    ctx: &Ctx<'_>,
    words: &PerPoint,
    f: impl Fn(&psf_core::manifest::DecisionPoint) -> bool,
) -> Out {
    // Said only where it narrows anything: where some point gives vectors, not answers.
    let what =
        if ctx.m.decision_points.iter().all(answers) { "decision points" } else { "decision points that answer" };
    points_meet(ctx, words, answers, what, f)
}

fn points_meet(
    ctx: &Ctx<'_>,
    words: &PerPoint,
    scope: impl Fn(&psf_core::manifest::DecisionPoint) -> bool,
    what: &str,
    f: impl Fn(&psf_core::manifest::DecisionPoint) -> bool,
) -> Out {
    let (ok, n, bad) = points_where(ctx, scope, f);
    let bad = bad.join(", ");
    share(ok, n, met(words.all), partial(words.some.replace("{points}", &bad)), missing(words.none))
        .ev(ctx.manifest("/decision_points", format!("{ok} of {n} {what} {}", words.shows)))
        .gap(words.fix.replace("{points}", &bad))
}

fn rule(ctx: &Ctx<'_>, id: &str) -> Out {
    let m = ctx.m;
    match id {
        "IG-1" => {
            let words = PerPoint {
                all: "every decision point screens input for injection and sanitises it",
                some: "injection screening is off at {points}",
                none: "no decision point screens input for injection",
                shows: "block or flag injection",
                fix: "set `input.injection.action: block` (or `flag`) at {points}",
            };
            let out = every_point(ctx, &words, |p| p.input.injection.action != Action::Allow);
            let checks = [
                StageCheck::new("IG-1.injection", ctx, |p| {
                    (p.input.injection.action != Action::Allow).then(|| permitted(p.input.injection.action))
                }),
                StageCheck::new("IG-1.sanitize", ctx, |p| p.input.strip_invisible.then_some(ANY)),
            ];
            enforce(ctx, out, &checks, Vec::new())
        }
        "IG-2" => {
            let out = met("requests are checked for shape, size, nesting, message count and characters per message")
                .ev(ctx.manifest("/decision_points", "input limits per decision point (defaults apply where unset)"));
            let checks = [StageCheck::new("IG-2.schema", ctx, |_| Some(PASS_OR_BLOCK))];
            enforce(ctx, out, &checks, Vec::new())
        }
        "IG-3" => match ctx.traffic() {
            None => met("the gateway redacts PII from every audit record before it is written")
                .ev(ctx
                    .manifest("/decision_points", "PII policy per decision point; the audit copy is always redacted"))
                .gap("no audit records in the window to scan: assess with `--store` after traffic"),
            Some(rt) => {
                let mut contradictions = Vec::new();
                for (point, pr) in &rt.records.points {
                    for (t, c) in &pr.pii {
                        contradictions.push(ctx.contradiction(
                            format!("audit_log where decision_point = {point:?}: stored input and output scanned"),
                            format!("{} stored records at `{point}` hold {t} in clear", c.count),
                            c,
                        ));
                    }
                }
                let all = rt.records.all();
                let scanned = ctx.records(
                    "every audit record of the window, input and output, scanned for every entity type and secret",
                    format!("{} records scanned", rt.records.scanned),
                    &all,
                );
                if contradictions.is_empty() {
                    Out::new(
                        Status::Enforced,
                        format!(
                            "all {} audit records of the window scanned (every entity type, secrets included); none holds personal data in clear",
                            rt.records.scanned
                        ),
                    )
                    .ev(scanned)
                } else {
                    let n: u64 = contradictions.iter().filter_map(|e| e.records.as_ref()).map(|r| r.count).sum();
                    let mut out = missing(format!(
                        "the audit log holds personal data in clear, contradicting the manifest: {n} findings in the {} records scanned",
                        rt.records.scanned
                    ));
                    out.evidence = contradictions;
                    out.ev(scanned).gap("find how clear PII reached the log (records written by another tool, or a detector gap), purge those records, and re-assess")
                }
            }
        },
        "IG-4" => {
            let apps_limited = m.apps.iter().filter(|a| a.rate_limit.is_some()).count();
            let any =
                m.rate_limits.global.is_some() || m.rate_limits.per_app.is_some() || m.rate_limits.per_key.is_some();
            let limited = any || (apps_limited == m.apps.len() && !m.apps.is_empty());
            let out = if limited {
                met("requests are rate-limited per the manifest's limits")
            } else if apps_limited > 0 {
                partial(format!("only {apps_limited} of {} apps have a rate limit", m.apps.len()))
                    .gap("add `rate_limits.global` or `rate_limits.per_app`")
            } else {
                missing("no rate limit is configured").gap("add `rate_limits.global` and `rate_limits.per_key`")
            }
            .ev(ctx.manifest("/rate_limits", "global, per-app and per-key limits"));
            let mut more = Vec::new();
            if let Some(rt) = ctx.traffic() {
                // The busiest calendar minute may hold the burst plus a minute's refill.
                let bound = |l: &psf_core::manifest::RateLimit| {
                    u64::from(l.requests_per_minute) + u64::from(l.burst.unwrap_or(l.requests_per_minute))
                };
                let mut over = |who: String, peak: &crate::runtime::Peak, limit: &psf_core::manifest::RateLimit| {
                    if peak.records.count > bound(limit) {
                        more.push(ctx.contradiction(
                            format!("audit_log admitted records of {who} in the minute from {}", minute(peak.minute_ms)),
                            format!(
                                "{who} had {} requests admitted in one minute, above its limit of {} a minute (burst {})",
                                peak.records.count,
                                limit.requests_per_minute,
                                limit.burst.unwrap_or(limit.requests_per_minute)
                            ),
                            &peak.records,
                        ));
                    }
                };
                if let Some(l) = &m.rate_limits.per_key {
                    for (key, peak) in &rt.records.key_peaks {
                        over(format!("key `{key}`"), peak, l);
                    }
                }
                for (app, peak) in &rt.records.app_peaks {
                    let spec = m.apps.iter().find(|a| &a.id == app).and_then(|a| a.rate_limit.as_ref());
                    if let Some(l) = spec.or(m.rate_limits.per_app.as_ref()) {
                        over(format!("app `{app}`"), peak, l);
                    }
                }
                if let (Some(l), Some(peak)) = (&m.rate_limits.global, &rt.records.global_peak) {
                    over("the gateway".to_string(), peak, l);
                }
            }
            let checks = [StageCheck::new("IG-4.rate_limit", ctx, |_| limited.then_some(PASS_OR_BLOCK))];
            let out = enforce(ctx, out, &checks, more);
            match ctx.traffic().and_then(|rt| rt.events.get("IG-4.abuse")) {
                Some(n) => out.ev(ctx.store(
                    "events",
                    "events where kind = IG-4.abuse",
                    format!("{n} abuse alerts raised in the window"),
                    &json!(n),
                )),
                None => out,
            }
        }
        "IG-5" => {
            let words = PerPoint {
                all: "every decision point has a system prompt from the manifest that clients cannot replace",
                some: "the system prompt is not protected at {points}",
                none: "no decision point protects its system prompt",
                shows: "set `system_prompt` (client system messages are always refused or demoted)",
                fix: "give {points} a `system_prompt`",
            };
            let out = every_answering_point(ctx, &words, |p| p.system_prompt.is_some());
            let checks = [
                StageCheck::new("IG-5.system_prompt", ctx, |p| p.system_prompt.is_some().then_some(ANY)),
                StageCheck::new("IG-5.leak", ctx, |p| {
                    p.system_prompt.is_some().then(|| permitted(p.output.system_prompt_leak))
                }),
            ];
            enforce(ctx, out, &checks, Vec::new())
        }
        "OV-1" => {
            let out = met("every output passes the gateway's output stage, which cannot be switched off").ev(ctx
                .manifest("/decision_points", "an output policy per decision point (defaults apply where unset)"));
            let checks = [
                StageCheck::new("OV-5.state", ctx, |_| Some(ANY)),
                StageCheck::new("DG-1.pii_output", ctx, |_| Some(ANY)),
            ];
            enforce(ctx, out, &checks, Vec::new())
        }
        "OV-2" => {
            let words = PerPoint {
                all: "every decision point constrains its output by JSON Schema or length",
                some: "no output schema or length limit at {points}",
                none: "no decision point constrains its output",
                shows: "set `output.json_schema` or `output.max_chars`",
                fix: "set `output.json_schema` (structured replies) or `output.max_chars` at {points}",
            };
            let out = every_answering_point(ctx, &words, |p| p.output.json_schema.is_some() || p.output.max_chars.is_some());
            // Where a schema is declared, a length check is no substitute: `OV-2.schema`
            // must have run on every delivered answer.
            let checks = [
                StageCheck::new("OV-2.schema", ctx, |p| p.output.json_schema.is_some().then_some(PASS_OR_BLOCK)),
                StageCheck::new("OV-2.length", ctx, |p| p.output.max_chars.is_some().then_some(PASS_OR_BLOCK)),
            ];
            enforce(ctx, out, &checks, Vec::new())
        }
        "OV-3" => {
            let words = PerPoint {
                all: "content filtering is configured at every decision point",
                some: "no content filter at {points}",
                none: "no content filter is configured",
                shows: "filter content categories",
                fix: "set `output.content.categories` and `action: block` at {points}",
            };
            let filters = |p: &DecisionPoint| !p.output.content.categories.is_empty() && p.output.content.action != Action::Allow;
            let mut out = every_answering_point(ctx, &words, filters);
            // The severe tier is on everywhere; where a point narrows it, the reason the
            // manifest gives is cited, so the verdict never hides it.
            for (i, p) in ctx.input.manifest.decision_points.iter().enumerate() {
                let severe = &p.output.severe;
                if severe.allow.is_empty() {
                    continue;
                }
                let names: Vec<String> = severe
                    .allow
                    .iter()
                    .map(|c| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())
                    .collect();
                let reason = severe.reason.as_deref().unwrap_or("no reason given");
                let observation = format!(
                    "`{}` narrows the severe tier: it delivers {} (reason: {reason})",
                    p.id,
                    names.join(", ")
                );
                out = out.ev(ctx.manifest(&format!("/decision_points/{i}/output/severe"), observation));
            }
            let checks = [
                StageCheck::new("OV-3.content", ctx, |p| filters(p).then(|| permitted(p.output.content.action))),
                StageCheck::new("OV-3.scope", ctx, |p| {
                    p.output.topics.as_ref().filter(|t| t.action != Action::Allow).map(|t| permitted(t.action))
                }),
            ];
            enforce(ctx, out, &checks, Vec::new())
        }
        "OV-4" => {
            let words = PerPoint {
                all: "every decision point judges confidence from the model's log-probabilities",
                some: "no confidence policy at {points}",
                none: "no confidence policy is set",
                shows: "set `output.confidence`",
                fix: "set `output.confidence.min_mean_logprob` and what happens below it at {points}",
            };
            let out = every_answering_point(ctx, &words, |p| p.output.confidence.is_some());
            // `unavailable` where a provider gives no log-probabilities (Anthropic).
            let checks =
                [StageCheck::new("OV-4.confidence", ctx, |p| p.output.confidence.is_some().then_some(ANY))];
            enforce(ctx, out, &checks, Vec::new())
        }
        "OV-5" => {
            let out = met("refusals, truncation and content-filter stops are defined states with stable error codes")
                .ev(ctx.manifest("/decision_points", "every decision point goes through the gateway's error model"));
            let checks = [StageCheck::new("OV-5.state", ctx, |_| Some(ANY))];
            enforce(ctx, out, &checks, Vec::new())
        }
        "DG-1" => {
            // Identity numbers and credentials must never pass untouched; other classes are
            // the deployment's choice, recorded in the policy.
            let words = PerPoint {
                all: "a PII policy per data class at every decision point",
                some: "identity numbers or credentials are allowed through at {points}",
                none: "no decision point has a PII policy that acts",
                shows: "redact, tokenize or block sensitive classes",
                fix: "set `input.pii` so that `government_id` and `credential` are not `allow` at {points}",
            };
            let out = every_point(ctx, &words, |p| {
                p.input.pii.government_id != PiiAction::Allow && p.input.pii.credential != PiiAction::Allow
            });
            // `flag` means a value went through as it was: only a class declared `allow`
            // may do that.
            let acts = |policy: &psf_core::manifest::PiiPolicy| {
                if DataClass::ALL.iter().any(|c| policy.action(*c) == PiiAction::Allow) { ANY } else { ACTED }
            };
            let checks = [
                StageCheck::new("DG-1.pii", ctx, |p| Some(acts(&p.input.pii))),
                StageCheck::new("DG-1.pii_output", ctx, |p| Some(acts(&p.output.pii))),
            ];
            // A value of a class the point does not allow, found in clear in what was stored.
            let mut more = Vec::new();
            if let Some(rt) = ctx.traffic() {
                for p in &m.decision_points {
                    let Some(pr) = rt.point(&p.id) else { continue };
                    for (label, cited) in &pr.pii {
                        let Some(class) = psf_detect::EntityType::from_label(label).map(|e| e.class()) else {
                            continue;
                        };
                        let action = p.input.pii.action(class);
                        if action != PiiAction::Allow {
                            more.push(ctx.contradiction(
                                format!("audit_log where decision_point = {}: stored input and output scanned", p.id),
                                format!(
                                    "{} stored records at `{}` hold {label} in clear, a {} value the manifest declares `{}`",
                                    cited.count,
                                    p.id,
                                    class.as_str(),
                                    pii_action_name(action)
                                ),
                                cited,
                            ));
                        }
                    }
                }
            }
            enforce(ctx, out, &checks, more)
        }
        "DG-2" => {
            let days = m.retention.audit_log_days;
            let base = met(format!("retention is declared ({days} days for the audit log) and psf's sweeper deletes what has expired, hourly in `psf serve`"))
                .ev(ctx.manifest("/retention", format!("audit log kept {days} days")));
            match (ctx.runtime, ctx.runtime.and_then(|rt| rt.summary.oldest_ms)) {
                (Some(rt), Some(oldest)) => {
                    let age = (rt.summary.until_ms - oldest) / 86_400_000;
                    let e = ctx.store(
                        "audit_log",
                        "MIN(ts_ms) over the whole audit log",
                        format!("the oldest record is {age} days old"),
                        &json!(oldest),
                    );
                    if age > i64::from(days) {
                        missing(format!("the audit log holds records {age} days old, beyond the declared {days} days"))
                            .ev(e)
                            .gap(format!("delete audit records older than {days} days"))
                    } else {
                        event_evidence(ctx, base.ev(e), "DG-2.retention", "retention sweeps")
                    }
                }
                _ => base,
            }
        }
        "DG-3" => {
            // The gateway can erase what it keeps; whether clients name the subject of
            // each request is for the records to show.
            let out = match ctx.traffic() {
                Some(rt) if rt.summary.requests > 0 && rt.summary.with_subject == 0 => {
                    partial("psf can erase a subject, but no request in the window named one (`x-psf-subject`): nothing could be found to erase")
                        .gap("send the subject's id in `x-psf-subject` with every request about a person")
                }
                _ => met("requests name their subject (`x-psf-subject`, kept as a hash); `psf erase` destroys the subject's data key and records and gives a verified receipt, no retraining involved"),
            };
            event_evidence(ctx, out, "DG-3.erasure", "erasures")
        }
        "DG-4" => {
            let n = m.data_sources.len();
            let ok = m.data_sources.iter().filter(|d| d.licensed_for_use && !d.provenance.trim().is_empty()).count();
            share(
                ok,
                n,
                met(format!("{n} data sources with provenance and licences cleared for this use")),
                partial(format!("{} of {n} data sources are not cleared for use", n - ok)),
                missing("no data source is recorded"),
            )
            .ev(ctx.manifest("/data_sources", format!("{ok} of {n} sources licensed for use")))
            .gap("record each training, fine-tuning, retrieval and evaluation source under `data_sources` with provenance and licence")
        }
        "DG-5" => match &m.residency {
            None => missing("no data-residency rules")
                .ev(ctx.manifest("", "no `residency:` section"))
                .gap("add `residency.allowed_regions` and give each provider a `region`"),
            Some(r) => {
                let remote: Vec<_> = m.providers.iter().filter(|p| !p.self_hosted).collect();
                let placed = remote.iter().filter(|p| p.region.is_some()).count();
                let stale: Vec<&str> =
                    r.transfers.iter().filter(|t| !ctx.fresh(t.assessed_on)).map(|t| t.region.as_str()).collect();
                let out = if placed == remote.len() && stale.is_empty() {
                    met(format!(
                        "allowed regions {} and every provider placed; the router refuses other regions",
                        r.allowed_regions.join(", ")
                    ))
                } else {
                    partial("some providers have no region, or a transfer assessment is more than a year old")
                        .gap(format!("give every provider a `region`; re-assess transfers to {}", stale.join(", ")))
                };
                let out = out.ev(ctx.manifest(
                    "/residency",
                    format!("{} allowed regions, {} transfers", r.allowed_regions.len(), r.transfers.len()),
                ));
                let mut more = Vec::new();
                if let Some(rt) = ctx.traffic() {
                    for (point, pr) in &rt.records.points {
                        for (route, cited) in &pr.routes {
                            let (provider, classes) = route.split_once('|').unwrap_or((route, ""));
                            let source = format!("audit_log delivered at {point:?} by provider {provider:?}");
                            let Some(spec) = m.providers.iter().find(|p| p.id == provider) else {
                                more.push(ctx.contradiction(
                                    source,
                                    format!("{} answers at `{point}` came from provider `{provider}`, which the manifest does not name", cited.count),
                                    cited,
                                ));
                                continue;
                            };
                            for class in classes.split(',').filter_map(DataClass::from_name) {
                                let regions = r.regions_for(class).unwrap_or(&r.allowed_regions);
                                if !spec.serves_in(regions) {
                                    more.push(ctx.contradiction(
                                        source.clone(),
                                        format!(
                                            "{} requests at `{point}` carried {} data to `{provider}` in {}, where the manifest allows only {}",
                                            cited.count,
                                            class.as_str(),
                                            spec.region.as_deref().unwrap_or("an unplaced region"),
                                            regions.join(", ")
                                        ),
                                        cited,
                                    ));
                                }
                            }
                        }
                    }
                }
                let checks = [StageCheck::new("DG-5.residency", ctx, |_| Some(PASS_OR_BLOCK))];
                enforce(ctx, out, &checks, more)
            }
        },
        "MS-1" => {
            let n = m.models.len();
            let said = m.models.iter().filter(|x| x.rationale.as_deref().is_some_and(|r| !r.trim().is_empty())).count();
            let thin: Vec<&str> = m
                .models
                .iter()
                .filter(|x| x.rationale.as_deref().is_some_and(|r| !r.trim().is_empty() && !rationale_has_substance(r, m)))
                .map(|x| x.id.as_str())
                .collect();
            let ok = said - thin.len();
            let out = share(
                ok,
                n,
                met("every model's choice has a rationale that names its evidence or the use case"),
                partial(format!("{} of {n} models have no rationale that names the use case or what it was chosen on", n - ok)),
                missing("no model has a rationale that names the use case or what it was chosen on"),
            )
            .ev(ctx.manifest("/models", format!("{said} of {n} models with `rationale`, {} of them saying nothing of the use case or the evidence", thin.len())))
            .gap("write why each model was chosen under `models[].rationale`: what it was evaluated on, for this use case and its risks");
            if thin.is_empty() { out } else { out.gap(format!("the rationale of {} names nothing of the use case, its risks or the evidence", thin.join(", "))) }
        }
        "MS-2" => {
            let n = m.models.len();
            // Reviewed *before deployment*: an evaluation dated after the system went into
            // service does not show it.
            let before = |d: jiff::civil::Date| m.system.in_service_since.is_none_or(|s| d <= s);
            let ok = m
                .models
                .iter()
                .filter(|x| {
                    x.evaluations.iter().any(|e| {
                        (e.kind == EvaluationKind::Benchmark || e.kind == EvaluationKind::RedTeam) && before(e.date)
                    })
                })
                .count();
            let since = m.system.in_service_since.map(|d| format!(" before the system went into service ({d})")).unwrap_or_default();
            share(
                ok,
                n,
                met(format!("every model has benchmarks reviewed{since} on record")),
                partial(format!("{} of {n} models have no benchmark reviewed{since} on record", n - ok)),
                missing(format!("no benchmark reviewed{since} is on record")),
            )
            .ev(ctx.manifest("/models", format!("{ok} of {n} models with a benchmark or red-team evaluation{since}")))
            .gap("record the benchmarks reviewed before deployment under `models[].evaluations` (kind `benchmark`), dated on or before `system.in_service_since`")
        }
        "MS-3" => {
            let gates: Vec<_> = m
                .models
                .iter()
                .flat_map(|x| &x.evaluations)
                .filter(|e| e.kind == EvaluationKind::RegressionGate)
                .collect();
            let fresh = gates.iter().filter(|e| ctx.fresh(e.date)).count();
            let out = if fresh > 0 {
                met(format!("{fresh} regression gate runs on record within the year"))
            } else if gates.is_empty() {
                missing("no regression gate on record")
            } else {
                partial("regression gate runs are on record, but none within the year")
            }
            .ev(ctx.manifest("/models", format!("{} regression-gate evaluations", gates.len())))
            .gap("run a golden suite against the candidate before each model change (`psf eval`) and record it (kind `regression_gate`)");
            // The records beat the manifest: the latest recorded gate decides. A failed gate
            // is not met until a passing one follows.
            let recorded: Vec<_> = ctx
                .runtime
                .map(|rt| rt.facts.events_of("MS-3.regression_gate").collect())
                .unwrap_or_default();
            match recorded.last() {
                None => out,
                Some(last) => {
                    let passed = last.detail["verdict"] == "pass";
                    let ev = ctx.store(
                        "events",
                        "events where kind = MS-3.regression_gate, the latest",
                        format!("{} gate runs recorded; the latest, {}: {}", recorded.len(), minute(last.ts_ms), last.summary),
                        &serde_json::to_value(last).unwrap_or_default(),
                    );
                    if passed && ctx.fresh(crate::runtime::day(last.ts_ms).unwrap_or(ctx.today)) {
                        // A passing gate on record meets it, whatever the manifest lists.
                        let summary = format!(
                            "{} regression-gate runs recorded (`psf eval --store`); the latest, {}, passed",
                            recorded.len(),
                            minute(last.ts_ms)
                        );
                        out.becomes(Status::Enforced, summary).ev(ev)
                    } else if passed {
                        out.ev(ev)
                    } else {
                        let Out { evidence, .. } = out;
                        let mut failed = missing(format!(
                            "the latest recorded regression gate ({}) did not pass, and no passing gate followed: {}",
                            minute(last.ts_ms),
                            last.summary
                        ));
                        failed.evidence = vec![Evidence { contradicts: true, ..ev }];
                        failed.evidence.extend(evidence);
                        failed.gap("fix the regression, run `psf eval --store` again, and deploy only on a passing gate")
                    }
                }
            }
        }
        "MS-4" => {
            let words = PerPoint {
                all: "every decision point has a fallback model or a degraded response",
                some: "no fallback at {points}",
                none: "no decision point has a fallback",
                shows: "with a fallback chain or degraded response",
                fix: "give {points} a `fallback` model or a `degraded_response`",
            };
            let out = every_point(ctx, &words, |p| m.model_chain(p).len() > 1 || p.degraded_response.is_some());
            let Some(rt) = ctx.traffic() else { return out };
            // A point with a degraded response must never leave a caller with a bare error
            // when its chain is down.
            let mut more = Vec::new();
            let mut delivered = Vec::new();
            for p in &m.decision_points {
                let Some(pr) = rt.point(&p.id) else { continue };
                if let Some(c) = pr.outcomes.get("delivered") {
                    delivered.push(c.clone());
                }
                if p.degraded_response.is_some()
                    && let Some(c) = pr.codes.get("MS-4.unavailable")
                {
                    more.push(ctx.contradiction(
                        format!("audit_log where decision_point = {} and code = MS-4.unavailable", p.id),
                        format!("{} requests at `{}` got an error when its chain was down, though a degraded response is declared", c.count, p.id),
                        c,
                    ));
                }
            }
            let cited = Cited::join(&delivered);
            let f = Findings {
                contradictions: more,
                decisions: cited.count,
                ran: vec![ctx.records("audit_log where outcome = delivered", format!("{} delivered through the model chain", cited.count), &cited)],
                ..Findings::default()
            };
            judge(ctx, out, f, "the model chain")
        }
        "MS-5" => {
            let remote: Vec<_> = m.providers.iter().filter(|p| !p.self_hosted).collect();
            let ok = remote
                .iter()
                .filter(|p| {
                    p.terms.as_ref().is_some_and(|t| ctx.fresh(t.reviewed_on) && t.permits_use_case) && p.dpa.is_some()
                })
                .count();
            if remote.is_empty() {
                met("every provider is self-hosted: no vendor terms apply")
                    .ev(ctx.manifest("/providers", "all `self_hosted: true`"))
            } else {
                share(ok, remote.len(), met("every external provider's terms reviewed within a year and a DPA signed"), partial(format!("{} of {} external providers lack a current terms review or DPA", remote.len() - ok, remote.len())), missing("no provider's terms are reviewed"))
                    .ev(ctx.manifest("/providers", format!("{ok} of {} external providers with fresh terms and a DPA", remote.len())))
                    .gap("record `terms.reviewed_on` (within a year, `permits_use_case: true`) and `dpa.signed_on` for each external provider")
            }
        }
        "HO-1" => {
            let out = met(format!("all {} decision points have an autonomy level", m.decision_points.len()))
                .ev(ctx.manifest("/decision_points", "`autonomy` is required on every decision point"));
            // A supervised point holds every answer: one delivered without a hold was never
            // seen by a person.
            let checks = [StageCheck::new("HO-1.review", ctx, |p| {
                (p.autonomy == Autonomy::Supervised).then_some(&["hold"][..])
            })];
            let f = stage_findings(ctx, &checks);
            if f.contradictions.is_empty() && f.decisions == 0 {
                // No supervised point, or none with traffic: the levels are the evidence.
                return out;
            }
            judge(ctx, out, f, "HO-1.review")
        }
        "HO-2" => {
            let high: Vec<_> = m
                .decision_points
                .iter()
                .filter(|p| p.stakes == Stakes::High || p.irreversible || p.affects_vulnerable_people)
                .collect();
            let unsupervised: Vec<&str> =
                high.iter().filter(|p| p.autonomy != Autonomy::Supervised).map(|p| p.id.as_str()).collect();
            if high.is_empty() {
                return met("no decision point is high-stakes, irreversible or affects vulnerable people")
                    .ev(ctx.manifest("/decision_points", "stakes per decision point"));
            }
            if !unsupervised.is_empty() {
                return missing(format!("high-stakes decision points without human review: {}", unsupervised.join(", ")))
                    .ev(ctx.manifest("/decision_points", "stakes and autonomy per decision point"))
                    .gap(format!("set `autonomy: supervised` with `reviewers` at {}", unsupervised.join(", ")));
            }
            let out = met(format!(
                "{} high-stakes decision points are supervised: the gateway holds each answer for a named reviewer",
                high.len()
            ))
            .ev(ctx.manifest("/decision_points", format!("{} supervised high-stakes decision points", high.len())));
            let out = event_evidence(ctx, out, "HO-2.review", "review decisions");
            let reviewers: Vec<_> = high.iter().flat_map(|p| &p.reviewers).collect();
            let out = knowledge(ctx, out, &reviewers, "reviewers");
            let Some(rt) = ctx.runtime else { return out };
            // Obligations from all records: a review past its deadline stays late until it
            // is decided.
            let until = rt.summary.until_ms;
            let late: Vec<_> = rt
                .facts
                .reviews
                .iter()
                .filter(|r| r.status == "pending" && r.deadline_ms.is_some_and(|d| d < until))
                .collect();
            let checks = [StageCheck::new("HO-1.review", ctx, |p| {
                high.iter().any(|h| h.id == p.id).then_some(&["hold"][..])
            })];
            let mut f = stage_findings(ctx, &checks);
            if !late.is_empty() {
                let ids: Vec<&str> = late.iter().map(|r| r.id.as_str()).collect();
                let e = ctx.store(
                    "reviews",
                    "reviews where status = pending and deadline < the window's end (all time)",
                    format!("{} held answers are past their review deadline undecided: {}", late.len(), ids.join(", ")),
                    &json!(ids),
                );
                f.contradictions.push(Evidence { contradicts: true, ..e });
            }
            let overdue = rt.events.get("HO-2.review_overdue").copied().unwrap_or(0);
            let out = if overdue > 0 {
                out.ev(ctx.store(
                    "events",
                    "COUNT(*) from events where kind = HO-2.review_overdue",
                    format!("{overdue} reviews escalated past their deadline in the window"),
                    &json!(overdue),
                ))
            } else {
                out
            };
            if f.contradictions.is_empty() {
                let mut out = out;
                out.evidence.extend(f.ran);
                return out;
            }
            judge(ctx, out, f, "HO-1.review")
        }
        "HO-3" => {
            let words = PerPoint {
                all: "every decision point discloses AI to its users",
                some: "no disclosure at {points}",
                none: "no decision point discloses AI",
                shows: "with a disclosure header or body field",
                fix: "add `disclosure` with text and `header: true` at {points}",
            };
            let out = every_answering_point(ctx, &words, |p| p.disclosure.as_ref().is_some_and(|d| d.header || d.body_field));
            match (out.status, ctx.traffic()) {
                (Status::Evidenced, Some(rt)) => {
                    let delivered = rt.summary.by_outcome.get("delivered").copied().unwrap_or(0);
                    if delivered == 0 {
                        return out;
                    }
                    let e = out.becomes(
                        Status::Enforced,
                        format!("every decision point discloses AI; {delivered} delivered responses carried it"),
                    );
                    e.ev(ctx.store(
                        "audit_log",
                        "COUNT(*) where outcome = delivered",
                        format!("{delivered} delivered with disclosure"),
                        &json!(delivered),
                    ))
                }
                _ => out,
            }
        }
        "HO-4" => {
            let out = met("reviewers edit or reject held answers, and any delivered answer can be overridden (`psf review override`, the admin API), each recorded with who and why")
                .ev(ctx.manifest("/decision_points", "reviewers named per decision point"));
            event_evidence(ctx, out, "HO-4.override", "overrides")
        }
        "HO-5" => {
            let latest_review = m.oversight_reviews.iter().map(|r| r.date).max();
            let latest_change = m.models.iter().flat_map(|x| &x.evaluations).map(|e| e.date).max();
            let after_change = m
                .oversight_reviews
                .iter()
                .any(|r| matches!(r.trigger, ReviewTrigger::ModelChange | ReviewTrigger::ScopeChange));
            let out = match latest_review {
                None => missing("oversight has never been reviewed")
                    .gap("record the initial review under `oversight_reviews`"),
                Some(d) if latest_change.is_some_and(|c| c > d) => {
                    partial(format!("the last oversight review ({d}) predates the latest model evaluation"))
                        .gap("review oversight after the latest model change and record it (trigger `model_change`)")
                }
                Some(d) if !ctx.fresh(d) => partial(format!("the last oversight review ({d}) is more than a year old"))
                    .gap("review oversight at least yearly"),
                Some(d) => met(format!(
                    "oversight last reviewed {d}{}",
                    if after_change { ", including after changes" } else { "" }
                )),
            }
            .ev(ctx.manifest("/oversight_reviews", format!("{} oversight reviews", m.oversight_reviews.len())));
            // The records beat the manifest: a change the gateway saw after the last
            // review (a new model version, drift, a quality drop) leaves the review due.
            match ctx.runtime {
                None => out,
                Some(rt) => {
                    let unreviewed: Vec<&(jiff::civil::Date, String)> =
                        rt.reviews_due.iter().filter(|(day, _)| latest_review.is_none_or(|r| *day > r)).collect();
                    let query = "events where kind = HO-5.review_due in the window";
                    let observation = format!(
                        "{} reasons for a review recorded, {} after the last review",
                        rt.reviews_due.len(),
                        unreviewed.len()
                    );
                    let ev = ctx.store(
                        "events",
                        query,
                        observation,
                        &json!(rt.reviews_due.iter().map(|(d, s)| json!([d, s])).collect::<Vec<_>>()),
                    );
                    match unreviewed.last() {
                        Some((day, why)) if out.status.is_met() => {
                            let summary = format!(
                                "the gateway found a reason for an oversight review on {day} that no review has followed: {why}"
                            );
                            out.becomes(Status::Partial, summary).ev(ev).gap(
                                "review oversight after the change the gateway recorded and add it under \
                                 `oversight_reviews` (trigger `model_change` or `scope_change`)",
                            )
                        }
                        _ => out.ev(ev),
                    }
                }
            }
        }
        "OB-1" => {
            let has = |metric: AlertMetric| m.alerts.iter().any(|a| a.metric == metric);
            let kinds = [AlertMetric::LatencyP99Ms, AlertMetric::ErrorRate, AlertMetric::RequestsPerMinute];
            let ok = kinds.iter().filter(|k| has(**k)).count();
            let out = share(
                ok,
                3,
                met("alerts on latency, errors and throughput; the gateway evaluates them and exports the figures at /metrics"),
                partial(format!("alerts cover {ok} of latency, errors and throughput")),
                missing("no alert on latency, errors or throughput"),
            )
            .ev(ctx.manifest("/alerts", format!("{} alert rules", m.alerts.len())))
            .gap("add `alerts` on latency_p99_ms, error_rate and requests_per_minute");
            event_evidence(ctx, out, "OB-1.alert", "alert state changes")
        }
        "OB-2" => match &m.quality_sampling {
            Some(q) => {
                let out = met(format!(
                    "the gateway samples {:.0}% of answers and scores them with the output checks (`psf_quality_score`)",
                    q.rate * 100.0
                ))
                .ev(ctx.manifest("/quality_sampling", "sampling rate"));
                match ctx.traffic() {
                    None => out.gap("no records in the window show sampling: assess with `--store` after traffic"),
                    Some(rt) => {
                        let n: u64 = rt.quality.iter().map(|f| f.samples).sum();
                        let ev = ctx.store(
                            "events",
                            "events where kind = OB-2.quality in the window",
                            format!("{} quality figures stored, {n} answers sampled", rt.quality.len()),
                            &json!(rt.quality.len()),
                        );
                        if rt.quality.is_empty() {
                            partial(format!(
                                "sampling is declared, but no quality figure was stored in the window among {} requests",
                                rt.summary.requests
                            ))
                            .ev(ev)
                            .gap("run the gateway with `quality_sampling` so it stores `OB-2.quality` figures, and re-assess")
                        } else {
                            let summary = format!("{}; {n} answers sampled in the window", out.summary);
                            out.becomes(Status::Enforced, summary).ev(ev)
                        }
                    }
                }
            }
            None => missing("no output-quality sampling").gap("add `quality_sampling.rate`"),
        },
        "OB-3" => {
            let out = met("the gateway watches each key against its own history (bursts, a rising share of injections, personal data or out-of-scope answers) and records each anomaly as an `OB-3.anomaly` event");
            match ctx.traffic() {
                Some(rt) => {
                    let n = rt.events.get("OB-3.anomaly").copied().unwrap_or(0);
                    let abuse = rt.events.get("IG-4.abuse").copied().unwrap_or(0);
                    out.ev(ctx.store(
                        "events",
                        "COUNT(*) from events where kind in (OB-3.anomaly, IG-4.abuse)",
                        format!("{n} anomalies and {abuse} abuse alerts in the window over {} keys", rt.summary.distinct_keys),
                        &json!({"OB-3.anomaly": n, "IG-4.abuse": abuse}),
                    ))
                }
                None => out.gap("no records in the window: assess with `--store` after traffic"),
            }
        }
        "OB-4" => {
            let out = met("the gateway exports its health at /metrics (`psf dashboards --grafana` writes a board for it) and the console's overview shows it live");
            match ctx.traffic() {
                Some(rt) => out.ev(ctx.records(
                    "every audit record of the window (the overview's source)",
                    format!("{} requests on {} days", rt.summary.requests, rt.summary.active_days),
                    &rt.records.all(),
                )),
                None => out,
            }
        }
        "OB-5" => {
            let days = m.retention.audit_log_days;
            let out = if days >= 30 {
                met(format!("structured audit records kept {days} days"))
            } else {
                missing(format!("audit records kept only {days} days"))
                    .gap("set `retention.audit_log_days` to 30 or more")
            }
            .ev(ctx.manifest("/retention/audit_log_days", format!("{days} days")));
            match (out.status, ctx.traffic()) {
                (Status::Evidenced, Some(rt)) => {
                    let e = out.becomes(
                        Status::Enforced,
                        format!("every request is recorded as a structured audit record, kept {days} days"),
                    );
                    e.ev(ctx.store(
                        "audit_log",
                        "COUNT(*) in the window",
                        format!("{} records", rt.summary.requests),
                        &json!(rt.summary.requests),
                    ))
                }
                _ => out,
            }
        }
        "IR-1" => match &m.incident_plan {
            None => missing("no incident plan").gap("add `incident_plan.failure_modes` with runbooks"),
            Some(plan) => {
                let needed = [FailureKind::HarmfulOutput, FailureKind::DataLeakage, FailureKind::ModelFailure];
                let lacking: Vec<&str> = needed
                    .iter()
                    .filter(|k| !plan.failure_modes.iter().any(|f| f.kind == **k))
                    .map(|k| match k {
                        FailureKind::HarmfulOutput => "harmful output",
                        FailureKind::DataLeakage => "data leakage",
                        _ => "model failure",
                    })
                    .collect();
                if lacking.is_empty() && !plan.escalation.is_empty() {
                    met(format!("{} failure modes with runbooks and an escalation path", plan.failure_modes.len()))
                } else {
                    partial(format!("the plan lacks {}", if lacking.is_empty() { "an escalation path".to_string() } else { lacking.join(", ") }))
                        .gap("cover harmful output, data leakage and model failure, each with a runbook, and name the escalation path")
                }
                .ev(ctx.manifest("/incident_plan", format!("{} failure modes, {} escalation steps", plan.failure_modes.len(), plan.escalation.len())))
            }
        },
        "IR-2" => {
            let timed: Vec<(String, f64)> = m
                .drills
                .iter()
                .filter(|d| ctx.fresh(d.date))
                .filter_map(|d| d.time_to_disable_minutes.map(|t| (format!("the drill of {}", d.date), t)))
                .collect();
            // Drills run with `psf drill` and recorded by the gateways, within the year.
            let recorded: Vec<&psf_store::Event> = ctx
                .runtime
                .map(|rt| {
                    rt.facts
                        .events_of("IR-5.drill")
                        .filter(|e| ctx.fresh(crate::runtime::day(e.ts_ms).unwrap_or(ctx.today)))
                        .collect()
                })
                .unwrap_or_default();
            let measured: Vec<(String, f64)> = recorded
                .iter()
                .filter_map(|e| Some((format!("`psf drill` on {}", minute(e.ts_ms)), e.detail["time_to_disable_ms"].as_f64()? / 60_000.0)))
                .collect();
            let best = timed.iter().chain(&measured).min_by(|a, b| a.1.total_cmp(&b.1));
            let mut out = match best {
                Some((what, t)) if *t <= 15.0 => {
                    let s = format!("{what} disabled the system in {} minutes; `psf incident declare` stops calls on every gateway sharing the store", round2(*t));
                    if measured.iter().any(|(_, t)| *t <= 15.0) { Out::new(Status::Enforced, s) } else { met(s) }
                }
                Some((what, t)) => missing(format!("the fastest drill in the year ({what}) took {} minutes to disable the system (limit 15)", round2(*t)))
                    .gap("bring time-to-disable under 15 minutes and record the drill"),
                None => missing("no drill in the year measured time to disable").gap("run `psf drill` against the live gateways, or record a drill's `time_to_disable_minutes`"),
            }
            .ev(ctx.manifest("/drills", format!("{} drills with a measured time to disable", timed.len())));
            if let Some(rt) = ctx.runtime {
                out = out.ev(ctx.store(
                    "events",
                    "events where kind = IR-5.drill within the year",
                    format!("{} drills recorded by the gateways", recorded.len()),
                    &json!(measured.iter().map(|(w, t)| json!([w, t])).collect::<Vec<_>>()),
                ));
                let uses: Vec<&str> = rt.facts.incidents.iter().filter(|i| !i.drill && i.action == "disable").map(|i| i.id.as_str()).collect();
                if !uses.is_empty() {
                    out = out.ev(ctx.store(
                        "incidents",
                        "incidents where action = disable (drills excluded)",
                        format!("the kill switch was used in {} real incidents: {}", uses.len(), uses.join(", ")),
                        &json!(uses),
                    ));
                }
            }
            out
        }
        "IR-3" => match ctx.runtime {
            None => manual(
                "psf keeps incidents and their post-incident reviews in its store; assess with `--store` to read them",
            )
            .gap("assess with `--store` so the incident records are evidence"),
            Some(rt) => {
                // Obligations outlive the window: every incident ever declared counts.
                let real: Vec<_> = rt.facts.incidents.iter().filter(|i| !i.drill).collect();
                let overdue: Vec<&str> = real
                    .iter()
                    .filter(|i| !i.review_written() && psf_core::calendar::review_past_due(i.declared_ms, ctx.today))
                    .map(|i| i.id.as_str())
                    .collect();
                let done = real.iter().filter(|i| i.review_written()).count();
                let observation = format!("{} incidents on record, {done} reviewed, {} overdue", real.len(), overdue.len());
                let result = json!({"incidents": real.iter().map(|i| &i.id).collect::<Vec<_>>(), "reviewed": done, "overdue": overdue});
                let ev = ctx.store("incidents", "every incident declared up to the window's end (drills excluded)", observation, &result);
                if real.is_empty() {
                    met("no incident on record; `psf incident review` keeps each review with its incident").ev(ev)
                } else if overdue.is_empty() {
                    Out::new(
                        Status::Enforced,
                        format!("{} incidents on record, {done} with a post-incident review, the rest within their five business days", real.len()),
                    )
                    .ev(ev)
                } else {
                    missing(format!("post-incident reviews overdue (five business days) for {}", overdue.join(", ")))
                        .ev(Evidence { contradicts: true, ..ev })
                        .gap("write the overdue reviews with `psf incident review ID --root-cause … --action 'WHAT|OWNER'`")
                }
            }
        },
        "IR-4" => match &m.incident_plan {
            Some(plan) if !plan.comms_templates.is_empty() => {
                let n = plan.comms_templates.len();
                let ok =
                    plan.comms_templates.iter().filter(|t| t.approved_on.is_some() && t.approved_by.is_some()).count();
                let customers = plan.comms_templates.iter().any(|t| t.audience == Audience::Customers);
                let out = share(
                    ok,
                    n,
                    met(format!("{n} communication templates approved in advance")),
                    partial(format!("{} of {n} templates are not approved", n - ok)),
                    missing("no template is approved"),
                )
                .gap("record `approved_on` and `approved_by` on every template");
                let out = if customers {
                    out
                } else {
                    partial("no template for customers").gap("add an approved template for customers")
                };
                out.ev(ctx.manifest("/incident_plan/comms_templates", format!("{ok} of {n} approved")))
            }
            _ => missing("no pre-approved communication templates")
                .gap("add `incident_plan.comms_templates` for customers and regulators, approved in advance"),
        },
        "IR-5" => {
            let fresh = m.drills.iter().filter(|d| ctx.fresh(d.date)).count();
            let recorded = ctx.traffic().map_or(0, |rt| rt.events.get("IR-5.drill").copied().unwrap_or(0));
            let out = if fresh > 0 {
                met(format!("{fresh} drills in the year"))
            } else if recorded > 0 {
                met(format!("{recorded} drills run with `psf drill` in the window"))
            } else if m.drills.is_empty() {
                missing("no drill on record")
            } else {
                missing("no drill in the year")
            }
            .ev(ctx.manifest("/drills", format!("{} drills", m.drills.len())))
            .gap("run a drill (`psf drill` against the live gateways) or a tabletop exercise and record it under `drills`");
            let out = event_evidence(ctx, out, "IR-5.drill", "drills run with `psf drill`");
            let on_call: Vec<_> = m.incident_plan.iter().flat_map(|p| &p.escalation).map(|e| &e.contact).collect();
            knowledge(ctx, out, &on_call, "people on call")
        }

        "EA-1" => {
            let owner = &m.system.owner;
            let ev = ctx.manifest("/system/owner", format!("owner {} <{}>", owner.name, owner.email));
            match crate::person::why_not_a_person(&owner.name, &owner.email) {
                None => met(format!("{} is the one accountable owner, with an individual email", owner.name)).ev(ev),
                Some(why) => missing(format!("the accountable owner does not read as one person: {why}"))
                    .ev(ev)
                    .gap("name one person (given name and family name) with their own work email as `system.owner`"),
            }
        }
        "EA-2" => {
            let fairness = m.fairness_evaluations.iter().filter(|f| ctx.fresh(f.date)).count();
            let limits = m.limitations.len();
            let out = if fairness > 0 && limits > 0 {
                met(format!("{fairness} fairness evaluations in the year and {limits} documented limitations"))
            } else if fairness > 0 || limits > 0 {
                partial(if fairness > 0 { "no documented limitations" } else { "no fairness evaluation in the year" })
            } else {
                missing("no fairness evaluation and no documented limitations")
            }
            .ev(ctx.manifest("/fairness_evaluations", format!("{} fairness evaluations", m.fairness_evaluations.len())))
            .ev(ctx.manifest("/limitations", format!("{limits} limitations")))
            .gap("evaluate fairness for this use case (`fairness_evaluations`; `psf eval` with counterfactual pairs) and list `limitations`");
            event_evidence(ctx, out, "EA-2.fairness", "counterfactual fairness runs (`psf eval --store`)")
        }
        "EA-3" => {
            let n = m.regulations.len();
            let current = m.regulations.iter().filter(|r| r.next_review >= ctx.today).count();
            let gaps = m.regulations.iter().filter(|r| r.status == ComplianceStatus::Gap).count();
            if n == 0 {
                missing("no regulation is tracked")
                    .gap("list applicable regulations under `regulations` with owners and review dates")
            } else if current == n && gaps == 0 {
                met(format!("{n} regulations tracked, none overdue for review"))
            } else {
                partial(format!("{} overdue for review, {gaps} with a compliance gap", n - current))
                    .gap("review overdue regulations and close or plan the gaps")
            }
            .ev(ctx.manifest("/regulations", format!("{n} regulations")))
        }
        "EA-4" => match ctx.traffic() {
            Some(rt) => met(format!(
                "{} audit records in the window; `psf export --store` bundles them with the manifest and the signed assessment, and `psf verify --bundle` recomputes every verdict from the bundle",
                rt.summary.requests
            ))
            .ev(ctx.records(
                "every audit record of the window",
                format!("{} records", rt.summary.requests),
                &rt.records.all(),
            )),
            None => partial("accountability records exist only as the manifest")
                .gap("run traffic through the gateway so its audit log exists, and export it for auditors with `psf export --store`"),
        },
        "EA-5" => {
            let fresh = m.ethical_reviews.iter().filter(|r| ctx.fresh(r.date)).count();
            let sensitive = m.decision_points.iter().any(|p| p.stakes == Stakes::High || p.affects_vulnerable_people);
            if fresh > 0 {
                met(format!("{fresh} ethical reviews in the year"))
            } else if sensitive {
                missing("a sensitive use without an ethical review in the year")
                    .gap("hold an ethical review and record it under `ethical_reviews`")
            } else {
                partial("no ethical review in the year; no decision point is marked high-stakes")
                    .gap("record an ethical review, or declare EA-5 not applicable with a reason")
            }
            .ev(ctx.manifest("/ethical_reviews", format!("{} ethical reviews", m.ethical_reviews.len())))
        }
        _ => manual("no rule for this competency"),
    }
}
