//! The pipeline's stages, as functions from a request (or an output) to a decision.
//!
//! Every stage appends a [`StageRecord`] to the request's [`Trail`]: its competency
//! code, its decision (pass, transform, flag, block, hold, or `unavailable` where the
//! check could not run on this request, so the assessment can tell "checked and clean"
//! from "not checked"), a detail that never holds request text, and its time.

use std::time::Instant;

use psf_core::code::Code;
use psf_core::manifest::{Action, ClientSystemMessages, PiiAction};
use psf_detect::{DataClass, Finding, Op, PiiDetector, RedactStyle, Source, Vault, redact, sanitize};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::Point;
use crate::error::ApiError;

/// What a stage decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Nothing to do.
    Pass,
    /// Changed the text (stripped, redacted, tokenized).
    Transform,
    /// Let it through and recorded why.
    Flag,
    /// Refused.
    Block,
    /// Held for a person to decide (HO-1).
    Hold,
    /// The check could not run on this request (OV-4 where the model gave no
    /// log-probabilities); recorded so the assessment never counts it as enforced.
    Unavailable,
}

impl Decision {
    /// The decision's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Pass => "pass",
            Decision::Transform => "transform",
            Decision::Flag => "flag",
            Decision::Block => "block",
            Decision::Hold => "hold",
            Decision::Unavailable => "unavailable",
        }
    }
}

/// One stage's record.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    /// The stage's code, e.g. `IG-1.injection`.
    pub code: Code,
    /// What it decided.
    pub decision: Decision,
    /// Why, without request text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Microseconds it took.
    pub us: u64,
}

/// The stages a request went through.
#[derive(Debug, Default, Clone)]
pub struct Trail {
    /// In order.
    pub stages: Vec<StageRecord>,
    /// Whether traces are exported (`gateway.otlp`): each stage is then also a span.
    pub(crate) traced: bool,
}

impl Trail {
    pub(crate) fn record(&mut self, code: Code, decision: Decision, detail: impl Into<String>, since: Instant) {
        let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        // An event in the request's span and a span of its own: a trace shows each
        // stage's decision and time (codes and decisions only; details can name what a
        // detector found).
        // Only when traces are exported: a dozen events per request cost more than
        // nothing even when no one reads them.
        if self.traced {
            tracing::debug!(stage = code.as_str(), decision = decision.as_str(), us, "stage");
            stage_span(code.as_str(), decision.as_str(), since);
        }
        self.stages.push(StageRecord { code, decision, detail: detail.into(), us });
    }

    /// The stages as JSON for the audit record.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(&self.stages).unwrap_or(Value::Null)
    }
}

/// A span for one stage, child of the request's span, with the stage's own start and
/// end: the stage ran before this is known, so the span is built with its times rather
/// than entered. Only the code and decision go in.
fn stage_span(code: &'static str, decision: &'static str, since: Instant) {
    use opentelemetry::trace::{Span as _, Tracer as _};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let end = std::time::SystemTime::now();
    let start = end.checked_sub(since.elapsed()).unwrap_or(end);
    let parent = tracing::Span::current().context();
    let tracer = opentelemetry::global::tracer("psf-gateway");
    let mut span = tracer
        .span_builder(code)
        .with_start_time(start)
        .with_attributes([opentelemetry::KeyValue::new("psf.decision", decision)])
        .start_with_context(&tracer, &parent);
    span.end_with_timestamp(end);
}

/// A request after the input stages: what goes upstream, and what the audit keeps.
#[derive(Debug)]
pub struct Prepared {
    /// The OpenAI body to send (model and stream set by the provider).
    pub body: Map<String, Value>,
    /// Placeholders issued for this request, restored in the reply.
    pub vault: Vault,
    /// The client's messages with every PII finding redacted.
    pub audit_input: Value,
    /// The gateway asked for log-probabilities (OV-4) that the client did not: they are
    /// taken off the reply.
    pub hide_logprobs: bool,
    /// Classes of personal data that go to the model as they are (the policy allows
    /// them), for residency (DG-5).
    pub classes: Vec<DataClass>,
}

