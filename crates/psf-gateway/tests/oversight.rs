//! Human oversight, the kill switch and data residency against the real server: answers
//! held for review, decided by a named reviewer and collected by the client; incidents
//! that refuse, degrade or isolate, on every gateway sharing the store, within a second;
//! personal data sent only to providers in the regions its class allows.

use std::time::{Duration, Instant};

use psf_mock::{Behaviour, MockConfig};
use psf_testkit::app::{R, TestApp, fresh_store_url, key_for};
use psf_testkit::{header, sse, user};
use serde_json::{Value, json};

const MANIFEST: &str = r#"
version: 1
system:
  name: Oversight test
  owner: {name: Tess Ownby, email: tess.ownby@example.com}
apps:
  - {id: loans, decision_point: prescreen, keys: [{id: loans-key, env: LOANS_KEY}]}
  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}]}
  - {id: careful, decision_point: careful, keys: [{id: careful-key, env: CAREFUL_KEY}]}
decision_points:
  - id: prescreen
    autonomy: supervised
    model: good
    reviewers: [{name: Rita Reviewer, email: rita@example.com}]
    review_deadline_minutes: 30
    input:
      pii: {contact: tokenize}
  - id: chat
    autonomy: autonomous
    model: good
    degraded_response: We are looking into a problem; please try again later.
  - id: careful
    autonomy: advisory
    model: doubtful
    reviewers: [{name: Rita Reviewer, email: rita@example.com}]
    output:
      confidence: {min_mean_logprob: -1.0, action: escalate}
    input:
      pii: {contact: tokenize}
models:
  - {id: good, provider: mock, model: good-model, fallback: backup}
  - {id: backup, provider: mock2, model: good-model}
  - {id: doubtful, provider: mock, model: doubtful-model}
providers:
  - {id: mock, kind: openai_compatible, base_url: "${MOCK}", self_hosted: true}
  - {id: mock2, kind: openai_compatible, base_url: "${MOCK}", self_hosted: true}
gateway:
  retries: 0
  admin_keys: [{id: console, env: ADMIN_KEY}]
"#;

async fn spawn(config: MockConfig) -> Result<TestApp, Box<dyn std::error::Error>> {
    psf_testkit::app::spawn(MANIFEST, config, None).await
}

fn ask(route: &str, text: &str) -> Value {
    json!({"model": route, "messages": [{"role": "user", "content": text}]})
}

