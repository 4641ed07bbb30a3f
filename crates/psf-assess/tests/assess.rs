//! The assessment end to end: example manifests with and without the gateway's records
//! (a real SQLite store), contradictions between the manifest and the records, fail-closed
//! rules, and the rubric's levels at their boundaries.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly on broken fixtures")]

use psf_assess::{Assessment, Options, ParsedManifest, Runtime, Status, report};
use psf_store::{AuditRecord, Store};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 11, 23)
}

/// The end of `today` (UTC) in ms, as `psf assess --today` uses.
fn end_ms() -> i64 {
    jiff::civil::date(2026, 11, 24).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_millisecond()
}

fn example(name: &str) -> String {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn assess(file: &str, text: &str, runtime: Option<&Runtime>) -> Assessment {
    let parsed = ParsedManifest::new(file, text, today()).unwrap();
    psf_assess::assess(&parsed.input(), runtime, &Options { today: today(), window_days: 30 })
}

fn status(a: &Assessment, id: &str) -> Status {
    a.verdicts.iter().find(|v| v.id == id).unwrap().status
}

fn verdict<'a>(a: &'a Assessment, id: &str) -> &'a psf_assess::Verdict {
    a.verdicts.iter().find(|v| v.id == id).unwrap()
}

/// A delivered request through the demo's decision point, every stage recorded.
fn delivered(id: &str, ts_ms: i64, key: &str, input: &str, output: &str) -> AuditRecord {
    let stages = json!([
        {"code": "IG-4.rate_limit", "decision": "pass", "us": 1},
        {"code": "IG-2.schema", "decision": "pass", "us": 2},
        {"code": "IG-1.sanitize", "decision": "pass", "us": 3},
        {"code": "IG-1.injection", "decision": "pass", "us": 20},
        {"code": "DG-1.pii", "decision": "transform", "us": 20},
        {"code": "IG-5.system_prompt", "decision": "pass", "us": 1},
        {"code": "OV-2.length", "decision": "pass", "us": 1},
        {"code": "DG-1.pii_output", "decision": "pass", "us": 5},
        {"code": "IG-5.leak", "decision": "pass", "us": 2},
        {"code": "OV-3.content", "decision": "pass", "us": 30},
        {"code": "OV-5.state", "decision": "pass", "us": 1}
    ]);
    AuditRecord {
        request_id: id.into(),
        ts_ms,
        app: Some("demo-chat".into()),
        key_id: Some(key.into()),
        decision_point: Some("answer-customer".into()),
        status: 200,
        outcome: "delivered".into(),
        code: None,
        model: Some("primary".into()),
        provider: Some("demo-upstream".into()),
        stream: false,
        latency_ms: 52.0,
        overhead_ms: 0.2,
        prompt_tokens: Some(20),
        completion_tokens: Some(12),
        attempts: json!([{"model": "primary", "outcome": "ok"}]),
        stages,
        input_redacted: json!([{"role": "user", "content": input}]),
        output_redacted: Some(output.into()),
        subject: None,
    }
}

async fn runtime_with(records: &[AuditRecord]) -> Runtime {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.insert_audit(records).await.unwrap();
    psf_assess::runtime::gather(&store, today(), 30).await.unwrap()
}

/// Every example with a month of clean traffic through each of its decision points: the
/// runtime evidence each report shows, pinned.
#[tokio::test]
async fn example_reports_with_records() {
    for name in ["customer-support.yaml", "internal-faq.yaml", "loan-prescreening.yaml"] {
        let text = example(name);
        let parsed = ParsedManifest::new(name, &text, today()).unwrap();
        let m = parsed.manifest();
        let provider_of = |d: &psf_core::manifest::DecisionPoint| {
            m.models.iter().find(|x| x.id == d.model).map(|x| x.provider.clone())
        };
        let points: Vec<(String, bool, Option<String>)> = m
            .decision_points
            .iter()
            .map(|d| (d.id.clone(), d.autonomy == psf_core::manifest::Autonomy::Supervised, provider_of(d)))
            .collect();
        let records: Vec<AuditRecord> = (0..90)
            .map(|i| {
                let mut r = delivered(
                    &format!("req-{i}"),
                    end_ms() - (i % 15 + 1) * DAY_MS + i,
                    &format!("key-{}", i % 4),
                    "Hello",
                    "Hi",
                );
                let (point, supervised, provider) = &points[i as usize % points.len()];
                r.decision_point = Some(point.clone());
                r.provider = provider.clone();
                // Every stage an example can declare, as the gateway records it.
                if let Some(stages) = r.stages.as_array_mut() {
                    for code in ["OV-2.schema", "OV-3.scope", "OV-4.confidence", "DG-5.residency"] {
                        stages.push(json!({"code": code, "decision": "pass", "us": 1}));
                    }
                    if *supervised {
                        stages.push(json!({"code": "HO-1.review", "decision": "hold", "us": 1}));
                    }
                }
                if *supervised {
                    r.outcome = "held".into();
                    r.status = 202;
                }
                r
            })
            .collect();
        let rt = runtime_with(&records).await;
        let a = assess(&format!("examples/{name}"), &text, Some(&rt));
        assert!(a.counts.enforced > 0, "{name}: records make stages enforced");
        // Traffic as the gateway writes it for the example: no verdict may be contradicted.
        let contradicted: Vec<&str> = a.verdicts.iter().filter(|v| v.contradicted).map(|v| v.id).collect();
        assert!(contradicted.is_empty(), "{name}: {contradicted:?}");
        insta::assert_snapshot!(
            format!("markdown-{}-with-records", name.replace(['/', '.'], "-")),
            report::markdown(&a)
        );
    }
}

