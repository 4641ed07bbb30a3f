//! Content categories and topic scope (OV-3) end to end: the real server, the mock
//! upstream saying what each test needs, and the audit record of every decision.

use psf_mock::MockConfig;
use psf_testkit::app::{R, TestApp};
use psf_testkit::{header, sse, user};
use serde_json::{Value, json};

const MANIFEST: &str = r#"
version: 1
system:
  name: Content test
  owner: {name: Tess Ownby, email: tess.ownby@example.com}
apps:
  - {id: strict, decision_point: strict, keys: [{id: strict-key, env: STRICT_KEY}]}
  - {id: lenient, decision_point: lenient, keys: [{id: lenient-key, env: LENIENT_KEY}]}
decision_points:
  - id: strict
    autonomy: autonomous
    model: good
    output:
      topics: {deny: [medical advice], action: block}
  - id: lenient
    autonomy: autonomous
    model: good
    output:
      content: {categories: [sexual, violence], action: flag}
      topics: {allow: [parcel, delivery, order]}
models:
  - {id: good, provider: mock, model: good-model}
providers:
  - {id: mock, kind: openai_compatible, base_url: "${MOCK}", self_hosted: true}
"#;

/// Scores above 0.9 for sexual content with the shipped model (`psf scan` shows it).
const EXPLICIT: &str =
    "She undressed slowly and they had hot, explicit sex on the bed, moaning as he touched her naked body.";
const BENIGN: &str = "Your parcel left our depot this morning and the delivery should reach you by Thursday.";

use psf_testkit::stage;

async fn replying(text: &str) -> Result<TestApp, Box<dyn std::error::Error>> {
    let mut config = MockConfig::default();
    config.default.reply = Some(text.to_owned());
    config.default.token_delay_ms = 1;
    psf_testkit::app::spawn(MANIFEST, config, None).await
}

fn ask(model: &str, stream: bool) -> Value {
    let mut body = user("Where is my parcel?");
    body["model"] = json!(model);
    body["stream"] = json!(stream);
    body
}

#[tokio::test]
async fn harmful_output_is_withheld_by_default_and_its_record_names_only_the_category() -> R {
    let mut app = replying(EXPLICIT).await?;
    let r = app.chat("strict", ask("strict", false)).await?;
    assert_eq!(r.status(), 422);
    let id = header(&r, "x-request-id");
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "OV-3.content", "{body}");
    assert!(!body.to_string().contains("naked"), "the refusal never carries the answer: {body}");
    assert_eq!(app.mock.requests().len(), 1, "the model was asked; its answer was withheld");
    let record = app.audit(&id).await?;
    let decided = stage(&record, "OV-3.content").ok_or("no OV-3.content stage")?;
    assert_eq!(decided["decision"], "block");
    assert!(decided["detail"].as_str().unwrap_or_default().starts_with("sexual (score"), "{decided}");
    assert!(!serde_json::to_string(&record.stages)?.contains("naked"));

    // Streamed, the stream ends with an error event and the explicit words never arrive.
    let events = sse(app.chat("strict", ask("strict", true)).await?).await?;
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(last["error"]["code"], "OV-3.content", "{last}");
    let delivered: String = events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(!delivered.contains("sex"), "{delivered}");
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn ordinary_output_passes_both_checks_streamed_or_whole() -> R {
    let mut app = replying(BENIGN).await?;
    for stream in [false, true] {
        let r = app.chat("lenient", ask("lenient", stream)).await?;
        assert_eq!(r.status(), 200);
        let id = header(&r, "x-request-id");
        let text = r.text().await?;
        assert!(text.contains("Thursday"), "{text}");
        let record = app.audit(&id).await?;
        assert_eq!(stage(&record, "OV-3.content").ok_or("no OV-3.content")?["decision"], "pass");
        assert_eq!(stage(&record, "OV-3.scope").ok_or("no OV-3.scope")?["decision"], "pass");
    }
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_flag_policy_delivers_and_records_the_hit() -> R {
    let mut app = replying(EXPLICIT).await?;
    let r = app.chat("lenient", ask("lenient", false)).await?;
    assert_eq!(r.status(), 200);
    let id = header(&r, "x-request-id");
    let record = app.audit(&id).await?;
    assert_eq!(stage(&record, "OV-3.content").ok_or("no OV-3.content")?["decision"], "flag");
    // Long enough to judge, and about none of the allowed topics: flagged out of scope.
    assert_eq!(stage(&record, "OV-3.scope").ok_or("no OV-3.scope")?["decision"], "flag");
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_denied_topic_is_refused_and_other_answers_pass() -> R {
    let mut app = replying("I cannot give medical advice, but rest and water usually help with a cold.").await?;
    let r = app.chat("strict", ask("strict", false)).await?;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "OV-3.scope", "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("medical advice"));

    let mut config = MockConfig::default();
    config.default.reply = Some(BENIGN.into());
    app.mock.configure(config);
    let r = app.chat("strict", ask("strict", true)).await?;
    assert_eq!(r.status(), 200);
    let text = r.text().await?;
    assert!(text.contains("Thursday") && text.ends_with("data: [DONE]\n\n"), "{text}");
    app.shutdown().await?;
    Ok(())
}
