//! The contradiction corpus: one folder per seeded deployment under `tests/scenarios/`.
//!
//! Each folder holds `seed.json` — the manifest (a file of its own, or the demo's with
//! text replacements), the store's rows as the gateway writes them (clean traffic from a
//! template of the demo gateway's stages, and records, events, incidents and reviews as a
//! faulty or older gateway would have left them) — and `expect.json`, the verdicts the
//! deployment must get. A clean deployment (`"clean": true`) must get no contradiction
//! and no unmet runtime verdict. A new case is a new folder; nothing here changes.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::path::{Path, PathBuf};

use psf_assess::{Options, ParsedManifest, Status};
use psf_store::{AuditRecord, Store};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 11, 23)
}

/// Noon (UTC) `days` days before `today`.
fn days_ago(days: f64) -> i64 {
    let noon = today().to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_millisecond() + DAY_MS / 2;
    noon - (days * DAY_MS as f64) as i64
}

/// The competencies whose verdict the gateway's records can contradict. (OB-1, OB-3,
/// OB-4, OB-5 and EA-4 read records as evidence only: no record shows them not done.)
const RUNTIME: [&str; 22] = [
    "IG-1", "IG-2", "IG-3", "IG-4", "IG-5", "OV-1", "OV-2", "OV-3", "OV-4", "OV-5", "DG-1", "DG-2", "DG-3", "DG-5",
    "MS-3", "MS-4", "HO-1", "HO-2", "HO-5", "OB-2", "IR-2", "IR-3",
];

/// The stages the demo gateway records on a delivered answer, in its order (taken from a
/// live `psf demo` run).
const DELIVERED: [&str; 12] = [
    "IR-2.kill_switch",
    "IG-4.rate_limit",
    "IG-2.schema",
    "IG-1.sanitize",
    "IG-1.injection",
    "DG-1.pii",
    "IG-5.system_prompt",
    "OV-2.length",
    "OV-5.state",
    "OV-3.content",
    "DG-1.pii_output",
    "IG-5.leak",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// A record from the template, with `spec`'s changes: `stages` sets a stage's decision
/// (adding it where missing), `drop` removes stages, and plain fields replace the
/// record's.
fn record(id: &str, spec: &Value, default_point: &str) -> AuditRecord {
    let outcome = spec["outcome"].as_str().unwrap_or("delivered");
    let mut stages: Vec<Value> = if outcome == "delivered" {
        DELIVERED.iter().map(|c| json!({"code": c, "decision": "pass", "us": 3})).collect()
    } else {
        Vec::new()
    };
    if let Some(set) = spec["stages"].as_object() {
        for (code, decision) in set {
            let (decision, detail) = match decision {
                Value::Array(a) => (a[0].clone(), a.get(1).cloned()),
                d => (d.clone(), None),
            };
            let mut st = json!({"code": code, "decision": decision, "us": 3});
            if let Some(d) = detail {
                st["detail"] = d;
            }
            match stages.iter_mut().find(|s| s["code"] == code.as_str()) {
                Some(s) => *s = st,
                None => stages.push(st),
            }
        }
    }
    if let Some(drop) = spec["drop"].as_array() {
        stages.retain(|s| !drop.contains(&s["code"]));
    }
    let text = |k: &str, d: &str| spec[k].as_str().unwrap_or(d).to_string();
    AuditRecord {
        request_id: id.into(),
        ts_ms: spec["minute_ms"].as_i64().unwrap_or_else(|| days_ago(spec["days_ago"].as_f64().unwrap_or(3.0))),
        app: Some(text("app", "demo-chat")),
        key_id: Some(text("key", "key_a")),
        decision_point: Some(text("point", default_point)),
        status: spec["status"].as_u64().map_or(if outcome == "delivered" { 200 } else { 403 }, |s| s as u16),
        outcome: outcome.into(),
        code: spec["code"].as_str().map(String::from),
        model: Some("primary".into()),
        provider: (outcome == "delivered").then(|| text("provider", "demo-upstream")),
        stream: spec["stream"].as_bool().unwrap_or(false),
        latency_ms: 40.0,
        overhead_ms: 0.4,
        prompt_tokens: Some(12),
        completion_tokens: Some(9),
        attempts: json!([{"model": "primary", "outcome": "ok"}]),
        stages: Value::Array(stages),
        input_redacted: json!([{"role": "user", "content": text("input", "When does my parcel arrive?")}]),
        output_redacted: (outcome == "delivered").then(|| text("output", "It ships tomorrow.")),
        subject: spec["subject"].as_str().map(String::from),
    }
}

async fn seed(store: &Store, seed: &Value, default_point: &str) {
    let mut records = Vec::new();
    if let Some(t) = seed.get("traffic") {
        let keys = t["keys"].as_u64().unwrap_or(3);
        for i in 0..t["count"].as_u64().unwrap_or(60) {
            let mut spec = t.get("record").cloned().unwrap_or_else(|| json!({}));
            spec["days_ago"] = json!((i % 20) as f64 + 0.001 * i as f64);
            spec["key"] = json!(format!("key_{}", i % keys));
            records.push(record(&format!("clean-{i}"), &spec, default_point));
        }
    }
    for (i, spec) in seed["records"].as_array().into_iter().flatten().enumerate() {
        let n = spec["repeat"].as_u64().unwrap_or(1);
        for k in 0..n {
            let id = format!("{}-{k}", spec["id"].as_str().unwrap_or(&format!("r{i}")));
            let mut spec = spec.clone();
            if let Some(m) = spec["minute_ms"].as_i64() {
                spec["minute_ms"] = json!(m + k as i64 * 100);
            }
            records.push(record(&id, &spec, default_point));
        }
    }
    records.sort_by_key(|r| r.ts_ms);
    store.insert_audit(&records).await.unwrap();
    for e in seed["events"].as_array().into_iter().flatten() {
        store
            .insert_event(&psf_store::Event {
                ts_ms: days_ago(e["days_ago"].as_f64().unwrap_or(1.0)),
                kind: e["kind"].as_str().unwrap().into(),
                severity: "info".into(),
                app: None,
                key_id: None,
                summary: e["summary"].as_str().unwrap_or("").into(),
                detail: e["detail"].clone(),
            })
            .await
            .unwrap();
    }
    for i in seed["incidents"].as_array().into_iter().flatten() {
        let new = psf_store::NewIncident {
            declared_by: "dana.okafor@example.com".into(),
            action: i["action"].as_str().unwrap_or("disable").into(),
            scope: "all".into(),
            severity: "sev2".into(),
            reason: "seeded".into(),
            drill: i["drill"].as_bool().unwrap_or(false),
        };
        let inc = store.declare_incident(&new, days_ago(i["days_ago"].as_f64().unwrap_or(1.0))).await.unwrap();
        if let Some(review) = i.get("review") {
            store.set_incident_review(&inc.id, review).await.unwrap();
        }
    }
    for r in seed["reviews"].as_array().into_iter().flatten() {
        let created = days_ago(r["days_ago"].as_f64().unwrap_or(1.0));
        let mut review = psf_store::Review::pending(
            r["id"].as_str().unwrap(),
            r["request_id"].as_str().unwrap_or("held-0"),
            created,
            default_point,
            "held answer",
        );
        review.deadline_ms = Some(created + (r["deadline_hours"].as_f64().unwrap_or(4.0) * 3_600_000.0) as i64);
        store.insert_review(&review).await.unwrap();
    }
}

fn manifest(dir: &Path, seed: &Value) -> String {
    if dir.join("psf.yaml").is_file() {
        return std::fs::read_to_string(dir.join("psf.yaml")).unwrap();
    }
    let base = seed["manifest"].as_str().unwrap_or("examples/demo/psf.yaml");
    let mut text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(base)).unwrap();
    for pair in seed["replace"].as_array().into_iter().flatten() {
        let (from, to) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        assert!(text.contains(from), "{}: `{from}` is not in {base}", dir.display());
        text = text.replacen(from, to, 1);
    }
    text
}

