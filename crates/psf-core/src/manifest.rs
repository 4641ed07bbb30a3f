//! The deployment manifest, `psf.yaml`: the deployment described as code.
//!
//! Every struct denies unknown fields, so a misspelt key is an error rather than a
//! silently ignored setting. Optional sections default to what a small deployment needs;
//! `psf check` warns where a missing section will cost the deployment in assessment.
//! Values that can be derived (a risk's score and band) are methods, never fields.
//!
//! The doc comments here become the descriptions in `psf schema`, which editors show
//! while a person writes the file.

use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The manifest format this version of psf reads.
pub const MANIFEST_VERSION: u32 = 1;

/// A production AI deployment, described for the gateway and the assessment.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version. Always 1 for now.
    pub version: u32,
    /// The system and its accountable owner (EA-1).
    pub system: System,
    /// Client applications and the API keys they call the gateway with.
    #[serde(default)]
    pub apps: Vec<App>,
    /// The places where the AI decides or produces something (HO-1).
    #[schemars(length(min = 1))]
    pub decision_points: Vec<DecisionPoint>,
    /// The models the decision points use, with the reasons they were chosen (MS-1).
    #[schemars(length(min = 1))]
    pub models: Vec<Model>,
    /// The providers that serve the models, with reviewed terms (MS-5).
    #[schemars(length(min = 1))]
    pub providers: Vec<Provider>,
    /// Rate limits for the whole gateway, per app and per key (IG-4).
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// How long records are kept (DG-2, OB-5).
    #[serde(default)]
    pub retention: Retention,
    /// Data used to train, fine-tune, ground or evaluate the models (DG-4).
    #[serde(default)]
    pub data_sources: Vec<DataSource>,
    /// Where data may be processed (DG-5).
    #[serde(default)]
    pub residency: Option<Residency>,
    /// The risk register.
    #[serde(default)]
    pub risks: Vec<Risk>,
    /// The incident response plan (IR-1, IR-4).
    #[serde(default)]
    pub incident_plan: Option<IncidentPlan>,
    /// Incident drills and tabletop exercises held (IR-5).
    #[serde(default)]
    pub drills: Vec<Drill>,
    /// Reviews of the oversight design (HO-5).
    #[serde(default)]
    pub oversight_reviews: Vec<OversightReview>,
    /// Bias and fairness evaluations (EA-2).
    #[serde(default)]
    pub fairness_evaluations: Vec<FairnessEvaluation>,
    /// Known limitations of the system, in plain words (EA-2).
    #[serde(default)]
    pub limitations: Vec<String>,
    /// Regulations that apply, tracked over time (EA-3).
    #[serde(default)]
    pub regulations: Vec<Regulation>,
    /// Ethical reviews of the use case (EA-5).
    #[serde(default)]
    pub ethical_reviews: Vec<EthicalReview>,
    /// Alert rules on the gateway's metrics (OB-1).
    #[serde(default)]
    pub alerts: Vec<AlertRule>,
    /// Sampling of outputs for quality review (OB-2).
    #[serde(default)]
    pub quality_sampling: Option<QualitySampling>,
    /// How `psf eval` judges a candidate model against the current one (MS-3).
    #[serde(default)]
    pub regression_gate: Option<RegressionGate>,
    /// The knowledge check the team takes (`psf exam`): its pass mark.
    #[serde(default)]
    pub knowledge_check: Option<KnowledgeCheck>,
    /// Competencies that do not apply to this deployment, each with the reason.
    #[serde(default)]
    pub not_applicable: Vec<NotApplicable>,
    /// Accepted gaps: competencies whose unmet verdict does not fail
    /// `psf assess --fail-on` until the suppression expires. Every report still shows
    /// the gap, with the reason and the expiry.
    #[serde(default)]
    pub suppressions: Vec<Suppression>,
    /// How the gateway behaves under failure: retries, circuit breakers, timeouts.
    #[serde(default)]
    pub gateway: GatewaySettings,
}

/// Gateway behaviour under failure and load. The defaults suit most deployments.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Further tries of the same model after a retryable failure, before the next in the chain.
    #[serde(default = "GatewaySettings::default_retries")]
    #[schemars(range(max = 5))]
    pub retries: u32,
    /// Consecutive failures of a provider that open its circuit breaker.
    #[serde(default = "GatewaySettings::default_breaker_failures")]
    #[schemars(range(min = 1))]
    pub breaker_failures: u32,
    /// How long an open breaker stays open before one probe request is let through, in ms.
    #[serde(default = "GatewaySettings::default_breaker_open_ms")]
    #[schemars(range(min = 1))]
    pub breaker_open_ms: u64,
    /// Longest silence inside a streamed reply before it is cut, in ms.
    #[serde(default = "GatewaySettings::default_stream_idle_timeout_ms")]
    #[schemars(range(min = 1))]
    pub stream_idle_timeout_ms: u64,
    /// Audit records waiting to be written before requests wait for the writer.
    #[serde(default = "GatewaySettings::default_audit_queue")]
    #[schemars(range(min = 1))]
    pub audit_queue: u32,
    /// Keys for the gateway's admin API (review decisions, incidents), for the console and
    /// operators' tools. Never the key itself: its SHA-256 or an environment variable.
    #[serde(default)]
    pub admin_keys: Vec<ApiKeyRef>,
    /// How long one alert minute lasts, in ms: alert rules count `window_minutes`,
    /// `baseline_minutes` and requests per minute in these. Leave it at a minute; tests
    /// and drills shorten it.
    #[serde(default = "GatewaySettings::default_alert_minute_ms")]
    #[schemars(range(min = 50))]
    pub alert_minute_ms: u64,
    /// Alert minutes in a drift window: the first full window of traffic is the
    /// reference each later window is compared with (HO-5).
    #[serde(default = "GatewaySettings::default_drift_window_minutes")]
    #[schemars(range(min = 1))]
    pub drift_window_minutes: u32,
    /// Export request traces over OTLP/HTTP to a collector (OB-1); off when left out.
    #[serde(default)]
    pub otlp: Option<OtlpSettings>,
    /// Longest a client may take to send a request's headers, and longest a kept-alive
    /// connection may sit idle before its next request, in ms.
    #[serde(default = "GatewaySettings::default_header_timeout_ms")]
    #[schemars(range(min = 1))]
    pub header_timeout_ms: u64,
    /// Longest a client may take to send a request's body, in ms.
    #[serde(default = "GatewaySettings::default_body_timeout_ms")]
    #[schemars(range(min = 1))]
    pub body_timeout_ms: u64,
    /// Most connections open at once; one more is answered 503 and closed. Keep it under
    /// the process's file limit (`ulimit -n`).
    #[serde(default = "GatewaySettings::default_max_connections")]
    #[schemars(range(min = 1))]
    pub max_connections: u32,
    /// After a shutdown signal, how long requests in flight may take to finish before
    /// their connections are closed, in ms.
    #[serde(default = "GatewaySettings::default_shutdown_grace_ms")]
    #[schemars(range(min = 1))]
    pub shutdown_grace_ms: u64,
}

