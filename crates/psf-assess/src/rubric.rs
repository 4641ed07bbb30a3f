//! The CPAP portfolio rubric (seed `000`): five dimensions, each at one of four levels,
//! scored from the verdicts and the records, with the reason and what the next level
//! needs. Level 4 is the rubric's top; 1 its bottom. Thresholds are psf's reading of the
//! rubric's words, stated in each dimension's `reason`.

use psf_core::Manifest;
use psf_core::manifest::{Audience, RiskBand, Treatment};
use serde::Serialize;

use crate::{Runtime, Status, Verdict};

/// A rubric level, 1 (lowest) to 4 (highest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Level(pub u8);

impl Level {
    /// The level's short name.
    pub fn name(self) -> &'static str {
        match self.0 {
            4 => "exemplary",
            3 => "proficient",
            2 => "developing",
            _ => "insufficient",
        }
    }
}

/// One rubric dimension, scored.
#[derive(Debug, Clone, Serialize)]
pub struct Dimension {
    /// Stable id.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// The level reached.
    pub level: Level,
    /// Why this level.
    pub reason: String,
    /// What the next level needs (empty at level 4).
    pub next: String,
}

/// A risk of the register with its score and whether its controls are in force.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredRisk {
    /// The risk's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Likelihood, 1 to 5.
    pub likelihood: u8,
    /// Impact, 1 to 5.
    pub impact: u8,
    /// Likelihood x impact.
    pub score: u8,
    /// `low`, `medium`, `high`, `critical`.
    pub band: &'static str,
    /// Whether the category is AI-specific.
    pub ai_specific: bool,
    /// The mitigating competencies.
    pub mitigations: Vec<String>,
    /// Mitigations whose verdict is not met.
    pub unmet_mitigations: Vec<String>,
}

/// Scores the register and checks each mitigation against its verdict.
pub fn scored_risks(m: &Manifest, verdicts: &[Verdict]) -> Vec<ScoredRisk> {
    m.risks
        .iter()
        .map(|r| {
            let unmet = r
                .mitigations
                .iter()
                .filter(|c| !verdicts.iter().any(|v| v.id == c.as_str() && v.status.is_met()))
                .cloned()
                .collect();
            ScoredRisk {
                id: r.id.clone(),
                title: r.title.clone(),
                likelihood: r.likelihood,
                impact: r.impact,
                score: r.score(),
                band: r.band().as_str(),
                ai_specific: r.category.is_ai_specific(),
                mitigations: r.mitigations.clone(),
                unmet_mitigations: unmet,
            }
        })
        .collect()
}

fn dim(id: &'static str, name: &'static str, level: u8, reason: String, next: &str) -> Dimension {
    Dimension { id, name, level: Level(level), reason, next: if level >= 4 { String::new() } else { next.to_string() } }
}

fn status_of(verdicts: &[Verdict], id: &str) -> Status {
    verdicts.iter().find(|v| v.id == id).map_or(Status::Missing, |v| v.status)
}

/// Scores the five dimensions.
pub fn score(m: &Manifest, runtime: Option<&Runtime>, verdicts: &[Verdict], risks: &[ScoredRisk]) -> Vec<Dimension> {
    vec![
        production(m, runtime),
        application(verdicts),
        risk(m, risks),
        operations(m, runtime, verdicts),
        documentation(m),
    ]
}

/// The sampled quality at the start of the window against its end: the first and last
/// thirds of the stored figures, each weighted by its samples.
fn before_after(figures: &[crate::runtime::QualityFigure]) -> Option<String> {
    if figures.len() < 2 {
        return None;
    }
    let third = (figures.len() / 3).max(1);
    let mean = |fs: &[crate::runtime::QualityFigure]| {
        let n: u64 = fs.iter().map(|f| f.samples).sum();
        (n > 0).then(|| fs.iter().map(|f| f.mean * f.samples as f64).sum::<f64>() / n as f64)
    };
    let (first, last) = (figures.get(..third)?, figures.get(figures.len() - third..)?);
    let (before, after) = (mean(first)?, mean(last)?);
    Some(format!(
        "sampled quality {before:.3} ({} to {}) → {after:.3} ({} to {})",
        first.first()?.day,
        first.last()?.day,
        last.first()?.day,
        last.last()?.day
    ))
}