/// Sends `ask` to `app` until its status is `want`, for at most `within`; the time taken.
async fn until_status(app: &TestApp, who: &str, body: &Value, want: u16, within: Duration) -> Result<Duration, String> {
    let t = Instant::now();
    while t.elapsed() < within {
        match app.chat(who, body.clone()).await {
            Ok(r) if r.status() == want => return Ok(t.elapsed()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("no {want} within {within:?}"))
}

#[tokio::test]
async fn a_supervised_answer_is_held_approved_by_a_named_reviewer_and_delivered() -> R {
    let mut app = spawn(MockConfig::default()).await?;
    let r = app.chat("loans", ask("prescreen", "Applicant mail: jo.bloggs@example.org, income 40k")).await?;
    assert_eq!(r.status(), 202);
    let request_id = header(&r, "x-request-id");
    let location = header(&r, "location");
    let held: Value = r.json().await?;
    assert_eq!(held["status"], "pending");
    assert_eq!(held["status_url"], location);
    let review_id = held["id"].as_str().ok_or("no review id")?.to_string();

    // The client sees it pending; the reviewer sees input and output with placeholders only.
    assert_eq!(app.collect("loans", &location).await?["status"], "pending");
    let list: Value = app.admin_get("/v1/psf/admin/reviews?status=pending").await?.json().await?;
    let item = &list["data"][0];
    assert_eq!(item["id"], review_id.as_str());
    assert!(!item.to_string().contains("jo.bloggs@example.org"), "{item}");
    assert!(item["output"].as_str().is_some_and(|o| o.contains("[EMAIL_1]")), "{item}");
    assert!(item["findings"].as_array().is_some_and(|f| !f.is_empty()));
    // Another app cannot see it.
    let r = app.http.get(format!("{}{location}", app.base())).bearer_auth(key_for("chat")).send().await?;
    assert_eq!(r.status(), 404);
    // The admin API needs an admin key.
    let r = app.http.get(format!("{}/v1/psf/admin/reviews", app.base())).bearer_auth(key_for("loans")).send().await?;
    assert_eq!(r.status(), 401);

    // Only a named reviewer decides, once.
    let path = format!("/v1/psf/admin/reviews/{review_id}/decision");
    let r = app.admin_post(&path, json!({"decision": "approve", "reviewer": "mallory@example.com"})).await?;
    assert_eq!(r.status(), 400);
    assert!(r.text().await?.contains("rita@example.com"));
    let r =
        app.admin_post(&path, json!({"decision": "approve", "reviewer": "rita@example.com", "note": "fine"})).await?;
    assert_eq!(r.status(), 200);
    let r = app.admin_post(&path, json!({"decision": "reject", "reviewer": "rita@example.com", "note": "no"})).await?;
    assert_eq!(r.status(), 409);

    // Delivered with the caller's own value restored.
    let done = app.collect("loans", &location).await?;
    assert_eq!(done["status"], "approved");
    let content = done["completion"]["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(content.contains("jo.bloggs@example.org"), "{done}");
    assert_eq!(done["psf_values_restored"], true);
    // Once delivered, the caller's values are not kept: a later collect says so.
    assert!(app.store.open_held_values(&review_id).await?.is_none(), "the sealed values are deleted");
    let again = app.collect("loans", &location).await?;
    assert_eq!(again["psf_values_restored"], false);

    // Audited: the request as held (PII redacted), the decision with the reviewer.
    let record = app.audit(&request_id).await?;
    assert_eq!((record.status, record.outcome.as_str(), record.code.as_deref()), (202, "held", Some("HO-1.held")));
    assert!(!record.output_redacted.unwrap_or_default().contains("jo.bloggs"));
    let decisions = app.events("HO-2.review").await?;
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].detail["reviewer"], "rita@example.com");
    assert_eq!(decisions[0].detail["decision"], "approved");
    let review = app.store.review(&review_id).await?.ok_or("no review")?;
    assert!(review.delivered_ms.is_some());
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_rejected_answer_never_reaches_the_client_and_an_edit_is_delivered_as_edited() -> R {
    let mut config = MockConfig::default();
    config.default.reply = Some("Decline: the applicant is unsuitable.".into());
    let mut app = spawn(config).await?;
    let first: Value = app.chat("loans", ask("prescreen", "applicant 1")).await?.json().await?;
    let second: Value = app.chat("loans", ask("prescreen", "applicant 2")).await?.json().await?;
    let (id1, id2) = (first["id"].as_str().unwrap_or_default(), second["id"].as_str().unwrap_or_default());

    let reject = json!({"decision": "reject", "reviewer": "Rita Reviewer"});
    let r = app.admin_post(&format!("/v1/psf/admin/reviews/{id1}/decision"), reject.clone()).await?;
    assert_eq!(r.status(), 400, "a rejection needs a reason");
    let mut reject = reject;
    reject["note"] = json!("declines need an underwriter");
    assert_eq!(app.admin_post(&format!("/v1/psf/admin/reviews/{id1}/decision"), reject).await?.status(), 200);
    let done = app.collect("loans", first["status_url"].as_str().unwrap_or_default()).await?;
    assert_eq!(done["status"], "rejected");
    assert_eq!(done["reason"], "declines need an underwriter");
    assert!(done.get("completion").is_none());
    assert!(!done.to_string().contains("unsuitable"), "the rejected answer never reaches the client");

    let edit = json!({"decision": "edit", "reviewer": "rita@example.com", "output": "Refer to an underwriter.", "note": "tone"});
    assert_eq!(app.admin_post(&format!("/v1/psf/admin/reviews/{id2}/decision"), edit).await?.status(), 200);
    let done = app.collect("loans", second["status_url"].as_str().unwrap_or_default()).await?;
    assert_eq!(done["status"], "edited");
    assert_eq!(done["edited"], true);
    assert_eq!(done["completion"]["choices"][0]["message"]["content"], "Refer to an underwriter.");
    let events = app.events("HO-2.review").await?;
    let edited = events.iter().find(|e| e.detail["review_id"] == id2).ok_or("no edit event")?;
    assert_eq!(edited.detail["edited_output"], "Refer to an underwriter.");

    // Any delivered answer can be overridden after the fact (HO-4).
    let r = app.chat("chat", user("hello")).await?;
    let rid = header(&r, "x-request-id");
    app.audit(&rid).await?;
    let body =
        json!({"request_id": rid, "by": "tess.ownby@example.com", "reason": "misleading", "output": "Corrected."});
    assert_eq!(app.admin_post("/v1/psf/admin/overrides", body).await?.status(), 201);
    let overrides = app.events("HO-4.override").await?;
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].detail["request_id"], rid.as_str());
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn low_confidence_is_escalated_to_the_queue_and_confident_answers_flow() -> R {
    let mut config = MockConfig::default();
    config.models.insert("doubtful-model".into(), Behaviour { logprob: Some(-3.0), ..Behaviour::default() });
    let mut app = spawn(config).await?;
    let r = app.chat("careful", ask("careful", "Is jo.bloggs@example.org eligible?")).await?;
    assert_eq!(r.status(), 202);
    let held: Value = r.json().await?;
    assert_eq!(held["reason"], "low_confidence");

    app.mock.configure({
        let mut c = MockConfig::default();
        c.models.insert("doubtful-model".into(), Behaviour { logprob: Some(-0.1), ..Behaviour::default() });
        c
    });
    let r = app.chat("careful", ask("careful", "Is jo.bloggs@example.org eligible?")).await?;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await?;
    let content = body["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(content.contains("jo.bloggs@example.org"), "values restored on direct delivery: {body}");
    // A streaming client gets the confident answer as a stream.
    let mut streamed = ask("careful", "Is jo.bloggs@example.org eligible?");
    streamed["stream"] = json!(true);
    let events = sse(app.chat("careful", streamed).await?).await?;
    let text: String =
        events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect::<Vec<_>>().concat();
    assert!(text.contains("jo.bloggs@example.org"), "{events:?}");
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn incidents_disable_degrade_and_isolate_then_lift() -> R {
    let mut app = spawn(MockConfig::default()).await?;
    let hello = user("hello");
    // Unauthenticated and malformed declarations are refused.
    let r = app.http.post(format!("{}/v1/psf/admin/incidents", app.base())).json(&json!({})).send().await?;
    assert_eq!(r.status(), 401);
    let bad =
        json!({"action": "disable", "scope": "point:nope", "severity": "sev2", "reason": "x", "declared_by": "o"});
    assert_eq!(app.admin_post("/v1/psf/admin/incidents", bad).await?.status(), 400);

    let declare = |action: &str, scope: &str| json!({"action": action, "scope": scope, "severity": "sev2", "reason": "wrong answers", "declared_by": "tess.ownby@example.com"});
    let r = app.admin_post("/v1/psf/admin/incidents", declare("disable", "point:chat")).await?;
    assert_eq!(r.status(), 201);
    let incident: Value = r.json().await?;
    let id = incident["id"].as_str().unwrap_or_default().to_string();
    let r = app.chat("chat", hello.clone()).await?;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "IR-2.disabled");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(&id)));
    assert_eq!(app.chat("loans", ask("prescreen", "x")).await?.status(), 202, "other points are not in scope");
    let resolve = json!({"resolved_by": "tess.ownby@example.com", "resolution": "prompt fixed"});
    let path = format!("/v1/psf/admin/incidents/{id}/resolve");
    assert_eq!(app.admin_post(&path, resolve.clone()).await?.status(), 200);
    assert_eq!(app.chat("chat", hello.clone()).await?.status(), 200);
    assert_eq!(app.admin_post(&path, resolve.clone()).await?.status(), 409);

    // Degrade: the decision point's degraded response, without calling a model.
    let r: Value = app.admin_post("/v1/psf/admin/incidents", declare("degrade", "app:chat")).await?.json().await?;
    let calls = app.mock.requests().len();
    let answer: Value = app.chat("chat", hello.clone()).await?.json().await?;
    assert_eq!(answer["psf_degraded"], true);
    assert_eq!(app.mock.requests().len(), calls, "no model was called");
    app.admin_post(
        &format!("/v1/psf/admin/incidents/{}/resolve", r["id"].as_str().unwrap_or_default()),
        resolve.clone(),
    )
    .await?;

    // Isolate a provider: its fallback serves.
    app.admin_post("/v1/psf/admin/incidents", declare("isolate", "provider:mock")).await?;
    let r = app.chat("chat", hello.clone()).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-psf-model"), "backup");
    let record = app.audit(&header(&r, "x-request-id")).await?;
    assert_eq!(record.attempts[0]["outcome"], "incident_isolated");

    let list: Value = app.admin_get("/v1/psf/admin/incidents?all=true").await?.json().await?;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(app.events("IR-2.declared").await?.len(), 3);
    assert_eq!(app.events("IR-2.resolved").await?.len(), 2);
    app.shutdown().await?;
    Ok(())
}

