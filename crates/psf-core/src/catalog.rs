//! The Production Safety Framework as data: eight domains, forty competencies.
//!
//! The wording here is psf's own. Each competency cites the PSF v1.1 statement it
//! paraphrases (`domain.statement`, e.g. `1.1` for the first statement of Input
//! Governance) instead of quoting it. The framework itself is published by the
//! Production AI Institute under CC BY 4.0; see [`ATTRIBUTION`].

use serde::Serialize;

/// The version of the PSF this catalog describes.
pub const PSF_VERSION: &str = "1.1";

/// The licence notice that must accompany anything derived from the PSF.
pub const ATTRIBUTION: &str = "Based on the Production Safety Framework (PSF) v1.1 by the \
Production AI Institute, licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). \
Titles and requirement texts are psf's own paraphrases; each cites its PSF statement number.";

/// One of the eight domains of practice.
#[derive(Debug, Serialize)]
pub struct Domain {
    /// Two-letter id, e.g. `IG`.
    pub id: &'static str,
    /// Position in the PSF, 1 to 8.
    pub number: u8,
    /// The domain's name.
    pub name: &'static str,
    /// What the domain is for, in one sentence of our own.
    pub aim: &'static str,
}

/// What kind of artefact can show that a competency is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A field of the deployment manifest (`psf.yaml`).
    ManifestField,
    /// A record the gateway or an operator writes at run time (audit log, review, incident).
    RuntimeRecord,
    /// A metric the gateway exports.
    Metric,
    /// A document kept beside the deployment (runbook, evaluation report, review minutes).
    Document,
}

impl EvidenceKind {
    /// The name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::ManifestField => "manifest_field",
            EvidenceKind::RuntimeRecord => "runtime_record",
            EvidenceKind::Metric => "metric",
            EvidenceKind::Document => "document",
        }
    }
}

/// Whether psf can enforce a competency on live traffic or only show documentation of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// The gateway enforces it on every call and records that it did.
    Runtime,
    /// Only the manifest and the documents it points to can evidence it.
    ManifestOnly,
}

impl Enforcement {
    /// The name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Runtime => "runtime",
            Enforcement::ManifestOnly => "manifest_only",
        }
    }
}

/// One piece of evidence that can satisfy a competency.
#[derive(Debug, Serialize)]
pub struct Evidence {
    /// The kind of artefact.
    pub kind: EvidenceKind,
    /// Where it comes from: a manifest path, a record type, a metric name or a document.
    pub source: &'static str,
}

/// One of the forty competencies.
#[derive(Debug, Serialize)]
pub struct Competency {
    /// Stable id, e.g. `IG-1`.
    pub id: &'static str,
    /// The id of the domain it belongs to.
    pub domain: &'static str,
    /// The PSF v1.1 statement it paraphrases, `domain.statement`.
    pub statement: &'static str,
    /// A short title of our own.
    pub title: &'static str,
    /// The requirement in one to three sentences of our own.
    pub requirement: &'static str,
    /// Whether the gateway can enforce it or only the manifest can evidence it.
    pub enforcement: Enforcement,
    /// What satisfies it.
    pub evidence: &'static [Evidence],
}

const fn ev(kind: EvidenceKind, source: &'static str) -> Evidence {
    Evidence { kind, source }
}

use Enforcement::{ManifestOnly, Runtime};
use EvidenceKind::{Document, ManifestField, Metric, RuntimeRecord};

/// The eight domains, in PSF order.
pub static DOMAINS: [Domain; 8] = [
    Domain {
        id: "IG",
        number: 1,
        name: "Input Governance",
        aim: "Treat everything that reaches a model as untrusted until it has been checked and cleaned.",
    },
    Domain {
        id: "OV",
        number: 2,
        name: "Output Validation",
        aim: "Check what a model produced before any person or system acts on it.",
    },
    Domain {
        id: "DG",
        number: 3,
        name: "Data Governance & PII",
        aim: "Handle personal and sensitive data under written rules for collection, use, retention and deletion.",
    },
    Domain {
        id: "MS",
        number: 4,
        name: "Model Selection & Evaluation",
        aim: "Choose models for stated reasons and keep evaluating them as models and uses change.",
    },
    Domain {
        id: "HO",
        number: 5,
        name: "Human Oversight",
        aim: "Decide how much the system may do on its own, and keep people able to review and overrule it.",
    },
    Domain {
        id: "OB",
        number: 6,
        name: "Observability & Monitoring",
        aim: "Watch performance, quality and behaviour continuously so that drift is seen early.",
    },
    Domain {
        id: "IR",
        number: 7,
        name: "Incident Response",
        aim: "Prepare, rehearse and learn from the ways an AI system fails.",
    },
    Domain {
        id: "EA",
        number: 8,
        name: "Ethics & Accountability",
        aim: "Make a named person answerable for the system and keep its ethical and legal position on record.",
    },
];