/// Where and how the gateway exports its traces.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpSettings {
    /// The collector's OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: String,
    /// The service name the traces carry; the system's name when left out.
    #[serde(default)]
    pub service_name: Option<String>,
    /// Share of requests traced, 0 to 1.
    #[serde(default = "OtlpSettings::default_sample_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample_ratio: f64,
}

impl OtlpSettings {
    fn default_sample_ratio() -> f64 {
        1.0
    }
}

impl GatewaySettings {
    fn default_retries() -> u32 {
        1
    }
    fn default_breaker_failures() -> u32 {
        5
    }
    fn default_breaker_open_ms() -> u64 {
        30_000
    }
    fn default_stream_idle_timeout_ms() -> u64 {
        30_000
    }
    fn default_audit_queue() -> u32 {
        8192
    }
    fn default_alert_minute_ms() -> u64 {
        60_000
    }
    fn default_drift_window_minutes() -> u32 {
        60
    }
    fn default_header_timeout_ms() -> u64 {
        10_000
    }
    fn default_body_timeout_ms() -> u64 {
        30_000
    }
    fn default_max_connections() -> u32 {
        4_096
    }
    fn default_shutdown_grace_ms() -> u64 {
        30_000
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            retries: Self::default_retries(),
            breaker_failures: Self::default_breaker_failures(),
            breaker_open_ms: Self::default_breaker_open_ms(),
            stream_idle_timeout_ms: Self::default_stream_idle_timeout_ms(),
            audit_queue: Self::default_audit_queue(),
            admin_keys: Vec::new(),
            alert_minute_ms: Self::default_alert_minute_ms(),
            drift_window_minutes: Self::default_drift_window_minutes(),
            otlp: None,
            header_timeout_ms: Self::default_header_timeout_ms(),
            body_timeout_ms: Self::default_body_timeout_ms(),
            max_connections: Self::default_max_connections(),
            shutdown_grace_ms: Self::default_shutdown_grace_ms(),
        }
    }
}

/// The system as a whole.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct System {
    /// The system's name as people in the organisation know it.
    #[schemars(length(min = 1))]
    pub name: String,
    /// What the system does, for whom, in a sentence or two.
    #[serde(default)]
    pub description: Option<String>,
    /// How much harm the system could do; `high` calls for an ethical review (EA-5).
    #[serde(default)]
    pub risk_tier: RiskTier,
    /// The accountable owner: a named person, not a team, role or vendor (EA-1).
    pub owner: Person,
    /// The date the system started serving real users.
    #[serde(default)]
    pub in_service_since: Option<Date>,
}

/// A named person.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Full name of the person.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Their own work email address (not a shared mailbox).
    #[schemars(length(min = 1))]
    pub email: String,
    /// Their role, for context.
    #[serde(default)]
    pub role: Option<String>,
}

/// How much harm the system could do if it went wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskTier {
    /// Internal, low-consequence use.
    Low,
    /// Customer-facing or moderately consequential.
    #[default]
    Medium,
    /// Decisions about people, money, health, rights or safety.
    High,
}

/// A client application of the gateway.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Stable id (lowercase letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// What the app is.
    #[serde(default)]
    pub description: Option<String>,
    /// The decision point its calls go to when the request names no other.
    pub decision_point: String,
    /// Further decision points its keys reach; the request's `model` (a route or an
    /// alias) chooses among them and `decision_point`.
    #[serde(default)]
    pub more_decision_points: Vec<String>,
    /// API keys the app calls with. Never the key itself: its SHA-256 or an environment variable.
    #[serde(default)]
    pub keys: Vec<ApiKeyRef>,
    /// This app's own rate limit, overriding `rate_limits.per_app`.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// A reference to a client API key. Exactly one of `sha256` or `env`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRef {
    /// Stable id of the key, shown in the audit log instead of the key.
    pub id: String,
    /// Hex SHA-256 of the key (64 characters).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Name of the environment variable that holds the key when the gateway starts.
    #[serde(default)]
    pub env: Option<String>,
}

/// A place where the AI decides or produces something, reached through one route.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionPoint {
    /// Stable id (lowercase letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// What is decided or produced here.
    #[serde(default)]
    pub description: Option<String>,
    /// What the point serves: answers (`chat`, the default: Chat Completions, Responses,
    /// Messages) or `embeddings` (`/v1/embeddings`), which carry no answer, so the output
    /// stages and the system prompt do not apply there.
    #[serde(default)]
    pub kind: PointKind,
    /// The name clients send as `model` to reach this decision point; its id if left out.
    #[serde(default)]
    pub route: Option<String>,
    /// More names that reach it, so stock client code that sends `gpt-4o` works
    /// unchanged; answers still name the route.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The system prompt the gateway sends; clients cannot replace it (IG-5).
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// How far the AI acts on its own here (HO-1).
    pub autonomy: Autonomy,
    /// What is at stake in a wrong answer (HO-2).
    #[serde(default)]
    pub stakes: Stakes,
    /// Whether the effect of an answer cannot be undone (HO-2).
    #[serde(default)]
    pub irreversible: bool,
    /// Whether answers affect vulnerable people (HO-2).
    #[serde(default)]
    pub affects_vulnerable_people: bool,
    /// People who review held outputs; required when `autonomy` is `supervised` (HO-2).
    #[serde(default)]
    pub reviewers: Vec<Person>,
    /// Minutes a held output may wait for a reviewer before it escalates (default 60).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub review_deadline_minutes: Option<u32>,
    /// A URL told (HTTP POST, JSON) when an answer here is held and when a held answer
    /// passes its deadline; `${ENV}` where it holds a token.
    #[serde(default)]
    pub review_webhook: Option<String>,
    /// How users are told they are dealing with an AI (HO-3).
    #[serde(default)]
    pub disclosure: Option<Disclosure>,
    /// The primary model; its `fallback` links form the chain (MS-4).
    pub model: String,
    /// The answer given when every model in the chain is unavailable (MS-4).
    #[serde(default)]
    pub degraded_response: Option<String>,
    /// Total time for the model chain, fallbacks and retries included, in ms (default 60000).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
    /// Checks on what comes in (IG, DG-1).
    #[serde(default)]
    pub input: InputPolicy,
    /// Checks on what goes out (OV, DG-1).
    #[serde(default)]
    pub output: OutputPolicy,
}

