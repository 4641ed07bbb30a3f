//! One rule per competency: what the manifest and the records must show for it to be met.
//!
//! Each rule returns an [`Out`]: a status, a sentence, the evidence it looked at and, when
//! not met, what would meet it. Rules for competencies the gateway enforces start from
//! the configuration and are raised to `enforced` only by [`runtime_stage`], when records
//! in the window show the stage running and never unable to run.

use psf_core::catalog::Competency;
use psf_core::manifest::{
    Action, AlertMetric, Audience, Autonomy, ComplianceStatus, EvaluationKind, FailureKind, PiiAction, ReviewTrigger,
    Stakes,
};
use serde_json::json;

use crate::context::{Ctx, Evidence};
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
    Verdict {
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

/// Raises a configured control to `enforced` when the records show its stages running.
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

fn runtime_stage(ctx: &Ctx<'_>, codes: &[&str], configured: Out) -> Out {
    if configured.status != Status::Evidenced {
        return configured;
    }
    let Some(rt) = ctx.traffic() else {
        return configured.gap(
            "no gateway records in the window show it working: send traffic through `psf serve` and assess with `--store`",
        );
    };
    let s = &rt.summary;
    let mut counts = serde_json::Map::new();
    let (mut total, mut unavailable) = (0, 0);
    let mut parts = Vec::new();
    for code in codes {
        let ran = s.stage_total(code);
        total += ran;
        unavailable += s.stage(code, "unavailable");
        if let Some(by) = s.stages.get(*code) {
            counts.insert((*code).to_string(), json!(by));
            let shown: Vec<String> = by.iter().map(|(d, n)| format!("{n} {d}")).collect();
            parts.push(format!("{code}: {}", shown.join(", ")));
        }
    }
    let query = format!("audit_log stages where code in [{}]", codes.join(", "));
    let result = serde_json::Value::Object(counts);
    if total == 0 {
        return configured
            .ev(ctx.store("audit_log", &query, format!("no decisions recorded among {} requests", s.requests), &result))
            .gap(format!(
                "no request in the window went through {}; until one does, only the configuration shows it",
                codes.join(" or ")
            ));
    }
    let observation = parts.join("; ");
    if unavailable > 0 {
        return configured
            .becomes(Status::Partial, format!("configured, but the check could not run on {unavailable} decisions in the window"))
            .ev(ctx.store("audit_log", &query, observation, &result))
            .gap("the gateway records `unavailable` where its detector has not landed; this competency cannot be enforced until it has");
    }
    let summary = format!("{}; enforced on {total} decisions in the window", configured.summary);
    configured.becomes(Status::Enforced, summary).ev(ctx.store("audit_log", &query, observation, &result))
}

fn points_where(ctx: &Ctx<'_>, f: impl Fn(&psf_core::manifest::DecisionPoint) -> bool) -> (usize, usize, Vec<String>) {
    let points = &ctx.m.decision_points;
    let bad: Vec<String> = points.iter().filter(|p| !f(p)).map(|p| p.id.clone()).collect();
    (points.len() - bad.len(), points.len(), bad)
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
    let (ok, n, bad) = points_where(ctx, f);
    let bad = bad.join(", ");
    share(ok, n, met(words.all), partial(words.some.replace("{points}", &bad)), missing(words.none))
        .ev(ctx.manifest("/decision_points", format!("{ok} of {n} decision points {}", words.shows)))
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
            runtime_stage(ctx, &["IG-1.sanitize", "IG-1.injection"], out)
        }
        "IG-2" => runtime_stage(
            ctx,
            &["IG-2.schema", "IG-2.size"],
            met("requests are checked for shape, size, message count and characters per message")
                .ev(ctx.manifest("/decision_points", "input limits per decision point (defaults apply where unset)")),
        ),
        "IG-3" => match ctx.traffic() {
            None => met("the gateway redacts PII from every audit record before it is written")
                .ev(ctx
                    .manifest("/decision_points", "PII policy per decision point; the audit copy is always redacted"))
                .gap("no audit records in the window to sample: assess with `--store` after traffic"),
            Some(rt) => {
                let sample = &rt.pii_sample;
                let result = json!(sample);
                let query = format!("the newest {} audit records, input and output scanned for PII", sample.records);
                if sample.findings.is_empty() {
                    Out::new(Status::Enforced, format!("{} audit records sampled; no PII in clear", sample.records))
                        .ev(ctx.store("audit_log", &query, "0 findings", &result))
                } else {
                    let found: Vec<String> = sample.findings.iter().map(|(t, n)| format!("{n} {t}")).collect();
                    missing(format!(
                        "the audit log holds PII in clear, contradicting the manifest: {} in {} sampled records",
                        found.join(", "),
                        sample.records
                    ))
                    .ev(ctx.store("audit_log", &query, format!("records with findings: {}", sample.request_ids.join(", ")), &result))
                    .gap("find how clear PII reached the log (records written by another tool, or a detector gap), purge those records, and re-assess")
                }
            }
        },
        "IG-4" => {
            let apps_limited = m.apps.iter().filter(|a| a.rate_limit.is_some()).count();
            let any =
                m.rate_limits.global.is_some() || m.rate_limits.per_app.is_some() || m.rate_limits.per_key.is_some();
            let out = if any || (apps_limited == m.apps.len() && !m.apps.is_empty()) {
                met("requests are rate-limited and repeated refusals from one key raise an alert")
            } else if apps_limited > 0 {
                partial(format!("only {apps_limited} of {} apps have a rate limit", m.apps.len()))
                    .gap("add `rate_limits.global` or `rate_limits.per_app`")
            } else {
                missing("no rate limit is configured").gap("add `rate_limits.global` and `rate_limits.per_key`")
            }
            .ev(ctx.manifest("/rate_limits", "global, per-app and per-key limits"));
            let out = runtime_stage(ctx, &["IG-4.rate_limit"], out);
            match ctx.traffic().and_then(|rt| rt.events.get("IG-4.abuse")) {
                Some(n) => {
                    let e = ctx.store(
                        "events",
                        "events where kind = IG-4.abuse",
                        format!("{n} abuse alerts raised"),
                        &json!(n),
                    );
                    out.ev(e)
                }
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
            let out = every_point(ctx, &words, |p| p.system_prompt.is_some());
            runtime_stage(ctx, &["IG-5.system_prompt", "IG-5.leak"], out)
        }
        "OV-1" => runtime_stage(
            ctx,
            &["OV-5.state", "OV-2.length", "OV-2.schema", "DG-1.pii_output"],
            met("every output passes the gateway's output stage, which cannot be switched off")
                .ev(ctx
                    .manifest("/decision_points", "an output policy per decision point (defaults apply where unset)")),
        ),
        "OV-2" => {
            let words = PerPoint {
                all: "every decision point constrains its output by JSON Schema or length",
                some: "no output schema or length limit at {points}",
                none: "no decision point constrains its output",
                shows: "set `output.json_schema` or `output.max_chars`",
                fix: "set `output.json_schema` (structured replies) or `output.max_chars` at {points}",
            };
            let out = every_point(ctx, &words, |p| p.output.json_schema.is_some() || p.output.max_chars.is_some());
            runtime_stage(ctx, &["OV-2.schema", "OV-2.length"], out)
        }
        "OV-3" => {
            let words = PerPoint {
                all: "content filtering is configured at every decision point",
                some: "no content filter at {points}",
                none: "no content filter is configured",
                shows: "filter content categories",
                fix: "set `output.content.categories` and `action: block` at {points}",
            };
            let out = every_point(ctx, &words, |p| {
                !p.output.content.categories.is_empty() && p.output.content.action != Action::Allow
            });
            runtime_stage(ctx, &["OV-3.content", "OV-3.scope"], out)
        }
        "OV-4" => {
            let words = PerPoint {
                all: "every decision point judges confidence from the model's log-probabilities",
                some: "no confidence policy at {points}",
                none: "no confidence policy is set",
                shows: "set `output.confidence`",
                fix: "set `output.confidence.min_mean_logprob` and what happens below it at {points}",
            };
            let out = every_point(ctx, &words, |p| p.output.confidence.is_some());
            // `unavailable` where a provider gives no log-probabilities (Anthropic).
            runtime_stage(ctx, &["OV-4.confidence"], out)
        }
        "OV-5" => runtime_stage(
            ctx,
            &["OV-5.state"],
            met("refusals, truncation and content-filter stops are defined states with stable error codes")
                .ev(ctx.manifest("/decision_points", "every decision point goes through the gateway's error model")),
        ),
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
            runtime_stage(ctx, &["DG-1.pii"], out)
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
                runtime_stage(ctx, &["DG-5.residency"], out)
            }
        },
        "MS-1" => {
            let n = m.models.len();
            let ok = m.models.iter().filter(|x| x.rationale.as_deref().is_some_and(|r| !r.trim().is_empty())).count();
            share(
                ok,
                n,
                met("every model's choice has a rationale"),
                partial(format!("{} of {n} models have no rationale", n - ok)),
                missing("no model has a rationale"),
            )
            .ev(ctx.manifest("/models", format!("{ok} of {n} models with `rationale`")))
            .gap("write why each model was chosen under `models[].rationale`")
        }
        "MS-2" => {
            let n = m.models.len();
            let ok = m
                .models
                .iter()
                .filter(|x| {
                    x.evaluations
                        .iter()
                        .any(|e| e.kind == EvaluationKind::Benchmark || e.kind == EvaluationKind::RedTeam)
                })
                .count();
            share(
                ok,
                n,
                met("every model has reviewed benchmarks on record"),
                partial(format!("{} of {n} models have no benchmark on record", n - ok)),
                missing("no benchmark is on record"),
            )
            .ev(ctx.manifest("/models", format!("{ok} of {n} models with a benchmark or red-team evaluation")))
            .gap("record the benchmarks reviewed before deployment under `models[].evaluations` (kind `benchmark`)")
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
            event_evidence(ctx, out, "MS-3.regression_gate", "regression-gate runs (`psf eval --store`)")
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
            let out = runtime_stage(ctx, &["MS-4.fallback", "MS-4.degraded", "MS-4.unavailable"], out);
            if out.status == Status::Evidenced
                && let Some(rt) = ctx.traffic()
            {
                // No outage in the window is not a gap: the router ran on every delivered request.
                let delivered = rt.summary.by_outcome.get("delivered").copied().unwrap_or(0);
                let e = out.becomes(
                    Status::Enforced,
                    format!(
                        "fallbacks configured; the router served {delivered} requests with no outage in the window"
                    ),
                );
                return e.ev(ctx.store(
                    "audit_log",
                    "COUNT(*) where outcome = delivered",
                    format!("{delivered} delivered"),
                    &json!(delivered),
                ));
            }
            out
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
        "HO-1" => runtime_stage(
            ctx,
            &["HO-1.review", "IG-2.schema"],
            met(format!("all {} decision points have an autonomy level", m.decision_points.len()))
                .ev(ctx.manifest("/decision_points", "`autonomy` is required on every decision point")),
        ),
        "HO-2" => {
            let high: Vec<_> = m
                .decision_points
                .iter()
                .filter(|p| p.stakes == Stakes::High || p.irreversible || p.affects_vulnerable_people)
                .collect();
            let unsupervised: Vec<&str> =
                high.iter().filter(|p| p.autonomy != Autonomy::Supervised).map(|p| p.id.as_str()).collect();
            if high.is_empty() {
                met("no decision point is high-stakes, irreversible or affects vulnerable people")
                    .ev(ctx.manifest("/decision_points", "stakes per decision point"))
            } else if !unsupervised.is_empty() {
                missing(format!("high-stakes decision points without human review: {}", unsupervised.join(", ")))
                    .ev(ctx.manifest("/decision_points", "stakes and autonomy per decision point"))
                    .gap(format!("set `autonomy: supervised` with `reviewers` at {}", unsupervised.join(", ")))
            } else {
                let out = met(format!(
                    "{} high-stakes decision points are supervised: the gateway holds each answer for a named reviewer",
                    high.len()
                ))
                .ev(ctx.manifest("/decision_points", format!("{} supervised high-stakes decision points", high.len())));
                let out = event_evidence(ctx, out, "HO-2.review", "review decisions");
                let reviewers: Vec<_> = high.iter().flat_map(|p| &p.reviewers).collect();
                knowledge(ctx, out, &reviewers, "reviewers")
            }
        }
        "HO-3" => {
            let words = PerPoint {
                all: "every decision point discloses AI to its users",
                some: "no disclosure at {points}",
                none: "no decision point discloses AI",
                shows: "with a disclosure header or body field",
                fix: "add `disclosure` with text and `header: true` at {points}",
            };
            let out = every_point(ctx, &words, |p| p.disclosure.as_ref().is_some_and(|d| d.header || d.body_field));
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
            share(
                ok,
                3,
                met("alerts on latency, errors and throughput; the gateway exports them at /metrics"),
                partial(format!("alerts cover {ok} of latency, errors and throughput")),
                missing("no alert on latency, errors or throughput"),
            )
            .ev(ctx.manifest("/alerts", format!("{} alert rules", m.alerts.len())))
            .gap("add `alerts` on latency_p99_ms, error_rate and requests_per_minute")
        }
        "OB-2" => match &m.quality_sampling {
            Some(q) => partial(format!(
                "quality sampling is declared ({:.0}% of outputs), but psf does not sample yet",
                q.rate * 100.0
            ))
            .ev(ctx.manifest("/quality_sampling", "sampling rate"))
            .gap("the gateway's sampler and evaluators (planned); until then keep the sampling log"),
            None => missing("no output-quality sampling").gap("add `quality_sampling.rate`"),
        },
        "OB-3" => {
            let out = partial("the gateway raises abuse alerts (repeated limit hits or blocked injections per key); broader anomaly detection has not landed")
                .gap("anomaly detectors per key and app (volume, topics, cost) raising events (planned)");
            match ctx.traffic() {
                Some(rt) => {
                    let n = rt.events.get("IG-4.abuse").copied().unwrap_or(0);
                    out.ev(ctx.store(
                        "events",
                        "events where kind = IG-4.abuse",
                        format!("{n} abuse alerts in the window"),
                        &json!(n),
                    ))
                }
                None => out,
            }
        }
        "OB-4" => {
            partial("the gateway exports Prometheus metrics at /metrics; the console's live dashboard has not landed")
                .gap("the console's health dashboard (planned), or a Grafana board over /metrics")
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
            let timed: Vec<_> = m
                .drills
                .iter()
                .filter(|d| ctx.fresh(d.date))
                .filter_map(|d| d.time_to_disable_minutes.map(|t| (d.date, t)))
                .collect();
            match timed.iter().map(|(_, t)| *t).reduce(f64::min) {
                Some(t) if t <= 15.0 => met(format!("a drill disabled the system in {t} minutes; `psf incident declare` stops calls on every gateway within a second")),
                Some(t) => missing(format!("the fastest drill in the year took {t} minutes to disable the system (limit 15)"))
                    .gap("bring time-to-disable under 15 minutes and record the drill"),
                None => missing("no drill in the year measured time to disable").gap("run a drill and record `time_to_disable_minutes`"),
            }
            .ev(ctx.manifest("/drills", format!("{} drills with a measured time to disable", timed.len())))
        }
        "IR-3" => match ctx.traffic() {
            None => manual(
                "psf keeps incidents and their post-incident reviews in its store; assess with `--store` to read them",
            )
            .gap("assess with `--store` so the incident records are evidence"),
            Some(rt) => {
                let real: Vec<_> = rt.incidents.iter().filter(|i| !i.drill).collect();
                let overdue: Vec<&str> = real
                    .iter()
                    .filter(|i| !i.review_written() && psf_core::calendar::review_past_due(i.declared_ms, ctx.today))
                    .map(|i| i.id.as_str())
                    .collect();
                let done = real.iter().filter(|i| i.review_written()).count();
                let observation =
                    format!("{} incidents in the window, {done} reviewed, {} overdue", real.len(), overdue.len());
                let result = json!({"incidents": real.len(), "reviewed": done, "overdue": overdue});
                let out = if real.is_empty() {
                    met("no incident in the window; `psf incident review` keeps each review with its incident")
                } else if overdue.is_empty() {
                    Out::new(
                        Status::Enforced,
                        format!(
                            "{} incidents in the window, each reviewed or not yet due (five business days)",
                            real.len()
                        ),
                    )
                } else {
                    partial(format!("post-incident reviews overdue (five business days) for {}", overdue.join(", ")))
                        .gap("write the overdue reviews with `psf incident review ID --root-cause … --action 'WHAT|OWNER'`")
                };
                out.ev(ctx.store(
                    "incidents",
                    "incidents declared in the window (drills excluded)",
                    observation,
                    &result,
                ))
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

        "EA-1" => met(format!("{} is the one accountable owner", m.system.owner.name)).ev(ctx.manifest(
            "/system/owner",
            "a named person with an email (`psf check` rejects groups and shared mailboxes)",
        )),
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
            Some(rt) => partial(format!(
                "{} audit records in the window can be read; the export bundle for auditors has not landed",
                rt.summary.requests
            ))
            .ev(ctx.store(
                "audit_log",
                "COUNT(*) in the window",
                format!("{} records", rt.summary.requests),
                &json!(rt.summary.requests),
            ))
            .gap("`psf export`: the manifest, the assessment and its evidence as one bundle (planned)"),
            None => partial("accountability records exist only as the manifest")
                .gap("run traffic through the gateway so its audit log exists, and export it for auditors"),
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