#[tokio::test]
async fn reading_the_store_reports_its_progress_in_order() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store.insert_audit(&clean_traffic()).await.unwrap();
    let mut seen = Vec::new();
    let mut each = 0;
    let rt =
        psf_assess::runtime::gather_with(&store, today(), 30, &mut |p| seen.push(p), &mut |_| each += 1).await.unwrap();
    let mut steps: Vec<&str> = seen.iter().map(|p| p.step).collect();
    steps.dedup();
    assert_eq!(
        steps,
        [
            "counting the audit log",
            "reading and scanning audit records",
            "reading events, incidents, reviews and passes"
        ]
    );
    let scans: Vec<_> = seen.iter().filter(|p| p.step == "reading and scanning audit records").collect();
    assert_eq!((scans[0].done, scans[0].total), (0, 120));
    assert_eq!(scans.last().map(|p| (p.done, p.total)), Some((120, 120)));
    assert!(scans.windows(2).all(|w| w[0].done <= w[1].done));
    assert_eq!((rt.records.scanned, each), (120, 120));
}

/// 120 clean requests from 3 keys over 10 days.
fn clean_traffic() -> Vec<AuditRecord> {
    (0..120)
        .map(|i| {
            delivered(
                &format!("req-{i}"),
                end_ms() - (i % 10 + 1) * DAY_MS + i,
                &format!("key-{}", i % 3),
                "Email me at [EMAIL_1] about my order",
                "I will write to [EMAIL] today.",
            )
        })
        .collect()
}

#[test]
fn example_reports_without_records() {
    for name in ["customer-support.yaml", "internal-faq.yaml", "loan-prescreening.yaml", "demo/psf.yaml"] {
        let a = assess(&format!("examples/{name}"), &example(name), None);
        assert_eq!(a.verdicts.len(), 40);
        // Without records nothing is enforced, and the rubric's production dimension is at its floor.
        assert_eq!(a.counts.enforced, 0, "{name}");
        assert_eq!(a.rubric[0].level.0, 1, "{name}");
        insta::assert_snapshot!(format!("markdown-{}", name.replace(['/', '.'], "-")), report::markdown(&a));
    }
}

/// The HTML report: one self-contained page whose first words are the summary line,
/// with every competency, the workflow diagram and the evidence appendix in it.
#[test]
fn the_html_report_is_self_contained_and_complete() {
    let text = example("loan-prescreening.yaml");
    let parsed = ParsedManifest::new("examples/loan-prescreening.yaml", &text, today()).unwrap();
    let a = psf_assess::assess(&parsed.input(), None, &Options { today: today(), window_days: 30 });
    let page = psf_assess::html::html(&a, parsed.manifest());
    insta::assert_snapshot!("html-loan-prescreening-yaml", page);
    // Nothing is fetched: no scripts, no external styles, fonts or images.
    for banned in ["<script", "src=", "<link", "@import", "url(http", "href=\"http"] {
        assert!(!page.contains(banned), "{banned}");
    }
    let body = &page[page.find("<body>").unwrap()..];
    let first_text = body.find(&a.summary_line()).unwrap();
    assert!(first_text < body.find("Executive summary").unwrap(), "the summary line comes first");
    for v in &a.verdicts {
        assert!(page.contains(&format!("id=\"{}\"", v.id)), "{} has its own section", v.id);
    }
    let evidence_rows = a.verdicts.iter().map(|v| v.evidence.len()).sum::<usize>();
    let appendix = &page[page.find("id=\"appendix\"").unwrap()..];
    assert_eq!(appendix.matches("<tr><td>").count(), evidence_rows);
    // The workflow names every decision point and model of the manifest.
    let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    for dp in &parsed.manifest().decision_points {
        assert!(svg.contains(&format!(">{}<", dp.id)), "{}", dp.id);
    }
    for m in &parsed.manifest().models {
        assert!(svg.contains(&format!(">{}<", m.id)), "{}", m.id);
    }
    // Top gaps carry the owner and a due date 90 days out for partial ones.
    assert!(page.contains("Helena") || page.contains(&a.owner), "{}", a.owner);
    assert!(a.counts.partial == 0 || page.contains("2027-02-21"), "partial gaps are due 90 days after 2026-11-23");
}

