//! `psf eval`: the regression gate (MS-2, MS-3) and the counterfactual fairness suite
//! (EA-2), run through the gateway.
//!
//! A golden suite is JSON lines, one case each: `messages` (or `prompt`), and `checks`,
//! each one of `{"kind": "contains", "value": "…"}`, `{"kind": "regex", "pattern": "…"}`,
//! `{"kind": "json_schema", "schema": {…}}`, `{"kind": "max_length", "chars": N}`,
//! `{"kind": "must_refuse"}` or `{"kind": "must_not_refuse"}`. A case may name a
//! counterfactual `pair` and its `variant` (the same case with one demographic
//! attribute swapped): the fairness report counts pairs whose variants were treated
//! differently.
//!
//! Every case is sent to the baseline and to the candidate (two `model` names the
//! gateway routes, e.g. the live decision point and one that uses the candidate model),
//! and the pass rate of each check kind is compared. A kind regresses when the
//! candidate's rate is below the baseline's by more than the tolerance; the 95%
//! confidence interval of the difference (Newcombe's hybrid score interval) is shown so
//! a reviewer sees how much the suite can tell. A regression exits 1. With `--store`,
//! the result is recorded as an `MS-3.regression_gate` event (and `EA-2.fairness` for
//! pairs), which the assessment counts as evidence.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use psf_core::code::Code;
use psf_detect::{OutputSchema, SchemaCheck};
use serde::Serialize;
use serde_json::{Value, json};

use crate::OutputFormat;

/// What `psf eval` was asked.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// The golden suite (JSON lines).
    #[arg(long)]
    suite: PathBuf,
    /// The gateway's OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1.
    #[arg(long)]
    gateway: String,
    /// The `model` that reaches the current model (a decision point's route).
    #[arg(long)]
    baseline: String,
    /// The `model` that reaches the candidate.
    #[arg(long)]
    candidate: String,
    /// The environment variable holding the API key (never the key on the command line).
    #[arg(long, default_value = "PSF_API_KEY")]
    key_env: String,
    /// The environment variable holding the candidate's API key, when it is another app's.
    #[arg(long)]
    candidate_key_env: Option<String>,
    /// The largest drop in a check kind's pass rate that is not a regression (0 to 1);
    /// by default the manifest's `regression_gate.tolerance`, or 0.02.
    #[arg(long)]
    tolerance: Option<f64>,
    /// The manifest whose `regression_gate` settings apply.
    #[arg(long, default_value = "psf.yaml")]
    manifest: PathBuf,
    /// Record the result as evidence in this store.
    #[arg(long)]
    store: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// One check of a case.
#[derive(Debug)]
enum Check {
    Contains(String),
    Regex(regex::Regex),
    Schema(Box<OutputSchema>),
    MaxLength(usize),
    MustRefuse,
    MustNotRefuse,
}

impl Check {
    fn kind(&self) -> &'static str {
        match self {
            Check::Contains(_) => "contains",
            Check::Regex(_) => "regex",
            Check::Schema(_) => "json_schema",
            Check::MaxLength(_) => "max_length",
            Check::MustRefuse => "must_refuse",
            Check::MustNotRefuse => "must_not_refuse",
        }
    }

    /// Whether an answer passes. `answer` is `None` when the gateway refused the call
    /// (any status but 200): that is a refusal, and passes nothing else.
    fn passes(&self, answer: Option<&str>) -> bool {
        let refused = answer.is_none_or(psf_detect::refusal::is_refusal);
        match (self, answer) {
            (Check::MustRefuse, _) => refused,
            (Check::MustNotRefuse, _) => !refused,
            (_, None) => false,
            (Check::Contains(v), Some(a)) => a.to_lowercase().contains(&v.to_lowercase()),
            (Check::Regex(r), Some(a)) => r.is_match(a),
            (Check::Schema(s), Some(a)) => matches!(s.check(a), SchemaCheck::Valid { .. }),
            (Check::MaxLength(n), Some(a)) => a.chars().count() <= *n,
        }
    }
}

#[derive(Debug)]
struct Case {
    id: String,
    messages: Value,
    checks: Vec<Check>,
    pair: Option<(String, String)>,
}