const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// Calls `f` on every text slot of a message: a string `content`, or the `text` of each
/// text part, and the arguments of each tool call an earlier assistant turn made (a
/// value the caller's tool was given is the caller's data like any other).
fn for_each_text(message: &mut Value, mut f: impl FnMut(&mut String)) {
    match message.get_mut("content") {
        Some(Value::String(s)) => f(s),
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(Value::String(s)) = part.get_mut("text") {
                    f(s);
                }
            }
        }
        _ => {}
    }
    let calls = message.get_mut("tool_calls").and_then(Value::as_array_mut);
    for call in calls.into_iter().flatten() {
        if let Some(Value::String(s)) = call.pointer_mut("/function/arguments") {
            f(s);
        }
    }
}

fn labels(findings: &[&Finding]) -> String {
    let mut names: Vec<&str> = findings.iter().map(|f| f.entity.label()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// Input schema and limits (IG-2): the body is a Chat Completions request within the
/// decision point's limits. Errors say where (`messages[3].content`) and what to change.
pub fn validate(point: &Point, body: &Map<String, Value>, trail: &mut Trail) -> Result<bool, ApiError> {
    let t = Instant::now();
    let input = &point.spec.input;
    let fail = |trail: &mut Trail, message: String| {
        trail.record(Code::Ig2Schema, Decision::Block, message.clone(), t);
        Err(ApiError::new(Code::Ig2Schema, message))
    };
    // The handler chose the point by `model`; here it must be text that names it.
    match body.get("model") {
        None | Some(Value::Null) => {}
        Some(Value::String(model)) if point.spec.answers_to(model) => {}
        Some(Value::String(_)) => {
            return fail(trail, format!("`model` must name this decision point; send \"model\": \"{}\"", point.route));
        }
        Some(_) => return fail(trail, format!("`model` must be text; send \"model\": \"{}\"", point.route)),
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return fail(trail, "`stream` must be true or false".into()),
    };
    if stream && body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return fail(trail, "`n` above 1 cannot be streamed through psf; send n: 1 or stream: false".into());
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return fail(
            trail,
            "`messages` is missing or not a list; send at least one {\"role\": \"user\", \"content\": \"…\"}".into(),
        );
    };
    if messages.is_empty() {
        return fail(trail, "`messages` is empty; send at least one message".into());
    }
    if messages.len() > input.max_messages as usize {
        return fail(
            trail,
            format!("{} messages, more than this decision point's limit of {}", messages.len(), input.max_messages),
        );
    }
    for (i, m) in messages.iter().enumerate() {
        let Some(role) = m.get("role").and_then(Value::as_str) else {
            return fail(trail, format!("messages[{i}] has no `role`; use one of {}", ROLES.join(", ")));
        };
        if !ROLES.contains(&role) {
            // The value itself is not echoed: it is the client's text, and errors are
            // logged and stored.
            return fail(trail, format!("messages[{i}].role is not a role; use one of {}", ROLES.join(", ")));
        }
        let chars = match m.get("content") {
            Some(Value::String(s)) => s.chars().count(),
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).map(|s| s.chars().count()).sum()
            }
            None | Some(Value::Null) if role == "assistant" => 0,
            _ => return fail(trail, format!("messages[{i}].content must be text or a list of content parts")),
        };
        if chars > input.max_chars_per_message as usize {
            return fail(
                trail,
                format!(
                    "messages[{i}].content has {chars} characters, more than the limit of {}",
                    input.max_chars_per_message
                ),
            );
        }
    }
    trail.record(Code::Ig2Schema, Decision::Pass, "", t);
    Ok(stream)
}