/// What a decision point serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// Answers: Chat Completions, the Responses API, Anthropic's Messages.
    #[default]
    Chat,
    /// Vectors for text (`POST /v1/embeddings`).
    Embeddings,
}

/// How far the AI acts on its own at a decision point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Autonomy {
    /// The AI suggests; a person decides and acts.
    Advisory,
    /// The AI's output is held until a reviewer approves, edits or rejects it.
    Supervised,
    /// The AI's output takes effect without a person in the loop.
    Autonomous,
}

/// What is at stake in a wrong answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stakes {
    /// Inconvenience at most.
    #[default]
    Low,
    /// Noticeable cost or harm that can be put right.
    Medium,
    /// Significant effect on a person's money, health, rights or safety.
    High,
}

/// How users learn that an AI produced what they see (HO-3).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    /// The words shown to users: that they deal with an AI and what it can and cannot do.
    #[schemars(length(min = 1))]
    pub text: String,
    /// Add the `x-psf-ai-generated` header to every response.
    #[serde(default = "yes")]
    pub header: bool,
    /// Also add a `psf_disclosure` field to response bodies.
    #[serde(default)]
    pub body_field: bool,
}

fn yes() -> bool {
    true
}

/// What the gateway does with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse the request or the output with a defined error.
    Block,
    /// Let it through and record the finding.
    Flag,
    /// Let it through without recording.
    Allow,
}

/// Checks on input to a decision point.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputPolicy {
    /// Largest request body accepted, in bytes (IG-2).
    #[serde(default = "InputPolicy::default_max_body_bytes")]
    #[schemars(range(min = 1))]
    pub max_body_bytes: u64,
    /// Most messages in one request (IG-2).
    #[serde(default = "InputPolicy::default_max_messages")]
    #[schemars(range(min = 1))]
    pub max_messages: u32,
    /// Most characters in one message (IG-2).
    #[serde(default = "InputPolicy::default_max_chars_per_message")]
    #[schemars(range(min = 1))]
    pub max_chars_per_message: u32,
    /// Deepest nesting of arrays and objects in the request body (IG-2). A chat request
    /// needs a few levels, and tool schemas a few more; anything deeper is refused
    /// before the body is parsed.
    #[serde(default = "InputPolicy::default_max_depth")]
    #[schemars(range(min = 1))]
    pub max_depth: u32,
    /// Remove zero-width, bidi-control and other invisible characters before the model sees the text (IG-1).
    #[serde(default = "yes")]
    pub strip_invisible: bool,
    /// Prompt-injection detection (IG-1).
    #[serde(default)]
    pub injection: InjectionPolicy,
    /// What to do with `system` messages sent by clients (IG-5).
    #[serde(default)]
    pub client_system_messages: ClientSystemMessages,
    /// PII handling per data class (DG-1).
    #[serde(default)]
    pub pii: PiiPolicy,
}

impl InputPolicy {
    fn default_max_body_bytes() -> u64 {
        1 << 20
    }
    fn default_max_messages() -> u32 {
        100
    }
    fn default_max_chars_per_message() -> u32 {
        32_000
    }
    fn default_max_depth() -> u32 {
        32
    }
}

impl Default for InputPolicy {
    fn default() -> Self {
        InputPolicy {
            max_body_bytes: Self::default_max_body_bytes(),
            max_messages: Self::default_max_messages(),
            max_chars_per_message: Self::default_max_chars_per_message(),
            max_depth: Self::default_max_depth(),
            strip_invisible: true,
            injection: InjectionPolicy::default(),
            client_system_messages: ClientSystemMessages::default(),
            pii: PiiPolicy::default(),
        }
    }
}

/// Prompt-injection detection settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectionPolicy {
    /// What to do when the score reaches the threshold.
    #[serde(default = "InjectionPolicy::default_action")]
    pub action: Action,
    /// Score from 0 to 1 at which user input counts as an injection (default 0.45).
    #[serde(default = "InjectionPolicy::default_threshold")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub threshold: f64,
    /// Score at which retrieved or tool content counts as an injection (indirect
    /// injection; default 0.4, lower because such content should carry no instructions).
    #[serde(default = "InjectionPolicy::default_tool_threshold")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub tool_content_threshold: f64,
}

impl InjectionPolicy {
    fn default_action() -> Action {
        Action::Block
    }
    fn default_threshold() -> f64 {
        psf_detect::InjectionDetector::USER_THRESHOLD
    }
    fn default_tool_threshold() -> f64 {
        psf_detect::InjectionDetector::TOOL_THRESHOLD
    }
}

impl Default for InjectionPolicy {
    fn default() -> Self {
        InjectionPolicy {
            action: Self::default_action(),
            threshold: Self::default_threshold(),
            tool_content_threshold: Self::default_tool_threshold(),
        }
    }
}

/// What to do with `system` messages a client sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientSystemMessages {
    /// Refuse the request.
    Refuse,
    /// Pass the text on as a user message, below the manifest's system prompt.
    #[default]
    Demote,
}

/// What to do with one class of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// Pass it through unchanged (it is still redacted in the audit log).
    Allow,
    /// Replace it with a label such as `[EMAIL]`.
    Redact,
    /// Replace it with a stable placeholder the gateway restores in the reply.
    Tokenize,
    /// Refuse the request or output.
    Block,
}

/// PII handling per data class (DG-1). Classes left out are redacted; credentials are blocked.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PiiPolicy {
    /// Email addresses, phone numbers.
    #[serde(default = "PiiPolicy::redact")]
    pub contact: PiiAction,
    /// Card numbers, IBANs, account numbers.
    #[serde(default = "PiiPolicy::redact")]
    pub financial: PiiAction,
    /// Social security, national insurance, passport and similar numbers.
    #[serde(default = "PiiPolicy::redact")]
    pub government_id: PiiAction,
    /// API keys, tokens, private keys, passwords.
    #[serde(default = "PiiPolicy::block")]
    pub credential: PiiAction,
    /// Names, dates of birth.
    #[serde(default = "PiiPolicy::redact")]
    pub personal: PiiAction,
    /// Street addresses, IP addresses, precise locations.
    #[serde(default = "PiiPolicy::redact")]
    pub location: PiiAction,
}