/// Reads the suite; the error names the line and what is wrong with it.
fn suite(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |m: String| format!("line {}: {m}", i + 1);
        let v: Value = serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
        let messages = match (v.get("messages"), v.get("prompt").and_then(Value::as_str)) {
            (Some(m @ Value::Array(_)), _) => m.clone(),
            (_, Some(p)) => json!([{"role": "user", "content": p}]),
            _ => return Err(at("a case needs `messages` (a list) or `prompt` (text)".into())),
        };
        let mut checks = Vec::new();
        for c in v.get("checks").and_then(Value::as_array).into_iter().flatten() {
            let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
            checks.push(match c.get("kind").and_then(Value::as_str) {
                Some("contains") => Check::Contains(text("value").ok_or_else(|| at("`contains` needs `value`".into()))?),
                Some("regex") => {
                    let p = text("pattern").ok_or_else(|| at("`regex` needs `pattern`".into()))?;
                    Check::Regex(regex::Regex::new(&p).map_err(|e| at(format!("bad regex: {e}")))?)
                }
                Some("json_schema") => {
                    let s = c.get("schema").ok_or_else(|| at("`json_schema` needs `schema`".into()))?;
                    Check::Schema(Box::new(OutputSchema::new(s).map_err(|e| at(format!("bad schema: {e}")))?))
                }
                Some("max_length") => Check::MaxLength(
                    c.get("chars")
                        .and_then(Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| at("`max_length` needs `chars`".into()))?,
                ),
                Some("must_refuse") => Check::MustRefuse,
                Some("must_not_refuse") => Check::MustNotRefuse,
                other => {
                    return Err(at(format!(
                        "unknown check kind {other:?}: use contains, regex, json_schema, max_length, must_refuse or must_not_refuse"
                    )));
                }
            });
        }
        if checks.is_empty() {
            return Err(at("a case needs at least one check".into()));
        }
        let pair = match (v.get("pair").and_then(Value::as_str), v.get("variant").and_then(Value::as_str)) {
            (Some(p), Some(var)) => Some((p.to_owned(), var.to_owned())),
            (None, None) => None,
            _ => return Err(at("`pair` and `variant` go together".into())),
        };
        let id = v.get("id").and_then(Value::as_str).map_or_else(|| format!("line-{}", i + 1), str::to_owned);
        cases.push(Case { id, messages, checks, pair });
    }
    if cases.is_empty() {
        return Err("the suite has no cases".into());
    }
    Ok(cases)
}

/// Pass counts of one check kind for one model.
#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Tally {
    passed: u32,
    total: u32,
}

impl Tally {
    fn rate(self) -> f64 {
        if self.total == 0 { 0.0 } else { f64::from(self.passed) / f64::from(self.total) }
    }
}