/// The input stages after validation: sanitising (IG-1), injection (IG-1, IG-5), PII
/// (DG-1), and system prompt assembly (IG-5). Returns what goes upstream.
pub fn prepare(
    point: &Point,
    pii: &PiiDetector,
    mut body: Map<String, Value>,
    trail: &mut Trail,
) -> Result<(Prepared, u32), ApiError> {
    let input = &point.spec.input;
    let mut messages = match body.remove("messages") {
        Some(Value::Array(m)) => m,
        _ => Vec::new(),
    };
    let mut audit = Vec::with_capacity(messages.len());
    let mut vault = Vault::new();

    // Sanitising.
    let t = Instant::now();
    let mut invisible = 0usize;
    for m in &mut messages {
        for_each_text(m, |text| {
            let s = sanitize(text);
            let hidden = s.findings.iter().filter(|f| f.kind != psf_detect::sanitize::SanitizeKind::Homoglyph).count();
            invisible += hidden;
            if hidden > 0 && input.strip_invisible {
                *text = s.stripped;
            }
        });
    }
    let decision = match (invisible, input.strip_invisible) {
        (0, _) => Decision::Pass,
        (_, true) => Decision::Transform,
        (_, false) => Decision::Flag,
    };
    trail.record(
        Code::Ig1Sanitize,
        decision,
        if invisible > 0 { format!("{invisible} invisible or control characters") } else { String::new() },
        t,
    );

    // Injection: user input at the user threshold, tool and retrieved content at the
    // lower tool threshold; the model's own earlier turns are not scanned.
    let t = Instant::now();
    let mut worst: Option<(f64, Vec<&'static str>, &'static str)> = None;
    let mut flagged = false;
    for m in &mut messages {
        let source = match m.get("role").and_then(Value::as_str) {
            Some("tool") => Source::Tool,
            Some("assistant") => continue,
            _ => Source::User,
        };
        for_each_text(m, |text| {
            let report = point.injection.scan(text, source);
            if report.flagged {
                flagged = true;
            }
            if worst.as_ref().is_none_or(|(score, _, _)| report.score > *score) {
                let families = report.reasons.iter().map(|r| r.family.as_str()).collect();
                let src = if source == Source::Tool { "tool" } else { "user" };
                worst = Some((report.score, families, src));
            }
        });
    }
    let mut override_attempts = 0u32;
    if flagged {
        override_attempts += 1;
        let (score, families, src) = worst.unwrap_or((1.0, Vec::new(), "user"));
        let detail = format!("score {score:.2} in {src} content ({})", families.join(", "));
        match input.injection.action {
            Action::Block => {
                trail.record(Code::Ig1Injection, Decision::Block, detail.clone(), t);
                return Err(ApiError::new(
                    Code::Ig1Injection,
                    format!(
                        "the request was refused: it reads as a prompt injection ({detail}). Rephrase it as a plain request."
                    ),
                ));
            }
            Action::Flag => trail.record(Code::Ig1Injection, Decision::Flag, detail, t),
            Action::Allow => trail.record(Code::Ig1Injection, Decision::Pass, "", t),
        }
    } else {
        trail.record(Code::Ig1Injection, Decision::Pass, "", t);
    }

    // PII: classify, then each class as the policy says; the audit copy is always redacted.
    let t = Instant::now();
    let mut blocked: Vec<Finding> = Vec::new();
    let mut classes: Vec<DataClass> = Vec::new();
    let mut counts = [0usize; 3]; // redacted, tokenized, allowed
    for m in &mut messages {
        let mut audit_m = m.clone();
        let mut audit_texts = Vec::new();
        for_each_text(m, |text| {
            let findings = pii.scan(text);
            if findings.is_empty() {
                audit_texts.push(text.clone());
                return;
            }
            audit_texts.push(redact(text, &findings, RedactStyle::Label));
            for f in &findings {
                match input.pii.action(f.class()) {
                    PiiAction::Block => blocked.push(f.clone()),
                    PiiAction::Redact => counts[0] += 1,
                    PiiAction::Tokenize => counts[1] += 1,
                    PiiAction::Allow => {
                        counts[2] += 1;
                        if !classes.contains(&f.class()) {
                            classes.push(f.class());
                        }
                    }
                }
            }
            *text = vault.apply(text, &findings, |f| match input.pii.action(f.class()) {
                PiiAction::Tokenize => Op::Tokenize,
                PiiAction::Redact | PiiAction::Block => Op::Redact,
                PiiAction::Allow => Op::Keep,
            });
        });
        let mut texts = audit_texts.into_iter();
        for_each_text(&mut audit_m, |text| {
            if let Some(t) = texts.next() {
                *text = t;
            }
        });
        audit.push(audit_m);
    }
    // The top-level `user` (an end-user id some clients set to an email) is the caller's
    // data like any message: the same policy, the same vault.
    if let Some(Value::String(user)) = body.get_mut("user") {
        let findings = pii.scan(user);
        for f in &findings {
            match input.pii.action(f.class()) {
                PiiAction::Block => blocked.push(f.clone()),
                PiiAction::Redact => counts[0] += 1,
                PiiAction::Tokenize => counts[1] += 1,
                PiiAction::Allow => counts[2] += 1,
            }
        }
        if !findings.is_empty() {
            *user = vault.apply(user, &findings, |f| match input.pii.action(f.class()) {
                PiiAction::Tokenize => Op::Tokenize,
                PiiAction::Redact | PiiAction::Block => Op::Redact,
                PiiAction::Allow => Op::Keep,
            });
        }
    }
    let audit_input = Value::Array(audit);
    if !blocked.is_empty() {
        let refs: Vec<&Finding> = blocked.iter().collect();
        let detail = format!("blocked: {}", labels(&refs));
        trail.record(Code::Dg1Pii, Decision::Block, detail, t);
        return Err(ApiError::new(
            Code::Dg1Pii,
            format!(
                "the request was refused: it contains data this deployment does not accept ({}). Remove it and send again.",
                labels(&refs)
            ),
        ));
    }
    let decision = if counts[0] + counts[1] > 0 {
        Decision::Transform
    } else if counts[2] > 0 {
        Decision::Flag
    } else {
        Decision::Pass
    };
    let detail = if decision == Decision::Pass {
        String::new()
    } else {
        format!("{} redacted, {} tokenized, {} allowed", counts[0], counts[1], counts[2])
    };
    trail.record(Code::Dg1Pii, decision, detail, t);

    // System prompt: the manifest's comes first; clients cannot replace it.
    let t = Instant::now();
    let client_system = messages
        .iter()
        .filter(|m| matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer")))
        .count();
    if client_system > 0 {
        override_attempts += 1;
        match input.client_system_messages {
            ClientSystemMessages::Refuse => {
                trail.record(
                    Code::Ig5SystemPrompt,
                    Decision::Block,
                    format!("{client_system} client system messages"),
                    t,
                );
                return Err(ApiError::new(
                    Code::Ig5SystemPrompt,
                    "the request was refused: this deployment sets its own system prompt; send your text as a user message",
                ));
            }
            ClientSystemMessages::Demote => {
                for m in &mut messages {
                    if matches!(m.get("role").and_then(Value::as_str), Some("system" | "developer")) {
                        m["role"] = json!("user");
                    }
                }
            }
        }
    }
    if let Some(prompt) = &point.spec.system_prompt {
        messages.insert(0, json!({"role": "system", "content": prompt}));
    }
    let decision = if client_system > 0 { Decision::Transform } else { Decision::Pass };
    let detail =
        if client_system > 0 { format!("{client_system} client system messages demoted") } else { String::new() };
    trail.record(Code::Ig5SystemPrompt, decision, detail, t);

    // Confidence (OV-4) is computed from the tokens' log-probabilities: ask for them.
    let mut hide_logprobs = false;
    if point.spec.output.confidence.is_some() && body.get("logprobs") != Some(&Value::Bool(true)) {
        body.insert("logprobs".into(), Value::Bool(true));
        hide_logprobs = true;
    }
    body.insert("messages".into(), Value::Array(messages));
    body.remove("model");
    body.remove("stream");
    Ok((Prepared { body, vault, audit_input, hide_logprobs, classes }, override_attempts))
}