impl PiiPolicy {
    /// The action for one data class (input and output policies alike).
    pub fn action(&self, class: psf_detect::DataClass) -> PiiAction {
        use psf_detect::DataClass;
        match class {
            DataClass::Contact => self.contact,
            DataClass::Financial => self.financial,
            DataClass::GovernmentId => self.government_id,
            DataClass::Credential => self.credential,
            DataClass::Personal => self.personal,
            DataClass::Location => self.location,
        }
    }

    fn redact() -> PiiAction {
        PiiAction::Redact
    }
    fn block() -> PiiAction {
        PiiAction::Block
    }
}

impl Default for PiiPolicy {
    fn default() -> Self {
        PiiPolicy {
            contact: PiiAction::Redact,
            financial: PiiAction::Redact,
            government_id: PiiAction::Redact,
            credential: PiiAction::Block,
            personal: PiiAction::Redact,
            location: PiiAction::Redact,
        }
    }
}

/// Checks on model output at a decision point (OV-1: always on).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputPolicy {
    /// Most characters in one output (OV-2).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_chars: Option<u32>,
    /// JSON Schema the output must satisfy (OV-2).
    #[serde(default)]
    pub json_schema: Option<serde_json::Value>,
    /// Content categories to screen for (OV-3).
    #[serde(default)]
    pub content: ContentPolicy,
    /// Topics the system may or may not talk about (OV-3).
    #[serde(default)]
    pub topics: Option<TopicScope>,
    /// The severe tier (OV-3): always on; a point may narrow it only with a reason.
    #[serde(default)]
    pub severe: SeverePolicy,
    /// PII handling in output per data class (DG-1).
    #[serde(default)]
    pub pii: PiiPolicy,
    /// What to do when output repeats the system prompt (IG-5).
    #[serde(default = "OutputPolicy::default_leak_action")]
    pub system_prompt_leak: Action,
    /// Confidence from log-probabilities, where the model gives them (OV-4).
    #[serde(default)]
    pub confidence: Option<ConfidencePolicy>,
    /// Most bytes in one answer, its text and tool call arguments each, whole or streamed
    /// (default 4 MiB): past it the answer is cut with an error, and the audit record never
    /// keeps more.
    #[serde(default = "OutputPolicy::default_max_bytes")]
    #[schemars(range(min = 1))]
    pub max_bytes: u64,
    /// Longest a streamed answer may run from the request's arrival, in ms (default
    /// 300000): a stream that drips past it is ended with an error event.
    #[serde(default = "OutputPolicy::default_max_stream_ms")]
    #[schemars(range(min = 1))]
    pub max_stream_ms: u64,
}

/// The severe tier (OV-3): answers that instruct in weapons, toxic chemistry, self-harm
/// methods or malware, sexualise a minor, or incite violence are blocked at every
/// decision point. A point whose purpose needs one of them (a security team's malware
/// analysis, say) lists it here with the written reason the assessment cites.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverePolicy {
    /// Categories this point delivers anyway.
    #[serde(default)]
    pub allow: Vec<SevereCategory>,
    /// Why; required when `allow` names any category.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A category of the severe tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SevereCategory {
    /// Making or using explosives, incendiaries and untraceable or converted firearms.
    Weapons,
    /// Toxic gases, nerve agents, poisons, biological agents, poisoning people.
    ToxicChemistry,
    /// Methods of suicide or self-injury.
    SelfHarmMethods,
    /// Sexual content involving a minor. Never deliverable: `psf check` refuses it here.
    MinorSexual,
    /// Calls for violence against a group, threats.
    Incitement,
    /// Working malicious code or intrusion instructions.
    Malware,
}

impl OutputPolicy {
    fn default_leak_action() -> Action {
        Action::Block
    }
    fn default_max_bytes() -> u64 {
        4 << 20
    }
    fn default_max_stream_ms() -> u64 {
        300_000
    }
}

impl Default for OutputPolicy {
    fn default() -> Self {
        OutputPolicy {
            max_chars: None,
            json_schema: None,
            content: ContentPolicy::default(),
            topics: None,
            severe: SeverePolicy::default(),
            pii: PiiPolicy::default(),
            system_prompt_leak: Self::default_leak_action(),
            confidence: None,
            max_bytes: Self::default_max_bytes(),
            max_stream_ms: Self::default_max_stream_ms(),
        }
    }
}

/// A category of harmful content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentCategory {
    /// Violence and threats.
    Violence,
    /// Self-harm.
    SelfHarm,
    /// Sexual content.
    Sexual,
    /// Hate speech.
    Hate,
    /// Harassment.
    Harassment,
}

impl ContentCategory {
    /// Every category, in a stable order.
    pub const ALL: [ContentCategory; 5] = [
        ContentCategory::Violence,
        ContentCategory::SelfHarm,
        ContentCategory::Sexual,
        ContentCategory::Hate,
        ContentCategory::Harassment,
    ];
}

/// Content screening (OV-3).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentPolicy {
    /// Categories to screen for; all of them unless listed.
    #[serde(default = "ContentPolicy::all")]
    pub categories: Vec<ContentCategory>,
    /// What to do on a hit.
    #[serde(default = "ContentPolicy::default_action")]
    pub action: Action,
}

impl ContentPolicy {
    fn all() -> Vec<ContentCategory> {
        ContentCategory::ALL.to_vec()
    }
    fn default_action() -> Action {
        Action::Block
    }
}

impl Default for ContentPolicy {
    fn default() -> Self {
        ContentPolicy { categories: Self::all(), action: Self::default_action() }
    }
}

/// The topics a decision point is scoped to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicScope {
    /// Topics the system is meant to talk about; others are out of scope.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Topics it must not talk about.
    #[serde(default)]
    pub deny: Vec<String>,
    /// What to do with out-of-scope output.
    #[serde(default = "TopicScope::default_action")]
    pub action: Action,
}

impl TopicScope {
    fn default_action() -> Action {
        Action::Flag
    }
}

/// Confidence handling (OV-4).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfidencePolicy {
    /// Outputs whose mean token log-probability is below this count as low-confidence.
    #[schemars(range(max = 0.0))]
    pub min_mean_logprob: f64,
    /// What happens to a low-confidence output.
    #[serde(default)]
    pub action: LowConfidence,
}

/// What happens to a low-confidence output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LowConfidence {
    /// Deliver it and record the flag.
    #[default]
    Flag,
    /// Send it to the review queue.
    Escalate,
}