/// The Wilson score interval of a proportion, at 95%.
fn wilson(t: Tally) -> (f64, f64) {
    const Z: f64 = 1.959_964;
    if t.total == 0 {
        return (0.0, 1.0);
    }
    let (n, p) = (f64::from(t.total), t.rate());
    let centre = (p + Z * Z / (2.0 * n)) / (1.0 + Z * Z / n);
    let half = Z / (1.0 + Z * Z / n) * (p * (1.0 - p) / n + Z * Z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score interval for `candidate − baseline`, at 95%.
pub(crate) fn difference_interval(baseline: (u32, u32), candidate: (u32, u32)) -> (f64, f64) {
    let (b, c) = (Tally { passed: baseline.0, total: baseline.1 }, Tally { passed: candidate.0, total: candidate.1 });
    let ((lb, ub), (lc, uc)) = (wilson(b), wilson(c));
    let d = c.rate() - b.rate();
    let low = d - ((c.rate() - lc).powi(2) + (ub - b.rate()).powi(2)).sqrt();
    let high = d + ((uc - c.rate()).powi(2) + (b.rate() - lb).powi(2)).sqrt();
    (low, high)
}

/// One check kind compared.
#[derive(Debug, Serialize)]
struct KindResult {
    kind: &'static str,
    baseline: Tally,
    candidate: Tally,
    difference: f64,
    ci95: (f64, f64),
    regressed: bool,
}

/// `psf eval`.
pub fn run(args: &GateArgs) -> io::Result<ExitCode> {
    let fail = |m: String| {
        eprintln!("psf: {m}");
        Ok(ExitCode::from(2))
    };
    let suite_text = match std::fs::read_to_string(&args.suite) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", args.suite.display())),
    };
    let cases = match suite(&suite_text) {
        Ok(c) => c,
        Err(e) => return fail(format!("{}: {e}", args.suite.display())),
    };
    let tolerance = match (args.tolerance, manifest_tolerance(&args.manifest)) {
        (Some(t), _) => t,
        (None, Ok(t)) => t,
        (None, Err(e)) => return fail(e),
    };
    if !(0.0..=1.0).contains(&tolerance) {
        return fail(format!("--tolerance {tolerance} is not between 0 and 1"));
    }
    let Ok(key) = std::env::var(&args.key_env) else {
        return fail(format!(
            "set the API key in the environment variable {} (or name another with --key-env)",
            args.key_env
        ));
    };
    let candidate_key = match &args.candidate_key_env {
        None => key.clone(),
        Some(name) => match std::env::var(name) {
            Ok(k) => k,
            Err(_) => return fail(format!("set the candidate's API key in the environment variable {name}")),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let answers = runtime.block_on(async {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(120)).build().unwrap_or_default();
        let mut out = Vec::with_capacity(cases.len());
        for case in &cases {
            let mut pair = [None, None];
            for (slot, (model, key)) in pair.iter_mut().zip([(&args.baseline, &key), (&args.candidate, &candidate_key)])
            {
                *slot = ask(&http, &args.gateway, key, model, &case.messages)
                    .await
                    .map_err(|e| format!("case {}: {e}", case.id))?;
            }
            out.push(pair);
        }
        Ok::<_, String>(out)
    });
    let answers = match answers {
        Ok(a) => a,
        Err(e) => return fail(format!("cannot reach the gateway at {}: {e}", args.gateway)),
    };

    let mut tallies: BTreeMap<&'static str, [Tally; 2]> = BTreeMap::new();
    for (case, answer) in cases.iter().zip(&answers) {
        for check in &case.checks {
            let t = tallies.entry(check.kind()).or_default();
            for (m, a) in answer.iter().enumerate() {
                t[m].total += 1;
                t[m].passed += u32::from(check.passes(a.as_deref()));
            }
        }
    }
    let kinds: Vec<KindResult> = tallies
        .into_iter()
        .map(|(kind, [b, c])| {
            let difference = c.rate() - b.rate();
            KindResult {
                kind,
                baseline: b,
                candidate: c,
                difference,
                ci95: difference_interval((b.passed, b.total), (c.passed, c.total)),
                regressed: difference < -tolerance,
            }
        })
        .collect();
    let fairness = fairness(&cases, &answers);
    let regressed = kinds.iter().any(|k| k.regressed);
    let result = json!({
        "suite": args.suite.display().to_string(),
        // The digest of the suite as run, not as the file may be by now.
        "suite_sha256": psf_assess::attest::digest(suite_text.as_bytes()),
        "cases": cases.len(),
        "baseline": args.baseline,
        "candidate": args.candidate,
        "tolerance": tolerance,
        "kinds": kinds,
        "fairness": fairness,
        "verdict": if regressed { "regression" } else { "pass" },
    });
    if let Some(url) = &args.store
        && let Err(e) = runtime.block_on(record(url, &result))
    {
        return fail(format!("cannot record the result in {url}: {e}"));
    }
    let mut out = io::stdout().lock();
    match args.format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&result).unwrap_or_default())?,
        OutputFormat::Text => write!(out, "{}", text(&result, &kinds))?,
    }
    Ok(if regressed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The manifest's `regression_gate.tolerance`; the default when there is no manifest
/// file or no such section. A manifest that exists but does not check is an error.
fn manifest_tolerance(path: &std::path::Path) -> Result<f64, String> {
    let default = psf_core::manifest::RegressionGate::DEFAULT_TOLERANCE;
    if !path.exists() {
        return Ok(default);
    }
    let text = crate::read_manifest(path)?;
    let checked = psf_core::check(&text, &psf_core::CheckOptions { today: crate::today() });
    match checked.manifest {
        Some(m) if checked.is_valid() => Ok(m.regression_gate.map_or(default, |g| g.tolerance)),
        _ => Err(format!("{}: the manifest has errors; `psf check` shows them", path.display())),
    }
}

/// Sends one case; `None` when the gateway refused it (any status but 200).
async fn ask(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    model: &str,
    messages: &Value,
) -> Result<Option<String>, String> {
    let url = format!("{}/chat/completions", base.trim_end_matches('/'));
    let r = http
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(json!({"model": model, "messages": messages}).to_string())
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = r.status();
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(format!("the gateway answered {status} to the API key"));
    }
    let body: Value = serde_json::from_slice(&r.bytes().await.map_err(|e| e.without_url().to_string())?)
        .map_err(|e| format!("the gateway's answer is not JSON: {e}"))?;
    if !status.is_success() {
        // A malformed request (IG-2: a bad body) or a model the key does not reach is the
        // suite's mistake, not the model's behaviour; any other refusal is behaviour.
        let code = body.pointer("/error/code").and_then(Value::as_str).unwrap_or_default();
        if code.starts_with("IG-2") || code == Code::ModelNotFound.as_str() {
            let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or_default();
            return Err(format!("model {model}: the gateway refused the request itself ({code}): {message}"));
        }
        return Ok(None);
    }
    Ok(Some(body.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_owned()))
}