#[tokio::test]
async fn every_seeded_deployment_gets_the_verdicts_its_records_call_for() {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(root()).unwrap().filter_map(|e| Some(e.ok()?.path())).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "the corpus has {} deployments", dirs.len());
    let mut failures = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    let mut clean = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let read = |f: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{name}/{f}: {e}")))
                .unwrap_or_else(|e| panic!("{name}/{f}: {e}"))
        };
        let (seed_spec, expect) = (read("seed.json"), read("expect.json"));
        let text = manifest(dir, &seed_spec);
        let parsed = ParsedManifest::with_errors(&format!("{name}/psf.yaml"), &text, today())
            .unwrap_or_else(|d| panic!("{name}: {d:?}"));
        let point = parsed.manifest().decision_points[0].id.clone();
        let store = Store::open("sqlite::memory:").await.unwrap();
        seed(&store, &seed_spec, &point).await;
        let rt = psf_assess::runtime::gather(&store, today(), 30).await.unwrap();
        let a = psf_assess::assess(&parsed.input(), Some(&rt), &Options { today: today(), window_days: 30 });
        let status = |id: &str| a.verdicts.iter().find(|v| v.id == id).unwrap();
        for (id, want) in expect["verdicts"].as_object().into_iter().flatten() {
            let v = status(id);
            let got = serde_json::to_value(v.status).unwrap();
            if &got != want {
                failures.push(format!("{name}: {id} is {got}, expected {want}: {}", v.summary));
            }
            if !v.status.is_met() && v.status != Status::Manual {
                covered.insert(id.clone());
            }
        }
        for id in expect["contradicted"].as_array().into_iter().flatten() {
            let v = status(id.as_str().unwrap());
            if !v.contradicted || !v.evidence.first().is_some_and(|e| e.contradicts) {
                failures
                    .push(format!("{name}: {id} should cite contradicting records first: {:?}", v.evidence.first()));
            }
        }
        if expect["clean"] == true {
            clean += 1;
            // What the manifest alone leaves unmet (no drill written down, say) is listed;
            // no record may contradict anything.
            let allowed: Vec<&str> =
                expect["unmet_by_manifest"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            for v in &a.verdicts {
                let unmet = RUNTIME.contains(&v.id) && !v.status.is_met() && !allowed.contains(&v.id);
                if v.contradicted || unmet {
                    failures.push(format!("{name} is clean, but {} is {}: {}", v.id, v.status.as_str(), v.summary));
                }
            }
        }
        store.close().await;
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(clean >= 2, "at least two clean deployments");
    let uncovered: Vec<&&str> = RUNTIME.iter().filter(|c| !covered.contains(**c)).collect();
    assert!(uncovered.is_empty(), "runtime competencies no scenario turns unmet: {uncovered:?}");
}