/// A model as the deployment uses it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Stable id used by decision points and fallbacks.
    pub id: String,
    /// The provider that serves it.
    pub provider: String,
    /// The provider's name for the model, ideally a pinned version.
    #[schemars(length(min = 1))]
    pub model: String,
    /// Why this model, for this use case and its risks (MS-1).
    #[serde(default)]
    pub rationale: Option<String>,
    /// The model to try when this one fails (MS-4).
    #[serde(default)]
    pub fallback: Option<String>,
    /// Time allowed for one attempt, in milliseconds.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
    /// Evaluations reviewed before deployment (MS-2) and regression gates passed (MS-3).
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
}

/// An evaluation of a model.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// What was evaluated.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Kind of evaluation.
    pub kind: EvaluationKind,
    /// When it was run or reviewed.
    pub date: Date,
    /// The outcome, in a sentence or figures.
    #[schemars(length(min = 1))]
    pub result: String,
    /// Where the full result is kept.
    #[serde(default)]
    pub file: Option<String>,
    /// Who reviewed it.
    #[serde(default)]
    pub reviewer: Option<String>,
}

/// Kind of model evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationKind {
    /// A benchmark relevant to the use case (MS-2).
    Benchmark,
    /// A regression gate run before promotion (MS-3).
    RegressionGate,
    /// Adversarial testing.
    RedTeam,
    /// Any other evaluation.
    Other,
}

/// A model provider.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Stable id used by models.
    pub id: String,
    /// The wire protocol it speaks.
    pub kind: ProviderKind,
    /// Base URL of its API, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable that holds its API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Where it processes data, e.g. `eu`, `us`, `eu-west-1` (DG-5).
    #[serde(default)]
    pub region: Option<String>,
    /// Whether it runs on infrastructure the organisation controls (no vendor terms then).
    #[serde(default)]
    pub self_hosted: bool,
    /// The review of its terms of service (MS-5).
    #[serde(default)]
    pub terms: Option<TermsReview>,
    /// The data processing agreement (MS-5).
    #[serde(default)]
    pub dpa: Option<Dpa>,
}

/// The wire protocol of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI's API.
    Openai,
    /// Azure OpenAI.
    AzureOpenai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Any OpenAI-compatible endpoint: vLLM, Ollama, llama.cpp server and others.
    OpenaiCompatible,
}

/// A review of a provider's terms.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsReview {
    /// When the terms were last reviewed.
    pub reviewed_on: Date,
    /// Who reviewed them.
    #[schemars(length(min = 1))]
    pub reviewer: String,
    /// Whether the terms permit this use case.
    pub permits_use_case: bool,
    /// Where the reviewed terms are.
    #[serde(default)]
    pub url: Option<String>,
}

/// A data processing agreement.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dpa {
    /// When it was signed.
    pub signed_on: Date,
    /// Contract reference or document location.
    #[serde(default)]
    pub reference: Option<String>,
}

/// Rate limits (IG-4).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// For the whole gateway.
    #[serde(default)]
    pub global: Option<RateLimit>,
    /// For each app, unless the app sets its own.
    #[serde(default)]
    pub per_app: Option<RateLimit>,
    /// For each API key.
    #[serde(default)]
    pub per_key: Option<RateLimit>,
    /// What to do when the shared limiter store (Redis) cannot be reached.
    #[serde(default)]
    pub on_store_unreachable: FailMode,
}

/// One rate limit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per minute.
    #[schemars(range(min = 1))]
    pub requests_per_minute: u32,
    /// Model tokens allowed per minute.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub tokens_per_minute: Option<u32>,
    /// Requests allowed in a burst above the steady rate.
    #[serde(default)]
    pub burst: Option<u32>,
}

/// What the rate check does while the shared limiter (Redis, in cluster mode) cannot be
/// reached within its deadline (IG-4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Refuse requests with a 503 until the limiter answers again: no request goes
    /// through unlimited.
    #[default]
    FailClosed,
    /// Go on under this instance's own limiter: the limits hold per instance rather than
    /// across the cluster until the shared one is back.
    LocalLimits,
}

/// Retention periods (DG-2, OB-5).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days audit records are kept; at least 30 (OB-5).
    #[serde(default = "Retention::default_audit_log_days")]
    pub audit_log_days: u32,
    /// Days the encrypted personal data of each class is kept before it is shredded (DG-2).
    #[serde(default)]
    pub pii_days: ClassRetention,
}

impl Retention {
    fn default_audit_log_days() -> u32 {
        90
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention { audit_log_days: Self::default_audit_log_days(), pii_days: ClassRetention::default() }
    }
}

/// Days personal data of each class is kept; a class left out follows `audit_log_days`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassRetention {
    /// Contact data.
    #[serde(default)]
    pub contact: Option<u32>,
    /// Financial data.
    #[serde(default)]
    pub financial: Option<u32>,
    /// Government ids.
    #[serde(default)]
    pub government_id: Option<u32>,
    /// Credentials.
    #[serde(default)]
    pub credential: Option<u32>,
    /// Personal data.
    #[serde(default)]
    pub personal: Option<u32>,
    /// Location data.
    #[serde(default)]
    pub location: Option<u32>,
}

/// A source of data used with the models (DG-4).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// Stable id.
    pub id: String,
    /// How the data is used.
    pub usage: DataUsage,
    /// Where the data came from and how it was collected.
    #[schemars(length(min = 1))]
    pub provenance: String,
    /// The licence or agreement under which it is used.
    #[schemars(length(min = 1))]
    pub licence: String,
    /// Whether the licence permits this use.
    pub licensed_for_use: bool,
    /// Whether it contains personal data.
    #[serde(default)]
    pub contains_pii: bool,
}

/// How data is used with the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataUsage {
    /// Training a model.
    Training,
    /// Fine-tuning a model.
    FineTuning,
    /// Retrieved into prompts at run time.
    Retrieval,
    /// Evaluating models.
    Evaluation,
}

/// Where data may be processed (DG-5).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Residency {
    /// Regions where data may be processed; the gateway refuses to route elsewhere.
    #[schemars(length(min = 1))]
    pub allowed_regions: Vec<String>,
    /// Assessed transfers to regions outside the allowed list.
    #[serde(default)]
    pub transfers: Vec<Transfer>,
    /// Narrower regions for requests that carry a class of personal data to the model
    /// (the policy lets it through): such a request goes only to providers there.
    #[serde(default)]
    pub classes: ClassRegions,
}

/// Whether a provider at `region` (or, with no region, one that is `self_hosted`: it runs
/// where the deployment does) processes data within `regions` (DG-5).
pub fn serves_in(region: Option<&str>, self_hosted: bool, regions: &[String]) -> bool {
    match region {
        Some(r) => regions.iter().any(|x| x == r),
        None => self_hosted,
    }
}