fn production(m: &Manifest, runtime: Option<&Runtime>) -> Dimension {
    let (name, id) = ("Production deployment evidence", "production");
    let Some(s) = runtime.map(|r| &r.summary).filter(|s| s.requests > 0) else {
        return dim(
            id,
            name,
            1,
            "no gateway records in the window: nothing shows the system serving users".into(),
            "serve real traffic through `psf serve` and assess with `--store`",
        );
    };
    let points = s.by_decision_point.len();
    let monitored = !m.alerts.is_empty();
    let mut facts = format!(
        "{} requests from {} keys on {} days across {points} decision point{}; {}",
        s.requests,
        s.distinct_keys,
        s.active_days,
        if points == 1 { "" } else { "s" },
        if monitored { "alert rules set" } else { "no alert rules" }
    );
    if let Some(change) = runtime.and_then(|r| before_after(&r.quality)) {
        facts.push_str("; ");
        facts.push_str(&change);
    }
    // The rubric counts production *deployments*: one manifest is one system, however
    // many decision points it has, so one system's assessment tops out at level 3.
    if m.system.risk_tier == psf_core::manifest::RiskTier::Low {
        return dim(
            id,
            name,
            2,
            format!("{facts}; an internal, low-consequence tool (`risk_tier: low`) counts as an internal deployment"),
            "a customer-facing production deployment with quantitative evidence and monitoring",
        );
    }
    if s.active_days >= 7 && s.requests >= 100 && s.distinct_keys >= 2 && monitored {
        dim(
            id,
            name,
            3,
            format!("{facts}: one production deployment with quantitative evidence and monitoring"),
            "a second production deployment with documented scale and before/after figures (the rubric counts deployments; this assessment covers one)",
        )
    } else {
        dim(
            id,
            name,
            2,
            format!("{facts}: limited operational history"),
            "7+ days in service, 100+ requests from 2+ keys, and alert rules",
        )
    }
}

fn application(verdicts: &[Verdict]) -> Dimension {
    let (name, id) = ("PSF application across the domains", "application");
    let mut addressed = 0;
    let mut clean = 0;
    for d in &psf_core::catalog::DOMAINS {
        let mine: Vec<_> = verdicts.iter().filter(|v| v.domain == d.id).collect();
        let met = mine.iter().filter(|v| v.status.is_met()).count();
        if met >= 3 {
            addressed += 1;
        }
        if mine.iter().all(|v| v.status.is_met() || v.status == Status::Manual) {
            clean += 1;
        }
    }
    let reason = format!(
        "{addressed} of 8 domains addressed (3 or more of their 5 competencies met), {clean} with nothing partial or missing"
    );
    match addressed {
        8 if clean == 8 => dim(id, name, 4, reason, ""),
        6.. => dim(id, name, 3, reason, "all 8 domains addressed with nothing partial or missing"),
        4 | 5 => dim(id, name, 2, reason, "6 or more domains addressed"),
        _ => dim(id, name, 1, reason, "4 or more domains addressed"),
    }
}