#[test]
fn text_from_the_manifest_is_escaped_in_the_html_report() {
    let text = STALE.replacen("name: ", "name: \"<img onerror=x> & co\" # ", 1);
    let parsed = ParsedManifest::new("x.yaml", &text, today()).unwrap();
    let a = psf_assess::assess(&parsed.input(), None, &Options { today: today(), window_days: 30 });
    let page = psf_assess::html::html(&a, parsed.manifest());
    assert!(!page.contains("<img"), "markup in the manifest stays text");
    assert!(page.contains("&lt;img onerror=x&gt; &amp; co"));
}

#[test]
fn the_change_since_a_previous_assessment_is_reported() {
    let earlier = assess("stale.yaml", STALE, None);
    let mut json: Value = serde_json::from_str(&report::json(&earlier)).unwrap();
    // Pretend IR-5 was met last time and IG-1 missing.
    for v in json["verdicts"].as_array_mut().unwrap() {
        match v["id"].as_str() {
            Some("IR-5") => v["status"] = json!("evidenced"),
            Some("IG-1") => v["status"] = json!("missing"),
            _ => {}
        }
    }
    json["date"] = json!("2026-10-23");
    let mut now = assess("stale.yaml", STALE, None);
    now.compare_with(&json).unwrap();
    let c = now.since_previous.as_ref().unwrap();
    assert_eq!(c.previous_date, "2026-10-23");
    let ids: Vec<&str> = c.changes.iter().map(|x| x.id).collect();
    assert_eq!(ids, ["IG-1", "IR-5"], "catalog order");
    assert!(c.changes[0].is_improvement() && !c.changes[1].is_improvement());
    let line = "Since the assessment of 2026-10-23: 1 better, 1 worse or moved: IG-1 missing → ";
    assert!(report::terminal(&now, false).contains(line), "{}", report::terminal(&now, false));
    assert!(report::markdown(&now).contains(line));
    assert!(report::json(&now).contains("\"since_previous\""));

    let mut same = assess("stale.yaml", STALE, None);
    same.compare_with(&serde_json::from_str(&report::json(&earlier)).unwrap()).unwrap();
    assert!(same.since_previous.unwrap().changes.is_empty());
    // A report of something else is refused, never silently compared.
    assert!(now.compare_with(&json!({"schema": "other"})).unwrap_err().contains("not a psf.assessment/v1"));
    json["system"] = json!("Another system");
    assert!(now.compare_with(&json).unwrap_err().contains("another system"));
}

#[tokio::test]
async fn demo_report_with_records() {
    let rt = runtime_with(&clean_traffic()).await;
    let a = assess("examples/demo/psf.yaml", &example("demo/psf.yaml"), Some(&rt));
    for id in ["IG-1", "IG-2", "IG-3", "IG-5", "DG-1", "OV-1", "OV-3", "OV-5", "OB-5", "HO-3"] {
        assert_eq!(status(&a, id), Status::Enforced, "{id}: {:?}", verdict(&a, id));
    }
    // No request named a data subject: erasure is configured but not shown to work.
    assert_eq!(status(&a, "DG-3"), Status::Partial);
    assert_eq!(a.runtime.as_ref().unwrap().requests, 120);
    insta::assert_snapshot!("markdown-demo-with-records", report::markdown(&a));
    insta::assert_json_snapshot!("json-demo-with-records", serde_json::from_str::<Value>(&report::json(&a)).unwrap());

    // SARIF: one rule per competency, one located result per competency not met.
    let sarif: Value = serde_json::from_str(&report::sarif(&a)).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["rules"].as_array().map(Vec::len), Some(40));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let c = a.counts;
    assert_eq!(results.len(), c.missing + c.partial + c.manual);
    for r in results {
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "examples/demo/psf.yaml", "{r}");
        assert!(loc["region"]["startLine"].as_u64().is_some_and(|l| l >= 1), "{r}");
    }
    let dg3 = results.iter().find(|r| r["ruleId"] == "DG-3").unwrap();
    assert_eq!(dg3["level"], "warning");
    insta::assert_json_snapshot!("sarif-demo-with-records", sarif);

    // JUnit: 40 test cases in 8 suites, failures for missing and partial.
    let junit = report::junit(&a);
    assert_eq!(junit.matches("<testcase ").count(), 40);
    assert_eq!(junit.matches("<testsuite ").count(), 8);
    assert_eq!(junit.matches("<failure ").count(), c.missing + c.partial);
    assert!(junit.contains(&format!("failures=\"{}\">", c.missing + c.partial)));
    insta::assert_snapshot!("junit-demo-with-records", junit);
}