/// The stores two gateways can share: a SQLite file, and PostgreSQL when
/// `PSF_TEST_DATABASE_URL` is set (`.ci/run` sets it).
async fn shared_stores() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut urls = vec![fresh_store_url()?];
    if let Some(base) = psf_testkit::need::env("PSF_TEST_DATABASE_URL", "the PostgreSQL run") {
        urls.push(psf_store::postgres_schema_url(&base).await?);
    }
    Ok(urls)
}

#[tokio::test]
async fn an_incident_declared_on_one_gateway_refuses_calls_on_another_within_a_second() -> R {
    for url in shared_stores().await? {
        let mut a = psf_testkit::app::spawn(MANIFEST, MockConfig::default(), Some(url.clone())).await?;
        let mut b = psf_testkit::app::spawn(MANIFEST, MockConfig::default(), Some(url.clone())).await?;
        let hello = user("hello");
        assert_eq!(b.chat("chat", hello.clone()).await?.status(), 200);
        let declared = Instant::now();
        let body = json!({"action": "disable", "scope": "all", "severity": "sev1", "reason": "drill", "declared_by": "o", "drill": true});
        let r: Value = a.admin_post("/v1/psf/admin/incidents", body).await?.json().await?;
        let took = until_status(&b, "chat", &hello, 503, Duration::from_secs(1)).await?;
        assert!(declared.elapsed() < Duration::from_millis(1500), "{:?}", declared.elapsed());
        eprintln!("{}: time to disable on the other instance: {took:?}", b.store.backend_name());
        let path = format!("/v1/psf/admin/incidents/{}/resolve", r["id"].as_str().unwrap_or_default());
        a.admin_post(&path, json!({"resolved_by": "o", "resolution": "drill over"})).await?;
        until_status(&b, "chat", &hello, 200, Duration::from_secs(1)).await?;

        // An answer held on one instance is decided, and collected on the other with the
        // caller's values restored: the queue and the sealed values live in the store.
        let held: Value = a.chat("loans", ask("prescreen", "Applicant jo.bloggs@example.org")).await?.json().await?;
        let id = held["id"].as_str().unwrap_or_default();
        let decision = json!({"decision": "approve", "reviewer": "rita@example.com"});
        assert_eq!(b.admin_post(&format!("/v1/psf/admin/reviews/{id}/decision"), decision).await?.status(), 200);
        let done = b.collect("loans", held["status_url"].as_str().unwrap_or_default()).await?;
        assert_eq!(done["psf_values_restored"], true, "{done}");
        let content = done["completion"]["choices"][0]["message"]["content"].as_str().unwrap_or_default();
        assert!(content.contains("jo.bloggs@example.org"), "{done}");
        a.shutdown().await?;
        b.shutdown().await?;
    }
    Ok(())
}