/// No verdict, rubric line or report says a psf feature is still to come: every such
/// text is derived from what psf has, and a stale one is a false statement in a signed
/// report. Read from the source of every rule and template, and from the reports of
/// every example.
#[test]
fn no_verdict_or_report_calls_a_feature_planned() {
    let stale = ["planned", "not yet", "has not landed", "not landed", "once it lands", "yet to come", "coming soon"];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
        for (n, line) in text.lines().enumerate() {
            if let Some(word) = stale.iter().find(|w| line.contains(**w)) {
                found.push(format!("{}:{}: `{word}`", path.display(), n + 1));
            }
        }
    }
    for name in ["customer-support.yaml", "internal-faq.yaml", "loan-prescreening.yaml", "demo/psf.yaml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
        let text = std::fs::read_to_string(path).unwrap();
        let parsed = ParsedManifest::with_errors(name, &text, today()).unwrap();
        let a = psf_assess::assess(&parsed.input(), None, &Options { today: today(), window_days: 30 });
        let report = psf_assess::report::markdown(&a).to_lowercase();
        for word in stale.iter().filter(|w| report.contains(**w)) {
            found.push(format!("the report of {name}: `{word}`"));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A manifest that fails `psf check` is still assessed: what its errors bear on is not
/// met, citing each error's code and line, and the rest is decided as usual.
#[test]
fn a_failing_manifest_still_gets_a_report() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/psf.yaml");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replacen("name: Dana Okafor", "name: Customer Operations Team", 1)
        .replacen("audit_log_days: 30", "audit_log_days: 14", 1);
    assert!(ParsedManifest::new("bad.yaml", &text, today()).is_err(), "`psf check` refuses it");
    let parsed = ParsedManifest::with_errors("bad.yaml", &text, today()).unwrap();
    let codes: Vec<&str> = parsed.errors().iter().map(|d| d.code.as_str()).collect();
    assert!(codes.contains(&"E211") && codes.contains(&"E212"), "{codes:?}");
    let a = psf_assess::assess(&parsed.input(), None, &Options { today: today(), window_days: 30 });
    let v = |id: &str| a.verdicts.iter().find(|v| v.id == id).unwrap();
    for (id, code) in [("EA-1", "E211"), ("OB-5", "E212"), ("DG-2", "E212")] {
        assert_eq!(v(id).status, Status::Missing, "{id}: {:?}", v(id));
        assert!(v(id).summary.contains(&format!("error[{code}] at line ")), "{id}: {}", v(id).summary);
        assert!(v(id).evidence[0].contradicts && v(id).evidence[0].source.starts_with("bad.yaml:"));
    }
    assert!(v("IG-1").status.is_met(), "the rest is decided as usual");
    assert_eq!(a.verdicts.len(), 40);
}

/// Manifest-only rules check substance: a rationale that names nothing of the use case or
/// its evidence is no rationale (MS-1), and benchmarks dated after the system went into
/// service were not reviewed before deployment (MS-2).
#[test]
fn manifest_only_verdicts_check_substance_not_presence() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loan-prescreening.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let decide = |text: &str, id: &str| {
        let parsed = ParsedManifest::with_errors("l.yaml", text, today()).unwrap();
        let a = psf_assess::assess(&parsed.input(), None, &Options { today: today(), window_days: 30 });
        a.verdicts.iter().find(|v| v.id == id).unwrap().status
    };
    assert!(decide(&text, "MS-1").is_met() && decide(&text, "MS-2").is_met());
    let rationale = text.lines().find(|l| l.trim_start().starts_with("rationale: Highest agreement")).unwrap();
    let thin = text.replacen(rationale, "    rationale: It is the best model.", 1);
    assert!(!decide(&thin, "MS-1").is_met(), "a rationale that says nothing");
    let late = text.replacen("in_service_since: 2026-03-02", "in_service_since: 2025-12-01", 1);
    assert_ne!(late, text);
    assert!(!decide(&late, "MS-2").is_met(), "benchmarks dated after going into service");
}