#[tokio::test]
async fn pii_in_the_audit_log_contradicts_the_manifest() {
    let mut records = clean_traffic();
    records.push(delivered("leaky", end_ms() - DAY_MS, "key-9", "my email is jane.doe@example.com", "ok"));
    let rt = runtime_with(&records).await;
    let a = assess("examples/demo/psf.yaml", &example("demo/psf.yaml"), Some(&rt));
    let v = verdict(&a, "IG-3");
    assert_eq!(v.status, Status::Missing, "{v:?}");
    assert!(v.summary.contains("contradicting the manifest"), "{}", v.summary);
    assert!(v.contradicted && v.evidence[0].contradicts, "{v:?}");
    assert!(v.evidence[0].observation.contains("1 stored records at `answer-customer` hold EMAIL"), "{:?}", v.evidence);
    assert_eq!(v.evidence[0].records.as_ref().map(|r| r.ids.clone()), Some(vec!["leaky".to_string()]));
    // DG-1 reads the same scan: a contact value in clear where the policy tokenizes.
    assert_eq!(status(&a, "DG-1"), Status::Missing, "{:?}", verdict(&a, "DG-1"));
    assert_eq!(a.worst(), Some(psf_assess::FindingSeverity::High));
}

#[tokio::test]
async fn records_older_than_the_retention_contradict_it() {
    let mut records = clean_traffic();
    // The demo keeps audit records 30 days; one is 45 days old.
    records.push(delivered("ancient", end_ms() - 45 * DAY_MS, "key-1", "hello", "hi"));
    let rt = runtime_with(&records).await;
    let a = assess("examples/demo/psf.yaml", &example("demo/psf.yaml"), Some(&rt));
    let v = verdict(&a, "DG-2");
    assert_eq!(v.status, Status::Missing, "{v:?}");
    assert!(v.summary.contains("45 days old"), "{}", v.summary);
}

#[tokio::test]
async fn a_stage_that_could_not_run_is_never_enforced() {
    let mut records = clean_traffic();
    for r in &mut records {
        if let Some(stages) = r.stages.as_array_mut() {
            stages[3] = json!({"code": "IG-1.injection", "decision": "unavailable", "us": 0});
        }
    }
    let rt = runtime_with(&records).await;
    let a = assess("examples/demo/psf.yaml", &example("demo/psf.yaml"), Some(&rt));
    assert_eq!(status(&a, "IG-1"), Status::Partial, "{:?}", verdict(&a, "IG-1"));
}

#[tokio::test]
async fn records_outside_the_window_are_not_evidence() {
    let old: Vec<AuditRecord> = clean_traffic()
        .into_iter()
        .map(|mut r| {
            r.ts_ms -= 60 * DAY_MS;
            r
        })
        .collect();
    let rt = runtime_with(&old).await;
    assert_eq!(rt.summary.requests, 0);
    let a = assess("examples/demo/psf.yaml", &example("demo/psf.yaml"), Some(&rt));
    assert_eq!(a.counts.enforced, 0);
}

const STALE: &str = r#"
version: 1
system:
  name: Stale reviews
  owner: {name: Tess Ownby, email: tess.ownby@example.com}
decision_points:
  - {id: chat, autonomy: advisory, model: m}
models:
  - {id: m, provider: p, model: x, rationale: cheap and good enough}
providers:
  - id: p
    kind: openai
    base_url: https://api.openai.com/v1
    terms: {reviewed_on: 2024-06-01, reviewer: Tess Ownby, permits_use_case: true}
    dpa: {signed_on: 2024-06-01}
drills:
  - {date: 2024-01-10, scenario: provider outage, kind: tabletop, time_to_disable_minutes: 5}
"#;

#[test]
fn stale_evidence_never_passes() {
    let a = assess("stale.yaml", STALE, None);
    assert_eq!(status(&a, "IR-5"), Status::Missing, "{:?}", verdict(&a, "IR-5"));
    assert_eq!(status(&a, "IR-2"), Status::Missing);
    assert_eq!(status(&a, "MS-5"), Status::Missing, "{:?}", verdict(&a, "MS-5"));
    assert!(!verdict(&a, "MS-5").gaps.is_empty());
    // Ids and order are the catalog's, whatever the manifest.
    let ids: Vec<&str> = a.verdicts.iter().map(|v| v.id).collect();
    let catalog: Vec<&str> = psf_core::catalog::COMPETENCIES.iter().map(|c| c.id).collect();
    assert_eq!(ids, catalog);
}

