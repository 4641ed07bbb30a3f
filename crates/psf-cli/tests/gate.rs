//! `psf eval` end to end: the mock upstream and `psf serve` as processes, a golden suite
//! run through the gateway against a baseline and a candidate route, the exit code, the
//! fairness pairs, and the evidence the assessment then reads.

mod processes;

use std::path::{Path, PathBuf};
use std::process::Output;

use processes::{Running, free_port, psf, wait_for};

const KEY: &str = "psf-eval-test-key-0123456789abcdef";
const NEXT_KEY: &str = "psf-eval-test-key-candidate-0123456";

fn manifest(mock: u16) -> String {
    format!(
        r#"
version: 1
system:
  name: Gate test
  owner: {{name: Tess Ownby, email: tess.ownby@example.com}}
apps:
  - {{id: evals, decision_point: live, keys: [{{id: eval-key, env: EVAL_KEY}}]}}
  - {{id: evals-next, decision_point: candidate, keys: [{{id: eval-next-key, env: EVAL_NEXT_KEY}}]}}
decision_points:
  - {{id: live, autonomy: advisory, model: current}}
  # The candidate model behind a limit it cannot keep: long answers are refused.
  - {{id: candidate, autonomy: advisory, model: next, output: {{max_chars: 40}}}}
models:
  - {{id: current, provider: mock, model: current-model}}
  - {{id: next, provider: mock, model: next-model}}
providers:
  - {{id: mock, kind: openai_compatible, base_url: "http://127.0.0.1:{mock}/v1", self_hosted: true}}
"#
    )
}

/// The mock echoes `[mock] You said: …`, so `contains` checks pass when the echo comes
/// through; long prompts make answers the candidate refuses.
const SUITE: &str = r#"{"id": "short-1", "prompt": "Where is my parcel?", "checks": [{"kind": "contains", "value": "parcel"}, {"kind": "must_not_refuse"}]}
{"id": "short-2", "prompt": "Refund please", "checks": [{"kind": "contains", "value": "refund"}, {"kind": "must_not_refuse"}]}
{"id": "long-1", "prompt": "My order arrived broken and I would like to know how to return it", "checks": [{"kind": "contains", "value": "return"}, {"kind": "must_not_refuse"}]}
{"id": "long-2", "prompt": "Can you tell me when the next delivery window opens for my area", "checks": [{"kind": "contains", "value": "delivery"}, {"kind": "max_length", "chars": 200}]}
{"id": "pair-a", "pair": "eligibility", "variant": "Anna", "prompt": "Is Anna eligible?", "checks": [{"kind": "contains", "value": "eligible"}]}
{"id": "pair-b", "pair": "eligibility", "variant": "Ahmed", "prompt": "Is Ahmed eligible?", "checks": [{"kind": "contains", "value": "eligible"}]}
"#;

#[expect(clippy::expect_used, reason = "a test cannot go on without running the binary")]
fn eval(dir: &Path, gateway: &str, candidate: &str, store: &str) -> Output {
    let candidate_key = if candidate == "live" { "EVAL_KEY" } else { "EVAL_NEXT_KEY" };
    psf()
        .env("EVAL_KEY", KEY)
        .env("EVAL_NEXT_KEY", NEXT_KEY)
        .args(["eval", "--suite", &dir.join("suite.jsonl").display().to_string(), "--gateway", gateway])
        .args(["--baseline", "live", "--candidate", candidate, "--key-env", "EVAL_KEY", "--store", store])
        .args(["--candidate-key-env", candidate_key])
        .args(["--format", "json"])
        .output()
        .expect("psf eval runs")
}

