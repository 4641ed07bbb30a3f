//! The manifest compiled for serving: detectors built, providers connected, keys
//! resolved, chains laid out. Done once at start-up; every request reads it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use psf_core::Manifest;
use psf_core::manifest::{
    Action, Autonomy, ContentCategory, DecisionPoint, LowConfidence, ProviderKind, SevereCategory,
};
use psf_detect::{
    Category, ContentDetector, InjectionDetector, OutputSchema, PiiDetector, PromptLeakDetector, Severe,
    SevereDetector, TopicScope,
};
use psf_providers::{Protocol, Provider, ReplyLimits};

use crate::breaker::Breaker;
use crate::keys::{KeyOwner, KeyTable, digest, digest_from_hex};

/// One model in a decision point's chain.
#[derive(Debug)]
pub struct ChainLink {
    /// The manifest's model id.
    pub model_id: String,
    /// The provider's name for the model.
    pub model: String,
    /// Who serves it.
    pub provider: Provider,
    /// The model endpoint's breaker, shared by every chain that uses this model: one
    /// failing model never opens the circuit for its provider's other models.
    pub breaker: Arc<Breaker>,
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// Whether residency allows sending data there (DG-5).
    pub region_allowed: bool,
    /// The provider's region, for the audit record.
    pub region: Option<String>,
    /// Whether the provider runs on the deployment's own infrastructure.
    pub self_hosted: bool,
}

impl ChainLink {
    /// Whether this link processes data within `regions` (a self-hosted provider with no
    /// region set counts as inside: it runs where the deployment does).
    pub fn serves_in(&self, regions: &[String]) -> bool {
        psf_core::manifest::serves_in(self.region.as_deref(), self.self_hosted, regions)
    }
}

/// A decision point, ready to serve.
#[derive(Debug)]
pub struct Point {
    /// As the manifest says.
    pub spec: DecisionPoint,
    /// The `model` name clients send.
    pub route: String,
    /// The model chain, primary first.
    pub chain: Vec<ChainLink>,
    /// Injection detector with this point's thresholds.
    pub injection: InjectionDetector,
    /// Output JSON Schema, compiled.
    pub schema: Option<OutputSchema>,
    /// System-prompt leak check.
    pub leak: Option<PromptLeakDetector>,
    /// Content-category screening (OV-3); `None` when the policy screens nothing.
    pub content: Option<ContentFilter>,
    /// Topic scope (OV-3); `None` when the manifest sets none.
    pub topics: Option<TopicScope>,
    /// The severe tier (OV-3): the shared detector and the categories still blocked here.
    pub severe: SevereFilter,
    /// Total time for the chain.
    pub total_timeout: Duration,
}

/// A decision point's content screening: the shared detector, the categories its
/// policy names and what a hit does.
#[derive(Debug)]
pub struct ContentFilter {
    /// The detector, shared by every point.
    pub detector: Arc<ContentDetector>,
    /// Categories screened.
    pub categories: Vec<Category>,
    /// Block or flag.
    pub action: Action,
}

/// A decision point's severe tier: on at every point, narrowed only by the manifest.
#[derive(Debug)]
pub struct SevereFilter {
    /// The detector, shared by every point.
    pub detector: Arc<SevereDetector>,
    /// Categories blocked: all but those the manifest's `output.severe.allow` names.
    pub blocked: Vec<Severe>,
}

fn severe_category(c: SevereCategory) -> Severe {
    match c {
        SevereCategory::Weapons => Severe::Weapons,
        SevereCategory::ToxicChemistry => Severe::ToxicChemistry,
        SevereCategory::SelfHarmMethods => Severe::SelfHarmMethods,
        SevereCategory::MinorSexual => Severe::MinorSexual,
        SevereCategory::Incitement => Severe::Incitement,
        SevereCategory::Malware => Severe::Malware,
    }
}

fn category(c: ContentCategory) -> Category {
    match c {
        ContentCategory::Violence => Category::Violence,
        ContentCategory::SelfHarm => Category::SelfHarm,
        ContentCategory::Sexual => Category::Sexual,
        ContentCategory::Hate => Category::Hate,
        ContentCategory::Harassment => Category::Harassment,
    }
}