#[test]
fn not_applicable_needs_a_reason_and_shows_it() {
    let text =
        format!("{STALE}not_applicable:\n  - {{competency: DG-4, reason: no training or retrieval data is used}}\n");
    let a = assess("na.yaml", &text, None);
    let v = verdict(&a, "DG-4");
    assert_eq!(v.status, Status::NotApplicable);
    assert!(v.summary.contains("no training or retrieval data"), "{}", v.summary);
}

#[test]
fn a_suppression_holds_until_it_expires_and_never_hides_the_gap() {
    let plain = assess("stale.yaml", STALE, None);
    assert_eq!(status(&plain, "IR-5"), Status::Missing);
    let worst = plain.worst();
    assert!(worst.is_some());

    // Suppress every gap until the day after the assessment: nothing fails, and every
    // report still names each gap, the reason and the expiry.
    let gaps: Vec<&str> = plain.verdicts.iter().filter(|v| v.status.severity().is_some()).map(|v| v.id).collect();
    let entries: String = gaps
        .iter()
        .map(|id| format!("  - {{competency: {id}, reason: drill booked for December, expires: 2026-11-24, approved_by: Ana Ruiz}}\n"))
        .collect();
    let text = format!("{STALE}suppressions:\n{entries}");
    let a = assess("suppressed.yaml", &text, None);
    assert_eq!(a.worst(), None);
    let v = verdict(&a, "IR-5");
    assert_eq!(v.status, Status::Missing, "a suppression never changes the verdict");
    assert!(v.is_suppressed());
    assert!(v.evidence.iter().any(|e| e.source.contains("/suppressions/")), "{:?}", v.evidence);
    assert!(a.summary_line().ends_with(&format!("({} gaps suppressed)", gaps.len())), "{}", a.summary_line());
    let note = "suppressed until 2026-11-24, accepted by Ana Ruiz: drill booked for December";
    assert!(report::terminal(&a, false).contains(note));
    assert!(report::markdown(&a).contains(note));
    assert!(report::json(&a).contains("\"active\": true"));
    let sarif: Value = serde_json::from_str(&report::sarif(&a)).unwrap();
    let ir5 = sarif["runs"][0]["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "IR-5").unwrap();
    assert_eq!(ir5["suppressions"][0]["kind"], "external");
    let junit = report::junit(&a);
    assert!(junit.contains("failures=\"0\"") && junit.contains(note), "{junit}");

    // The day after the expiry the gaps count again, and the reports say why.
    let parsed = ParsedManifest::new("suppressed.yaml", &text, today()).unwrap();
    let later = jiff::civil::date(2026, 11, 25);
    let expired = psf_assess::assess(&parsed.input(), None, &Options { today: later, window_days: 30 });
    assert!(expired.worst().is_some());
    assert!(!verdict(&expired, "IR-5").is_suppressed());
    assert!(report::terminal(&expired, false).contains("suppression expired on 2026-11-24"));
}

#[test]
fn a_suppression_of_an_unknown_competency_is_a_check_error() {
    let text = format!("{STALE}suppressions:\n  - {{competency: IG-9, reason: later, expires: 2027-01-01}}\n");
    let errors = ParsedManifest::new("bad.yaml", &text, today()).unwrap_err();
    assert!(errors.iter().any(|d| d.message.contains("`IG-9` is not a PSF control id")), "{errors:?}");
}

fn runtime(requests: u64, keys: u64, days: u64, points: usize) -> Runtime {
    let mut rt = Runtime::default();
    rt.summary.requests = requests;
    rt.summary.distinct_keys = keys;
    rt.summary.active_days = days;
    for i in 0..points {
        rt.summary.by_decision_point.insert(format!("p{i}"), requests);
    }
    rt
}

#[test]
fn a_change_the_gateway_saw_after_the_last_review_leaves_oversight_review_due() {
    let text = example("loan-prescreening.yaml");
    let before = assess("examples/loan-prescreening.yaml", &text, None);
    assert!(status(&before, "HO-5").is_met(), "{:?}", verdict(&before, "HO-5"));
    let mut rt = runtime(1000, 3, 20, 1);
    let why = "oversight review due: provider azure-eu now answers model credit-primary as gpt-4o-2025-06-01";
    rt.reviews_due.push((jiff::civil::date(2026, 11, 20), why.to_string()));
    let after = assess("examples/loan-prescreening.yaml", &text, Some(&rt));
    let v = verdict(&after, "HO-5");
    assert_eq!(v.status, Status::Partial, "{v:?}");
    assert!(v.summary.contains("on 2026-11-20") && v.summary.contains("gpt-4o-2025-06-01"), "{}", v.summary);
    assert!(v.evidence.iter().any(|e| e.observation == "1 reasons for a review recorded, 1 after the last review"));
    // A reason older than the last review is already answered.
    rt.reviews_due[0].0 = jiff::civil::date(2020, 1, 1);
    assert!(status(&assess("examples/loan-prescreening.yaml", &text, Some(&rt)), "HO-5").is_met());
}

#[test]
fn production_evidence_sets_sampled_quality_before_against_after() {
    let text = example("loan-prescreening.yaml");
    let mut rt = runtime(1000, 12, 30, 2);
    let figure = |d: i8, mean: f64| psf_assess::runtime::QualityFigure {
        day: jiff::civil::date(2026, 11, d),
        decision_point: "prescreen-application".into(),
        mean,
        samples: 100,
    };
    rt.quality =
        vec![figure(1, 0.96), figure(2, 0.94), figure(10, 0.9), figure(11, 0.88), figure(20, 0.82), figure(21, 0.8)];
    let a = assess("examples/loan-prescreening.yaml", &text, Some(&rt));
    let reason = &a.rubric[0].reason;
    assert!(
        reason.contains("sampled quality 0.950 (2026-11-01 to 2026-11-02) → 0.810 (2026-11-20 to 2026-11-21)"),
        "{reason}"
    );
}

#[test]
fn production_level_at_its_boundaries() {
    let text = example("loan-prescreening.yaml");
    let level = |rt: &Runtime| assess("l.yaml", &text, Some(rt)).rubric[0].level.0;
    // The loan example has alerts and quality sampling, and two decision points.
    assert_eq!(level(&runtime(0, 0, 0, 0)), 1);
    assert_eq!(level(&runtime(1, 1, 1, 1)), 2);
    assert_eq!(level(&runtime(99, 2, 7, 1)), 2);
    assert_eq!(level(&runtime(100, 2, 7, 1)), 3);
    assert_eq!(level(&runtime(100, 2, 6, 1)), 2);
    assert_eq!(level(&runtime(999, 10, 30, 2)), 3);
    // The rubric counts deployments, not decision points: one system is at most level 3,
    // however many decision points and requests it has.
    assert_eq!(level(&runtime(100_000, 50, 90, 2)), 3);
    // An internal, low-consequence tool is capped at level 2.
    let internal = text.replacen("risk_tier: high", "risk_tier: low", 1);
    assert!(internal.contains("risk_tier: low"));
    let low = |rt: &Runtime| assess("l.yaml", &internal, Some(rt)).rubric[0].level.0;
    assert_eq!(low(&runtime(100_000, 50, 90, 2)), 2);
}

#[test]
fn application_level_follows_the_domains_addressed() {
    // A bare manifest addresses few domains; the full example many more.
    let bare = assess("stale.yaml", STALE, None);
    let full = assess("l.yaml", &example("loan-prescreening.yaml"), None);
    assert!(bare.rubric[1].level <= full.rubric[1].level, "{:?} vs {:?}", bare.rubric[1], full.rubric[1]);
    assert!(bare.rubric[1].level.0 <= 2, "{:?}", bare.rubric[1]);
    assert!(bare.rubric[1].reason.contains(" of 8 domains addressed"), "{}", bare.rubric[1].reason);
    assert_eq!(bare.rubric[2].level.0, 1, "no risk register: {:?}", bare.rubric[2]);
}

#[test]
fn the_summary_line_reads_as_the_issue_asks() {
    let a = assess("l.yaml", &example("loan-prescreening.yaml"), None);
    let line = a.summary_line();
    assert!(line.starts_with("40 competencies: "), "{line}");
    let total: usize = psf_assess::Status::ALL.iter().map(|s| a.counts.get(*s)).sum();
    assert_eq!(total, 40);
    assert_eq!(report::terminal(&a, false).lines().nth(1), Some(line.as_str()));
}

#[test]
fn a_signed_attestation_verifies_and_any_change_breaks_it() {
    use psf_assess::attest;
    let text = example("loan-prescreening.yaml");
    let a = assess("examples/loan-prescreening.yaml", &text, None);
    let (private, public) = attest::generate().unwrap();
    let key = attest::SigningKey::from_text(&private).unwrap();
    let envelope = attest::sign(&a, &key);
    let verified = attest::verify(&envelope, &public).unwrap();
    assert_eq!(verified.key_id, key.key_id());
    let (name, digest) = verified.subject().unwrap();
    assert_eq!(name, "loan-prescreening.yaml", "subjects are named without the assessor's paths");
    assert_eq!(digest, a.manifest.sha256);
    assert_eq!(verified.statement["predicate"]["counts"]["missing"], a.counts.missing);

    // Another key does not verify it.
    let (_, other) = attest::generate().unwrap();
    assert!(attest::verify(&envelope, &other).is_err_and(|e| e.0.contains("no signature")));
    // A changed payload (one verdict turned green) does not verify.
    let mut env: Value = serde_json::from_str(&envelope).unwrap();
    let payload = env["payload"].as_str().unwrap().to_string();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut statement: Value = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    statement["predicate"]["verdicts"][0]["status"] = json!("enforced");
    env["payload"] = json!(b64.encode(statement.to_string()));
    assert!(attest::verify(&env.to_string(), &public).is_err());
    // Garbage is refused with a reason, not a panic.
    assert!(attest::verify("not json", &public).is_err());
    assert!(attest::verify(&envelope, "AAAA").is_err_and(|e| e.0.contains("32 bytes")));
    assert!(attest::SigningKey::from_text("bm90IGEga2V5").is_err());
}

#[test]
fn a_knowledge_check_certificate_verifies_and_a_raised_score_does_not() {
    use base64::Engine as _;
    use psf_assess::attest;
    let (private, public) = attest::generate().unwrap();
    let key = attest::SigningKey::from_text(&private).unwrap();
    let predicate = json!({"person": {"name": "Ana Silva", "email": "ana@example.com"}, "date": "2026-11-23",
                           "bank_version": "2026.11.1", "score": {"right": 16, "total": 20, "passed": true}});
    let bank = attest::digest(psf_core::exam::BANK_TEXT.as_bytes());
    let envelope = attest::certificate(&bank, &predicate, &key);
    let verified = attest::verify(&envelope, &public).unwrap();
    assert!(verified.is_certificate());
    assert_eq!(verified.subject(), Some(("psf-knowledge-check-bank", bank.as_str())));
    assert_eq!(verified.statement["predicate"]["person"]["email"], "ana@example.com");
    // A score raised after signing does not verify.
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut env: Value = serde_json::from_str(&envelope).unwrap();
    let mut statement: Value = serde_json::from_slice(&b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    statement["predicate"]["score"]["right"] = json!(20);
    env["payload"] = json!(b64.encode(statement.to_string()));
    assert!(attest::verify(&env.to_string(), &public).is_err_and(|e| e.0.contains("no signature")));
    // An assessment attestation is not a certificate.
    let a = assess("examples/demo/psf.yaml", &example("demo/psf.yaml"), None);
    assert!(!attest::verify(&attest::sign(&a, &key), &public).unwrap().is_certificate());
}

/// An OSCAL 1.2.2 schema, kept in `tests/oscal-1.2.2` (see its SOURCE.md).
fn oscal_schema(name: &str) -> Option<Value> {
    let path = format!("{}/tests/oscal-1.2.2/{name}", env!("CARGO_MANIFEST_DIR"));
    Some(serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap())
}

fn oscal_errors(schema: &Value, doc: &Value) -> Vec<String> {
    let validator = jsonschema::options().should_validate_formats(true).build(schema).unwrap();
    validator.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[tokio::test]
async fn oscal_output_is_valid_oscal_1_2_2() {
    use psf_assess::oscal;
    let rt = runtime_with(&clean_traffic()).await;
    let a = assess("examples/demo/psf.yaml", &example("demo/psf.yaml"), Some(&rt));
    let results = oscal::assessment_results(&a);
    let findings = results["assessment-results"]["results"][0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 40);
    let dg3 = findings.iter().find(|f| f["title"].as_str().is_some_and(|t| t.starts_with("DG-3"))).unwrap();
    assert_eq!(dg3["target"]["status"]["state"], "not-satisfied");
    assert_eq!(dg3["target"]["target-id"], "dg-3_smt");
    assert_eq!(oscal::assessment_results(&a), results, "the same assessment gives the same document");
    let catalog = oscal::catalog("2026-11-23T00:00:00Z");
    assert_eq!(catalog["catalog"]["groups"].as_array().map(Vec::len), Some(8));
    if let Some(schema) = oscal_schema("oscal_assessment-results_root.json") {
        let errors = oscal_errors(&schema, &results);
        assert!(errors.is_empty(), "{errors:#?}");
        let mut broken = results.clone();
        broken["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] =
            serde_json::json!("fine");
        assert!(!oscal_errors(&schema, &broken).is_empty(), "the schema check must be able to fail");
    }
    if let Some(schema) = oscal_schema("oscal_complete_schema.json") {
        let errors = oscal_errors(&schema, &catalog);
        assert!(errors.is_empty(), "{errors:#?}");
        // And it does catch a broken document.
        let mut broken = catalog.clone();
        broken["catalog"]["uuid"] = serde_json::json!("not-a-uuid");
        assert!(!oscal_errors(&schema, &broken).is_empty());
    }
}

/// The workflow package of every example (`psf export --package`): each file whole,
/// except the manifest (the input, checked to be copied byte for byte) and the schema
/// (derived from the types, checked to be the one `psf schema` prints).
#[test]
fn example_packages() {
    for name in ["customer-support.yaml", "internal-faq.yaml", "loan-prescreening.yaml", "demo/psf.yaml"] {
        let text = example(name);
        let parsed = ParsedManifest::new(name, &text, today()).unwrap();
        let file = name.rsplit('/').next().unwrap();
        let files = psf_assess::package::files(file, &text, parsed.manifest());
        assert_eq!(files[file], text.as_bytes(), "{name}: the manifest is copied as written");
        let schema: Value = serde_json::from_slice(&files["psf.schema.json"]).unwrap();
        assert_eq!(schema, psf_core::Manifest::json_schema());
        for dp in &parsed.manifest().decision_points {
            for ext in ["md", "py", "mjs", "sh"] {
                let path = if ext == "md" {
                    format!("integration/{}.md", dp.id)
                } else {
                    format!("integration/examples/{}.{ext}", dp.id)
                };
                assert!(files.contains_key(&path), "{name}: {path}");
            }
        }
        let html = String::from_utf8(files["flow.html"].clone()).unwrap();
        assert!(!html.contains("<script") && html.contains("<svg"), "{name}: flow.html is self-contained");
        let mut all = String::new();
        for (path, bytes) in files.iter().filter(|(p, _)| *p != file && *p != "psf.schema.json") {
            all.push_str(&format!("===== {path}\n{}\n", String::from_utf8_lossy(bytes)));
        }
        insta::assert_snapshot!(format!("package-{}", name.replace(['/', '.'], "-")), all);
    }
}

/// With `knowledge_check:` in the manifest, reviewers and people on call need a pass of
/// `psf exam` from the last year: current passes are evidence, a lapsed one lowers the
/// verdict.
#[test]
fn knowledge_check_passes_are_evidence_and_a_lapsed_pass_lowers_the_verdict() {
    let text = example("loan-prescreening.yaml") + "\nknowledge_check:\n  pass_mark: 0.8\n";
    let day = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
    let mut rt = runtime(1000, 3, 20, 1);
    let parsed = ParsedManifest::new("examples/loan-prescreening.yaml", &text, today()).unwrap();
    let m = parsed.manifest();
    let reviewers: Vec<String> =
        m.decision_points.iter().flat_map(|p| &p.reviewers).map(|p| p.email.to_lowercase()).collect();
    let on_call: Vec<String> =
        m.incident_plan.iter().flat_map(|p| &p.escalation).map(|e| e.contact.email.to_lowercase()).collect();
    assert!(!reviewers.is_empty() && !on_call.is_empty());
    for email in reviewers.iter().chain(&on_call) {
        rt.passes.insert(email.clone(), day("2026-06-01"));
    }
    let a = psf_assess::assess(&parsed.input(), Some(&rt), &Options { today: today(), window_days: 30 });
    let ho2 = verdict(&a, "HO-2");
    assert!(ho2.status.is_met(), "{ho2:?}");
    assert!(
        ho2.evidence
            .iter()
            .any(|e| e.kind == "exam_results"
                && e.observation.contains("hold a knowledge-check pass from the last year")),
        "{ho2:?}"
    );
    assert!(status(&a, "IR-5").is_met() || verdict(&a, "IR-5").evidence.iter().any(|e| e.kind == "exam_results"));

    // One reviewer's pass is more than a year old.
    rt.passes.insert(reviewers[0].clone(), day("2025-10-01"));
    let a = psf_assess::assess(&parsed.input(), Some(&rt), &Options { today: today(), window_days: 30 });
    let ho2 = verdict(&a, "HO-2");
    assert_eq!(ho2.status, Status::Partial, "{ho2:?}");
    assert!(
        ho2.summary.contains("last passed 2025-10-01") && ho2.gaps.iter().any(|g| g.contains("psf exam")),
        "{ho2:?}"
    );

    // Without `knowledge_check:` the exam is not asked for.
    let plain = assess("examples/loan-prescreening.yaml", &example("loan-prescreening.yaml"), Some(&rt));
    assert!(verdict(&plain, "HO-2").evidence.iter().all(|e| e.kind != "exam_results"));
}
