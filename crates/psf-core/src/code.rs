//! The gateway's codes: every stage decision, refusal, answer state and event the
//! gateway records carries one, so the audit log, the metrics, the console and the
//! assessment speak of the same thing by the same name.
//!
//! Each code knows what it is about (the competency, when it has one), one line on what
//! it means, and, where the gateway refuses a request under it, the HTTP status, the
//! OpenAI-style error `type` and the audit outcome. That table is the only place a
//! refusal's status is chosen. `docs/codes.md` is generated from it.
//!
//! (The manifest diagnostics `E…`/`W…` are a different set: [`crate::diagnostic::Code`].)

use serde::{Serialize, Serializer};

/// How a request ended, as the audit record and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The answer reached the client.
    Delivered,
    /// An input or output control refused it.
    Blocked,
    /// No key, or a key psf does not know.
    Unauthorized,
    /// A rate or token limit (IG-4) refused it.
    RateLimited,
    /// An incident in force (IR-2) stopped it.
    Disabled,
    /// The decision point's degraded response was served instead of a model's answer.
    Degraded,
    /// The answer waits for a reviewer (HO-1).
    Held,
    /// The client went away before a stream ended.
    ClientClosed,
    /// psf, the store or every model failed.
    Error,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 9] = [
        Outcome::Delivered,
        Outcome::Blocked,
        Outcome::Unauthorized,
        Outcome::RateLimited,
        Outcome::Disabled,
        Outcome::Degraded,
        Outcome::Held,
        Outcome::ClientClosed,
        Outcome::Error,
    ];

    /// The outcome as stored, e.g. `rate_limited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Blocked => "blocked",
            Outcome::Unauthorized => "unauthorized",
            Outcome::RateLimited => "rate_limited",
            Outcome::Disabled => "disabled",
            Outcome::Degraded => "degraded",
            Outcome::Held => "held",
            Outcome::ClientClosed => "client_closed",
            Outcome::Error => "error",
        }
    }

    /// The outcome named `s`, as stored.
    pub fn from_name(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What the gateway does with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A stage of the request path records a decision under it.
    Stage,
    /// A stage records decisions under it, and refuses requests under it too.
    StageAndRefusal,
    /// Requests are refused under it (no stage decision of that name).
    Refusal,
    /// It names how an answer was delivered (degraded, held, cut short).
    Answer,
    /// It names a stored event (the `events` table).
    Event,
}