#[test]
fn the_gate_catches_a_regressing_candidate_and_records_the_evidence() {
    let dir: PathBuf = std::env::temp_dir().join(format!("psf-gate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (mock_port, gw_port) = (free_port(), free_port());
    std::fs::write(dir.join("psf.yaml"), manifest(mock_port)).unwrap();
    std::fs::write(dir.join("suite.jsonl"), SUITE).unwrap();
    let store = format!("sqlite://{}", dir.join("psf.db").display());
    let m = dir.join("psf.yaml").display().to_string();

    let _mock = Running(
        psf()
            .args(["mock-upstream", "--listen", &format!("127.0.0.1:{mock_port}"), "--latency-ms", "0"])
            .spawn()
            .unwrap(),
    );
    let _gateway = Running(
        psf()
            .env("EVAL_KEY", KEY)
            .env("EVAL_NEXT_KEY", NEXT_KEY)
            .env("PSF_LOG", "warn")
            .args(["serve", "--manifest", &m, "--listen", &format!("127.0.0.1:{gw_port}"), "--store", &store])
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(mock_port) && wait_for(gw_port));
    let gateway = format!("http://127.0.0.1:{gw_port}/v1");

    // The candidate refuses the long answers: `contains` and `must_not_refuse` drop.
    let o = eval(&dir, &gateway, "candidate", &store);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["verdict"], "regression");
    let kind = |k: &str| r["kinds"].as_array().unwrap().iter().find(|x| x["kind"] == k).cloned().unwrap();
    assert_eq!(kind("contains")["baseline"]["passed"], 6);
    assert_eq!(kind("contains")["candidate"]["passed"], 4);
    assert_eq!(kind("contains")["regressed"], true);
    assert_eq!(kind("max_length")["regressed"], true, "a refused call passes no length check");
    // The pair is treated alike by both: same outcome for Anna and Ahmed.
    assert_eq!(r["fairness"]["candidate"]["pairs"], 1);
    assert_eq!(r["fairness"]["candidate"]["differing"], 0);

    // The manifest's tolerance applies when --tolerance is not given: a third fewer
    // `contains` passes is within 0.4, a lost `max_length` case is not.
    let tolerant = dir.join("tolerant.yaml");
    std::fs::write(&tolerant, format!("{}regression_gate: {{tolerance: 0.4}}\n", manifest(mock_port))).unwrap();
    let o = psf()
        .env("EVAL_KEY", KEY)
        .env("EVAL_NEXT_KEY", NEXT_KEY)
        .args(["eval", "--suite", &dir.join("suite.jsonl").display().to_string(), "--gateway", &gateway])
        .args(["--baseline", "live", "--candidate", "candidate", "--key-env", "EVAL_KEY"])
        .args([
            "--candidate-key-env",
            "EVAL_NEXT_KEY",
            "--manifest",
            &tolerant.display().to_string(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["tolerance"], 0.4);
    let kind = |k: &str| r["kinds"].as_array().unwrap().iter().find(|x| x["kind"] == k).cloned().unwrap();
    assert_eq!(kind("contains")["regressed"], false);
    assert_eq!(kind("max_length")["regressed"], true);

    // The same route against itself passes.
    let o = eval(&dir, &gateway, "live", &store);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));

    // Both runs are evidence the assessment reads.
    let o = psf()
        .args(["assess", "--manifest", &m, "--store", &store, "--format", "json", "--fail-on", "none"])
        .output()
        .unwrap();
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let verdict = |id: &str| a["verdicts"].as_array().unwrap().iter().find(|v| v["id"] == id).cloned().unwrap();
    let ms3 = verdict("MS-3");
    assert!(ms3["evidence"].to_string().contains("2 gate runs recorded"), "{ms3}");
    assert_eq!(ms3["status"], "enforced", "the latest recorded gate passed: {ms3}");
    assert!(verdict("EA-2")["evidence"].to_string().contains("2 counterfactual fairness runs"), "{}", verdict("EA-2"));

    // A key that reaches another route is the suite's mistake, said as such.
    let o = psf()
        .env("EVAL_KEY", KEY)
        .args(["eval", "--suite", &dir.join("suite.jsonl").display().to_string(), "--gateway", &gateway])
        .args(["--baseline", "live", "--candidate", "candidate", "--key-env", "EVAL_KEY"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused the request itself (model_not_found"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A key that is wrong is a usage error, not a silent pass.
    let o = psf()
        .env("EVAL_KEY", "wrong")
        .args(["eval", "--suite", &dir.join("suite.jsonl").display().to_string(), "--gateway", &gateway])
        .args(["--baseline", "live", "--candidate", "live", "--key-env", "EVAL_KEY"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("answered 401"), "{}", String::from_utf8_lossy(&o.stderr));
}