/// The forty competencies, in PSF order (domain by domain, statement by statement).
pub static COMPETENCIES: [Competency; 40] = [
    // Input Governance.
    Competency {
        id: "IG-1",
        domain: "IG",
        statement: "1.1",
        title: "Sanitise input and catch injection",
        requirement: "Every piece of user-supplied text is cleaned before the model sees it. \
            Attempts at prompt injection are recognised and handled by a stated policy.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "decision_points[].input.injection"),
            ev(RuntimeRecord, "audit decisions IG-1.*"),
            ev(Metric, "psf_blocked_total{code=~\"IG-1.*\"}"),
        ],
    },
    Competency {
        id: "IG-2",
        domain: "IG",
        statement: "1.2",
        title: "Validate the shape of input",
        requirement: "Before a model is called, each request is checked for type, size and structure, \
            and requests that do not conform are turned away.",
        enforcement: Runtime,
        evidence: &[ev(ManifestField, "decision_points[].input.limits"), ev(RuntimeRecord, "audit decisions IG-2.*")],
    },
    Competency {
        id: "IG-3",
        domain: "IG",
        statement: "1.3",
        title: "Keep an audit-safe log of input",
        requirement: "What the model received is recorded for audit, with personal data removed \
            from the record.",
        enforcement: Runtime,
        evidence: &[
            ev(RuntimeRecord, "audit records (sampled and scanned for PII)"),
            ev(ManifestField, "retention.audit_log_days"),
        ],
    },
    Competency {
        id: "IG-4",
        domain: "IG",
        statement: "1.4",
        title: "Rate-limit AI endpoints and alert on abuse",
        requirement: "Every AI endpoint has a rate limit. Patterns of abuse raise an alert that a \
            person sees instead of failing quietly.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "rate_limits, apps[].rate_limit"),
            ev(ManifestField, "alerts"),
            ev(Metric, "psf_rate_limited_total"),
        ],
    },
    Competency {
        id: "IG-5",
        domain: "IG",
        statement: "1.5",
        title: "Guard the system prompt",
        requirement: "The system prompt is a security boundary: ordinary user content cannot \
            replace it or talk the model out of it.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "decision_points[].system_prompt, input.client_system_messages"),
            ev(RuntimeRecord, "audit decisions IG-5.*"),
        ],
    },
    // Output Validation.
    Competency {
        id: "OV-1",
        domain: "OV",
        statement: "2.1",
        title: "Validate every output",
        requirement: "No model output reaches a user or a downstream system without first passing \
            a validation layer.",
        enforcement: Runtime,
        evidence: &[ev(ManifestField, "decision_points[].output"), ev(RuntimeRecord, "audit decisions OV-*")],
    },
    Competency {
        id: "OV-2",
        domain: "OV",
        statement: "2.2",
        title: "Enforce the output schema",
        requirement: "After generation, output is checked against its contract: type, required \
            fields and length.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "decision_points[].output.json_schema, output.max_chars"),
            ev(Metric, "psf_blocked_total{code=\"OV-2.schema\"}"),
        ],
    },
    Competency {
        id: "OV-3",
        domain: "OV",
        statement: "2.3",
        title: "Filter harmful and out-of-scope content",
        requirement: "Responses are screened for harmful, biased or off-topic content before they \
            are delivered.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "decision_points[].output.content, output.topics"),
            ev(RuntimeRecord, "audit decisions OV-3.*"),
        ],
    },
    Competency {
        id: "OV-4",
        domain: "OV",
        statement: "2.4",
        title: "Log confidence and escalate doubt",
        requirement: "Where the model exposes confidence or uncertainty, it is recorded, and \
            low-confidence answers are flagged or sent to a person.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "decision_points[].output.confidence"),
            ev(RuntimeRecord, "audit confidence, escalations"),
        ],
    },
    Competency {
        id: "OV-5",
        domain: "OV",
        statement: "2.5",
        title: "Make refusals and edge cases defined errors",
        requirement: "Refusals, truncations and other edge cases end in a defined error state the \
            caller can handle, never in a silent gap.",
        enforcement: Runtime,
        evidence: &[ev(RuntimeRecord, "typed error codes in audit"), ev(Metric, "psf_refusals_total")],
    },
    // Data Governance & PII.
    Competency {
        id: "DG-1",
        domain: "DG",
        statement: "3.1",
        title: "Classify PII and apply a written policy",
        requirement: "Personal data in prompts and responses is detected, assigned to a data class \
            and treated as the documented policy for that class says.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "decision_points[].input.pii, output.pii"),
            ev(Metric, "psf_pii_detections_total"),
        ],
    },
    Competency {
        id: "DG-2",
        domain: "DG",
        statement: "3.2",
        title: "Enforce retention technically",
        requirement: "Inference logs that may hold personal data have retention periods, and \
            software deletes data when they run out.",
        enforcement: Runtime,
        evidence: &[ev(ManifestField, "retention"), ev(RuntimeRecord, "retention sweeper runs, oldest record age")],
    },
    Competency {
        id: "DG-3",
        domain: "DG",
        statement: "3.3",
        title: "Honour erasure without retraining",
        requirement: "A person's data can be erased on request without retraining a model.",
        enforcement: Runtime,
        evidence: &[ev(RuntimeRecord, "erasure receipts and their verification")],
    },
    Competency {
        id: "DG-4",
        domain: "DG",
        statement: "3.4",
        title: "Record data provenance and licences",
        requirement: "Where training or fine-tuning data came from is written down, and data from \
            third parties is licensed for this use.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "data_sources")],
    },
    Competency {
        id: "DG-5",
        domain: "DG",
        statement: "3.5",
        title: "Respect data residency",
        requirement: "Where data may be processed is known and enforced, and the risks of sending \
            it across borders have been assessed.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "residency, providers[].region"),
            ev(RuntimeRecord, "routing refusals for disallowed regions"),
        ],
    },
    // Model Selection & Evaluation.
    Competency {
        id: "MS-1",
        domain: "MS",
        statement: "4.1",
        title: "Justify the choice of model",
        requirement: "Why each model was chosen is written down, in terms of this use case and \
            its risks.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "models[].rationale")],
    },
    Competency {
        id: "MS-2",
        domain: "MS",
        statement: "4.2",
        title: "Review relevant benchmarks before launch",
        requirement: "Evaluation results that matter for this use case were reviewed and recorded \
            before the model went into production.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "models[].evaluations"), ev(Document, "evaluation result files")],
    },
    Competency {
        id: "MS-3",
        domain: "MS",
        statement: "4.3",
        title: "Gate model changes on regression tests",
        requirement: "A new model version or provider reaches production only after passing a \
            regression gate.",
        enforcement: ManifestOnly,
        evidence: &[
            ev(ManifestField, "models[].evaluations (kind: regression_gate)"),
            ev(RuntimeRecord, "psf eval gate runs"),
        ],
    },
    Competency {
        id: "MS-4",
        domain: "MS",
        statement: "4.4",
        title: "Define fallback for outages",
        requirement: "What happens when a provider is down is defined in advance, and a degraded \
            answer is preferred to a silent failure.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "models[].fallback, decision_points[].degraded_response"),
            ev(RuntimeRecord, "fallback events"),
        ],
    },
    Competency {
        id: "MS-5",
        domain: "MS",
        statement: "4.5",
        title: "Review vendor terms and the DPA",
        requirement: "The provider's terms and data processing agreement have been read and allow \
            this use.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "providers[].terms, providers[].dpa")],
    },
    // Human Oversight.
    Competency {
        id: "HO-1",
        domain: "HO",
        statement: "5.1",
        title: "Set an autonomy level per decision point",
        requirement: "Each place where the AI decides something is declared advisory, supervised \
            or autonomous.",
        enforcement: Runtime,
        evidence: &[ev(ManifestField, "decision_points[].autonomy")],
    },
    Competency {
        id: "HO-2",
        domain: "HO",
        statement: "5.2",
        title: "Put people in front of high-stakes decisions",
        requirement: "Decisions that are high-stakes, cannot be undone or touch vulnerable people \
            are reviewed by a human.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "decision_points[].stakes, reviewers"),
            ev(RuntimeRecord, "review queue decisions and latency"),
        ],
    },
    Competency {
        id: "HO-3",
        domain: "HO",
        statement: "5.3",
        title: "Tell people they are dealing with AI",
        requirement: "Users know when they are talking to an AI system and what it can and cannot \
            do for them.",
        enforcement: Runtime,
        evidence: &[
            ev(ManifestField, "decision_points[].disclosure"),
            ev(RuntimeRecord, "x-psf-ai-generated header on responses"),
        ],
    },
    Competency {
        id: "HO-4",
        domain: "HO",
        statement: "5.4",
        title: "Keep every AI action overridable",
        requirement: "People can step in, correct or reject anything the AI does.",
        enforcement: Runtime,
        evidence: &[ev(RuntimeRecord, "review overrides: approve, edit, reject")],
    },
    Competency {
        id: "HO-5",
        domain: "HO",
        statement: "5.5",
        title: "Revisit oversight after changes",
        requirement: "The oversight design is looked at again whenever the model, the scope or \
            the pattern of use changes materially.",
        enforcement: ManifestOnly,
        evidence: &[
            ev(ManifestField, "oversight_reviews"),
            ev(RuntimeRecord, "model version changes seen by the gateway"),
        ],
    },
    // Observability & Monitoring.
    Competency {
        id: "OB-1",
        domain: "OB",
        statement: "6.1",
        title: "Alert on latency, errors and throughput",
        requirement: "Latency, error rate and throughput are measured, and alerts fire when they \
            move away from their normal range.",
        enforcement: Runtime,
        evidence: &[ev(ManifestField, "alerts"), ev(Metric, "psf_request_duration_seconds, psf_requests_total")],
    },
    Competency {
        id: "OB-2",
        domain: "OB",
        statement: "6.2",
        title: "Watch output quality",
        requirement: "Output quality is sampled or evaluated automatically, and a fall in quality \
            starts a review.",
        enforcement: Runtime,
        evidence: &[ev(ManifestField, "quality_sampling"), ev(RuntimeRecord, "quality samples and scores")],
    },
    Competency {
        id: "OB-3",
        domain: "OB",
        statement: "6.3",
        title: "Spot anomalous usage",
        requirement: "Use of the system is watched for signs of abuse, adversarial probing or \
            creeping scope.",
        enforcement: Runtime,
        evidence: &[ev(RuntimeRecord, "anomaly events per key and app")],
    },
    Competency {
        id: "OB-4",
        domain: "OB",
        statement: "6.4",
        title: "Give teams live dashboards",
        requirement: "Operators and engineers can see the health of the AI system as it happens.",
        enforcement: Runtime,
        evidence: &[ev(Metric, "/metrics endpoint"), ev(Document, "console overview, Grafana dashboards")],
    },
    Competency {
        id: "OB-5",
        domain: "OB",
        statement: "6.5",
        title: "Keep structured logs for 30 days or more",
        requirement: "Logs are structured for investigating incidents and kept for no less than \
            thirty days.",
        enforcement: Runtime,
        evidence: &[ev(ManifestField, "retention.audit_log_days"), ev(RuntimeRecord, "oldest audit record")],
    },
    // Incident Response.
    Competency {
        id: "IR-1",
        domain: "IR",
        statement: "7.1",
        title: "Plan for AI-specific failures",
        requirement: "A written incident plan covers the ways AI fails, at least harmful output, \
            leaked data and a failing model.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "incident_plan.failure_modes"), ev(Document, "runbooks")],
    },
    Competency {
        id: "IR-2",
        domain: "IR",
        statement: "7.2",
        title: "Disable, degrade or isolate within 15 minutes",
        requirement: "Within fifteen minutes of a trigger the team can switch the AI off, put it \
            in a degraded mode or cut it off from what it touches.",
        enforcement: Runtime,
        evidence: &[ev(RuntimeRecord, "kill switch events"), ev(ManifestField, "drills[].time_to_disable_minutes")],
    },
    Competency {
        id: "IR-3",
        domain: "IR",
        statement: "7.3",
        title: "Review incidents within five business days",
        requirement: "Each incident gets a written root-cause analysis with tracked remediation \
            within five business days.",
        enforcement: Runtime,
        evidence: &[ev(RuntimeRecord, "incidents and their post-incident reviews")],
    },
    Competency {
        id: "IR-4",
        domain: "IR",
        statement: "7.4",
        title: "Approve customer comms in advance",
        requirement: "Messages to customers about AI incidents are drafted and approved before \
            the system goes live.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "incident_plan.comms_templates[].approved_on")],
    },
    Competency {
        id: "IR-5",
        domain: "IR",
        statement: "7.5",
        title: "Rehearse the response",
        requirement: "The incident procedures have been practised in tabletop exercises or \
            recorded drills.",
        enforcement: Runtime,
        evidence: &[ev(ManifestField, "drills"), ev(RuntimeRecord, "psf drill records")],
    },
    // Ethics & Accountability.
    Competency {
        id: "EA-1",
        domain: "EA",
        statement: "8.1",
        title: "Name one accountable person",
        requirement: "Each production AI system has a named owner who is accountable for it: a \
            person, not a team, a role or a supplier.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "system.owner")],
    },
    Competency {
        id: "EA-2",
        domain: "EA",
        statement: "8.2",
        title: "Evaluate fairness and state limitations",
        requirement: "Bias and fairness have been evaluated for this use, and what the system is \
            known not to do well is written down.",
        enforcement: ManifestOnly,
        evidence: &[
            ev(ManifestField, "fairness_evaluations, limitations"),
            ev(RuntimeRecord, "psf eval fairness suite runs"),
        ],
    },
    Competency {
        id: "EA-3",
        domain: "EA",
        statement: "8.3",
        title: "Track regulation as a living record",
        requirement: "The AI regulations that apply are identified and their obligations are \
            tracked and revisited over time.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "regulations")],
    },
    Competency {
        id: "EA-4",
        domain: "EA",
        statement: "8.4",
        title: "Open accountability records to audit",
        requirement: "Internal audit, legal counsel and regulators can get the accountability \
            documentation when they ask for it.",
        enforcement: ManifestOnly,
        evidence: &[ev(Document, "psf export bundle"), ev(RuntimeRecord, "auditor access")],
    },
    Competency {
        id: "EA-5",
        domain: "EA",
        statement: "8.5",
        title: "Review sensitive uses ethically",
        requirement: "Sensitive or high-impact uses have had an ethical review that is written \
            down and dated.",
        enforcement: ManifestOnly,
        evidence: &[ev(ManifestField, "ethical_reviews")],
    },
];