/// For each model: counterfactual pairs whose variants were treated differently (one
/// passed every check and another did not, or one was refused and another not).
fn fairness(cases: &[Case], answers: &[[Option<String>; 2]]) -> Value {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        if let Some((pair, _)) = &c.pair {
            groups.entry(pair).or_default().push(i);
        }
    }
    if groups.is_empty() {
        return Value::Null;
    }
    let mut per_model = Vec::new();
    for m in 0..2 {
        let mut differing = Vec::new();
        for (pair, members) in &groups {
            let outcome = |i: usize| {
                let a = answers.get(i).and_then(|x| x[m].as_deref());
                (cases[i].checks.iter().all(|c| c.passes(a)), a.is_none_or(psf_detect::refusal::is_refusal))
            };
            let first = members.first().map(|i| outcome(*i));
            if members.iter().any(|i| Some(outcome(*i)) != first) {
                let variants: Vec<Value> = members
                    .iter()
                    .map(|i| {
                        let (passed, refused) = outcome(*i);
                        let variant = cases[*i].pair.as_ref().map_or("", |p| p.1.as_str());
                        json!({"case": cases[*i].id, "variant": variant, "passed": passed, "refused": refused})
                    })
                    .collect();
                differing.push(json!({"pair": pair, "variants": variants}));
            }
        }
        per_model.push(json!({"pairs": groups.len(), "differing": differing.len(), "details": differing}));
    }
    json!({"baseline": per_model[0], "candidate": per_model[1]})
}

fn text(result: &Value, kinds: &[KindResult]) -> String {
    let mut s = format!(
        "regression gate: {} cases from {}, baseline {} vs candidate {}, tolerance {}\n\n{:<16} {:>14} {:>14} {:>8}  {:<17} verdict\n",
        result["cases"],
        result["suite"].as_str().unwrap_or_default(),
        result["baseline"].as_str().unwrap_or_default(),
        result["candidate"].as_str().unwrap_or_default(),
        result["tolerance"],
        "check",
        "baseline",
        "candidate",
        "diff",
        "95% CI"
    );
    for k in kinds {
        let cell = |t: Tally| format!("{}/{} {:.0}%", t.passed, t.total, t.rate() * 100.0);
        s.push_str(&format!(
            "{:<16} {:>14} {:>14} {:>+8.3}  [{:+.3}, {:+.3}] {}\n",
            k.kind,
            cell(k.baseline),
            cell(k.candidate),
            k.difference,
            k.ci95.0,
            k.ci95.1,
            if k.regressed { "REGRESSION" } else { "ok" }
        ));
    }
    if let Some(f) = result["fairness"].as_object() {
        s.push_str(&format!(
            "\ncounterfactual pairs treated differently: baseline {} of {}, candidate {} of {}\n",
            f["baseline"]["differing"], f["baseline"]["pairs"], f["candidate"]["differing"], f["candidate"]["pairs"]
        ));
    }
    s.push_str(&format!(
        "\nverdict: {}\n",
        if result["verdict"] == "pass" { "pass: no check kind dropped beyond the tolerance" } else { "REGRESSION" }
    ));
    s
}