impl Provider {
    /// Whether this provider processes data within `regions` ([`serves_in`]).
    pub fn serves_in(&self, regions: &[String]) -> bool {
        serves_in(self.region.as_deref(), self.self_hosted, regions)
    }
}

impl Residency {
    /// The regions a class of data may be processed in, where `classes` narrows them
    /// (DG-5); `None` means `allowed_regions` applies.
    pub fn regions_for(&self, class: psf_detect::DataClass) -> Option<&[String]> {
        use psf_detect::DataClass;
        let c = &self.classes;
        match class {
            DataClass::Contact => c.contact.as_deref(),
            DataClass::Financial => c.financial.as_deref(),
            DataClass::GovernmentId => c.government_id.as_deref(),
            DataClass::Credential => c.credential.as_deref(),
            DataClass::Personal => c.personal.as_deref(),
            DataClass::Location => c.location.as_deref(),
        }
    }
}

/// Regions allowed per class of personal data; a class left out follows `allowed_regions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassRegions {
    /// Contact data.
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    /// Financial data.
    #[serde(default)]
    pub financial: Option<Vec<String>>,
    /// Government ids.
    #[serde(default)]
    pub government_id: Option<Vec<String>>,
    /// Credentials.
    #[serde(default)]
    pub credential: Option<Vec<String>>,
    /// Personal data.
    #[serde(default)]
    pub personal: Option<Vec<String>>,
    /// Location data.
    #[serde(default)]
    pub location: Option<Vec<String>>,
}

/// An assessed cross-border transfer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The region data goes to.
    #[schemars(length(min = 1))]
    pub region: String,
    /// The legal mechanism, e.g. standard contractual clauses.
    #[schemars(length(min = 1))]
    pub mechanism: String,
    /// When the transfer risk was assessed.
    pub assessed_on: Date,
}

/// An entry of the risk register. Its score is likelihood x impact, derived, never typed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Risk {
    /// Stable id, e.g. `R-1`.
    pub id: String,
    /// The risk in a few words.
    #[schemars(length(min = 1))]
    pub title: String,
    /// What could happen and why.
    #[serde(default)]
    pub description: Option<String>,
    /// Kind of risk; the AI-specific ones are told apart in the assessment.
    pub category: RiskCategory,
    /// How likely, 1 (rare) to 5 (almost certain).
    #[schemars(range(min = 1, max = 5))]
    pub likelihood: u8,
    /// How bad, 1 (negligible) to 5 (severe).
    #[schemars(range(min = 1, max = 5))]
    pub impact: u8,
    /// Likelihood and impact once the mitigations work.
    #[serde(default)]
    pub residual: Option<Residual>,
    /// How the risk is treated.
    pub treatment: Treatment,
    /// Control ids (`IG-1` … `EA-5`) that mitigate it.
    #[serde(default)]
    pub mitigations: Vec<String>,
    /// The person who owns the risk.
    #[schemars(length(min = 1))]
    pub owner: String,
    /// When the risk is next reviewed.
    #[serde(default)]
    pub review_by: Option<Date>,
    /// Where the risk stands.
    #[serde(default)]
    pub status: RiskStatus,
}

impl Risk {
    /// Likelihood x impact, 1 to 25.
    pub fn score(&self) -> u8 {
        self.likelihood.saturating_mul(self.impact)
    }

    /// The band of [`Risk::score`].
    pub fn band(&self) -> RiskBand {
        RiskBand::of(self.score())
    }
}

/// Residual likelihood and impact.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Residual {
    /// 1 to 5.
    #[schemars(range(min = 1, max = 5))]
    pub likelihood: u8,
    /// 1 to 5.
    #[schemars(range(min = 1, max = 5))]
    pub impact: u8,
}

impl Residual {
    /// Likelihood x impact.
    pub fn score(&self) -> u8 {
        self.likelihood.saturating_mul(self.impact)
    }
}

/// The band a risk score falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskBand {
    /// 1 to 4.
    Low,
    /// 5 to 9.
    Medium,
    /// 10 to 16.
    High,
    /// 17 to 25.
    Critical,
}

impl RiskBand {
    /// The band of a likelihood x impact score.
    pub fn of(score: u8) -> RiskBand {
        match score {
            0..=4 => RiskBand::Low,
            5..=9 => RiskBand::Medium,
            10..=16 => RiskBand::High,
            _ => RiskBand::Critical,
        }
    }

    /// The band's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskBand::Low => "low",
            RiskBand::Medium => "medium",
            RiskBand::High => "high",
            RiskBand::Critical => "critical",
        }
    }
}

/// Kind of risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskCategory {
    /// The model states falsehoods with confidence.
    Hallucination,
    /// Input that subverts the model's instructions.
    PromptInjection,
    /// Behaviour or quality changing over time or across model versions.
    ModelDrift,
    /// Reliance on a model provider or other third party.
    ThirdPartyDependency,
    /// Personal or confidential data exposed through the model.
    DataLeakage,
    /// Unfair outcomes for groups of people.
    Bias,
    /// Harmful or offensive output.
    HarmfulOutput,
    /// Too much trust placed in the AI by its users.
    Overreliance,
    /// Conventional security risk.
    Security,
    /// Service availability.
    Availability,
    /// Legal or regulatory non-compliance.
    Compliance,
    /// Other operational risk.
    Operational,
    /// Anything else.
    Other,
}

impl RiskCategory {
    /// Whether the risk is specific to AI systems rather than to software in general.
    pub fn is_ai_specific(self) -> bool {
        matches!(
            self,
            RiskCategory::Hallucination
                | RiskCategory::PromptInjection
                | RiskCategory::ModelDrift
                | RiskCategory::ThirdPartyDependency
                | RiskCategory::DataLeakage
                | RiskCategory::Bias
                | RiskCategory::HarmfulOutput
                | RiskCategory::Overreliance
        )
    }
}

/// How a risk is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    /// Reduce it with controls.
    Mitigate,
    /// Live with it.
    Accept,
    /// Pass it to someone else (insurance, contract).
    Transfer,
    /// Stop doing what causes it.
    Avoid,
}

/// Where a risk stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskStatus {
    /// Identified, treatment not yet in place.
    #[default]
    Open,
    /// Treatment in place and watched.
    Monitoring,
    /// No longer relevant.
    Closed,
}

/// The incident response plan.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPlan {
    /// The failure modes the plan covers, each with its runbook (IR-1).
    #[schemars(length(min = 1))]
    pub failure_modes: Vec<FailureMode>,
    /// Who is called, in order (IR-1).
    #[serde(default)]
    pub escalation: Vec<EscalationStep>,
    /// Messages prepared for people affected by an incident (IR-4).
    #[serde(default)]
    pub comms_templates: Vec<CommsTemplate>,
}