fn risk(m: &Manifest, risks: &[ScoredRisk]) -> Dimension {
    let (name, id) = ("AI risk management", "risk");
    if risks.is_empty() {
        return dim(
            id,
            name,
            1,
            "no risk register".into(),
            "a register of AI-specific risks scored by likelihood x impact",
        );
    }
    let ai = risks.iter().filter(|r| r.ai_specific).count();
    let high: Vec<_> = risks.iter().filter(|r| r.score >= 10).collect();
    let high_unmitigated = m
        .risks
        .iter()
        .filter(|r| r.band() >= RiskBand::High && r.treatment == Treatment::Mitigate && r.mitigations.is_empty())
        .count();
    let high_unenforced = high.iter().filter(|r| !r.unmet_mitigations.is_empty()).count();
    let reason = format!(
        "{} risks ({ai} AI-specific), {} high or critical; {high_unenforced} of those rest on controls not met",
        risks.len(),
        high.len()
    );
    if ai >= 3 && high_unmitigated == 0 && high_unenforced == 0 {
        dim(id, name, 4, reason, "")
    } else if ai >= 1 && high_unmitigated == 0 {
        dim(
            id,
            name,
            3,
            reason,
            "3+ AI-specific risks, and every high risk mitigated by controls the assessment finds met",
        )
    } else {
        dim(
            id,
            name,
            2,
            reason,
            "AI-specific risks (hallucination, injection, drift, third-party) told apart, each high risk with mitigations",
        )
    }
}

fn operations(m: &Manifest, runtime: Option<&Runtime>, verdicts: &[Verdict]) -> Dimension {
    let (name, id) = ("Operational maturity", "operations");
    let alerts = status_of(verdicts, "OB-1").is_met();
    let plan = status_of(verdicts, "IR-1").is_met();
    let escalation = m.incident_plan.as_ref().is_some_and(|p| !p.escalation.is_empty());
    let logs = status_of(verdicts, "OB-5").is_met();
    let quality = status_of(verdicts, "OB-2") == Status::Enforced;
    let drills = status_of(verdicts, "IR-5").is_met();
    // Post-incident reviews on file: written reviews of real incidents in the store.
    let reviews = runtime.map_or(0, |r| r.facts.incidents.iter().filter(|i| !i.drill && i.review_written()).count());
    let reason = format!(
        "alerts {}, runbooks {}, escalation {}, structured logs {}, quality sampling shown in the records {}, drills {}, post-incident reviews on file {reviews}",
        yes(alerts),
        yes(plan),
        yes(escalation),
        yes(logs),
        yes(quality),
        yes(drills)
    );
    if alerts && plan && escalation && logs && reviews > 0 && quality {
        dim(id, name, 4, reason, "")
    } else if alerts && logs && escalation && reviews > 0 {
        dim(
            id,
            name,
            3,
            reason,
            "runbooks for the main failure modes and proactive quality monitoring shown in the records",
        )
    } else if logs || alerts {
        let next = if reviews == 0 {
            "at least one post-incident review on file (`psf incident review`), alerting and an escalation path"
        } else {
            "alerts on latency, errors and throughput, and an escalation path"
        };
        dim(id, name, 2, reason, next)
    } else {
        dim(id, name, 1, reason, "structured logs kept 30 days and basic alerting")
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn documentation(m: &Manifest) -> Dimension {
    let (name, id) = ("Documentation and communication", "documentation");
    let described = m.system.description.is_some() && m.decision_points.iter().all(|p| p.description.is_some());
    let templates = m.incident_plan.as_ref().map(|p| p.comms_templates.as_slice()).unwrap_or_default();
    let approved = templates.iter().filter(|t| t.approved_on.is_some()).count();
    let audiences = [Audience::Customers, Audience::Regulators, Audience::Internal]
        .iter()
        .filter(|a| templates.iter().any(|t| t.audience == **a))
        .count();
    let limitations = !m.limitations.is_empty();
    let reason = format!(
        "system and decision points described: {}; {} communication templates ({approved} approved, {audiences} of customers/regulators/internal); limitations stated: {}",
        yes(described),
        templates.len(),
        yes(limitations)
    );
    if described && limitations && audiences == 3 && approved == templates.len() {
        dim(id, name, 4, reason, "")
    } else if described && !templates.is_empty() {
        dim(
            id,
            name,
            3,
            reason,
            "approved templates for customers, regulators and internal audiences, and stated limitations",
        )
    } else if m.system.description.is_some() {
        dim(id, name, 2, reason, "every decision point described and at least one stakeholder communication template")
    } else {
        dim(id, name, 1, reason, "a description of the system and its decision points")
    }
}
