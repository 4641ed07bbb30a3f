//! The console against the real server: the gateway and the console on a random port,
//! a real SQLite store, the mock upstream; people sign in with real argon2 hashes and
//! post the real forms, as a browser does (the browser tests in `tests/browser/` drive
//! the same pages in Chromium).

use std::sync::Arc;
use std::time::Duration;

use psf_gateway::{Compiled, Gateway};
use psf_mock::{MockConfig, MockServer};
use psf_store::Store;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

type R = Result<(), Box<dyn std::error::Error>>;

const MANIFEST: &str = r#"
# The console's test deployment; this comment must survive the studio's saves.
version: 1
system:
  name: Console test
  description: Prescreens loan applications for a person to decide.
  owner: {name: Tess Ownby, email: tess.ownby@example.com}
apps:
  - {id: loans, decision_point: prescreen, keys: [{id: loans-key, env: LOANS_KEY}]}
  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}]}
decision_points:
  - id: prescreen
    autonomy: supervised
    model: good
    reviewers: [{name: Rita Reviewer, email: rita@example.com}]
    input:
      pii: {contact: tokenize}
  - id: chat
    autonomy: autonomous
    model: good
models:
  - {id: good, provider: mock, model: good-model}
providers:
  - {id: mock, kind: openai_compatible, base_url: "${MOCK}", self_hosted: true}
incident_plan:
  failure_modes:
    - {id: wrong-answers, kind: harmful_output, runbook: docs/runbooks/wrong.md}
  comms_templates:
    - {id: notice, audience: customers, text: "Our assistant for {system} is paused ({status}) until {until}.", approved_on: 2026-01-05, approved_by: Tess Ownby}
gateway:
  retries: 0
"#;

const PASSWORD: &str = "a long enough password";

struct Running {
    base: String,
    /// The manifest file the studio saves to.
    file: std::path::PathBuf,
    store: Store,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    _mock: MockServer,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A signed-in person: the session cookie and the CSRF token of their forms.
struct Person {
    cookie: String,
    csrf: String,
}

async fn start() -> Result<Running, Box<dyn std::error::Error>> {
    let mock = MockServer::bind("127.0.0.1:0", MockConfig::default()).await?;
    let openai = mock.openai_url();
    let env = move |name: &str| match name {
        "MOCK" => Some(openai.clone()),
        _ => name.strip_suffix("_KEY").map(|app| format!("test-key-{}", app.to_lowercase())),
    };
    let options = psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 23) };
    let manifest = psf_core::load(MANIFEST, &options, &env).map_err(|d| format!("{d:?}"))?;
    let compiled = Compiled::new(manifest, &env)?;
    // Tests run in parallel: each gets a store of its own.
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("psf-console-{}-{n}-{}", std::process::id(), psf_store::now_ms()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("psf.db").display());
    let store = Store::open(&url).await?;
    for (email, name, role) in [
        ("rita@example.com", "Rita Reviewer", "reviewer"),
        ("olu@example.com", "Olu Operator", "operator"),
        ("avery@example.com", "Avery Auditor", "auditor"),
    ] {
        store.create_console_user(email, name, role, &psf_console::hash_password(PASSWORD)?).await?;
    }
    let (gateway, writer) = Gateway::new(compiled, store.clone()).await?;
    let file = dir.join("psf.yaml");
    std::fs::write(&file, MANIFEST)?;
    let console = psf_console::Console::new(gateway.clone(), "psf.yaml", MANIFEST).with_manifest_path(file.clone());
    let router = psf_gateway::app(gateway.clone()).merge(psf_console::router(Arc::new(console)));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(psf_gateway::serve_app(listener, gateway, router, writer, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    Ok(Running { base, file, store, http, stop: Some(stop), _mock: mock })
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
}

fn set_cookie_line(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(name))
        .unwrap_or("")
        .to_string()
}

fn csrf_in(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[at..].split('"').next()?.to_string())
}

fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap_or_default()
}

