//! Baselines and alerts (OB-1) end to end: the real server against the mock upstream,
//! a latency step that the mock is told to take, and a local webhook receiver that
//! collects what the gateway sends — alongside one that never answers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use psf_mock::MockConfig;
use psf_testkit::app::{R, TestApp, key_for};
use psf_testkit::user;
use serde_json::Value;
use tokio::net::TcpListener;

/// What the receiver was sent, in order.
type Inbox = Arc<Mutex<Vec<Value>>>;

/// Starts a receiver on a random port: `POST /hook` collects the body and answers 200;
/// `POST /hang` holds the connection for a minute without answering.
async fn receiver() -> Result<(String, Inbox), Box<dyn std::error::Error>> {
    let inbox: Inbox = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(inbox): State<Inbox>, body: String| async move {
                if let Ok(v) = serde_json::from_str(&body) {
                    inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(v);
                }
                "ok"
            }),
        )
        .route(
            "/hang",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "too late"
            }),
        )
        .with_state(inbox.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, inbox))
}

fn manifest(receiver: &str) -> String {
    format!(
        r#"
version: 1
system:
  name: Alert test
  owner: {{name: Tess Ownby, email: tess.ownby@example.com}}
apps:
  - {{id: app, decision_point: chat, keys: [{{id: app-key, env: APP_KEY}}]}}
decision_points:
  - {{id: chat, autonomy: autonomous, model: m}}
models:
  - {{id: m, provider: mock, model: mock-model}}
providers:
  - {{id: mock, kind: openai_compatible, base_url: "${{MOCK}}", self_hosted: true}}
alerts:
  - id: latency-step
    metric: latency_p99_ms
    baseline_sigmas: 4
    baseline_minutes: 20
    window_minutes: 2
    min_requests: 3
    severity: critical
    notify: ["{receiver}/hang", "{receiver}/hook"]
gateway:
  alert_minute_ms: 200
  admin_keys: [{{id: console, env: ADMIN_KEY}}]
"#
    )
}

/// Keeps `n` clients asking, each as soon as its last answer came; returns the longest
/// wait any of them saw, when told to stop.
fn traffic(
    app: &TestApp,
    n: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Duration>> {
    (0..n)
        .map(|_| {
            let (http, url, stop) = (app.http.clone(), app.url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut longest = Duration::ZERO;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = std::time::Instant::now();
                    let sent = http
                        .post(format!("{url}/chat/completions"))
                        .bearer_auth(key_for("app"))
                        .json(&user("hello"))
                        .send()
                        .await;
                    if let Ok(r) = sent {
                        let _ = r.bytes().await;
                    }
                    longest = longest.max(t.elapsed());
                }
                longest
            })
        })
        .collect()
}

/// Waits until the inbox holds a notice with `action`, up to `within`.
async fn notice(inbox: &Inbox, action: &str, within: Duration) -> Option<Value> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        let found = inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|v| v["event_action"] == action)
            .cloned();
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn a_latency_step_fires_and_resolves_at_the_webhook_and_a_hanging_sink_slows_nothing() -> R {
    let (receiver_url, inbox) = receiver().await?;
    let mut app = psf_testkit::app::spawn(&manifest(&receiver_url), MockConfig::with_latency(10), None).await?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = traffic(&app, 6, stop.clone());

    // A baseline of fast answers: nothing fires.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty(), "a steady baseline is quiet");

    // The upstream slows tenfold: the alert fires, at the receiver that answers, while
    // the other sink hangs.
    app.mock.configure(MockConfig::with_latency(150));
    let fired = notice(&inbox, "trigger", Duration::from_secs(10)).await.ok_or("no trigger notice arrived")?;
    assert_eq!(fired["payload"]["severity"], "critical");
    assert_eq!(fired["payload"]["component"], "chat");
    assert_eq!(fired["dedup_key"], "psf/latency-step/chat");
    let text = fired["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("[FIRING] alert latency-step at chat: latency_p99_ms"), "{text}");
    assert!(text.contains("standard deviations from its baseline"), "{text}");

    // It is shown: firing in the admin API and on /metrics.
    let admin = app
        .http
        .get(format!("{}/psf/admin/alerts", app.url))
        .bearer_auth(key_for("admin"))
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert_eq!(admin["firing"][0]["rule"], "latency-step", "{admin}");
    let metrics = app.http.get(app.url.replace("/v1", "/metrics")).send().await?.text().await?;
    assert!(
        metrics.contains("psf_alerts_firing{rule=\"latency-step\",decision_point=\"chat\"} 1"),
        "{}",
        metrics.lines().filter(|l| l.contains("alert")).collect::<Vec<_>>().join("\n")
    );

    // The upstream recovers: the alert resolves.
    app.mock.configure(MockConfig::with_latency(10));
    let resolved = notice(&inbox, "resolve", Duration::from_secs(10)).await.ok_or("no resolve notice arrived")?;
    assert!(resolved["text"].as_str().unwrap_or_default().starts_with("[RESOLVED]"), "{resolved}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut longest = Duration::ZERO;
    for c in clients {
        longest = longest.max(c.await?);
    }
    // The hanging sink holds its connections for a minute and is retried; requests
    // never waited for it (they took the upstream's 150 ms, not seconds).
    assert!(longest < Duration::from_secs(3), "a request waited {longest:?}");

    // Both changes are stored as events, oldest first.
    let events = app.store.events(Some("OB-1.alert"), 0, 10).await?;
    let states: Vec<&str> = events.iter().filter_map(|e| e.detail["state"].as_str()).collect();
    assert_eq!(states, ["firing", "resolved"]);
    assert_eq!(events[0].severity, "critical");
    app.shutdown().await?;
    Ok(())
}