/// Looks up a competency by id (`IG-1` … `EA-5`, case-sensitive).
pub fn competency(id: &str) -> Option<&'static Competency> {
    COMPETENCIES.iter().find(|c| c.id == id)
}

/// Looks up a domain by its two-letter id, ignoring ASCII case.
pub fn domain(id: &str) -> Option<&'static Domain> {
    DOMAINS.iter().find(|d| d.id.eq_ignore_ascii_case(id))
}

/// The competencies of one domain, in order.
pub fn competencies_of(domain: &str) -> impl Iterator<Item = &'static Competency> + '_ {
    COMPETENCIES.iter().filter(move |c| c.domain == domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_competencies_five_per_domain_in_order() {
        assert_eq!(COMPETENCIES.len(), 40);
        for (d, domain) in DOMAINS.iter().enumerate() {
            assert_eq!(usize::from(domain.number), d + 1);
            let ids: Vec<_> = competencies_of(domain.id).map(|c| c.id).collect();
            let want: Vec<_> = (1..=5).map(|n| format!("{}-{n}", domain.id)).collect();
            assert_eq!(ids, want, "domain {}", domain.id);
            for (s, c) in competencies_of(domain.id).enumerate() {
                assert_eq!(c.statement, format!("{}.{}", domain.number, s + 1));
            }
        }
        let order: Vec<_> = DOMAINS.iter().map(|d| d.id).collect();
        assert_eq!(order, ["IG", "OV", "DG", "MS", "HO", "OB", "IR", "EA"]);
    }

    #[test]
    fn every_competency_has_text_and_evidence() {
        for c in &COMPETENCIES {
            assert!(!c.title.is_empty() && c.title.len() < 60, "{}", c.id);
            let sentences = c.requirement.matches(". ").count() + 1;
            assert!((1..=3).contains(&sentences), "{}", c.id);
            assert!(c.requirement.ends_with('.'), "{}", c.id);
            assert!(!c.evidence.is_empty(), "{}", c.id);
            assert!(!c.requirement.contains("  "), "{} has a doubled space", c.id);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(competency("OV-2").map(|c| c.title), Some("Enforce the output schema"));
        assert!(competency("OV-6").is_none());
        assert_eq!(domain("ea").map(|d| d.number), Some(8));
    }
}