impl Running {
    /// Posts the sign-in form as the browser would; the response as it came.
    async fn sign_in_response(
        &self,
        email: &str,
        password: &str,
    ) -> Result<reqwest::Response, Box<dyn std::error::Error>> {
        let page = self.http.get(format!("{}/console/login", self.base)).send().await?;
        let login_cookie = cookie_value(page.headers(), "psf_login").ok_or("no sign-in cookie")?;
        let token = csrf_in(&page.text().await?).ok_or("no csrf field")?;
        Ok(self
            .http
            .post(format!("{}/console/login", self.base))
            .header(COOKIE, format!("psf_login={login_cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf", &token), ("email", email), ("password", password)]))
            .send()
            .await?)
    }

    async fn sign_in(&self, email: &str) -> Result<Person, Box<dyn std::error::Error>> {
        let r = self.sign_in_response(email, PASSWORD).await?;
        assert_eq!(r.status(), 303, "{email} signs in");
        let cookie = cookie_value(r.headers(), "psf_session").ok_or("no session cookie")?;
        let page = self.get(&Person { cookie: cookie.clone(), csrf: String::new() }, "/console/reviews").await?;
        let csrf = csrf_in(&page.text().await?).ok_or("no csrf on a page")?;
        Ok(Person { cookie, csrf })
    }

    async fn get(&self, who: &Person, path: &str) -> Result<reqwest::Response, reqwest::Error> {
        self.http.get(format!("{}{path}", self.base)).header(COOKIE, format!("psf_session={}", who.cookie)).send().await
    }

    async fn page(&self, who: &Person, path: &str) -> Result<String, Box<dyn std::error::Error>> {
        let r = self.get(who, path).await?;
        assert_eq!(r.status(), 200, "GET {path}");
        Ok(r.text().await?)
    }

    /// Posts a console form with the person's CSRF token.
    async fn post(
        &self,
        who: &Person,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut all = vec![("csrf", who.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(who, path, &form(&all), None).await
    }

    async fn post_raw(
        &self,
        who: &Person,
        path: &str,
        body: &str,
        origin: Option<&str>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, format!("psf_session={}", who.cookie))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().await
    }

    async fn chat(&self, app: &str, route: &str, text: &str) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(format!("test-key-{app}"))
            .json(&json!({"model": route, "messages": [{"role": "user", "content": text}]}))
            .send()
            .await
    }

    async fn events(&self, kind: &str) -> Result<Vec<psf_store::Event>, psf_store::StoreError> {
        self.store.events(Some(kind), 0, 1000).await
    }
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_session_and_signing_out_ends_it() -> R {
    let app = start().await?;
    // A page asks to sign in and comes back to where it was.
    let r = app.http.get(format!("{}/console/reviews?status=all", app.base)).send().await?;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console/login?next=%2Fconsole%2Freviews%3Fstatus%3Dall");

    let r = app.sign_in_response("olu@example.com", "not the password").await?;
    assert_eq!(r.status(), 401);
    assert!(cookie_value(r.headers(), "psf_session").is_none());
    assert!(r.text().await?.contains("The email or password is wrong."));
    let r = app.sign_in_response("nobody@example.com", PASSWORD).await?;
    assert_eq!(r.status(), 401, "an unknown email reads like a wrong password");

    let r = app.sign_in_response("Olu@Example.com", PASSWORD).await?;
    assert_eq!(r.status(), 303);
    let line = set_cookie_line(r.headers(), "psf_session");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=43200"] {
        assert!(line.contains(part), "{line}");
    }
    assert!(!line.contains("Secure"), "plain HTTP: {line}");
    let olu = Person { cookie: cookie_value(r.headers(), "psf_session").ok_or("no cookie")?, csrf: String::new() };
    let page = app.page(&olu, "/console").await?;
    assert!(page.contains("Olu Operator") && page.contains("Requests per minute"));
    let olu = Person { csrf: csrf_in(&page).ok_or("no csrf")?, ..olu };

    let r = app.post(&olu, "/console/logout", &[]).await?;
    assert_eq!(r.status(), 303);
    assert!(set_cookie_line(r.headers(), "psf_session").contains("Max-Age=0"));
    assert_eq!(app.get(&olu, "/console").await?.status(), 303, "the old cookie signs nobody in");

    // What was typed for an unknown account is never kept: it could be a password.
    let all = app.store.events(None, 0, 100).await?;
    assert!(all.iter().all(|e| !e.summary.contains("nobody@") && !e.detail.to_string().contains("nobody@")));
    assert!(all.iter().any(|e| e.summary == "failed sign-in for olu@example.com"));
    let kinds: Vec<String> = all.into_iter().map(|e| e.kind).collect();
    for k in ["console.sign_in_failed", "console.sign_in", "console.sign_out"] {
        assert!(kinds.iter().any(|x| x == k), "{k} recorded: {kinds:?}");
    }
    Ok(())
}

