//! The semantic pass: rules that need the whole typed manifest, a catalog or a date.

use std::collections::HashMap;

use jiff::civil::Date;

use crate::catalog;
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::manifest::{Autonomy, FailureKind, Manifest, Person, RiskBand, RiskTier, Treatment};
use crate::yaml::SpanMap;

/// Days after which a review counts as stale.
const YEAR_DAYS: i64 = 365;

/// Runs every rule and returns what they found.
pub(crate) fn check(m: &Manifest, spans: &SpanMap, today: Date) -> Vec<Diagnostic> {
    let mut r = Rules { m, spans, today, out: Vec::new() };
    r.version();
    r.ids();
    r.references();
    r.fallbacks();
    r.people();
    r.keys_and_urls();
    r.policies();
    r.residency();
    r.risks();
    r.evidence_warnings();
    r.out
}

struct Rules<'a> {
    m: &'a Manifest,
    spans: &'a SpanMap,
    today: Date,
    out: Vec<Diagnostic>,
}

impl Rules<'_> {
    /// Reports at the node's value.
    fn at(&mut self, code: Code, pointer: String, message: String, help: impl Into<String>) {
        let mut d = Diagnostic::new(code, pointer, message).help(help);
        d.position = self.spans.value_position(&d.pointer);
        self.out.push(d);
    }

    /// Reports at the node's key (for a missing or misplaced section).
    fn at_key(&mut self, code: Code, pointer: String, message: String, help: impl Into<String>) {
        let mut d = Diagnostic::new(code, pointer, message).help(help);
        d.position = self.spans.key_position(&d.pointer);
        d.show_source = self.spans.get(&d.pointer).is_some();
        self.out.push(d);
    }

    fn days_ago(&self, date: Date) -> i64 {
        i64::from((self.today - date).get_days())
    }

    fn version(&mut self) {
        if self.m.version != crate::manifest::MANIFEST_VERSION {
            self.at(
                Code::UnsupportedVersion,
                "/version".into(),
                format!("manifest version {} is not supported", self.m.version),
                format!("this psf reads version {}", crate::manifest::MANIFEST_VERSION),
            );
        }
    }

    fn ids(&mut self) {
        let m = self.m;
        let lists: [(&str, Vec<&str>); 6] = [
            ("apps", m.apps.iter().map(|a| a.id.as_str()).collect()),
            ("decision_points", m.decision_points.iter().map(|d| d.id.as_str()).collect()),
            ("models", m.models.iter().map(|x| x.id.as_str()).collect()),
            ("providers", m.providers.iter().map(|p| p.id.as_str()).collect()),
            ("data_sources", m.data_sources.iter().map(|d| d.id.as_str()).collect()),
            ("alerts", m.alerts.iter().map(|a| a.id.as_str()).collect()),
        ];
        for (list, ids) in &lists {
            self.unique_ids(list, ids, false);
        }
        self.unique_routes();
        let risks: Vec<&str> = m.risks.iter().map(|r| r.id.as_str()).collect();
        self.unique_ids("risks", &risks, true);
        let keys: Vec<(usize, usize, &str)> = m
            .apps
            .iter()
            .enumerate()
            .flat_map(|(a, app)| app.keys.iter().enumerate().map(move |(k, key)| (a, k, key.id.as_str())))
            .collect();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (a, k, id) in keys {
            let pointer = format!("/apps/{a}/keys/{k}/id");
            self.id_format(&pointer, id, false);
            if let Some(line) = seen.insert(id, self.spans.value_position(&pointer).line) {
                self.at(
                    Code::DuplicateId,
                    pointer,
                    format!("API key id `{id}` is used twice"),
                    format!("key ids are unique across all apps; the first is on line {line}"),
                );
            }
        }
        if let Some(plan) = &m.incident_plan {
            let modes: Vec<&str> = plan.failure_modes.iter().map(|f| f.id.as_str()).collect();
            self.unique_ids("incident_plan/failure_modes", &modes, false);
            let templates: Vec<&str> = plan.comms_templates.iter().map(|t| t.id.as_str()).collect();
            self.unique_ids("incident_plan/comms_templates", &templates, false);
        }
    }

    /// Two decision points reached by one name (route or alias) would make routing
    /// ambiguous.
    fn unique_routes(&mut self) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, point) in self.m.decision_points.iter().enumerate() {
            let route_pointer = match point.route {
                Some(_) => format!("/decision_points/{i}/route"),
                None => format!("/decision_points/{i}/id"),
            };
            let names = std::iter::once((point.route(), route_pointer)).chain(
                point
                    .aliases
                    .iter()
                    .enumerate()
                    .map(|(a, name)| (name.as_str(), format!("/decision_points/{i}/aliases/{a}"))),
            );
            for (name, pointer) in names {
                match seen.insert(name, i) {
                    Some(first) if first == i => self.at(
                        Code::DuplicateId,
                        pointer,
                        format!("decision point `{}` lists the name `{name}` twice", point.id),
                        "list each alias once, and not the route itself",
                    ),
                    Some(first) => {
                        let other = &self.m.decision_points[first].id;
                        self.at(
                            Code::DuplicateId,
                            pointer,
                            format!("decision point `{}` answers to `{name}`, which `{other}` already uses", point.id),
                            "give each decision point its own `route` and aliases (the names clients send as `model`)",
                        );
                    }
                    None => {}
                }
            }
        }
    }

    fn unique_ids(&mut self, list: &str, ids: &[&str], uppercase_ok: bool) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            let pointer = format!("/{list}/{i}/id");
            self.id_format(&pointer, id, uppercase_ok);
            if let Some(line) = seen.insert(id, self.spans.value_position(&pointer).line) {
                let name = list.rsplit('/').next().unwrap_or(list);
                self.at(
                    Code::DuplicateId,
                    pointer,
                    format!("id `{id}` appears twice in `{name}`"),
                    format!("ids must be unique; the first `{id}` is on line {line}"),
                );
            }
        }
    }

    fn id_format(&mut self, pointer: &str, id: &str, uppercase_ok: bool) {
        let ok_char = |c: char| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '-' | '_' | '.')
                || (uppercase_ok && c.is_ascii_uppercase())
        };
        let first_ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok || !id.chars().all(ok_char) {
            let allowed = if uppercase_ok { "letters" } else { "lowercase letters" };
            self.at(
                Code::BadId,
                pointer.into(),
                format!("id `{id}` is not a valid id"),
                format!(
                    "use {allowed}, digits, `-`, `_` and `.`, starting with a letter or digit, e.g. `{}`",
                    suggest_id(id, uppercase_ok)
                ),
            );
        }
    }

    fn references(&mut self) {
        let m = self.m;
        let model_ids: Vec<&str> = m.models.iter().map(|x| x.id.as_str()).collect();
        let provider_ids: Vec<&str> = m.providers.iter().map(|p| p.id.as_str()).collect();
        let point_ids: Vec<&str> = m.decision_points.iter().map(|d| d.id.as_str()).collect();
        for (i, point) in m.decision_points.iter().enumerate() {
            if !model_ids.contains(&point.model.as_str()) {
                self.at(
                    Code::UnknownModel,
                    format!("/decision_points/{i}/model"),
                    format!("decision point `{}` uses model `{}`, which is not defined", point.id, point.model),
                    unknown_help(&point.model, &model_ids, "models"),
                );
            }
        }
        for (i, model) in m.models.iter().enumerate() {
            if !provider_ids.contains(&model.provider.as_str()) {
                self.at(
                    Code::UnknownProvider,
                    format!("/models/{i}/provider"),
                    format!("model `{}` names provider `{}`, which is not defined", model.id, model.provider),
                    unknown_help(&model.provider, &provider_ids, "providers"),
                );
            }
            if let Some(fallback) = &model.fallback
                && !model_ids.contains(&fallback.as_str())
            {
                self.at(
                    Code::UnknownFallback,
                    format!("/models/{i}/fallback"),
                    format!("model `{}` falls back to `{fallback}`, which is not defined", model.id),
                    unknown_help(fallback, &model_ids, "models"),
                );
            }
        }
        for (i, app) in m.apps.iter().enumerate() {
            if !point_ids.contains(&app.decision_point.as_str()) {
                self.at(
                    Code::UnknownDecisionPoint,
                    format!("/apps/{i}/decision_point"),
                    format!(
                        "app `{}` sends its calls to decision point `{}`, which is not defined",
                        app.id, app.decision_point
                    ),
                    unknown_help(&app.decision_point, &point_ids, "decision_points"),
                );
            }
            for (j, more) in app.more_decision_points.iter().enumerate() {
                if !point_ids.contains(&more.as_str()) {
                    self.at(
                        Code::UnknownDecisionPoint,
                        format!("/apps/{i}/more_decision_points/{j}"),
                        format!("app `{}` reaches decision point `{more}`, which is not defined", app.id),
                        unknown_help(more, &point_ids, "decision_points"),
                    );
                }
            }
        }
        self.suppressions();
        self.alerts();
        let mut seen_na: HashMap<&str, usize> = HashMap::new();
        for (i, na) in m.not_applicable.iter().enumerate() {
            let pointer = format!("/not_applicable/{i}/competency");
            self.control_id(pointer.clone(), &na.competency);
            if let Some(line) = seen_na.insert(na.competency.as_str(), self.spans.value_position(&pointer).line) {
                self.at(
                    Code::DuplicateNotApplicable,
                    pointer,
                    format!("`{}` is declared not applicable twice", na.competency),
                    format!("keep one entry; the first is on line {line}"),
                );
            }
        }
    }

    /// An alert rule needs a condition, watches a decision point that exists, and is
    /// delivered somewhere psf can deliver.
    fn alerts(&mut self) {
        let points: Vec<&str> = self.m.decision_points.iter().map(|d| d.id.as_str()).collect();
        for (i, rule) in self.m.alerts.iter().enumerate() {
            if rule.above.is_none()
                && rule.below.is_none()
                && rule.baseline_factor.is_none()
                && rule.baseline_sigmas.is_none()
            {
                self.at(
                    Code::AlertWithoutCondition,
                    format!("/alerts/{i}/id"),
                    format!("alert `{}` has no condition, so it can never fire", rule.id),
                    "add `above:` or `below:` (a fixed threshold), or `baseline_sigmas:` or `baseline_factor:` (against the rolling baseline)",
                );
            }
            if let Some(dp) = &rule.decision_point
                && !points.contains(&dp.as_str())
            {
                self.at(
                    Code::AlertUnknownDecisionPoint,
                    format!("/alerts/{i}/decision_point"),
                    format!("alert `{}` watches decision point `{dp}`, which is not defined", rule.id),
                    unknown_help(dp, &points, "decision_points"),
                );
            }
            for (j, target) in rule.notify.iter().enumerate() {
                if !target.contains('@') || target.contains("://") {
                    self.url(
                        format!("/alerts/{i}/notify/{j}"),
                        target,
                        "write the receiver's URL, e.g. https://hooks.example.com/psf-alerts",
                    );
                } else {
                    self.at(
                        Code::EmailAlertSink,
                        format!("/alerts/{i}/notify/{j}"),
                        format!("alert `{}` notifies `{target}`, an email address psf does not send to", rule.id),
                        "give a webhook URL (Slack, PagerDuty-style or your own receiver); the alert is also in the log and the admin API",
                    );
                }
            }
        }
    }

    /// An http or https URL (or a `${VAR}` that will hold one); `help` says what to write.
    fn url(&mut self, pointer: String, url: &str, help: &str) {
        let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) && !is_env_ref(url) {
            self.at(Code::BadUrl, pointer, format!("`{url}` is not an http or https URL"), help);
        }
    }

    /// A suppression names a real competency (one past its expiry is the assessment's
    /// to report: the gap it hid counts again).
    fn suppressions(&mut self) {
        for (i, s) in self.m.suppressions.iter().enumerate() {
            self.control_id(format!("/suppressions/{i}/competency"), &s.competency);
        }
    }

    fn control_id(&mut self, pointer: String, id: &str) {
        if catalog::competency(id).is_some() {
            return;
        }
        // People write `ig-1`, `IG1` or `IG 1`; normalise before guessing.
        let normal: String = id.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase();
        let guess = catalog::COMPETENCIES.iter().map(|c| c.id).find(|c| c.replace('-', "") == normal);
        let help = match guess {
            Some(g) => format!("did you mean `{g}`?"),
            None => "use a PSF competency id, `IG-1` to `EA-5`; `psf catalog` lists them".into(),
        };
        self.at(Code::UnknownControl, pointer, format!("`{id}` is not a PSF control id"), help);
    }

    fn fallbacks(&mut self) {
        let m = self.m;
        let index: HashMap<&str, usize> = m.models.iter().enumerate().map(|(i, x)| (x.id.as_str(), i)).collect();
        let mut reported = vec![false; m.models.len()];
        for start in 0..m.models.len() {
            let mut path = vec![start];
            let mut at = start;
            while let Some(next) = m.models[at].fallback.as_deref().and_then(|f| index.get(f)).copied() {
                if let Some(pos) = path.iter().position(|&p| p == next) {
                    let cycle = &path[pos..];
                    if !cycle.iter().any(|&c| reported[c]) {
                        for &c in cycle {
                            reported[c] = true;
                        }
                        let first = cycle.iter().copied().min().unwrap_or(start);
                        let mut names: Vec<&str> = cycle.iter().map(|&c| m.models[c].id.as_str()).collect();
                        names.push(m.models[next].id.as_str());
                        self.at(Code::FallbackCycle, format!("/models/{first}/fallback"), format!("fallbacks form a cycle: {}", names.join(" → ")), "end the chain with a model that has no `fallback`, and give the decision point a `degraded_response`");
                    }
                    break;
                }
                path.push(next);
                at = next;
            }
        }
    }

    /// An embeddings point: no class may be tokenized (the placeholder, not the text,
    /// would be embedded), and every model of its chain must serve embeddings.
    fn embeddings_point(&mut self, i: usize, point: &crate::manifest::DecisionPoint) {
        for class in psf_detect::DataClass::ALL {
            let (name, action) = (class.as_str(), point.input.pii.action(class));
            if action == crate::manifest::PiiAction::Tokenize {
                self.at(
                    Code::EmbeddingsPolicy,
                    format!("/decision_points/{i}/input/pii/{name}"),
                    format!("embeddings decision point `{}` tokenizes `{name}`", point.id),
                    "use `allow`, `redact` or `block`: a placeholder would be embedded in place of the text, and nothing is restored in a vector",
                );
            }
        }
        let m = self.m;
        for model in m.model_chain(point) {
            let provider = m.providers.iter().find(|p| p.id == model.provider);
            if provider.is_some_and(|p| p.kind == crate::manifest::ProviderKind::Anthropic) {
                self.at(
                    Code::EmbeddingsPolicy,
                    format!("/decision_points/{i}/model"),
                    format!("embeddings decision point `{}` uses model `{}`, whose provider (Anthropic) serves no embeddings", point.id, model.id),
                    "name a model from an OpenAI, Azure OpenAI or OpenAI-compatible provider",
                );
            }
        }
    }

    fn people(&mut self) {
        let m = self.m;
        self.email("/system/owner/email".into(), &m.system.owner.email);
        if let Some(why) = not_a_person(&m.system.owner, &m.providers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
        {
            let pointer = if why.field == "email" { "/system/owner/email" } else { "/system/owner/name" };
            self.at(Code::OwnerNotAPerson, pointer.into(), format!("the accountable owner must be one named person, but {}", why.reason), "name the one person who answers for this system (EA-1), with their own email address; put teams in `role` or elsewhere");
        }
        for (i, point) in m.decision_points.iter().enumerate() {
            for (r, reviewer) in point.reviewers.iter().enumerate() {
                self.email(format!("/decision_points/{i}/reviewers/{r}/email"), &reviewer.email);
            }
            let severe = &point.output.severe;
            if severe.allow.contains(&crate::manifest::SevereCategory::MinorSexual) {
                self.at(
                    Code::SevereWithoutReason,
                    format!("/decision_points/{i}/output/severe/allow"),
                    format!("decision point `{}` allows sexual content involving minors", point.id),
                    "remove `minor_sexual`: no purpose makes it deliverable",
                );
            }
            let reason_len = severe.reason.as_deref().map_or(0, |r| r.trim().chars().count());
            if !severe.allow.is_empty() && reason_len < 20 {
                self.at(Code::SevereWithoutReason, format!("/decision_points/{i}/output/severe"), format!("decision point `{}` narrows the severe tier without a reason", point.id), "add `reason:` saying, in a sentence or more, why this point must deliver these categories; the assessment cites it (OV-3)");
            }
            if point.kind == crate::manifest::PointKind::Embeddings {
                self.embeddings_point(i, point);
            }
            if point.autonomy == Autonomy::Supervised && point.reviewers.is_empty() {
                self.at(Code::NoReviewers, format!("/decision_points/{i}/autonomy"), format!("decision point `{}` is supervised but names no reviewers", point.id), "add `reviewers:` with the name and email of each person who may approve, edit or reject its outputs (HO-2)");
            }
        }
        if let Some(plan) = &m.incident_plan {
            for (i, step) in plan.escalation.iter().enumerate() {
                self.email(format!("/incident_plan/escalation/{i}/contact/email"), &step.contact.email);
            }
        }
    }

    fn email(&mut self, pointer: String, email: &str) {
        if !valid_email(email) {
            self.at(
                Code::BadEmail,
                pointer,
                format!("`{email}` is not an email address"),
                "write it as name@example.com",
            );
        }
    }

    fn keys_and_urls(&mut self) {
        let m = self.m;
        for (i, provider) in m.providers.iter().enumerate() {
            if let Some(env) = &provider.api_key_env {
                self.env_name(format!("/providers/{i}/api_key_env"), env);
            }
            self.url(
                format!("/providers/{i}/base_url"),
                &provider.base_url,
                "write the API's base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1",
            );
        }
        for (i, dp) in m.decision_points.iter().enumerate() {
            if let Some(url) = dp.review_webhook.as_deref() {
                self.url(
                    format!("/decision_points/{i}/review_webhook"),
                    url,
                    "write the receiver's URL, e.g. https://hooks.example.com/psf",
                );
            }
        }
        if let Some(otlp) = &m.gateway.otlp {
            self.url(
                "/gateway/otlp/endpoint".into(),
                &otlp.endpoint,
                "write the receiver's URL, e.g. http://127.0.0.1:4318/v1/traces",
            );
        }
        let app_keys =
            m.apps.iter().enumerate().flat_map(|(a, app)| {
                app.keys.iter().enumerate().map(move |(k, key)| (format!("/apps/{a}/keys/{k}"), key))
            });
        let admin_keys =
            m.gateway.admin_keys.iter().enumerate().map(|(k, key)| (format!("/gateway/admin_keys/{k}"), key));
        for (pointer, key) in app_keys.chain(admin_keys).collect::<Vec<_>>() {
            {
                match (&key.sha256, &key.env) {
                    (Some(hash), None) => {
                        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                            self.at(Code::BadKeyRef, format!("{pointer}/sha256"), format!("key `{}` has a `sha256` that is not 64 hex digits", key.id), "put the SHA-256 of the key here (`printf %s \"$KEY\" | sha256sum`), never the key itself");
                        }
                    }
                    (None, Some(env)) => self.env_name(format!("{pointer}/env"), env),
                    (Some(_), Some(_)) => self.at_key(Code::BadKeyRef, pointer, format!("key `{}` has both `sha256` and `env`", key.id), "keep one: the key's SHA-256, or the environment variable that holds it"),
                    (None, None) => self.at_key(Code::BadKeyRef, pointer, format!("key `{}` has neither `sha256` nor `env`", key.id), "add `sha256:` (the key's SHA-256) or `env:` (the variable that holds it); or manage keys with `psf keys create`"),
                }
            }
        }
    }

    fn env_name(&mut self, pointer: String, name: &str) {
        // A pasted secret is already reported as E213; don't report it twice.
        if psf_detect::secrets::first(name).is_some() {
            return;
        }
        let ok = name.chars().next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
            && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            self.at(Code::BadEnvName, pointer, format!("`{name}` is not an environment variable name"), "give the variable's name, in capitals, digits and `_`, e.g. OPENAI_API_KEY; the value stays in the environment");
        }
    }

    fn policies(&mut self) {
        let m = self.m;
        if m.retention.audit_log_days < 30 {
            self.at(Code::RetentionTooShort, "/retention/audit_log_days".into(), format!("audit records are kept for {} days, fewer than 30", m.retention.audit_log_days), "keep audit records at least 30 days so incidents can be investigated (OB-5); personal data in them can be shredded sooner with `retention.pii_days`");
        }
        for (i, point) in m.decision_points.iter().enumerate() {
            if let Some(schema) = &point.output.json_schema
                && let Err(e) = jsonschema::validator_for(schema)
            {
                self.at(Code::BadOutputSchema, format!("/decision_points/{i}/output/json_schema"), format!("the output schema of `{}` is not a valid JSON Schema: {e}", point.id), "write a JSON Schema (draft 2020-12), e.g. {type: object, required: [answer], properties: {answer: {type: string}}}");
            }
        }
    }

    fn residency(&mut self) {
        let Some(residency) = &self.m.residency else { return };
        for (i, provider) in self.m.providers.iter().enumerate() {
            let allowed = |r: &str| {
                residency.allowed_regions.iter().any(|a| a.eq_ignore_ascii_case(r))
                    || residency.transfers.iter().any(|t| t.region.eq_ignore_ascii_case(r))
            };
            match &provider.region {
                Some(region) if allowed(region) => {}
                Some(region) => self.at(
                    Code::RegionNotAllowed,
                    format!("/providers/{i}/region"),
                    format!("provider `{}` processes data in `{region}`, which residency does not allow", provider.id),
                    format!(
                        "choose a provider in {}, or record an assessed transfer under `residency.transfers` (DG-5)",
                        residency.allowed_regions.join(", ")
                    ),
                ),
                None => self.at_key(
                    Code::RegionNotAllowed,
                    format!("/providers/{i}"),
                    format!("provider `{}` has no `region`, so residency cannot be enforced", provider.id),
                    "add `region:` with where the provider processes data",
                ),
            }
        }
    }

    fn risks(&mut self) {
        for (i, risk) in self.m.risks.iter().enumerate() {
            for (j, control) in risk.mitigations.iter().enumerate() {
                self.control_id(format!("/risks/{i}/mitigations/{j}"), control);
            }
            let band = risk.band();
            if band >= RiskBand::High && risk.treatment == Treatment::Mitigate && risk.mitigations.is_empty() {
                self.at_key(
                    Code::UnmitigatedRisk,
                    format!("/risks/{i}"),
                    format!(
                        "risk `{}` scores {} ({}) and is to be mitigated, but names no controls",
                        risk.id,
                        risk.score(),
                        band.as_str()
                    ),
                    "list the controls that mitigate it under `mitigations:`, e.g. [IG-1, OV-3]",
                );
            }
            if let Some(residual) = &risk.residual
                && residual.score() > risk.score()
            {
                self.at_key(Code::ResidualAboveInherent, format!("/risks/{i}/residual"), format!("risk `{}` has a residual score of {} above its inherent score of {}", risk.id, residual.score(), risk.score()), "residual likelihood and impact are what remains after mitigation; they should not exceed the inherent ones");
            }
            if let Some(review_by) = risk.review_by
                && review_by < self.today
                && risk.status != crate::manifest::RiskStatus::Closed
            {
                self.at(
                    Code::ReviewOverdue,
                    format!("/risks/{i}/review_by"),
                    format!("risk `{}` was due for review on {review_by}", risk.id),
                    "review the risk and set the next `review_by` date",
                );
            }
        }
    }

    /// Warnings: the manifest is valid, but the assessment will find gaps.
    fn evidence_warnings(&mut self) {
        let m = self.m;
        for (i, provider) in m.providers.iter().enumerate() {
            if provider.self_hosted {
                continue;
            }
            match &provider.terms {
                None => self.at_key(Code::TermsStale, format!("/providers/{i}"), format!("provider `{}` has no record of its terms being reviewed", provider.id), "add `terms: {reviewed_on, reviewer, permits_use_case}` (MS-5), or `self_hosted: true` if you run it yourself"),
                Some(terms) if !terms.permits_use_case => self.at(Code::TermsStale, format!("/providers/{i}/terms/permits_use_case"), format!("the terms of provider `{}` do not permit this use case", provider.id), "resolve this with the vendor or change provider before going live"),
                Some(terms) if self.days_ago(terms.reviewed_on) > YEAR_DAYS => self.at(Code::TermsStale, format!("/providers/{i}/terms/reviewed_on"), format!("the terms of provider `{}` were last reviewed on {}, over a year ago", provider.id, terms.reviewed_on), "review the current terms and update `reviewed_on`"),
                Some(_) => {}
            }
            if provider.dpa.is_none() {
                self.at_key(
                    Code::NoDpa,
                    format!("/providers/{i}"),
                    format!("provider `{}` has no data processing agreement on record", provider.id),
                    "add `dpa: {signed_on, reference}` (MS-5)",
                );
            }
        }
        for (i, model) in m.models.iter().enumerate() {
            if model.rationale.as_deref().is_none_or(|r| r.trim().is_empty()) {
                self.at_key(
                    Code::NoRationale,
                    format!("/models/{i}"),
                    format!("model `{}` has no rationale", model.id),
                    "add `rationale:` saying why this model suits this use case and its risks (MS-1)",
                );
            }
            if model.evaluations.is_empty() {
                self.at_key(
                    Code::NoEvaluation,
                    format!("/models/{i}"),
                    format!("model `{}` has no evaluations on record", model.id),
                    "add `evaluations:` with the benchmarks reviewed before deployment (MS-2)",
                );
            }
        }
        for (i, point) in m.decision_points.iter().enumerate() {
            let consequential =
                point.stakes == crate::manifest::Stakes::High || point.irreversible || point.affects_vulnerable_people;
            if consequential && point.autonomy == Autonomy::Autonomous {
                self.at(
                    Code::HighStakesUnsupervised,
                    format!("/decision_points/{i}/autonomy"),
                    format!(
                        "decision point `{}` is high-stakes, irreversible or affects vulnerable people, yet autonomous",
                        point.id
                    ),
                    "make it `supervised` with reviewers, or `advisory` (HO-2)",
                );
            }
            // An embeddings point gives no answer to tell about or to instruct.
            let answers = point.kind == crate::manifest::PointKind::Chat;
            if answers && point.disclosure.is_none() {
                self.at_key(Code::NoDisclosure, format!("/decision_points/{i}"), format!("decision point `{}` has no AI disclosure", point.id), "add `disclosure: {text: ...}` telling users they deal with an AI and what it can and cannot do (HO-3)");
            }
            if answers && point.system_prompt.is_none() {
                self.at_key(
                    Code::NoSystemPrompt,
                    format!("/decision_points/{i}"),
                    format!("decision point `{}` has no system prompt", point.id),
                    "add `system_prompt:` so the gateway, not the client, sets the model's instructions (IG-5)",
                );
            }
            let chain = m.model_chain(point);
            // An unknown model is already an error; a missing chain would only repeat it.
            if chain.len() == 1 && point.degraded_response.is_none() {
                self.at_key(
                    Code::NoFallback,
                    format!("/decision_points/{i}"),
                    format!("decision point `{}` has no fallback model and no degraded response", point.id),
                    "give its model a `fallback:`, or the decision point a `degraded_response:` (MS-4)",
                );
            }
        }
        match &m.incident_plan {
            None => self.at_key(Code::IncidentPlanGap, "/incident_plan".into(), "there is no incident plan".into(), "add `incident_plan:` with failure modes and runbooks for harmful output, data leakage and model failure (IR-1)"),
            Some(plan) => {
                for (kind, name) in [(FailureKind::HarmfulOutput, "harmful_output"), (FailureKind::DataLeakage, "data_leakage"), (FailureKind::ModelFailure, "model_failure")] {
                    if !plan.failure_modes.iter().any(|f| f.kind == kind) {
                        self.at_key(Code::IncidentPlanGap, "/incident_plan/failure_modes".into(), format!("the incident plan has no failure mode of kind `{name}`"), format!("add a failure mode with `kind: {name}` and its runbook (IR-1)"));
                    }
                }
                for (i, t) in plan.comms_templates.iter().enumerate() {
                    if t.approved_on.is_none() || t.approved_by.is_none() {
                        self.at_key(Code::CommsNotApproved, format!("/incident_plan/comms_templates/{i}"), format!("comms template `{}` has no approval on record", t.id), "add `approved_on:` and `approved_by:` once it is approved (IR-4)");
                    }
                }
                if plan.comms_templates.is_empty() {
                    self.at_key(Code::CommsNotApproved, "/incident_plan".into(), "the incident plan has no comms templates".into(), "add `comms_templates:` approved before launch (IR-4)");
                }
            }
        }
        let recent_drill = m.drills.iter().any(|d| self.days_ago(d.date) <= YEAR_DAYS);
        if !recent_drill {
            self.at_key(
                Code::DrillGap,
                "/drills".into(),
                "no drill or tabletop exercise in the last year".into(),
                "rehearse the incident plan and record it under `drills:` (IR-5)",
            );
        }
        for (i, drill) in m.drills.iter().enumerate() {
            if let Some(minutes) = drill.time_to_disable_minutes
                && minutes > 15.0
            {
                self.at(Code::DrillGap, format!("/drills/{i}/time_to_disable_minutes"), format!("the drill on {} took {minutes} minutes to disable the system, more than 15", drill.date), "the system must be disabled, degraded or isolated within 15 minutes (IR-2); fix what slowed it and drill again");
            }
        }
        for (i, reg) in m.regulations.iter().enumerate() {
            if reg.next_review < self.today {
                self.at(
                    Code::ReviewOverdue,
                    format!("/regulations/{i}/next_review"),
                    format!("regulation `{}` was due for review on {}", reg.name, reg.next_review),
                    "review the obligations and set the next `next_review` date (EA-3)",
                );
            }
        }
        if m.system.risk_tier == RiskTier::High && !m.ethical_reviews.iter().any(|r| self.days_ago(r.date) <= YEAR_DAYS)
        {
            self.at_key(
                Code::NoEthicalReview,
                "/ethical_reviews".into(),
                "a high-risk system needs an ethical review within the last year".into(),
                "hold the review and record it under `ethical_reviews:` (EA-5)",
            );
        }
        if m.fairness_evaluations.is_empty() {
            self.at_key(
                Code::NoFairnessEvaluation,
                "/fairness_evaluations".into(),
                "no fairness evaluation on record".into(),
                "evaluate bias for this use case and record it under `fairness_evaluations:` (EA-2)",
            );
        }
        if m.limitations.is_empty() {
            self.at_key(
                Code::NoFairnessEvaluation,
                "/limitations".into(),
                "no known limitations are documented".into(),
                "list what the system does not do well under `limitations:` (EA-2)",
            );
        }
        use crate::manifest::AlertMetric::{ErrorRate, LatencyP99Ms, RequestsPerMinute};
        if !m.alerts.iter().any(|a| matches!(a.metric, LatencyP99Ms | ErrorRate | RequestsPerMinute)) {
            self.at_key(
                Code::NoAlerts,
                "/alerts".into(),
                "no alert watches latency, errors or throughput".into(),
                "add `alerts:` on latency_p99_ms, error_rate and requests_per_minute (OB-1)",
            );
        }
        if m.risks.is_empty() {
            self.at_key(
                Code::NoRiskRegister,
                "/risks".into(),
                "the risk register is empty".into(),
                "add `risks:` scored by likelihood and impact",
            );
        } else if !m.risks.iter().any(|r| r.category.is_ai_specific()) {
            self.at_key(
                Code::NoRiskRegister,
                "/risks".into(),
                "the risk register has no AI-specific risk".into(),
                "add risks such as hallucination, prompt_injection, model_drift or third_party_dependency",
            );
        }
        for (i, source) in m.data_sources.iter().enumerate() {
            if !source.licensed_for_use {
                self.at(
                    Code::DataNotLicensed,
                    format!("/data_sources/{i}/licensed_for_use"),
                    format!("data source `{}` is not licensed for its use", source.id),
                    "obtain a licence that permits this use, or stop using the data (DG-4)",
                );
            }
        }
        let any_limit = m.rate_limits.global.is_some()
            || m.rate_limits.per_app.is_some()
            || m.rate_limits.per_key.is_some()
            || m.apps.iter().any(|a| a.rate_limit.is_some());
        if !any_limit {
            self.at_key(
                Code::NoRateLimit,
                "/rate_limits".into(),
                "no rate limit is set".into(),
                "add `rate_limits: {per_key: {requests_per_minute: 60}}` or similar (IG-4)",
            );
        }
        if m.oversight_reviews.is_empty() {
            self.at_key(
                Code::NoOversightReview,
                "/oversight_reviews".into(),
                "the oversight design has never been reviewed".into(),
                "record the initial review under `oversight_reviews:` and one after each model or scope change (HO-5)",
            );
        }
    }
}