/// A way the system can fail, and what to do about it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureMode {
    /// Stable id.
    pub id: String,
    /// Kind of failure.
    pub kind: FailureKind,
    /// Where the runbook is: a path in the repository or a URL.
    #[schemars(length(min = 1))]
    pub runbook: String,
    /// What the failure looks like.
    #[serde(default)]
    pub description: Option<String>,
}

/// Kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The model produced harmful output.
    HarmfulOutput,
    /// Personal or confidential data leaked.
    DataLeakage,
    /// The model failed, degraded or changed behaviour.
    ModelFailure,
    /// Someone subverted the model through its input.
    PromptInjection,
    /// The provider is unavailable.
    ProviderOutage,
    /// Spend or usage ran away.
    CostRunaway,
    /// Anything else.
    Other,
}

/// One step of the escalation path.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// Who is called.
    pub contact: Person,
    /// Minutes after the trigger by which they are called.
    pub within_minutes: u32,
}

/// A message prepared in advance for an incident (IR-4).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommsTemplate {
    /// Stable id.
    pub id: String,
    /// Who it is for.
    pub audience: Audience,
    /// The message; `{placeholders}` are filled in at the time.
    #[schemars(length(min = 1))]
    pub text: String,
    /// When it was approved.
    #[serde(default)]
    pub approved_on: Option<Date>,
    /// Who approved it.
    #[serde(default)]
    pub approved_by: Option<String>,
}

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Customers and users.
    Customers,
    /// Regulators.
    Regulators,
    /// People inside the organisation.
    Internal,
    /// Partners and suppliers.
    Partners,
}

/// A drill or tabletop exercise (IR-5).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    /// When it was held.
    pub date: Date,
    /// What was rehearsed.
    #[schemars(length(min = 1))]
    pub scenario: String,
    /// Tabletop or live.
    pub kind: DrillKind,
    /// Minutes from trigger to the system being disabled or degraded (IR-2).
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub time_to_disable_minutes: Option<f64>,
    /// Who took part.
    #[serde(default)]
    pub participants: Vec<String>,
    /// What was learnt.
    #[serde(default)]
    pub findings: Option<String>,
}

/// Kind of drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DrillKind {
    /// Talked through around a table.
    Tabletop,
    /// Performed on the running system.
    Live,
}

/// A review of the oversight design (HO-5).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OversightReview {
    /// When it was held.
    pub date: Date,
    /// Who reviewed.
    #[schemars(length(min = 1))]
    pub reviewer: String,
    /// What prompted it.
    pub trigger: ReviewTrigger,
    /// What was decided.
    #[serde(default)]
    pub notes: Option<String>,
}

/// What prompted an oversight review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewTrigger {
    /// Before launch.
    Initial,
    /// A model was updated or replaced.
    ModelChange,
    /// The system's scope changed.
    ScopeChange,
    /// The way people use it shifted.
    UsageShift,
    /// A scheduled review.
    Periodic,
}

/// A bias and fairness evaluation (EA-2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FairnessEvaluation {
    /// When it was run.
    pub date: Date,
    /// How fairness was evaluated.
    #[schemars(length(min = 1))]
    pub method: String,
    /// The attributes compared, e.g. gender, age, nationality.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// What it found.
    #[schemars(length(min = 1))]
    pub result: String,
    /// Where the full result is kept.
    #[serde(default)]
    pub file: Option<String>,
}

/// A regulation that applies (EA-3).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Regulation {
    /// Its name, e.g. `EU AI Act`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Where it applies.
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// The obligations it places on this system.
    #[serde(default)]
    pub obligations: Vec<String>,
    /// Where compliance stands.
    pub status: ComplianceStatus,
    /// When it is next reviewed.
    pub next_review: Date,
    /// Who tracks it.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Where compliance with a regulation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceStatus {
    /// Obligations met.
    Compliant,
    /// Work under way.
    InProgress,
    /// Known gap.
    Gap,
    /// Reviewed and found not to apply.
    NotApplicable,
}

/// An ethical review (EA-5).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EthicalReview {
    /// When it was held.
    pub date: Date,
    /// Who reviewed.
    #[schemars(length(min = 1))]
    pub reviewers: Vec<String>,
    /// What was reviewed.
    #[schemars(length(min = 1))]
    pub scope: String,
    /// The outcome.
    pub outcome: ReviewOutcome,
    /// Where the minutes are.
    #[serde(default)]
    pub document: Option<String>,
}

/// Outcome of an ethical review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    /// Approved.
    Approved,
    /// Approved on conditions.
    ApprovedWithConditions,
    /// Not approved.
    Rejected,
}

/// An alert rule on a gateway metric (OB-1).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Stable id.
    pub id: String,
    /// The metric watched.
    pub metric: AlertMetric,
    /// Fire when the metric rises above this value.
    #[serde(default)]
    pub above: Option<f64>,
    /// Fire when the metric falls below this value.
    #[serde(default)]
    pub below: Option<f64>,
    /// Fire when the metric moves this many times away from its baseline (e.g. 2.0).
    #[serde(default)]
    #[schemars(range(min = 1.0))]
    pub baseline_factor: Option<f64>,
    /// Fire when the metric is this many standard deviations from its baseline (e.g. 3.0).
    #[serde(default)]
    #[schemars(range(min = 0.5))]
    pub baseline_sigmas: Option<f64>,
    /// Minutes of history the rolling baseline weighs (an exponentially weighted mean
    /// and variance); it learns from minutes in which the rule is not breached.
    #[serde(default = "AlertRule::default_baseline")]
    #[schemars(range(min = 2))]
    pub baseline_minutes: u32,
    /// Requests a minute must see to count (the latency or error rate of two requests
    /// says little); requests per minute is judged every minute.
    #[serde(default = "AlertRule::default_min_requests")]
    #[schemars(range(min = 1))]
    pub min_requests: u32,
    /// The decision point it watches; each decision point on its own when left out.
    #[serde(default)]
    pub decision_point: Option<String>,
    /// Minutes the condition must hold before the alert fires, and be clear before it
    /// resolves.
    #[serde(default = "AlertRule::default_window")]
    #[schemars(range(min = 1))]
    pub window_minutes: u32,
    /// How serious it is.
    #[serde(default)]
    pub severity: AlertSeverity,
    /// Where it is sent: webhook URLs (through `${ENV}` if they hold a token) or email addresses.
    #[serde(default)]
    pub notify: Vec<String>,
}

