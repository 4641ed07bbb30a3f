//! The harness for the gateway's integration tests: the real server on a random port,
//! a real SQLite store, and the mock upstream speaking the real provider protocols.

use std::time::Duration;

use psf_gateway::{Compiled, Gateway};
use psf_mock::{MockConfig, MockServer};
use psf_store::{AuditQuery, AuditRecord, Store};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub type R = Result<(), Box<dyn std::error::Error>>;

pub fn key_for(app: &str) -> String {
    format!("test-key-{app}")
}

pub struct TestApp {
    pub url: String,
    pub mock: MockServer,
    pub store: Store,
    pub http: reqwest::Client,
    pub stop: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<u64>>>,
}

/// Starts the gateway for `manifest` against a fresh mock with `config`, on the store at
/// `store_url` (a fresh SQLite file when `None`: two gateways may share one).
pub async fn spawn(
    manifest: &str,
    config: MockConfig,
    store_url: Option<String>,
) -> Result<TestApp, Box<dyn std::error::Error>> {
    spawn_clustered(manifest, config, store_url, None).await
}

/// [`spawn`], in cluster mode with Redis at `redis_url`.
pub async fn spawn_clustered(
    manifest: &str,
    config: MockConfig,
    store_url: Option<String>,
    redis_url: Option<&str>,
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let mock = MockServer::bind("127.0.0.1:0", config).await?;
    let (openai, anthropic) = (mock.openai_url(), mock.anthropic_url());
    let env = move |name: &str| -> Option<String> {
        match name {
            "MOCK" => Some(openai.clone()),
            "MOCK_ANTHROPIC" => Some(anthropic.clone()),
            _ => name.strip_suffix("_KEY").map(|app| key_for(&app.to_lowercase())),
        }
    };
    let options = psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 23) };
    let manifest = psf_core::load(manifest, &options, &env).map_err(|d| format!("{d:?}"))?;
    let compiled = Compiled::new(manifest, &env)?;
    let store_url = match store_url {
        Some(url) => url,
        None => fresh_store_url()?,
    };
    let store = Store::open(&store_url).await?;
    let cluster = match redis_url {
        Some(r) => Some(psf_gateway::cluster::Cluster::connect(r, &store_url).await?),
        None => None,
    };
    let (gateway, writer) = Gateway::clustered(compiled, store.clone(), cluster).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(psf_gateway::serve(listener, gateway, writer, async {
        let _ = stopped.await;
    }));
    let reader = Store::open(&store_url).await?;
    Ok(TestApp { url, mock, store: reader, http: reqwest::Client::new(), stop: Some(stop), server: Some(server) })
}

/// A new SQLite file in the temporary directory.
pub fn fresh_store_url() -> Result<String, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("psf-gw-{}-{}", std::process::id(), uuid_like()));
    std::fs::create_dir_all(&dir)?;
    Ok(format!("sqlite://{}", dir.join("psf.db").display()))
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

impl TestApp {
    pub async fn chat(&self, app: &str, body: Value) -> Result<reqwest::Response, reqwest::Error> {
        self.http.post(format!("{}/chat/completions", self.url)).bearer_auth(key_for(app)).json(&body).send().await
    }

    /// Stops the server (draining requests and the audit queue); returns records written.
    pub async fn shutdown(&mut self) -> Result<u64, Box<dyn std::error::Error>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => Ok(server.await??),
            None => Ok(0),
        }
    }

    /// The audit record of a request, waiting briefly for the batched writer.
    pub async fn audit(&self, request_id: &str) -> Result<AuditRecord, Box<dyn std::error::Error>> {
        for _ in 0..100 {
            let q = AuditQuery { request_id: Some(request_id.to_string()), ..AuditQuery::default() };
            if let Some(r) = self.store.audit_records(&q).await?.into_iter().next() {
                return Ok(r);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("no audit record for {request_id}").into())
    }
}

pub fn user(text: &str) -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": text}]})
}

pub fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

pub async fn sse(r: reqwest::Response) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let text = r.text().await?;
    Ok(text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect())
}
