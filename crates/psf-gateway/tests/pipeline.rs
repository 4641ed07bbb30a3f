//! Pipeline cases as data: each `testdata/pipeline/*.toml` is a decision point fragment
//! (grown from `psf_testkit::manifest::Minimal`), what the mock upstream does, a request,
//! and what must come of it — the status, the error code, and stage decisions in the
//! audit record. A new case is a new file; this one test runs them all against the real
//! gateway.

use std::collections::BTreeMap;
use std::path::Path;

use psf_mock::{Behaviour, MockConfig};
use psf_testkit::app::{R, spawn};
use psf_testkit::manifest::Minimal;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the case shows, in a sentence.
    about: String,
    /// Keys added to the decision point `chat`.
    #[serde(default)]
    point: Option<String>,
    /// Top-level sections added to the manifest.
    #[serde(default)]
    sections: Option<String>,
    /// What the mock does for every model.
    #[serde(default)]
    mock: Behaviour,
    /// The Chat Completions body sent with the app `chat`'s key.
    request: Value,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    #[serde(default)]
    code: Option<String>,
    /// Stage code → decision, each of which the audit record must hold.
    #[serde(default)]
    stages: BTreeMap<String, String>,
}

#[tokio::test]
async fn every_pipeline_case_holds() -> R {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pipeline");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?.flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    assert!(files.len() >= 5, "the pipeline cases are in {}", dir.display());
    let mut failures = Vec::new();
    for file in &files {
        let case: Case =
            toml::from_str(&std::fs::read_to_string(file)?).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut manifest = Minimal::new();
        if let Some(p) = &case.point {
            manifest = manifest.point(p);
        }
        if let Some(s) = &case.sections {
            manifest = manifest.section(s);
        }
        let config = MockConfig { default: case.mock.clone(), ..MockConfig::default() };
        let mut app = spawn(&manifest.yaml(), config, None).await?;
        let r = app.chat("chat", case.request.clone()).await?;
        let status = r.status().as_u16();
        let id = psf_testkit::header(&r, "x-request-id");
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let mut wrong = Vec::new();
        if status != case.expect.status {
            wrong.push(format!("status {status}, not {} ({body})", case.expect.status));
        }
        let code = body.pointer("/error/code").and_then(Value::as_str).map(str::to_string);
        if code != case.expect.code {
            wrong.push(format!("code {code:?}, not {:?}", case.expect.code));
        }
        let record = app.audit(&id).await?;
        for (stage, decision) in &case.expect.stages {
            let got = psf_testkit::stage(&record, stage).and_then(|s| s["decision"].as_str().map(str::to_string));
            if got.as_deref() != Some(decision.as_str()) {
                wrong.push(format!("stage {stage} decided {got:?}, not {decision}"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{name} ({}):\n  {}", case.about, wrong.join("\n  ")));
        }
        app.shutdown().await?;
    }
    assert!(failures.is_empty(), "pipeline cases that do not hold:\n{}", failures.join("\n"));
    Ok(())
}
