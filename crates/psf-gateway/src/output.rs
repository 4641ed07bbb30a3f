//! The output stages (OV-1: always on), for whole replies and for streams alike.
//!
//! One [`OutputGuard`] serves both: a whole reply is one `push` and a `finish`. Text is
//! released only when it is safe: a tail is held back so a PII value or a placeholder
//! split across chunks is still seen whole, and when the decision point has an output
//! JSON Schema, everything is held until the answer is complete and valid. What is
//! released has the output PII policy applied and the caller's own values restored.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use psf_core::manifest::{Action, LowConfidence, PiiAction};
use psf_detect::{PiiDetector, RedactStyle, SchemaCheck, Vault, redact};

use crate::config::Point;
use crate::error::ApiError;
use crate::pipeline::{Decision, Trail};
use psf_core::code::Code;

/// Bytes held back in a stream so an entity split across chunks is seen whole.
const HOLD_BACK: usize = 128;
/// Released text before the part being released that the PII scan also reads: the
/// detectors judge a word by its neighbours ("lives at" before a street), and a stream
/// releases text in pieces.
const PII_CONTEXT: usize = 64;
/// How far back the leak check looks from the newest text.
const LEAK_WINDOW: usize = 1024;
/// New text that triggers another content scan of a stream. No more than the hold-back,
/// so every released byte has been screened.
const CONTENT_STEP: usize = HOLD_BACK;
/// Text before the new text that a content scan also reads, so a phrase split across
/// scans is still seen with its context.
const CONTENT_CONTEXT: usize = 384;

/// The output checks of one request.
#[derive(Debug)]
pub struct OutputGuard {
    point: Arc<Point>,
    pii: Arc<PiiDetector>,
    vault: Vault,
    text: String,
    chars: usize,
    released: usize,
    leak_flagged: bool,
    /// Bytes of `text` screened for content and denied topics so far (OV-3).
    content_scanned: usize,
    content_flagged: bool,
    scope_flagged: bool,
    pii_counts: [usize; 2],
    /// Sum and count of the answer's token log-probabilities (OV-4).
    logprobs: (f64, usize),
    hide_logprobs: bool,
    /// Put the caller's values back as text is released (off while an answer may be held).
    restore: bool,
    /// Checks a tool call's arguments rather than the answer's text: no answer schema
    /// (arguments follow the tool's), no refusal or confidence reading.
    arguments: bool,
    /// The delivered text with every PII finding redacted, for the audit record.
    pub audit: String,
    /// The answer's defined state once finished (OV-5): `refusal`, `truncated` or
    /// `content_filter`, told to the caller (`psf_answer_state`, `x-psf-answer-state`).
    pub state: Option<&'static str>,
}

/// What the output stages made of a whole completion.
#[derive(Debug)]
pub struct Checked {
    /// Each choice's text with PII redacted, for the audit record.
    pub audit: Vec<String>,
    /// The first choice's confidence.
    pub confidence: Confidence,
    /// The first choice's defined state (OV-5), if it is in one.
    pub state: Option<&'static str>,
}

/// How confident the model was in an answer, from its token log-probabilities (OV-4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Confidence {
    /// The decision point asks for no confidence check.
    NotChecked,
    /// The model gave no log-probabilities (its provider has none, or sent none).
    Unknown,
    /// At or above the threshold.
    Enough(f64),
    /// Below the threshold; the policy says what happens.
    Low(f64, LowConfidence),
}