/// How a refusal under a code reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status. `MS-4.upstream_rejected` passes an upstream 4xx through instead
    /// (see the gateway's `ApiError::upstream_rejected`).
    pub status: u16,
    /// The OpenAI-style error `type`.
    pub error_type: &'static str,
    /// The audit outcome.
    pub outcome: Outcome,
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $use:ident $(($status:literal, $type:literal, $outcome:ident))?, $summary:literal;)*) => {
        /// A stable gateway code. Codes never change meaning; retired codes are not reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as recorded, e.g. `IG-1.injection`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// One line on what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// What the gateway does with it.
            pub fn usage(self) -> Use {
                match self { $(Code::$variant => Use::$use,)* }
            }

            /// How a refusal under this code is answered; `None` for a code nothing is
            /// refused under.
            pub fn refusal(self) -> Option<Refusal> {
                match self {
                    $($(Code::$variant => Some(Refusal { status: $status, error_type: $type, outcome: Outcome::$outcome }),)?)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    AuthMissingKey = "auth.missing_key", Refusal(401, "invalid_request_error", Unauthorized),
        "The request carries no API key.";
    AuthInvalidKey = "auth.invalid_key", Refusal(401, "invalid_request_error", Unauthorized),
        "The API key is unknown or revoked.";
    AuthAdminKey = "auth.admin_key", Refusal(401, "invalid_request_error", Unauthorized),
        "An admin endpoint was called without a key from `gateway.admin_keys`.";
    ConfigNoDecisionPoint = "config.no_decision_point", Refusal(500, "psf_error", Error),
        "The key's app has no decision point in the running manifest.";
    ModelNotFound = "model_not_found", Refusal(404, "invalid_request_error", Blocked),
        "The request's `model` names no decision point the key reaches; the message lists those it does.";
    NotFound = "not_found", Refusal(404, "invalid_request_error", Blocked),
        "No such endpoint, review, incident or request.";
    MethodNotAllowed = "method_not_allowed", Refusal(405, "invalid_request_error", Blocked),
        "The path exists, but not for this HTTP method.";
    Overloaded = "gateway.overloaded", Refusal(503, "psf_error", Error),
        "The gateway is at `gateway.max_connections`; the connection is answered and closed.";
    BodyTimeout = "gateway.body_timeout", Refusal(408, "invalid_request_error", Blocked),
        "The request's body did not arrive within `gateway.body_timeout_ms`.";
    AdminInvalid = "admin.invalid", Refusal(400, "invalid_request_error", Blocked),
        "An admin call's body or values are wrong; the message says how to fix them.";
    AdminConflict = "admin.conflict", Refusal(409, "psf_admin_error", Blocked),
        "An admin call asks for something already done (a decided review, a resolved incident).";
    StoreUnavailable = "store.unavailable", Refusal(503, "psf_unavailable", Error),
        "The store could not be read or written.";
    Ir2KillSwitch = "IR-2.kill_switch", Stage,
        "Whether an incident in force stops, degrades or lets the request through (IR-2).";
    Ir2Disabled = "IR-2.disabled", Refusal(503, "psf_unavailable", Disabled),
        "An incident in force stops this app or decision point (IR-2).";
    Ir2Degraded = "IR-2.degraded", Refusal(503, "psf_unavailable", Disabled),
        "An incident in force degrades the service: its degraded response is served, or 503 where there is none (IR-2).";
    Ig4RateLimit = "IG-4.rate_limit", StageAndRefusal(429, "rate_limit_error", RateLimited),
        "A key's, app's or the gateway's request or token limit (IG-4).";
    Ig4LimiterUnavailable = "IG-4.limiter_unavailable", Refusal(503, "psf_unavailable", Error),
        "The shared rate limiter (Redis) did not answer in time and `rate_limits.on_store_unreachable` is `fail_closed` (IG-4).";
    Ig2Headers = "IG-2.headers", Refusal(431, "psf_input_refused", Blocked),
        "The request's headers are larger than the gateway takes (IG-2).";
    Ig2Size = "IG-2.size", Refusal(413, "psf_input_refused", Blocked),
        "The body is larger than the decision point's `input.max_body_bytes` (IG-2).";
    Ig2Subject = "IG-2.subject", Refusal(400, "psf_input_refused", Blocked),
        "The `x-psf-subject` header is empty or longer than 256 characters (IG-2, DG-3).";
    Ig2Schema = "IG-2.schema", StageAndRefusal(400, "psf_input_refused", Blocked),
        "The request's shape: JSON, nesting, fields, roles, message count and size (IG-2).";
    Ig1Sanitize = "IG-1.sanitize", Stage,
        "Invisible and control characters stripped from the input (IG-1).";
    Ig1Injection = "IG-1.injection", StageAndRefusal(400, "psf_input_refused", Blocked),
        "Prompt injection in the input (IG-1).";
    Dg1Pii = "DG-1.pii", StageAndRefusal(400, "psf_input_refused", Blocked),
        "Personal data in the input, handled per class: allow, tokenize, redact, block (DG-1).";
    Ig5SystemPrompt = "IG-5.system_prompt", StageAndRefusal(400, "psf_input_refused", Blocked),
        "The deployment's system prompt put first; client system messages per policy (IG-5).";
    Dg5Residency = "DG-5.residency", StageAndRefusal(400, "psf_input_refused", Blocked),
        "The regions the request's data may be processed in, against the model chain (DG-5).";
    Ms4Fallback = "MS-4.fallback", Stage,
        "Every model in the chain failed: the degraded response or a defined 503 (MS-4).";
    Ms4UpstreamRejected = "MS-4.upstream_rejected", Refusal(502, "upstream_error", Error),
        "The model provider refused the request: its 4xx passes through (not 401 or 403), 502 otherwise (MS-4).";
    Ms4Unavailable = "MS-4.unavailable", Refusal(503, "psf_unavailable", Error),
        "Every model in the chain is unavailable and there is no degraded response (MS-4).";
    Ms4StreamFailed = "MS-4.stream_failed", Refusal(502, "upstream_error", Error),
        "The model's stream failed after it had started; the stream ends with this error event (MS-4).";
    Ms4StreamTruncated = "MS-4.stream_truncated", Refusal(502, "upstream_error", Error),
        "The model's stream ended without finishing its answer (MS-4).";
    Ms4Degraded = "MS-4.degraded", Answer,
        "The degraded response was served because every model failed (MS-4).";
    Ov2Length = "OV-2.length", StageAndRefusal(422, "psf_output_refused", Blocked),
        "The answer's length against `output.max_chars` (OV-2).";
    Ov2Schema = "OV-2.schema", StageAndRefusal(422, "psf_output_refused", Blocked),
        "The answer against the decision point's JSON schema (OV-2).";
    Ig5Leak = "IG-5.leak", StageAndRefusal(422, "psf_output_refused", Blocked),
        "The answer repeats the system prompt (IG-5).";
    Ov3Content = "OV-3.content", StageAndRefusal(422, "psf_output_refused", Blocked),
        "Harmful content in the answer (OV-3).";
    Ov3Severe = "OV-3.severe", StageAndRefusal(422, "psf_output_refused", Blocked),
        "The severe tier: instructions for weapons, toxic chemistry, self-harm or malware, sexual content involving minors, incitement; blocked at every point unless its manifest narrows the tier with a reason (OV-3).";
    Ov3Scope = "OV-3.scope", StageAndRefusal(422, "psf_output_refused", Blocked),
        "The answer's topic against the decision point's scope (OV-3).";
    Dg1PiiOutput = "DG-1.pii_output", StageAndRefusal(422, "psf_output_refused", Blocked),
        "Personal data in the answer, per class (DG-1).";
    Ov5State = "OV-5.state", Stage,
        "Refusals, truncation and empty answers named as defined states (OV-5).";
    Ov4Confidence = "OV-4.confidence", Stage,
        "The answer's token log-probabilities against the decision point's threshold (OV-4).";
    Ho1Review = "HO-1.review", Stage,
        "The answer is held for a reviewer (HO-1).";
    Ho1Held = "HO-1.held", Answer,
        "The client got 202 and a review id instead of the answer (HO-1).";
    Ho1Pending = "HO-1.pending", Refusal(423, "psf_review_pending", Held),
        "A door with no pending-answer shape (Anthropic's Messages) reports a held answer as this error, with its status URL (HO-1).";
    Ho1QueueUnavailable = "HO-1.queue_unavailable", Refusal(503, "psf_unavailable", Error),
        "An answer that must be reviewed could not be queued, so it is not delivered (HO-1).";
    StreamClientClosed = "stream.client_closed", Answer,
        "The client closed the stream before its end.";
    Ig4Abuse = "IG-4.abuse", Event,
        "Repeated refusals from one key within a minute (IG-4).";
    Ig4Limiter = "IG-4.limiter", Event,
        "The shared rate limiter (Redis) became unreachable, or came back (IG-4).";
    Ho2Review = "HO-2.review", Event,
        "A reviewer decided on a held answer (HO-2).";
    Ho2ReviewOverdue = "HO-2.review_overdue", Event,
        "A held answer waited past its review deadline (HO-2).";
    Ho4Override = "HO-4.override", Event,
        "A person overrode a delivered answer (HO-4).";
    Ho5ReviewDue = "HO-5.review_due", Event,
        "Something changed that calls for an oversight review (HO-5).";
    Ob1Alert = "OB-1.alert", Event,
        "An alert rule fired or resolved (OB-1).";
    Ob2Quality = "OB-2.quality", Event,
        "A decision point's sampled answer quality over a period (OB-2).";
    Ob3Anomaly = "OB-3.anomaly", Event,
        "A key's or decision point's traffic departed from its own history (OB-3).";
    Ir2Declared = "IR-2.declared", Event,
        "An incident was declared (IR-2).";
    Ir2Resolved = "IR-2.resolved", Event,
        "An incident was resolved (IR-2).";
    Ir5Drill = "IR-5.drill", Event,
        "An incident drill was run and recorded (IR-5).";
    Dg2Retention = "DG-2.retention", Event,
        "The retention sweep removed or anonymised records (DG-2).";
    Dg3Erasure = "DG-3.erasure", Event,
        "A data subject's records were erased (DG-3).";
    Ea2Fairness = "EA-2.fairness", Event,
        "A fairness evaluation was recorded (EA-2).";
    Ms3RegressionGate = "MS-3.regression_gate", Event,
        "A `psf eval` regression gate ran and was recorded (MS-3).";
    ConsoleAction = "console.action", Event,
        "A console user changed something (who, what, when).";
}

impl Code {
    /// The code named `s`, as recorded.
    pub fn from_name(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The competency the code is about (`IG-1`), or `None` for the gateway's own.
    pub fn competency(self) -> Option<&'static str> {
        let s = self.as_str();
        let (id, _) = s.split_once('.')?;
        let bytes = id.as_bytes();
        (bytes.len() == 4 && bytes[2] == b'-' && bytes[..2].iter().all(u8::is_ascii_uppercase)).then_some(id)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert_eq!(Code::from_name(c.as_str()), Some(*c));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_name(o.as_str()), Some(o));
        }
    }

    #[test]
    fn a_refusal_code_has_a_refusal_and_no_other_does() {
        for c in Code::ALL {
            let refuses = matches!(c.usage(), Use::Refusal | Use::StageAndRefusal);
            assert_eq!(refuses, c.refusal().is_some(), "{c}");
            if let Some(r) = c.refusal() {
                assert!((400..600).contains(&r.status), "{c}");
                assert_ne!(r.outcome, Outcome::Delivered, "{c}");
            }
        }
    }

    #[test]
    fn competency_is_read_from_the_code() {
        assert_eq!(Code::Ig1Injection.competency(), Some("IG-1"));
        assert_eq!(Code::AuthMissingKey.competency(), None);
        assert_eq!(Code::StreamClientClosed.competency(), None);
    }
}