#[tokio::test]
async fn erasing_a_subject_leaves_nothing_readable_and_other_subjects_untouched() -> R {
    let mut app = spawn(MockConfig::default()).await?;
    let send = |subject: &'static str, route: &'static str, text: &'static str| {
        let http = app.http.clone();
        let url = format!("{}/chat/completions", app.url);
        let key = key_for(if route == "prescreen" { "loans" } else { "chat" });
        async move { http.post(url).bearer_auth(key).header("x-psf-subject", subject).json(&ask(route, text)).send().await }
    };
    let ann: Value = send("ann-123", "prescreen", "Applicant ann@example.org").await?.json().await?;
    let bob: Value = send("bob-456", "prescreen", "Applicant bob@example.org").await?.json().await?;
    let r = send("ann-123", "chat", "hello").await?;
    app.audit(&header(&r, "x-request-id")).await?;
    let before = app.store.subject_remaining("ann-123").await?;
    assert_eq!((before.audit_records, before.reviews, before.held_values, before.keys), (2, 1, 1, 1), "{before:?}");
    // The subject is kept as a hash only.
    let record = app.audit(&header(&r, "x-request-id")).await?;
    assert!(record.subject.as_deref().is_some_and(|s| s.starts_with("sub_") && !s.contains("ann")));

    let r = app.admin_post("/v1/psf/admin/erasures", json!({"subject": "ann-123", "by": "dpo@example.com"})).await?;
    assert_eq!(r.status(), 201);
    let erased: Value = r.json().await?;
    assert_eq!(erased["receipt"]["audit_records"], 2);
    assert_eq!(erased["receipt"]["keys_destroyed"], 1);
    assert_eq!(erased["remaining"], json!({"keys": 0, "held_values": 0, "audit_records": 0, "reviews": 0}));
    assert!(app.store.subject_remaining("ann-123").await?.is_empty());
    let url = ann["status_url"].as_str().unwrap_or_default();
    let r = app.http.get(format!("{}{url}", app.base())).bearer_auth(key_for("loans")).send().await?;
    assert_eq!(r.status(), 404, "the erased subject's held answer is gone");
    assert_eq!(app.events("DG-3.erasure").await?.len(), 1);

    // Bob is untouched: his answer is still delivered with his own value.
    let path = format!("/v1/psf/admin/reviews/{}/decision", bob["id"].as_str().unwrap_or_default());
    app.admin_post(&path, json!({"decision": "approve", "reviewer": "rita@example.com"})).await?;
    let done = app.collect("loans", bob["status_url"].as_str().unwrap_or_default()).await?;
    let content = done["completion"]["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(content.contains("bob@example.org"), "{done}");
    // A per-person key names its subject without the header.
    let carl = app.store.create_key("chat", Some("Carl's key"), Some("carl-789")).await?;
    let mut served = None;
    for _ in 0..100 {
        let r = app
            .http
            .post(format!("{}/chat/completions", app.url))
            .bearer_auth(&carl.secret)
            .json(&user("hi"))
            .send()
            .await?;
        if r.status() == 200 {
            served = Some(header(&r, "x-request-id"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let record = app.audit(&served.ok_or("the new key was never accepted")?).await?;
    assert_eq!(record.subject, Some(psf_store::subject_ref("carl-789")));
    // A malformed subject header is refused.
    let long = "x".repeat(300);
    let r = app
        .http
        .post(format!("{}/chat/completions", app.url))
        .bearer_auth(key_for("chat"))
        .header("x-psf-subject", long)
        .json(&user("hi"))
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    app.shutdown().await?;
    Ok(())
}

// Data residency (DG-5).

const RESIDENCY: &str = r#"
version: 1
system:
  name: Residency test
  owner: {name: Tess Ownby, email: tess.ownby@example.com}
apps:
  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}]}
  - {id: usonly, decision_point: usonly, keys: [{id: us-key, env: USONLY_KEY}]}
decision_points:
  - id: chat
    autonomy: autonomous
    model: us-model
    input: {pii: {contact: allow}}
  - id: usonly
    autonomy: autonomous
    model: us-only
    input: {pii: {contact: allow}}
models:
  - {id: us-model, provider: us, model: m, fallback: eu-model}
  - {id: eu-model, provider: eu, model: m}
  - {id: us-only, provider: us, model: m}
providers:
  - {id: us, kind: openai_compatible, base_url: "${MOCK}", self_hosted: true, region: us-east}
  - {id: eu, kind: openai_compatible, base_url: "${MOCK}", self_hosted: true, region: eu-west}
residency:
  allowed_regions: [us-east, eu-west]
  classes: {contact: [eu-west]}
"#;

fn stage(record: &psf_store::AuditRecord, code: &str) -> Value {
    psf_testkit::stage(record, code).unwrap_or(Value::Null)
}

#[tokio::test]
async fn restricted_data_goes_only_where_its_class_may_be_processed() -> R {
    let mut app = psf_testkit::app::spawn(RESIDENCY, MockConfig::default(), None).await?;
    // No personal data: the primary (us-east) serves.
    let r = app.chat("chat", ask("chat", "What are your opening hours?")).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-psf-model"), "us-model");
    let record = app.audit(&header(&r, "x-request-id")).await?;
    assert_eq!(stage(&record, "DG-5.residency")["decision"], "pass");

    // Contact data may be processed in eu-west only: the us provider is skipped.
    let r = app.chat("chat", ask("chat", "Write to jo.bloggs@example.org please")).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-psf-model"), "eu-model");
    let record = app.audit(&header(&r, "x-request-id")).await?;
    assert_eq!(record.attempts[0]["outcome"], "residency_contact");
    assert!(stage(&record, "DG-5.residency")["detail"].as_str().is_some_and(|d| d.contains("eu-west")));

    // Nowhere to go: a defined refusal, and the model never sees the data.
    let calls = app.mock.requests().len();
    let r = app.chat("usonly", ask("usonly", "Write to jo.bloggs@example.org please")).await?;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "DG-5.residency");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("contact (only eu-west)")), "{body}");
    assert_eq!(app.mock.requests().len(), calls);
    assert_eq!(app.chat("usonly", ask("usonly", "Opening hours?")).await?.status(), 200);
    app.shutdown().await?;
    Ok(())
}