/// Everything the gateway serves from one manifest.
#[derive(Debug)]
pub struct Compiled {
    /// The manifest.
    pub manifest: Manifest,
    /// Decision points by id.
    pub points: HashMap<String, Arc<Point>>,
    /// App id → the decision points its keys reach, the default first.
    pub apps: HashMap<String, Vec<String>>,
    /// Keys from the manifest.
    pub manifest_keys: KeyTable,
    /// Keys for the admin API (`gateway.admin_keys`); their owner's app is empty.
    pub admin_keys: KeyTable,
    /// The PII detector, built once and shared by every point and every output guard.
    pub pii: Arc<PiiDetector>,
    /// Limits on upstream replies.
    pub reply_limits: ReplyLimits,
    /// Breakers by model id.
    pub breakers: HashMap<String, Arc<Breaker>>,
}

impl Compiled {
    /// The decision points an app's keys reach, its default first.
    pub fn reach(&self, app: &str) -> Vec<&Arc<Point>> {
        self.apps.get(app).into_iter().flatten().filter_map(|id| self.points.get(id)).collect()
    }
}

/// Why a manifest cannot be served.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn protocol(kind: ProviderKind) -> Protocol {
    match kind {
        ProviderKind::Openai | ProviderKind::OpenaiCompatible => Protocol::OpenAi,
        ProviderKind::AzureOpenai => Protocol::AzureOpenAi,
        ProviderKind::Anthropic => Protocol::Anthropic,
    }
}

const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(60);