/// Adds to `trail` the records of `own` that decided something other than a pass.
pub(crate) fn merge_decisions(trail: &mut Trail, own: &mut Trail) {
    trail.stages.extend(own.stages.drain(..).filter(|s| s.decision != Decision::Pass));
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl OutputGuard {
    /// A guard for `point`, restoring values from `vault`; `hide_logprobs` when the
    /// gateway, not the client, asked for log-probabilities.
    pub fn new(point: Arc<Point>, pii: Arc<PiiDetector>, vault: Vault, hide_logprobs: bool) -> OutputGuard {
        OutputGuard {
            point,
            pii,
            vault,
            text: String::new(),
            chars: 0,
            released: 0,
            leak_flagged: false,
            content_scanned: 0,
            content_flagged: false,
            scope_flagged: false,
            pii_counts: [0; 2],
            logprobs: (0.0, 0),
            hide_logprobs,
            restore: true,
            arguments: false,
            audit: String::new(),
            state: None,
        }
    }

    /// A guard for one tool call's arguments in this answer: the same output policy (PII
    /// with the caller's values restored, severe harm and content, the system prompt
    /// leak), so a tool call is never a way around the output stages.
    pub fn for_arguments(&self) -> OutputGuard {
        let mut g = OutputGuard::new(self.point.clone(), self.pii.clone(), self.vault.clone(), self.hide_logprobs);
        g.restore = self.restore;
        g.arguments = true;
        g
    }

    /// A whole tool call's arguments through [`OutputGuard::for_arguments`]: what may be
    /// delivered, and its redacted text for the audit record. Only stages that decided
    /// something are added to the request's trail; the answer's own records the passes.
    pub fn check_arguments(&self, arguments: &str, trail: &mut Trail) -> Result<(String, String), ApiError> {
        let mut g = self.for_arguments();
        let mut own = Trail { traced: trail.traced, ..Trail::default() };
        let checked = g.push(arguments, &mut own).and_then(|mut out| {
            out.push_str(&g.finish(None, &mut own)?);
            Ok(out)
        });
        merge_decisions(trail, &mut own);
        checked.map(|out| (out, std::mem::take(&mut g.audit)))
    }

    /// Releases text with placeholders kept: the answer may be held for review, and the
    /// caller's values go back in only when it is delivered ([`OutputGuard::restore`]).
    pub fn defer_restore(&mut self) {
        self.restore = false;
    }

    /// Puts the caller's values back into released text.
    pub fn restore(&self, text: &str) -> String {
        self.vault.detokenize(text)
    }

    /// The caller's values, kept while an answer waits for review.
    pub fn into_vault(self) -> Vault {
        self.vault
    }

    /// Takes the log-probabilities of a choice (`choices[i]`, whole or a stream chunk's),
    /// for the confidence check; removes them when the client did not ask for them.
    pub fn logprobs(&mut self, choice: &mut Value) {
        let tokens = choice.pointer("/logprobs/content").and_then(Value::as_array);
        for lp in tokens.into_iter().flatten().filter_map(|t| t.get("logprob")).filter_map(Value::as_f64) {
            self.logprobs.0 += lp;
            self.logprobs.1 += 1;
        }
        if self.hide_logprobs
            && let Some(obj) = choice.as_object_mut()
        {
            obj.remove("logprobs");
        }
    }

    /// The confidence of the answer so far, as the decision point's policy judges it.
    pub fn confidence(&self) -> Confidence {
        let Some(policy) = &self.point.spec.output.confidence else { return Confidence::NotChecked };
        let (sum, n) = self.logprobs;
        if n == 0 {
            return Confidence::Unknown;
        }
        // Counts of tokens are far below 2^52: the conversion is exact.
        let mean = sum / n as f64;
        if mean < policy.min_mean_logprob { Confidence::Low(mean, policy.action) } else { Confidence::Enough(mean) }
    }

    /// Takes more model text; returns what may go to the client now.
    pub fn push(&mut self, delta: &str, trail: &mut Trail) -> Result<String, ApiError> {
        let t = Instant::now();
        self.text.push_str(delta);
        self.chars += delta.chars().count();
        let output = &self.point.spec.output;
        if self.text.len() as u64 > output.max_bytes {
            let message = format!(
                "the answer ran past this decision point's limit of {} bytes (`output.max_bytes`)",
                output.max_bytes
            );
            trail.record(Code::Ov2Length, Decision::Block, message.clone(), t);
            return Err(ApiError::new(Code::Ov2Length, message));
        }
        if let Some(max) = output.max_chars
            && self.chars > max as usize
        {
            let message = format!("the answer ran past this decision point's limit of {max} characters");
            trail.record(Code::Ov2Length, Decision::Block, message.clone(), t);
            return Err(ApiError::new(Code::Ov2Length, message));
        }
        self.check_leak(trail, t)?;
        self.check_content(trail, t, false)?;
        if self.point.schema.is_some() && !self.arguments {
            return Ok(String::new());
        }
        let cut = self.safe_cut(self.text.len().saturating_sub(HOLD_BACK));
        self.release(cut, trail)
    }

    /// The answer is complete: final checks, and whatever was held back.
    pub fn finish(&mut self, finish_reason: Option<&str>, trail: &mut Trail) -> Result<String, ApiError> {
        let t = Instant::now();
        // Over-long answers were stopped in `push`; record that this one was measured.
        if let Some(max) = self.point.spec.output.max_chars {
            trail.record(Code::Ov2Length, Decision::Pass, format!("{} of {max} characters", self.chars), t);
        }
        if let Some(schema) = self.point.schema.as_ref().filter(|_| !self.arguments) {
            match schema.check(&self.text) {
                SchemaCheck::Valid { .. } => trail.record(Code::Ov2Schema, Decision::Pass, "", t),
                SchemaCheck::Invalid { violations, .. } => {
                    let list: Vec<String> = violations
                        .iter()
                        .take(5)
                        .map(|v| format!("{}: {}", display_pointer(&v.path), v.message))
                        .collect();
                    let message = format!("the answer does not match the output schema: {}", list.join("; "));
                    trail.record(Code::Ov2Schema, Decision::Block, message.clone(), t);
                    return Err(ApiError::new(Code::Ov2Schema, message));
                }
                SchemaCheck::NoJson => {
                    let message = "the answer holds no JSON, and this decision point requires JSON matching its schema";
                    trail.record(Code::Ov2Schema, Decision::Block, message, t);
                    return Err(ApiError::new(Code::Ov2Schema, message));
                }
            }
        }
        let rest = self.release(self.text.len(), trail)?;
        // Defined states that still deliver: a refusal, a cut-off or filtered answer (OV-5).
        let t = Instant::now();
        let state = if self.arguments {
            None
        } else if psf_detect::refusal::is_refusal(&self.text) {
            Some("refusal")
        } else {
            match finish_reason {
                Some("length") => Some("truncated"),
                Some("content_filter") => Some("content_filter"),
                _ => None,
            }
        };
        match state {
            Some(s) => trail.record(Code::Ov5State, Decision::Flag, s, t),
            None => trail.record(Code::Ov5State, Decision::Pass, "", t),
        }
        self.state = state;
        let confidence = if self.arguments { Confidence::NotChecked } else { self.confidence() };
        match confidence {
            Confidence::NotChecked => {}
            Confidence::Unknown => {
                trail.record(Code::Ov4Confidence, Decision::Unavailable, "the model gave no log-probabilities", t);
            }
            Confidence::Enough(mean) => {
                trail.record(Code::Ov4Confidence, Decision::Pass, format!("mean log-probability {mean:.2}"), t);
            }
            Confidence::Low(mean, _) => {
                let detail = format!("low: mean log-probability {mean:.2}");
                trail.record(Code::Ov4Confidence, Decision::Flag, detail, t);
            }
        }
        self.check_content(trail, t, true)?;
        self.check_scope(trail, t)?;
        trail.record(Code::Ov3Severe, Decision::Pass, "", t);
        if self.point.content.is_some() && !self.content_flagged {
            trail.record(Code::Ov3Content, Decision::Pass, "", t);
        }
        if self.point.topics.is_some() && !self.scope_flagged {
            trail.record(Code::Ov3Scope, Decision::Pass, "", t);
        }
        let pii_decision = match self.pii_counts {
            [0, 0] => Decision::Pass,
            [0, _] => Decision::Flag,
            _ => Decision::Transform,
        };
        let detail = if pii_decision == Decision::Pass {
            String::new()
        } else {
            format!("{} redacted, {} allowed", self.pii_counts[0], self.pii_counts[1])
        };
        trail.record(Code::Dg1PiiOutput, pii_decision, detail, t);
        if !self.leak_flagged && self.point.leak.is_some() {
            trail.record(Code::Ig5Leak, Decision::Pass, "", t);
        }
        Ok(rest)
    }

    /// Runs every choice of a whole completion through the output stages, in place:
    /// each choice's text is replaced by what may be delivered. Returns the redacted
    /// text of each choice, for the audit record, and the first choice's confidence.
    /// The reply's shape was checked at the provider boundary
    /// ([`psf_providers::shape::completion`]); access here is checked all the same.
    pub fn check_completion(&mut self, value: &mut Value, trail: &mut Trail) -> Result<Checked, ApiError> {
        let mut checked = Checked { audit: Vec::new(), confidence: Confidence::NotChecked, state: None };
        let choices = value.get_mut("choices").and_then(Value::as_array_mut);
        for (i, choice) in choices.into_iter().flatten().enumerate() {
            self.logprobs(choice);
            let finish = choice.get("finish_reason").and_then(Value::as_str).map(str::to_string);
            let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) else { continue };
            // An answer that is only tool calls has no text, and still goes through every
            // stage: its record says so, and its arguments are checked below.
            let text = match message.get("content") {
                Some(Value::String(content)) => Some(content.as_str()),
                _ => None,
            };
            let mut out = self.push(text.unwrap_or_default(), trail)?;
            out.push_str(&self.finish(finish.as_deref(), trail)?);
            if text.is_some() {
                message.insert("content".into(), Value::String(out));
            }
            let mut audit = std::mem::take(&mut self.audit);
            let calls = message.get_mut("tool_calls").and_then(Value::as_array_mut);
            for call in calls.into_iter().flatten() {
                if let Some(Value::String(arguments)) = call.pointer_mut("/function/arguments") {
                    let (out, redacted) = self.check_arguments(arguments, trail)?;
                    *arguments = out;
                    audit.push_str(&format!("\n[tool call] {redacted}"));
                }
            }
            checked.audit.push(audit);
            if i == 0 {
                checked.confidence = self.confidence();
                checked.state = self.state;
            }
            // Each choice is its own answer.
            self.reset();
        }
        Ok(checked)
    }

    /// Starts over for another answer (another choice) with the same placeholders.
    pub fn reset(&mut self) {
        self.text.clear();
        self.chars = 0;
        self.released = 0;
        self.leak_flagged = false;
        self.content_scanned = 0;
        self.content_flagged = false;
        self.scope_flagged = false;
        self.pii_counts = [0; 2];
        self.logprobs = (0.0, 0);
        self.audit.clear();
        self.state = None;
    }

    fn check_leak(&mut self, trail: &mut Trail, t: Instant) -> Result<(), ApiError> {
        let Some(leak) = &self.point.leak else { return Ok(()) };
        if self.leak_flagged {
            return Ok(());
        }
        let from = floor_boundary(&self.text, self.released.saturating_sub(LEAK_WINDOW));
        if !leak.leaks(&self.text[from..]) {
            return Ok(());
        }
        match self.point.spec.output.system_prompt_leak {
            Action::Block => {
                let message = "the answer repeats this deployment's system prompt";
                trail.record(Code::Ig5Leak, Decision::Block, message, t);
                Err(ApiError::new(Code::Ig5Leak, message))
            }
            Action::Flag | Action::Allow => {
                self.leak_flagged = true;
                trail.record(Code::Ig5Leak, Decision::Flag, "the answer repeats part of the system prompt", t);
                Ok(())
            }
        }
    }

    /// Screens the text not yet screened, with some context before it, for content
    /// categories and denied topics (OV-3): on every [`CONTENT_STEP`] bytes of a stream,
    /// and on whatever is left at the end (`last`).
    fn check_content(&mut self, trail: &mut Trail, t: Instant, last: bool) -> Result<(), ApiError> {
        let len = self.text.len();
        if len == self.content_scanned || (!last && len - self.content_scanned < CONTENT_STEP) {
            return Ok(());
        }
        let window = &self.text[floor_boundary(&self.text, self.content_scanned.saturating_sub(CONTENT_CONTEXT))..];
        self.content_scanned = len;
        // The severe tier first, at every point: it never only flags.
        let severe = &self.point.severe;
        if let Some(found) = severe.detector.scan(window).filter(|f| severe.blocked.contains(&f.category)) {
            // The category and the kinds of evidence only: never the text.
            let detail = format!("{} ({})", found.category.as_str(), found.evidence.join(", "));
            trail.record(Code::Ov3Severe, Decision::Block, detail, t);
            let message = format!(
                "the answer was withheld: it reads as {}, which psf does not deliver",
                found.category.as_str().replace('_', " ")
            );
            return Err(ApiError::new(Code::Ov3Severe, message));
        }
        if let Some(filter) = self.point.content.as_ref().filter(|_| !self.content_flagged) {
            let report = filter.detector.scan(window);
            if let Some(c) = report.flagged.iter().find(|c| filter.categories.contains(c)) {
                // The category and score only: the audit record never holds the text.
                let general = report.harmful.map(|g| format!(", harmful {g:.2}")).unwrap_or_default();
                let detail = format!("{} (score {:.2}{general})", c.as_str(), report.score(*c));
                if filter.action == Action::Block {
                    trail.record(Code::Ov3Content, Decision::Block, detail, t);
                    let message = format!(
                        "the answer was withheld: it reads as {} content, which this decision point does not deliver",
                        c.as_str().replace('_', "-")
                    );
                    return Err(ApiError::new(Code::Ov3Content, message));
                }
                self.content_flagged = true;
                trail.record(Code::Ov3Content, Decision::Flag, detail, t);
            }
        }
        if let Some(topic) = self.point.topics.as_ref().filter(|_| !self.scope_flagged).and_then(|s| s.denied(window)) {
            let message = format!("the answer touches `{topic}`, a topic this decision point must not discuss");
            return self.out_of_scope(message, trail, t);
        }
        Ok(())
    }

    /// The allow-list half of the topic scope, judged on the whole answer. Denied
    /// topics were looked for as the text arrived ([`OutputGuard::check_content`]).
    fn check_scope(&mut self, trail: &mut Trail, t: Instant) -> Result<(), ApiError> {
        if self.scope_flagged || !self.point.topics.as_ref().is_some_and(|s| s.off_topic(&self.text)) {
            return Ok(());
        }
        self.out_of_scope("the answer is about none of the topics this decision point is for".to_owned(), trail, t)
    }

    fn out_of_scope(&mut self, message: String, trail: &mut Trail, t: Instant) -> Result<(), ApiError> {
        let action = self.point.spec.output.topics.as_ref().map_or(Action::Flag, |s| s.action);
        if action == Action::Block {
            trail.record(Code::Ov3Scope, Decision::Block, message.clone(), t);
            return Err(ApiError::new(Code::Ov3Scope, message));
        }
        self.scope_flagged = true;
        trail.record(Code::Ov3Scope, Decision::Flag, message, t);
        Ok(())
    }

    /// Moves `cut` back so it does not split a placeholder (`[EMAIL_1]`).
    fn safe_cut(&self, cut: usize) -> usize {
        let cut = floor_boundary(&self.text, cut);
        if cut <= self.released {
            return self.released;
        }
        let pending = &self.text[self.released..cut];
        match pending.rfind('[') {
            Some(open) if !pending[open..].contains(']') && cut - (self.released + open) <= 48 => self.released + open,
            _ => cut,
        }
    }

    /// Applies the output PII policy to the text up to `cut` and releases it.
    fn release(&mut self, cut: usize, trail: &mut Trail) -> Result<String, ApiError> {
        if cut <= self.released {
            return Ok(String::new());
        }
        let t = Instant::now();
        let pending = &self.text[self.released..];
        // Scanned with some of what was released before it, for context; a finding that
        // began there is redacted from where the pending text starts.
        let from = floor_boundary(&self.text, self.released.saturating_sub(PII_CONTEXT));
        let shift = self.released - from;
        let findings: Vec<psf_detect::Finding> = self
            .pii
            .scan(&self.text[from..])
            .into_iter()
            .filter(|f| f.span.end > shift)
            .map(|mut f| {
                f.span = f.span.start.max(shift) - shift..f.span.end - shift;
                f
            })
            .collect();
        // A finding that straddles the cut waits for the next chunk, whole.
        let mut cut = cut - self.released;
        if cut < pending.len()
            && let Some(f) = findings.iter().find(|f| f.span.start < cut && f.span.end > cut)
        {
            cut = f.span.start;
        }
        let segment = &pending[..cut];
        let inside: Vec<_> = findings.into_iter().filter(|f| f.span.end <= cut).collect();
        let policy = &self.point.spec.output.pii;
        let mut out = String::with_capacity(segment.len());
        let mut at = 0;
        for f in &inside {
            let action = policy.action(f.class());
            out.push_str(&segment[at..f.span.start]);
            match action {
                PiiAction::Block => {
                    let message =
                        format!("the answer contains data this deployment does not release ({})", f.entity.label());
                    trail.record(Code::Dg1PiiOutput, Decision::Block, message.clone(), t);
                    return Err(ApiError::new(Code::Dg1PiiOutput, message));
                }
                PiiAction::Allow => {
                    self.pii_counts[1] += 1;
                    out.push_str(&segment[f.span.clone()]);
                }
                // A placeholder in output would have no value to restore: redact.
                PiiAction::Redact | PiiAction::Tokenize => {
                    self.pii_counts[0] += 1;
                    out.push('[');
                    out.push_str(f.entity.label());
                    out.push(']');
                }
            }
            at = f.span.end;
        }
        out.push_str(&segment[at..]);
        self.audit.push_str(&redact(segment, &inside, RedactStyle::Label));
        self.released += cut;
        Ok(if self.restore { self.vault.detokenize(&out) } else { out })
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "(the whole answer)" } else { pointer }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
version: 1
system:
  name: Output test
  owner: {name: Tess Ownby, email: tess.ownby@example.com}
apps:
  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}]}