// Cluster mode with Redis (IG-4 across instances).

/// A `redis-server` of the test's own on a free port, so it can be stopped and started.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Option<OwnRedis> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        Some(OwnRedis { port, child: Some(child) })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: it keeps its connections and
    /// answers nothing, the way a wedged Redis or a dead network path looks.
    fn signal(&self, signal: &str) {
        if let Some(c) = &self.child {
            let sent = std::process::Command::new("kill").args([signal, &c.id().to_string()]).status();
            assert!(sent.is_ok_and(|s| s.success()), "kill {signal} failed");
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn ready(url: &str) -> bool {
    for _ in 0..100 {
        if let Ok(c) = redis::Client::open(url)
            && c.get_multiplexed_async_connection().await.is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_rate_limit_holds_across_gateways_and_survives_a_redis_restart() -> R {
    // The test runs its own redis-server when the URL says Redis is there to use.
    if psf_testkit::need::env("PSF_TEST_REDIS_URL", "the Redis cluster test").is_none() {
        return Ok(());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let Some(mut redis_server) = OwnRedis::start(port) else {
        return Err("PSF_TEST_REDIS_URL is set but redis-server cannot be started".into());
    };
    let url = redis_server.url();
    assert!(ready(&url).await, "redis-server did not come up");
    let manifest = MANIFEST.replace(
        "  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}]}",
        "  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}], rate_limit: {requests_per_minute: 3}}",
    );
    let store = shared_stores().await?.pop().ok_or("no store")?;
    let mut a =
        psf_testkit::app::spawn_clustered(&manifest, MockConfig::default(), Some(store.clone()), Some(&url)).await?;
    let mut b = psf_testkit::app::spawn_clustered(&manifest, MockConfig::default(), Some(store), Some(&url)).await?;
    // Three a minute for the app, wherever the calls land.
    let statuses = [
        a.chat("chat", user("1")).await?.status(),
        b.chat("chat", user("2")).await?.status(),
        a.chat("chat", user("3")).await?.status(),
        b.chat("chat", user("4")).await?.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [200, 200, 200, 429], "the fourth call is over the shared limit");

    // Redis goes away. The manifest's default, `fail_closed`, refuses with a defined 503
    // within the deadline (never a hang), and `/readyz` says why.
    redis_server.stop();
    let started = std::time::Instant::now();
    let refused = a.chat("chat", user("5")).await?;
    assert_eq!(refused.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5), "the refusal took {:?}", started.elapsed());
    let body: Value = refused.json().await?;
    assert_eq!(body["error"]["code"], "IG-4.limiter_unavailable", "{body}");
    let readyz = a.http.get(format!("{}/readyz", a.base())).send().await?;
    assert_eq!(readyz.status(), 503);
    assert!(readyz.text().await?.contains("rate limiter"));
    let mut again = OwnRedis::start(port).ok_or("redis-server does not restart")?;
    assert!(ready(&again.url()).await);
    // Both instances reconnect by themselves within about a second and count in Redis
    // again: a call through each moves the app's shared bucket.
    let client = redis::Client::open(again.url().as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let tat = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        async move {
            let keys: Vec<String> =
                redis::cmd("KEYS").arg("psf:*:rl:app:chat").query_async(&mut conn).await.unwrap_or_default();
            match keys.first() {
                Some(k) => redis::cmd("GET").arg(k).query_async::<Option<String>>(&mut conn).await.ok().flatten(),
                None => None,
            }
        }
    };
    for (name, gw) in [("a", &a), ("b", &b)] {
        let before = tat(&mut conn).await;
        let mut moved = false;
        for _ in 0..60 {
            gw.chat("chat", user("again")).await?;
            if tat(&mut conn).await != before {
                moved = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(moved, "instance {name} never counted in Redis after its restart");
    }
    assert_eq!(a.http.get(format!("{}/readyz", a.base())).send().await?.status(), 200);
    // Each change is one stored event, not one per request: every instance that saw the
    // outage says so once, and once that it is over (a stale connection right after the
    // restart may flap once more). The events are written as they happen: wait for them.
    let mut events = Vec::new();
    for _ in 0..40 {
        events = a.events("IG-4.limiter").await?;
        let down = events.iter().filter(|e| e.summary.contains("unreachable")).count();
        let back = events.iter().filter(|e| e.summary.contains("answers again")).count();
        if down >= 1 && back == down {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let down = events.iter().filter(|e| e.summary.contains("unreachable")).count();
    let back = events.iter().filter(|e| e.summary.contains("answers again")).count();
    assert!(down >= 1 && back == down && events.len() <= 6, "{events:?}");
    again.stop();
    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_wedged_redis_is_bounded_and_local_limits_take_over_when_the_manifest_says_so() -> R {
    if psf_testkit::need::env("PSF_TEST_REDIS_URL", "the Redis cluster test").is_none() {
        return Ok(());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let redis_server = OwnRedis::start(port).ok_or("redis-server cannot be started")?;
    let url = redis_server.url();
    assert!(ready(&url).await, "redis-server did not come up");
    let manifest = MANIFEST.replace(
        "  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}]}",
        "  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}], rate_limit: {requests_per_minute: 3}}",
    ) + "rate_limits:\n  on_store_unreachable: local_limits\n";
    let mut a = psf_testkit::app::spawn_clustered(&manifest, MockConfig::default(), None, Some(&url)).await?;
    assert_eq!(a.chat("chat", user("1")).await?.status(), 200);
    // Frozen: connections stay open and nothing answers. Every request still gets its
    // answer within the deadline, under this instance's own limit of three a minute.
    redis_server.signal("-STOP");
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(a.chat("chat", user(&format!("frozen {i}"))).await?.status().as_u16());
    }
    let took = started.elapsed();
    redis_server.signal("-CONT");
    assert!(took < Duration::from_secs(8), "four calls took {took:?} with Redis frozen");
    assert_eq!(statuses, [200, 200, 200, 429], "the local limiter holds while Redis is frozen");
    let events = a.events("IG-4.limiter").await?;
    assert!(events.iter().any(|e| e.summary.contains("local_limits")), "{events:?}");
    a.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_held_answer_is_announced_to_the_review_webhook_without_its_text() -> R {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                if let Ok(mut v) = sink.lock() {
                    v.push(body.0);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let manifest = MANIFEST.replace(
        "    review_deadline_minutes: 30\n",
        &format!("    review_deadline_minutes: 30\n    review_webhook: http://{addr}/hook\n"),
    );
    let mut app = psf_testkit::app::spawn(&manifest, MockConfig::default(), None).await?;
    let held: Value = app.chat("loans", ask("prescreen", "Applicant jo.bloggs@example.org")).await?.json().await?;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = received.lock().map(|v| v.clone()).unwrap_or_default();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "psf.review.pending");
    assert_eq!(got[0]["review_id"], held["id"]);
    assert!(got[0]["text"].as_str().is_some_and(|t| t.contains("prescreen")));
    assert!(!got[0].to_string().contains("jo.bloggs"), "the notice carries no personal data");
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn streams_are_bounded_in_bytes_and_in_time_by_default_and_by_the_manifest() -> R {
    let yaml = psf_testkit::manifest::Minimal::new()
        .point("output: {max_bytes: 200, max_stream_ms: 600}")
        .section("gateway: {retries: 0}")
        .yaml();
    let mut config = MockConfig::default();
    config.default.reply = Some("word ".repeat(200));
    let mut app = psf_testkit::app::spawn(&yaml, config, None).await?;
    let mut body = user("talk");
    body["stream"] = json!(true);
    let r = app.chat("chat", body.clone()).await?;
    let id = header(&r, "x-request-id");
    let events = sse(r).await?;
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(last["error"]["code"], "OV-2.length", "{last}");
    assert!(last["error"]["message"].as_str().is_some_and(|m| m.contains("output.max_bytes")), "{last}");
    let record = app.audit(&id).await?;
    assert!(record.output_redacted.as_deref().map_or(0, str::len) <= 200, "the audit keeps at most the limit");

    // A stream that drips is ended at the limit, not left open.
    let mut slow = MockConfig::default();
    slow.default.reply = Some("a b c d e f g h i j k l m n o p".into());
    slow.default.token_delay_ms = 150;
    app.mock.configure(slow);
    let t = Instant::now();
    let events = sse(app.chat("chat", body).await?).await?;
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(last["error"]["code"], "MS-4.stream_failed", "{last}");
    assert!(last["error"]["message"].as_str().is_some_and(|m| m.contains("output.max_stream_ms")), "{last}");
    assert!(t.elapsed() < Duration::from_millis(1500), "ended at the limit: {:?}", t.elapsed());
    app.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn requests_without_a_valid_key_write_no_rows_and_are_limited_per_source() -> R {
    let mut app =
        psf_testkit::app::spawn(&psf_testkit::manifest::Minimal::new().yaml(), MockConfig::default(), None).await?;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r = app
            .http
            .post(format!("{}/chat/completions", app.url))
            .bearer_auth("wrong")
            .json(&user("hi"))
            .send()
            .await?;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.first(), Some(&401));
    assert!(statuses.contains(&429), "a source that keeps failing is slowed down: {statuses:?}");
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 15, "{statuses:?}");
    // A valid key from the same address is never held back by it.
    assert_eq!(app.chat("chat", user("hi")).await?.status(), 200);
    app.shutdown().await?;
    let rows = app.store.audit_count().await?;
    assert_eq!(rows, 1, "only the authenticated request left a record");
    Ok(())
}

#[tokio::test]
async fn slow_and_idle_clients_are_cut_and_a_connection_over_the_limit_is_refused() -> R {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let yaml = psf_testkit::manifest::Minimal::new()
        .section("gateway: {retries: 0, header_timeout_ms: 400, body_timeout_ms: 400, max_connections: 3}")
        .yaml();
    let mut app = psf_testkit::app::spawn(&yaml, MockConfig::default(), None).await?;
    let addr = app.base().trim_start_matches("http://").to_string();
    let answer = |mut s: tokio::net::TcpStream| async move {
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        read.map(|r| r.map(|_| String::from_utf8_lossy(&out).into_owned()))
    };

    // Over the limit: three idle connections hold every slot; a fourth is told so.
    let held: Vec<tokio::net::TcpStream> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(tokio::net::TcpStream::connect(&addr).await?);
        }
        v
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let extra = tokio::net::TcpStream::connect(&addr).await?;
    let said = answer(extra).await??;
    assert!(said.starts_with("HTTP/1.1 503") && said.contains("gateway.overloaded"), "{said}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Half-sent headers: the connection is closed at the header timeout.
    let mut half = tokio::net::TcpStream::connect(&addr).await?;
    half.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: psf\r\n").await?;
    let t = Instant::now();
    let _ = answer(half).await??;
    assert!(t.elapsed() < Duration::from_secs(3), "closed at the header timeout: {:?}", t.elapsed());

    // A body announced and never sent: a coded 408, not a wait forever.
    let mut slow = tokio::net::TcpStream::connect(&addr).await?;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: psf\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 10485\r\n\r\n{{\"model\"",
        key_for("chat")
    );
    slow.write_all(head.as_bytes()).await?;
    let said = answer(slow).await??;
    assert!(said.starts_with("HTTP/1.1 408") && said.contains("gateway.body_timeout"), "{said}");

    // And the service goes on for everyone else.
    assert_eq!(app.chat("chat", user("hi")).await?.status(), 200);
    // Kept-alive connections close at once on shutdown; nothing waits for the deadline.
    let t = Instant::now();
    app.shutdown().await?;
    assert!(t.elapsed() < Duration::from_secs(5), "drained promptly: {:?}", t.elapsed());
    Ok(())
}

#[tokio::test]
async fn shutdown_waits_for_requests_in_flight_no_longer_than_its_grace() -> R {
    let yaml = psf_testkit::manifest::Minimal::new().section("gateway: {retries: 0, shutdown_grace_ms: 500}").yaml();
    let mut config = MockConfig::default();
    config.default.reply = Some("word ".repeat(100));
    config.default.stall_after_tokens = Some(40);
    let mut app = psf_testkit::app::spawn(&yaml, config, None).await?;
    let mut body = user("talk");
    body["stream"] = json!(true);
    // A stream whose upstream goes silent: in flight when the shutdown comes.
    let r = app.chat("chat", body).await?;
    assert_eq!(r.status(), 200);
    let t = Instant::now();
    app.shutdown().await?;
    assert!(t.elapsed() < Duration::from_secs(3), "the grace bounds the drain: {:?}", t.elapsed());
    drop(r);
    Ok(())
}

#[tokio::test]
async fn what_people_write_is_kept_with_personal_data_redacted() -> R {
    let store_url = fresh_store_url()?;
    let mut app = psf_testkit::app::spawn(MANIFEST, MockConfig::default(), Some(store_url.clone())).await?;
    let secret = "jo.bloggs@example.org";
    // A rejection's reason and an edit, from a reviewer.
    let mut reviews = Vec::new();
    for _ in 0..2 {
        let held: Value = app.chat("loans", ask("prescreen", "applicant")).await?.json().await?;
        reviews.push(held["id"].as_str().unwrap_or_default().to_string());
    }
    let decide = |id: &str| format!("/v1/psf/admin/reviews/{id}/decision");
    let note = format!("rejected: the applicant {secret} asked twice");
    let r = app
        .admin_post(&decide(&reviews[0]), json!({"decision": "reject", "reviewer": "rita@example.com", "note": note}))
        .await?;
    assert_eq!(r.status(), 200);
    let edit = format!("Please write to {secret} about the next step.");
    let r = app
        .admin_post(&decide(&reviews[1]), json!({"decision": "edit", "reviewer": "rita@example.com", "output": edit}))
        .await?;
    assert_eq!(r.status(), 200);
    // An incident's reason and its resolution.
    let declared = json!({"action": "disable", "scope": "point:chat", "severity": "sev3",
                          "reason": format!("{secret} reported a wrong answer"), "declared_by": "tess.ownby@example.com"});
    let incident: Value = app.admin_post("/v1/psf/admin/incidents", declared).await?.json().await?;
    let id = incident["id"].as_str().unwrap_or_default();
    let resolved = json!({"resolved_by": "tess.ownby@example.com", "resolution": format!("called {secret} back")});
    let r = app.admin_post(&format!("/v1/psf/admin/incidents/{id}/resolve"), resolved).await?;
    assert_eq!(r.status(), 200);
    app.shutdown().await?;

    // Nothing of it is in the store file in clear.
    let path = store_url.trim_start_matches("sqlite://");
    let mut bytes = std::fs::read(path)?;
    for extra in ["-wal", "-shm"] {
        bytes.extend(std::fs::read(format!("{path}{extra}")).unwrap_or_default());
    }
    let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
    assert!(!found, "the store holds {secret} in clear");
    let review = app.store.review(&reviews[0]).await?.ok_or("no review")?;
    assert!(review.note.as_deref().is_some_and(|n| n.contains("[EMAIL]")), "{:?}", review.note);
    Ok(())
}