impl Compiled {
    /// Compiles a checked, expanded manifest. `env` resolves provider and client keys.
    pub fn new(manifest: Manifest, env: &dyn Fn(&str) -> Option<String>) -> Result<Compiled, ConfigError> {
        let http = psf_providers::http_client().map_err(|e| ConfigError(e.to_string()))?;
        let settings = &manifest.gateway;
        let mut providers = HashMap::new();
        let mut breakers = HashMap::new();
        for p in &manifest.providers {
            let key = match &p.api_key_env {
                Some(name) => Some(env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                    ConfigError(format!(
                        "provider `{}` takes its API key from ${name}, which is not set; export it before starting the gateway",
                        p.id
                    ))
                })?),
                None => None,
            };
            providers.insert(p.id.clone(), Provider::new(&p.id, protocol(p.kind), &p.base_url, key, http.clone()));
        }
        for m in &manifest.models {
            breakers.insert(
                m.id.clone(),
                Arc::new(Breaker::new(settings.breaker_failures, Duration::from_millis(settings.breaker_open_ms))),
            );
        }
        let allowed = manifest.residency.as_ref().map(|r| r.allowed_regions.clone());
        let mut points = HashMap::new();
        // One content model (1.25 MiB of weights) serves every decision point.
        let content_detector = Arc::new(ContentDetector::new().map_err(|e| ConfigError(e.to_string()))?);
        let severe_detector = Arc::new(SevereDetector::new().map_err(|e| ConfigError(e.to_string()))?);
        for dp in &manifest.decision_points {
            let mut chain = Vec::new();
            let mut next = Some(dp.model.clone());
            while let Some(id) = next.take() {
                if chain.iter().any(|l: &ChainLink| l.model_id == id) {
                    break;
                }
                let model = manifest
                    .models
                    .iter()
                    .find(|m| m.id == id)
                    .ok_or_else(|| ConfigError(format!("model `{id}` is not defined")))?;
                let spec = manifest
                    .providers
                    .iter()
                    .find(|p| p.id == model.provider)
                    .ok_or_else(|| ConfigError(format!("provider `{}` is not defined", model.provider)))?;
                let provider = providers
                    .get(&model.provider)
                    .cloned()
                    .ok_or_else(|| ConfigError(format!("provider `{}` is not defined", model.provider)))?;
                let breaker = breakers
                    .get(&model.id)
                    .cloned()
                    .ok_or_else(|| ConfigError(format!("model `{}` is not defined", model.id)))?;
                let region_allowed = match (&allowed, &spec.region) {
                    (None, _) => true,
                    (Some(list), Some(region)) => list.iter().any(|r| r == region),
                    (Some(_), None) => spec.self_hosted,
                };
                chain.push(ChainLink {
                    model_id: model.id.clone(),
                    model: model.model.clone(),
                    provider,
                    breaker,
                    timeout: model.timeout_ms.map_or(DEFAULT_ATTEMPT_TIMEOUT, Duration::from_millis),
                    region_allowed,
                    region: spec.region.clone(),
                    self_hosted: spec.self_hosted,
                });
                next = model.fallback.clone();
            }
            let input = &dp.input;
            let injection =
                InjectionDetector::with_thresholds(input.injection.threshold, input.injection.tool_content_threshold)
                    .map_err(|e| ConfigError(e.to_string()))?;
            let schema = match &dp.output.json_schema {
                Some(s) => Some(
                    OutputSchema::new(s)
                        .map_err(|e| ConfigError(format!("decision point `{}`: output schema: {e}", dp.id)))?,
                ),
                None => None,
            };
            let policy = &dp.output.content;
            let content = (!policy.categories.is_empty() && policy.action != Action::Allow).then(|| ContentFilter {
                detector: content_detector.clone(),
                categories: policy.categories.iter().map(|c| category(*c)).collect(),
                action: policy.action,
            });
            let topics = match &dp.output.topics {
                Some(t) => Some(
                    TopicScope::new(&t.allow, &t.deny)
                        .map_err(|e| ConfigError(format!("decision point `{}`: topics: {e}", dp.id)))?,
                )
                .filter(|t| !t.is_empty()),
                None => None,
            };
            let allowed: Vec<Severe> = dp.output.severe.allow.iter().map(|c| severe_category(*c)).collect();
            let severe = SevereFilter {
                detector: severe_detector.clone(),
                blocked: Severe::ALL.into_iter().filter(|c| !allowed.contains(c)).collect(),
            };
            let point = Point {
                content,
                topics,
                severe,
                route: dp.route.clone().unwrap_or_else(|| dp.id.clone()),
                chain,
                injection,
                schema,
                leak: dp.system_prompt.as_deref().and_then(PromptLeakDetector::new),
                total_timeout: dp.timeout_ms.map_or(DEFAULT_TOTAL_TIMEOUT, Duration::from_millis),
                spec: dp.clone(),
            };
            points.insert(dp.id.clone(), Arc::new(point));
        }
        let mut manifest_keys = KeyTable::default();
        let mut apps = HashMap::new();
        for app in &manifest.apps {
            let reach = std::iter::once(&app.decision_point).chain(&app.more_decision_points);
            apps.insert(app.id.clone(), reach.cloned().collect());
            for key in &app.keys {
                if let Some(d) = key_digest_of(key, &app.id, env)? {
                    manifest_keys.insert(d, KeyOwner { key_id: key.id.clone(), app: app.id.clone(), subject: None });
                }
            }
        }
        let mut admin_keys = KeyTable::default();
        for key in &settings.admin_keys {
            if let Some(d) = key_digest_of(key, "admin", env)? {
                admin_keys.insert(d, KeyOwner { key_id: key.id.clone(), app: String::new(), subject: None });
            }
        }
        let reply_limits = ReplyLimits {
            stream_idle: Duration::from_millis(settings.stream_idle_timeout_ms),
            ..ReplyLimits::default()
        };
        let pii = Arc::new(PiiDetector::new().map_err(|e| ConfigError(e.to_string()))?);
        Ok(Compiled { manifest, points, apps, manifest_keys, admin_keys, pii, reply_limits, breakers })
    }

    /// The largest request body any decision point accepts.
    pub fn max_body_bytes(&self) -> usize {
        let max = self.manifest.decision_points.iter().map(|d| d.input.max_body_bytes).max().unwrap_or(1 << 20);
        usize::try_from(max).unwrap_or(usize::MAX)
    }

    /// Whether a point's answers wait for a reviewer before the client gets them: every
    /// answer at a supervised point, and low-confidence ones where the policy escalates.
    pub fn holds(point: &Point) -> Hold {
        if point.spec.autonomy == Autonomy::Supervised {
            Hold::Always
        } else if point.spec.output.confidence.as_ref().is_some_and(|c| c.action == LowConfidence::Escalate) {
            Hold::WhenUnsure
        } else {
            Hold::Never
        }
    }
}

/// When a decision point holds answers for review (HO-1, OV-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Autonomous or advisory without escalation.
    Never,
    /// Low-confidence answers are escalated to the queue.
    WhenUnsure,
    /// Supervised: every answer.
    Always,
}

/// The digest of a manifest key, from `sha256` or from its environment variable; `None`
/// when the variable is unset (the key is then not accepted, said once at start-up).
fn key_digest_of(
    key: &psf_core::manifest::ApiKeyRef,
    owner: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<[u8; 32]>, ConfigError> {
    match (&key.sha256, &key.env) {
        (Some(hex), _) => digest_from_hex(hex)
            .map(Some)
            .ok_or_else(|| ConfigError(format!("key `{}`: `sha256` is not 64 hex digits", key.id))),
        (None, Some(name)) => match env(name).filter(|v| !v.is_empty()) {
            Some(value) => Ok(Some(digest(&value))),
            None => {
                tracing::warn!(owner, key = %key.id, variable = %name, "key variable is not set; this key is not accepted");
                Ok(None)
            }
        },
        (None, None) => Ok(None),
    }
}