#[tokio::test]
async fn secure_cookies_behind_tls() -> R {
    let app = start().await?;
    let page = app.http.get(format!("{}/console/login", app.base)).header("x-forwarded-proto", "https").send().await?;
    assert!(set_cookie_line(page.headers(), "psf_login").contains("; Secure"));
    Ok(())
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_account() -> R {
    let app = start().await?;
    for _ in 0..5 {
        assert_eq!(app.sign_in_response("avery@example.com", "wrong password!!").await?.status(), 401);
    }
    // Locked, even with the right password; another account is not.
    let r = app.sign_in_response("avery@example.com", PASSWORD).await?;
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"].to_str()?.parse()?;
    assert!((850..=901).contains(&retry), "{retry}");
    assert!(r.text().await?.contains("Too many failed sign-ins"));
    app.sign_in("olu@example.com").await?;
    Ok(())
}

#[tokio::test]
async fn forms_need_the_session_token_and_the_console_origin() -> R {
    let app = start().await?;
    let olu = app.sign_in("olu@example.com").await?;
    let declare =
        [("action", "disable"), ("scope", "all"), ("severity", "sev2"), ("reason", "test"), ("confirm", "yes")];
    // No token, a wrong token, another site: refused, nothing declared.
    let no_token = form(&declare);
    assert_eq!(app.post_raw(&olu, "/console/incidents", &no_token, None).await?.status(), 403);
    let mut wrong = vec![("csrf", "forged")];
    wrong.extend_from_slice(&declare);
    assert_eq!(app.post_raw(&olu, "/console/incidents", &form(&wrong), None).await?.status(), 403);
    let mut right = vec![("csrf", olu.csrf.as_str())];
    right.extend_from_slice(&declare);
    let r = app.post_raw(&olu, "/console/incidents", &form(&right), Some("http://evil.example")).await?;
    assert_eq!(r.status(), 403);
    assert!(app.store.incidents(true).await?.is_empty());
    // Without the confirmation nothing happens either.
    let r = app.post(&olu, "/console/incidents", &declare[..4]).await?;
    assert_eq!(r.status(), 400);
    assert!(app.store.incidents(true).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_kill_switch_refuses_calls_at_once_and_is_audited_with_the_person() -> R {
    let app = start().await?;
    assert_eq!(app.chat("chat", "chat", "hello").await?.status(), 200);
    let olu = app.sign_in("olu@example.com").await?;
    let r = app
        .post(
            &olu,
            "/console/incidents",
            &[
                ("action", "disable"),
                ("scope", "point:chat"),
                ("severity", "sev1"),
                ("reason", "wrong refunds"),
                ("confirm", "yes"),
            ],
        )
        .await?;
    assert_eq!(r.status(), 303);
    let location = r.headers()[LOCATION].to_str()?.to_string();
    let r = app.chat("chat", "chat", "hello").await?;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "IR-2.disabled");
    // The incident page shows the timeline and previews the comms template.
    let path = location.split('?').next().unwrap_or_default();
    let page = app.page(&olu, &format!("{path}?template=notice&values=until%3D18%3A00")).await?;
    assert!(page.contains("IR-2.declared"), "the timeline has the declaration");
    assert!(page.contains("Our assistant for Console test is paused (ongoing) until 18:00."), "comms preview");
    let page = app.page(&olu, &format!("{path}?template=notice")).await?;
    assert!(page.contains("{until}"), "a missing value is named, never sent with braces");

    let id = path.rsplit('/').next().unwrap_or_default().to_string();
    let r = app.post(&olu, &format!("/console/incidents/{id}/resolve"), &[("resolution", "refund rule fixed")]).await?;
    assert_eq!(r.status(), 303);
    assert_eq!(app.chat("chat", "chat", "hello").await?.status(), 200);
    let r = app
        .post(
            &olu,
            &format!("/console/incidents/{id}/review"),
            &[
                ("root_cause", "a stale rule"),
                ("actions", "add a test | Olu Operator | 2026-12-24\nreview rules | Tess Ownby"),
            ],
        )
        .await?;
    assert_eq!(r.status(), 303);
    let incident = app.store.incident(&id).await?.ok_or("no incident")?;
    assert_eq!(incident.declared_by, "Olu Operator <olu@example.com>");
    assert_eq!(incident.review.as_ref().map(|r| r["actions"].as_array().map_or(0, Vec::len)), Some(2));

    let actions = app.events("console.action").await?;
    let what: Vec<(&str, &str)> = actions
        .iter()
        .map(|e| (e.detail["actor"].as_str().unwrap_or(""), e.detail["action"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        what,
        [
            ("olu@example.com", "declared incident"),
            ("olu@example.com", "resolved incident"),
            ("olu@example.com", "wrote the post-incident review of")
        ]
    );
    Ok(())
}

#[tokio::test]
async fn an_auditor_reads_everything_and_changes_nothing() -> R {
    let app = start().await?;
    let avery = app.sign_in("avery@example.com").await?;
    for path in [
        "/console",
        "/console/reviews",
        "/console/incidents",
        "/console/audit?code=IG-1.",
        "/console/data",
        "/console/scorecard",
        "/console/scorecard/HO-1",
        "/console/workflow",
    ] {
        let page = app.page(&avery, path).await?;
        assert!(
            !page.contains("Declare the incident") && !page.contains(">Erase<"),
            "{path} offers no operator action"
        );
    }
    assert_eq!(app.get(&avery, "/console/keys").await?.status(), 403);
    let r = app
        .post(
            &avery,
            "/console/incidents",
            &[("action", "disable"), ("scope", "all"), ("severity", "sev1"), ("reason", "x"), ("confirm", "yes")],
        )
        .await?;
    assert_eq!(r.status(), 403);
    assert!(r.text().await?.contains("needs the operator role"));
    assert_eq!(
        app.post(&avery, "/console/data/erasures", &[("subject", "x"), ("requested_by", "y"), ("confirm", "yes")])
            .await?
            .status(),
        403
    );
    assert_eq!(app.post(&avery, "/console/keys", &[("app", "chat"), ("label", "x")]).await?.status(), 403);
    assert!(app.store.incidents(false).await?.is_empty());
    // Downloads are for auditors too.
    let r = app.get(&avery, "/console/scorecard/report.json").await?;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await?;
    assert_eq!(report["verdicts"].as_array().map(Vec::len), Some(40));
    let svg = app.get(&avery, "/console/workflow.svg").await?.text().await?;
    assert!(svg.contains("<svg") && svg.contains("prescreen"));
    assert_eq!(app.get(&avery, "/console/manifest.yaml").await?.text().await?, MANIFEST);
    assert_eq!(
        app.get(&avery, "/console/scorecard/attestation.dsse.json").await?.status(),
        404,
        "no signing key given"
    );
    let r = app.get(&avery, "/console/workflow/package.tar.gz").await?;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await?.starts_with(&[0x1f, 0x8b]), "the workflow package is a gzip file");
    let r = app.get(&avery, "/console/no-such-page").await?;
    assert_eq!(r.status(), 404);
    assert!(r.text().await?.contains("There is no such console page."));
    let r = app.http.get(format!("{}/v1/no-such-endpoint", app.base)).send().await?;
    assert_eq!(r.status(), 404);
    assert!(!r.text().await?.contains("console"), "the API's own 404 is untouched");
    Ok(())
}

#[tokio::test]
async fn a_reviewer_approves_a_held_answer_and_the_client_receives_it() -> R {
    let app = start().await?;
    let r = app.chat("loans", "prescreen", "Applicant mail: jo.bloggs@example.org, income 40k").await?;
    assert_eq!(r.status(), 202);
    let held: Value = r.json().await?;
    let id = held["id"].as_str().ok_or("no review id")?.to_string();

    let rita = app.sign_in("rita@example.com").await?;
    let list = app.page(&rita, "/console/reviews").await?;
    assert!(list.contains(&id));
    let case = app.page(&rita, &format!("/console/reviews/{id}")).await?;
    assert!(case.contains("[EMAIL_1]") && !case.contains("jo.bloggs@example.org"), "the case shows placeholders only");
    assert!(case.contains("data-key=\"a\""), "the approve form has its shortcut");

    // An operator sees the case but cannot decide it.
    let olu = app.sign_in("olu@example.com").await?;
    assert!(app.page(&olu, &format!("/console/reviews/{id}")).await?.contains("Only reviewers decide"));
    assert_eq!(app.post(&olu, &format!("/console/reviews/{id}"), &[("decision", "approve")]).await?.status(), 403);
    // A rejection needs its reason.
    assert_eq!(app.post(&rita, &format!("/console/reviews/{id}"), &[("decision", "reject")]).await?.status(), 400);

    let r = app
        .post(&rita, &format!("/console/reviews/{id}"), &[("decision", "approve"), ("note", "income checked")])
        .await?;
    assert_eq!(r.status(), 303);
    let status_url = held["status_url"].as_str().ok_or("no status url")?;
    let got: Value =
        app.http.get(format!("{}{status_url}", app.base)).bearer_auth("test-key-loans").send().await?.json().await?;
    assert_eq!(got["status"], "approved");
    let text = got["completion"]["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(!text.is_empty());
    let review = app.store.review(&id).await?.ok_or("no review")?;
    assert_eq!(review.reviewer.as_deref(), Some("rita@example.com"));
    let actions = app.events("console.action").await?;
    assert!(actions.iter().any(|e| e.detail["actor"] == "rita@example.com" && e.detail["target"] == id.as_str()));
    // Decided is decided.
    assert_eq!(app.post(&rita, &format!("/console/reviews/{id}"), &[("decision", "approve")]).await?.status(), 409);
    Ok(())
}

#[tokio::test]
async fn operators_erase_subjects_and_manage_keys() -> R {
    let app = start().await?;
    let r = app
        .http
        .post(format!("{}/v1/chat/completions", app.base))
        .bearer_auth("test-key-chat")
        .header("x-psf-subject", "customer-77")
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let olu = app.sign_in("olu@example.com").await?;
    // The audit record is written off the request path.
    let mut found = false;
    for _ in 0..50 {
        if app.store.audit_count().await? > 0 {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found);
    let audit = app.page(&olu, "/console/audit?app=chat").await?;
    assert!(audit.contains("1 records"), "the search finds the call");
    let r = app
        .post(
            &olu,
            "/console/data/erasures",
            &[("subject", "customer-77"), ("requested_by", "the customer, by email"), ("confirm", "yes")],
        )
        .await?;
    assert_eq!(r.status(), 303);
    let data = app.page(&olu, r.headers()[LOCATION].to_str()?).await?;
    assert!(data.contains("1 audit records") && data.contains("nothing of the subject remains"), "{data}");
    assert!(!data.contains("customer-77"), "the subject is shown as its hash only");
    assert_eq!(app.store.audit_count().await?, 0);

    let page = app.post(&olu, "/console/keys", &[("app", "chat"), ("label", "the web widget")]).await?.text().await?;
    let at = page.find("<pre id=\"new-key\">").ok_or("no key shown")? + "<pre id=\"new-key\">".len();
    let key = page[at..].split('<').next().unwrap_or_default().to_string();
    let key_id = app.store.keys().await?.first().map(|k| k.id.clone()).ok_or("no key kept")?;
    // The gateway reloads keys within a second.
    let mut accepted = false;
    for _ in 0..40 {
        let r = app.http.get(format!("{}/v1/models", app.base)).bearer_auth(&key).send().await?;
        if r.status() == 200 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "the new key works");
    assert!(!app.page(&olu, "/console/keys").await?.contains(&key), "shown once");
    let r = app.post(&olu, &format!("/console/keys/{key_id}/revoke"), &[]).await?;
    assert_eq!(r.status(), 303);
    assert!(app.store.keys().await?.iter().all(|k| k.revoked_ms.is_some()));
    Ok(())
}

/// The studio's form: the edits as JSON and the digest of the text they were made on.
fn studio_form(who: &Person, edits: &Value, base: &str) -> Vec<(String, String)> {
    vec![("csrf".into(), who.csrf.clone()), ("edits".into(), edits.to_string()), ("base_sha256".into(), base.into())]
}

impl Running {
    async fn studio(
        &self,
        who: &Person,
        path: &str,
        edits: &Value,
        base: &str,
    ) -> Result<(u16, Value), Box<dyn std::error::Error>> {
        let body = serde_urlencoded::to_string(studio_form(who, edits, base))?;
        let r = self.post_raw(who, path, &body, None).await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }
}

#[tokio::test]
async fn the_studio_checks_edits_by_psf_checks_rules_and_saves_only_a_valid_manifest() -> R {
    let app = start().await?;
    let olu = app.sign_in("olu@example.com").await?;
    let page = app.page(&olu, "/console/studio").await?;
    let at = page.find("\"base_sha256\":\"").ok_or("no base digest")? + "\"base_sha256\":\"".len();
    let base = page[at..].split('"').next().unwrap_or_default().to_string();
    assert_eq!(base, psf_store::key_digest(MANIFEST));

    // Saving without edits writes the same bytes.
    let (status, body) = app.studio(&olu, "/console/studio/save", &json!([]), &base).await?;
    assert_eq!((status, body["saved"].clone()), (200, json!(true)));
    assert_eq!(std::fs::read_to_string(&app.file)?, MANIFEST);

    // A supervised point without reviewers: an error on its node, and nothing saved.
    let add = json!([{"op": "add", "pointer": "/decision_points/-", "value": {"id": "appeal", "autonomy": "supervised", "model": "good"}}]);
    let (status, body) = app.studio(&olu, "/console/studio/check", &add, &base).await?;
    assert_eq!(status, 200);
    let errors: Vec<&Value> = body["diagnostics"]
        .as_array()
        .map(|d| d.iter().filter(|d| d["severity"] == "error").collect())
        .unwrap_or_default();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["pointer"], "/decision_points/2/autonomy");
    let (status, body) = app.studio(&olu, "/console/studio/save", &add, &base).await?;
    assert_eq!((status, body["saved"].clone()), (422, json!(false)));
    assert_eq!(std::fs::read_to_string(&app.file)?, MANIFEST, "an invalid manifest is not saved");

    // With a reviewer it saves; comments and the untouched text stay.
    let mut fixed = add.clone();
    if let Some(list) = fixed.as_array_mut() {
        list.push(json!({"op": "add", "pointer": "/decision_points/2/reviewers", "value": [{"name": "Rita Reviewer", "email": "rita@example.com"}]}));
    }
    let (status, body) = app.studio(&olu, "/console/studio/save", &fixed, &base).await?;
    assert_eq!((status, body["saved"].clone()), (200, json!(true)), "{body}");
    let saved = std::fs::read_to_string(&app.file)?;
    assert!(
        saved.starts_with(MANIFEST.split("models:").next().unwrap_or_default()),
        "the text before the new point is untouched:\n{saved}"
    );
    assert!(saved.contains("  - id: appeal\n    autonomy: supervised\n    model: good\n    reviewers: [{name: Rita Reviewer, email: rita@example.com}]\n"), "{saved}");
    let checked = psf_core::check(&saved, &psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 23) });
    assert!(checked.is_valid(), "{:?}", checked.diagnostics);
    assert!(app.events("console.action").await?.iter().any(|e| e.detail["action"] == "saved the manifest"));
    assert_eq!(body["described"], json!(["oversight: added decision_points[appeal]"]));
    let due = app.events("HO-5.review_due").await?;
    assert_eq!(due.len(), 1, "a new point's oversight is due for review");
    assert!(due[0].summary.contains("oversight review due for appeal"), "{}", due[0].summary);

    // Edits made on an older text are refused; an auditor may not edit.
    let (status, _) = app.studio(&olu, "/console/studio/save", &fixed, &base).await?;
    assert_eq!(status, 409);
    let avery = app.sign_in("avery@example.com").await?;
    assert!(app.page(&avery, "/console/studio").await?.contains("Read-only"));
    let (status, _) = app.studio(&avery, "/console/studio/check", &add, &psf_store::key_digest(&saved)).await?;
    assert_eq!(status, 403);
    // Anyone may compare the manifest with another: here, the one before the save.
    let mut form = studio_form(&avery, &json!([]), &psf_store::key_digest(&saved));
    form.push(("other".into(), MANIFEST.into()));
    let r = app.post_raw(&avery, "/console/studio/compare", &serde_urlencoded::to_string(&form)?, None).await?;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await?;
    assert_eq!(body["described"], json!(["oversight: added decision_points[appeal]"]));
    assert_eq!(body["changes"][0]["pointer"], "/decision_points/2");
    Ok(())
}

/// The right letter for each question of an exam page: the bank says which option is
/// best, the page says where it is shown.
#[expect(clippy::panic, reason = "a test helper fails loudly on a page it cannot read")]
fn right_answers(page: &str) -> Vec<(String, String)> {
    let bank = psf_core::exam::bank().unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for (i, block) in page.split("<fieldset class=\"question\" data-question=\"").skip(1).enumerate() {
        let id = block.split('"').next().unwrap_or_default();
        let q = bank.questions.iter().find(|q| q.id == id).unwrap_or_else(|| panic!("no question {id}"));
        let best = psf_assess::report::xml_escape(&q.options[q.answer]);
        let letter = block
            .split("<label class=\"check\">")
            .skip(1)
            .find(|l| l.contains(&format!(") {best}</label>")))
            .and_then(|l| l.split("value=\"").nth(1))
            .map(|v| v[..1].to_string())
            .unwrap_or_else(|| panic!("{id}: the best option is not shown"));
        out.push((format!("q{i}"), letter));
    }
    out
}

#[tokio::test]
async fn a_reviewer_takes_the_knowledge_check_and_the_team_table_shows_who_holds_a_pass() -> R {
    let app = start().await?;
    let rita = app.sign_in("rita@example.com").await?;
    let intro = app.page(&rita, "/console/exam").await?;
    assert!(intro.contains("Start the knowledge check") && intro.contains("the pass mark is 75%"));
    assert_eq!(app.post(&rita, "/console/exam/start", &[]).await?.status(), 303);
    let page = app.page(&rita, "/console/exam").await?;
    assert!(page.contains("data-deadline-ms=") && page.contains("id=\"exam-form\""));
    let answers = right_answers(&page);
    assert_eq!(answers.len(), 20);
    let fields: Vec<(&str, &str)> = answers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = app.post(&rita, "/console/exam/submit", &fields).await?;
    assert_eq!(r.status(), 200);
    let result = r.text().await?;
    assert!(result.contains("20 of 20 (100%): <strong>passed</strong>"), "{result}");
    let kept = app.store.exam_results(Some("rita@example.com"), 5).await?;
    assert_eq!((kept.len(), kept[0].passed, kept[0].right), (1, true, 20));
    assert!(app.events("console.action").await?.iter().any(|e| e.detail["action"] == "took the knowledge check"));

    // A submission with no attempt under way is not scored twice.
    assert_eq!(app.post(&rita, "/console/exam/submit", &fields).await?.status(), 303);
    // The team table: Rita holds a current pass; the manifest's other people do not.
    let olu = app.sign_in("olu@example.com").await?;
    let team = app.page(&olu, "/console/exam").await?;
    let row = |email: &str| team.split("<tr>").find(|r| r.contains(email)).unwrap_or_default().to_string();
    assert!(row("rita@example.com").contains("<strong>yes</strong>"), "{}", row("rita@example.com"));
    assert!(row("avery@example.com").contains("never"), "{}", row("avery@example.com"));
    Ok(())
}