fn unknown_help(wrong: &str, known: &[&str], section: &str) -> String {
    match did_you_mean(wrong, known.iter().copied()) {
        Some(guess) => format!("did you mean `{guess}`?"),
        None if known.is_empty() => format!("define it under `{section}:`"),
        None => format!("define it under `{section}:`, or use one of: {}", known.join(", ")),
    }
}

fn suggest_id(id: &str, uppercase_ok: bool) -> String {
    let mut out = String::new();
    for c in id.trim().chars() {
        let c = if uppercase_ok { c } else { c.to_ascii_lowercase() };
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "my-id".into() } else { out }
}

fn is_env_ref(s: &str) -> bool {
    s.starts_with("${") && s.ends_with('}')
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c == ',' || c == ';')
}

struct NotPerson {
    field: &'static str,
    reason: String,
}

/// Why an owner is a team, role, vendor or shared mailbox rather than a person.
fn not_a_person(owner: &Person, provider_ids: &[&str]) -> Option<NotPerson> {
    const GROUP_WORDS: &[&str] = &[
        "team",
        "teams",
        "group",
        "squad",
        "department",
        "dept",
        "committee",
        "board",
        "office",
        "division",
        "unit",
        "council",
        "platform",
        "operations",
        "ops",
        "engineering",
        "support",
        "staff",
        "function",
        "guild",
        "chapter",
        "tribe",
        "crew",
    ];
    const ROLE_WORDS: &[&str] = &[
        "head",
        "lead",
        "manager",
        "director",
        "officer",
        "owner",
        "chief",
        "cto",
        "ceo",
        "cio",
        "ciso",
        "cdo",
        "dpo",
        "vp",
        "admin",
        "administrator",
        "on-call",
        "oncall",
    ];
    const VENDOR_WORDS: &[&str] = &[
        "inc",
        "ltd",
        "llc",
        "gmbh",
        "corp",
        "corporation",
        "plc",
        "vendor",
        "supplier",
        "openai",
        "anthropic",
        "microsoft",
        "google",
        "aws",
        "amazon",
        "azure",
        "mistral",
        "cohere",
    ];
    const SHARED_MAILBOXES: &[&str] = &[
        "team",
        "ops",
        "support",
        "info",
        "admin",
        "help",
        "hello",
        "contact",
        "security",
        "privacy",
        "legal",
        "compliance",
        "engineering",
        "platform",
        "noreply",
        "no-reply",
        "dev",
        "devs",
        "it",
        "sales",
        "office",
        "all",
        "group",
        "ai",
        "ml",
        "oncall",
        "on-call",
    ];
    let words: Vec<String> = owner
        .name
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.' || c == '(' || c == ')' || c == '&' || c == '/')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let has = |list: &[&str]| {
        words.iter().find(|w| list.contains(&w.as_str()) || provider_ids.contains(&w.as_str())).cloned()
    };
    if let Some(w) = has(GROUP_WORDS) {
        return Some(NotPerson { field: "name", reason: format!("`{}` names a group (\"{w}\")", owner.name) });
    }
    if let Some(w) = has(ROLE_WORDS) {
        return Some(NotPerson { field: "name", reason: format!("`{}` names a role (\"{w}\")", owner.name) });
    }
    if let Some(w) = has(VENDOR_WORDS) {
        return Some(NotPerson { field: "name", reason: format!("`{}` names a company (\"{w}\")", owner.name) });
    }
    if words.len() < 2 || !words.iter().all(|w| w.chars().any(char::is_alphabetic)) {
        return Some(NotPerson { field: "name", reason: format!("`{}` is not a person's full name", owner.name) });
    }
    let local = owner.email.split('@').next().unwrap_or_default().to_lowercase();
    let shared = local.split(['.', '-', '_', '+']).any(|part| SHARED_MAILBOXES.contains(&part))
        || SHARED_MAILBOXES.contains(&local.as_str());
    if shared {
        return Some(NotPerson { field: "email", reason: format!("`{}` is a shared mailbox", owner.email) });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str, email: &str) -> Person {
        Person { name: name.into(), email: email.into(), role: None }
    }

    #[test]
    fn people_and_not_people() {
        assert!(not_a_person(&person("Dana Okafor", "dana.okafor@example.com"), &[]).is_none());
        assert!(not_a_person(&person("María José García-Pérez", "mj.garcia@example.es"), &[]).is_none());
        for (name, email) in [
            ("ML Platform Team", "ml@example.com"),
            ("Head of AI", "dana@example.com"),
            ("OpenAI", "x@openai.com"),
            ("Dana", "dana@example.com"),
            ("Dana Okafor", "ai-team@example.com"),
            ("Acme Corp", "dana@example.com"),
        ] {
            assert!(not_a_person(&person(name, email), &["openai"]).is_some(), "{name} <{email}>");
        }
    }

    #[test]
    fn emails() {
        assert!(valid_email("a.b@example.co.uk"));
        for bad in ["a", "a@b", "@b.com", "a@@b.com", "a b@c.com", "a@b..com"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn ids_are_suggested() {
        assert_eq!(suggest_id("Answer Question", false), "answer-question");
        assert_eq!(suggest_id("!!", false), "my-id");
    }
}