impl AlertRule {
    fn default_window() -> u32 {
        5
    }
    fn default_baseline() -> u32 {
        60
    }
    fn default_min_requests() -> u32 {
        5
    }
}

/// A metric an alert can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertMetric {
    /// 99th percentile latency, in milliseconds.
    LatencyP99Ms,
    /// Share of requests that failed.
    ErrorRate,
    /// Requests per minute.
    RequestsPerMinute,
    /// Share of requests blocked by a control.
    BlockedRate,
    /// Share of requests refused by a rate limit.
    RateLimitedRate,
    /// Share of requests served by a fallback.
    FallbackRate,
    /// Mean sampled quality score.
    QualityScore,
    /// Outputs waiting for human review.
    ReviewQueueDepth,
}

/// How serious an alert is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// For information.
    Info,
    /// Needs attention.
    #[default]
    Warning,
    /// Needs someone now.
    Critical,
}

/// Sampling of outputs for quality review (OB-2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualitySampling {
    /// Share of outputs sampled, 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub rate: f64,
    /// A mean score below this starts a review.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_score: Option<f64>,
    /// Alert minutes between stored quality figures (an `OB-2.quality` event per decision
    /// point: the mean and the number of samples), the series the assessment reads.
    #[serde(default = "QualitySampling::default_summary_minutes")]
    #[schemars(range(min = 1))]
    pub summary_minutes: u32,
}

impl QualitySampling {
    fn default_summary_minutes() -> u32 {
        60
    }
}

/// The team's knowledge check (`psf exam`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeCheck {
    /// The share of right answers that passes, 0.5 to 1 (default 0.75).
    #[serde(default = "KnowledgeCheck::default_pass_mark")]
    #[schemars(range(min = 0.5, max = 1.0))]
    pub pass_mark: f64,
}

impl KnowledgeCheck {
    fn default_pass_mark() -> f64 {
        crate::exam::PASS_MARK
    }
}

/// How a candidate model is judged against the current one (MS-3).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegressionGate {
    /// The largest drop in a check kind's pass rate that is not a regression, 0 to 1.
    #[serde(default = "RegressionGate::default_tolerance")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub tolerance: f64,
    /// The golden suite, for the record (`psf eval --suite` names the file it runs).
    #[serde(default)]
    pub suite: Option<String>,
}

impl RegressionGate {
    /// The tolerance when the manifest gives none.
    pub const DEFAULT_TOLERANCE: f64 = 0.02;

    fn default_tolerance() -> f64 {
        Self::DEFAULT_TOLERANCE
    }
}

/// A competency that does not apply, and why.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotApplicable {
    /// The competency id, e.g. `DG-4`.
    pub competency: String,
    /// Why it does not apply.
    #[schemars(length(min = 1))]
    pub reason: String,
}

/// An accepted, time-boxed gap in the assessment.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// The competency id, e.g. `OB-2`.
    pub competency: String,
    /// Why the gap is accepted for now, and what will close it.
    #[schemars(length(min = 1))]
    pub reason: String,
    /// The last day the suppression holds; from the next day the gap fails again.
    pub expires: Date,
    /// Who accepted the gap.
    #[serde(default)]
    pub approved_by: Option<String>,
}

impl DecisionPoint {
    /// The name clients send as `model` to reach this decision point.
    pub fn route(&self) -> &str {
        self.route.as_deref().unwrap_or(&self.id)
    }

    /// Whether a request's `model` names this decision point: its route, its id or an
    /// alias.
    pub fn answers_to(&self, model: &str) -> bool {
        model == self.route() || model == self.id || self.aliases.iter().any(|a| a == model)
    }
}

impl Manifest {
    /// The models a decision point tries, in order: `model`, then each fallback. Stops at
    /// a model the manifest lacks, at a model already in the chain, and after six
    /// (`psf check` refuses cycles; the bounds keep a broken manifest finite anyway).
    pub fn chain(&self, model: &str) -> Vec<&Model> {
        let mut chain: Vec<&Model> = Vec::new();
        let mut next = Some(model);
        while let Some(id) = next.filter(|id| chain.len() < 6 && !chain.iter().any(|m| m.id == *id)) {
            let Some(found) = self.models.iter().find(|x| x.id == id) else { break };
            chain.push(found);
            next = found.fallback.as_deref();
        }
        chain
    }

    /// The JSON Schema of the manifest (draft 2020-12), for editors and for validation.
    pub fn json_schema() -> serde_json::Value {
        serde_json::Value::from(schemars::schema_for!(Manifest))
    }

    /// The model chain of a decision point: its model, then each fallback in turn.
    /// Stops at the first unknown id or repeated id, which `psf check` reports.
    pub fn model_chain<'a>(&'a self, point: &'a DecisionPoint) -> Vec<&'a Model> {
        let mut chain: Vec<&Model> = Vec::new();
        let mut next = Some(point.model.as_str());
        while let Some(id) = next {
            let Some(model) = self.models.iter().find(|m| m.id == id) else { break };
            if chain.iter().any(|m| m.id == id) {
                break;
            }
            chain.push(model);
            next = model.fallback.as_deref();
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_bands_at_their_boundaries() {
        let cases = [(1, RiskBand::Low), (4, RiskBand::Low), (5, RiskBand::Medium), (9, RiskBand::Medium)];
        let more = [(10, RiskBand::High), (16, RiskBand::High), (17, RiskBand::Critical), (25, RiskBand::Critical)];
        for (score, band) in cases.into_iter().chain(more) {
            assert_eq!(RiskBand::of(score), band, "score {score}");
        }
        // Every likelihood x impact pair lands in the band of its product.
        for l in 1..=5u8 {
            for i in 1..=5u8 {
                let risk = Risk {
                    id: "R-1".into(),
                    title: "t".into(),
                    description: None,
                    category: RiskCategory::Bias,
                    likelihood: l,
                    impact: i,
                    residual: None,
                    treatment: Treatment::Accept,
                    mitigations: vec![],
                    owner: "o".into(),
                    review_by: None,
                    status: RiskStatus::Open,
                };
                assert_eq!(risk.score(), l * i);
                assert_eq!(risk.band(), RiskBand::of(l * i));
            }
        }
    }

    #[test]
    fn ai_specific_categories() {
        assert!(RiskCategory::PromptInjection.is_ai_specific());
        assert!(RiskCategory::ModelDrift.is_ai_specific());
        assert!(!RiskCategory::Security.is_ai_specific());
        assert!(!RiskCategory::Availability.is_ai_specific());
    }
}