async fn record(url: &str, result: &Value) -> Result<(), String> {
    let store = psf_store::Store::open(url).await.map_err(|e| e.to_string())?;
    let summary = format!(
        "regression gate {}: {} vs {} on {} cases",
        result["verdict"].as_str().unwrap_or_default(),
        result["candidate"].as_str().unwrap_or_default(),
        result["baseline"].as_str().unwrap_or_default(),
        result["cases"]
    );
    let mut events = vec![psf_store::Event {
        ts_ms: psf_store::now_ms(),
        kind: "MS-3.regression_gate".into(),
        severity: if result["verdict"] == "pass" { "info" } else { "warning" }.into(),
        app: None,
        key_id: None,
        summary,
        detail: result.clone(),
    }];
    if !result["fairness"].is_null() {
        events.push(psf_store::Event {
            ts_ms: psf_store::now_ms(),
            kind: "EA-2.fairness".into(),
            severity: "info".into(),
            app: None,
            key_id: None,
            summary: format!(
                "counterfactual fairness suite: {} of {} pairs treated differently by {}",
                result["fairness"]["candidate"]["differing"],
                result["fairness"]["candidate"]["pairs"],
                result["candidate"].as_str().unwrap_or_default()
            ),
            detail: result["fairness"].clone(),
        });
    }
    let mut outcome = Ok(());
    for e in &events {
        if let Err(err) = store.insert_event(e).await {
            outcome = Err(err.to_string());
        }
    }
    store.close().await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_reads_every_check_kind_and_says_what_is_wrong() {
        let ok = r#"{"id": "a", "prompt": "hi", "checks": [{"kind": "contains", "value": "Hi"}, {"kind": "regex", "pattern": "^h"}, {"kind": "json_schema", "schema": {"type": "object"}}, {"kind": "max_length", "chars": 5}, {"kind": "must_refuse"}, {"kind": "must_not_refuse"}]}"#;
        let cases = suite(ok).unwrap();
        let kinds: Vec<&str> = cases[0].checks.iter().map(Check::kind).collect();
        assert_eq!(kinds, ["contains", "regex", "json_schema", "max_length", "must_refuse", "must_not_refuse"]);
        assert!(
            suite(r#"{"prompt": "x", "checks": [{"kind": "vibes"}]}"#)
                .unwrap_err()
                .starts_with("line 1: unknown check kind")
        );
        assert!(suite(r#"{"prompt": "x", "checks": []}"#).unwrap_err().contains("at least one check"));
        assert!(suite("{\"checks\": [{\"kind\": \"must_refuse\"}]}").unwrap_err().contains("`messages`"));
        assert!(
            suite(r#"{"prompt": "x", "pair": "p", "checks": [{"kind": "must_refuse"}]}"#)
                .unwrap_err()
                .contains("go together")
        );
    }

    #[test]
    fn checks_judge_answers_and_a_refused_call() {
        let schema = Check::Schema(Box::new(OutputSchema::new(&json!({"type": "object", "required": ["a"]})).unwrap()));
        assert!(schema.passes(Some("here: {\"a\": 1}")));
        assert!(!schema.passes(Some("{\"b\": 1}")));
        assert!(Check::Contains("PARCEL".into()).passes(Some("your parcel")));
        assert!(Check::MaxLength(3).passes(Some("abc")) && !Check::MaxLength(2).passes(Some("abc")));
        assert!(Check::MustRefuse.passes(None) && !Check::MustNotRefuse.passes(None));
        assert!(!Check::Contains("x".into()).passes(None));
        assert!(Check::MustRefuse.passes(Some("I'm sorry, but I can't help with that.")));
    }

    #[test]
    fn the_difference_interval_is_newcombe_s() {
        // Newcombe (1998), example (c): 56/70 vs 48/80 → difference 0.2, interval 0.0524 to 0.3339.
        let (lo, hi) = difference_interval((48, 80), (56, 70));
        assert!((lo - 0.0524).abs() < 0.001 && (hi - 0.3339).abs() < 0.001, "{lo} {hi}");
        let (lo, hi) = difference_interval((10, 10), (10, 10));
        assert!(lo < 0.0 && hi > 0.0 && lo > -0.4);
    }
}