decision_points:
  - id: chat
    autonomy: autonomous
    model: m
    output:
      pii: {location: redact, personal: redact}
models:
  - {id: m, provider: p, model: x}
providers:
  - {id: p, kind: openai_compatible, base_url: "http://127.0.0.1:9/v1", self_hosted: true}
"#;

    /// A guard for one answer; the configuration is compiled once for every test (the
    /// detectors are the slow part).
    fn guard() -> OutputGuard {
        static COMPILED: std::sync::OnceLock<crate::config::Compiled> = std::sync::OnceLock::new();
        let compiled = COMPILED.get_or_init(|| {
            let env = |name: &str| (name == "CHAT_KEY").then(|| "k".to_string());
            let options = psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 23) };
            let manifest = psf_core::load(MANIFEST, &options, &env).unwrap();
            crate::config::Compiled::new(manifest, &env).unwrap()
        });
        let point = compiled.points["chat"].clone();
        OutputGuard::new(point, compiled.pii.clone(), Vault::new(), false)
    }

    /// What the guard releases for `text` arriving in pieces cut at `cuts` (byte
    /// offsets, in order, on character boundaries), then the end of the answer.
    fn released(text: &str, cuts: &[usize]) -> String {
        released_by(guard(), text, cuts)
    }

    /// What `g` releases of `text` pushed in the pieces `cuts` makes.
    fn released_by(mut g: OutputGuard, text: &str, cuts: &[usize]) -> String {
        let mut trail = Trail::default();
        let mut out = String::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([&text.len()]) {
            out.push_str(&g.push(&text[at..cut], &mut trail).unwrap());
            at = cut;
        }
        out.push_str(&g.finish(Some("stop"), &mut trail).unwrap());
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// However an answer is cut into chunks, the stream releases what the whole
        /// answer would, and no value in the clear.
        #[test]
        fn a_stream_releases_what_the_whole_answer_does(
            parts in proptest::collection::vec((proptest::sample::select(FILLER), proptest::sample::select(VALUES)), 1..8),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..16),
        ) {
            let text: String = parts.iter().map(|(filler, value)| format!("{filler} {value}. ")).collect();
            let mut cuts: Vec<usize> = cuts.iter().map(|i| floor_boundary(&text, i.index(text.len() + 1))).collect();
            cuts.sort_unstable();
            let whole = released(&text, &[]);
            let streamed = released(&text, &cuts);
            proptest::prop_assert_eq!(&streamed, &whole, "cut at {:?}", cuts);
            for (_, value) in &parts {
                proptest::prop_assert!(!streamed.contains(value), "{} released in {}", value, streamed);
            }
        }

        /// The same for a tool call's arguments, streamed in pieces through their own
        /// guard: what goes out is what the whole arguments give, valid JSON, and no value.
        #[test]
        fn streamed_tool_arguments_release_what_whole_ones_do(
            parts in proptest::collection::vec((proptest::sample::select(FILLER), proptest::sample::select(VALUES)), 1..6),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..16),
        ) {
            let note: String = parts.iter().map(|(filler, value)| format!("{filler} {value}. ")).collect();
            let text = serde_json::json!({"note": note}).to_string();
            let mut cuts: Vec<usize> = cuts.iter().map(|i| floor_boundary(&text, i.index(text.len() + 1))).collect();
            cuts.sort_unstable();
            let whole = released_by(guard().for_arguments(), &text, &[]);
            let streamed = released_by(guard().for_arguments(), &text, &cuts);
            proptest::prop_assert_eq!(&streamed, &whole, "cut at {:?}", cuts);
            proptest::prop_assert!(serde_json::from_str::<serde_json::Value>(&streamed).is_ok(), "{}", streamed);
            for (_, value) in &parts {
                proptest::prop_assert!(!streamed.contains(value), "{} released in {}", value, streamed);
            }
        }
    }

    /// Text around the values: plain, with digits, and not ASCII.
    const FILLER: &[&str] = &[
        "Thanks for waiting, here is what we have on file:",
        "The order shipped on 3 May in 2 boxes, and the contact is",
        "Bitte überweisen Sie den Betrag an",
        "ok",
        "As requested — the reference for your claim is below, and the details are",
    ];
    /// Values the output policy redacts, of several classes and lengths.
    const VALUES: &[&str] = &[
        "jane.doe@example.com",
        "+44 20 7946 0958",
        "4111 1111 1111 1111",
        "GB82 WEST 1234 5698 7654 32",
        "536-22-8726",
        "192.168.10.20",
    ];

    /// A street released in a later piece than the words that make it one ("lives at")
    /// is still read with them, and redacted.
    #[test]
    fn pii_across_a_release_boundary_is_read_with_its_context() {
        let head = "She lives at ";
        let tail = format!("{:<128}", "14 Rue Kowal, 75011 Paris. We will write soon.");
        assert_eq!(tail.len(), HOLD_BACK);
        // Alone, the street number reads as nothing: the context is what finds it.
        let alone = guard().pii.scan(&tail);
        assert!(!alone.iter().any(|f| tail[f.span.clone()].contains("14")), "{alone:?}");

        let mut g = guard();
        let mut trail = Trail::default();
        let first = g.push(&format!("{head}{tail}"), &mut trail).unwrap();
        assert_eq!(first, head, "the tail is held back");
        let rest = g.finish(Some("stop"), &mut trail).unwrap();
        assert!(!rest.contains("14 Rue"), "{rest}");
        assert!(rest.contains("[ADDRESS]"), "{rest}");
        assert!(!g.audit.contains("14 Rue"), "{}", g.audit);
    }
}
