//! The gateway under test: the real server on a random 127.0.0.1 port, a real store
//! (a fresh SQLite file unless one is given), and the mock upstream speaking the real
//! provider protocols. Manifests name the mock's URLs as `${MOCK}` (OpenAI) and
//! `${MOCK_ANTHROPIC}`; an app's key variable `NAME_KEY` resolves to [`key_for`]`("name")`.

use std::time::Duration;

use psf_gateway::{Compiled, Gateway};
use psf_mock::{MockConfig, MockServer};
use psf_store::{AuditQuery, AuditRecord, Store};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What a test returns.
pub type R = Result<(), Box<dyn std::error::Error>>;

/// The client key of `app` in a test manifest.
pub fn key_for(app: &str) -> String {
    format!("test-key-{app}")
}

/// A running gateway and its mock.
#[derive(Debug)]
pub struct TestApp {
    /// The gateway's base URL, `http://127.0.0.1:PORT/v1`.
    pub url: String,
    /// The mock upstream.
    pub mock: MockServer,
    /// A second handle on the gateway's store, for reading what it wrote.
    pub store: Store,
    /// A client.
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<u64>>>,
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
    /// Posts `body` to `/chat/completions` with `app`'s key.
    pub async fn chat(&self, app: &str, body: Value) -> Result<reqwest::Response, reqwest::Error> {
        self.http.post(format!("{}/chat/completions", self.url)).bearer_auth(key_for(app)).json(&body).send().await
    }

    /// The gateway's origin, `http://127.0.0.1:PORT` (for the admin and review paths).
    pub fn base(&self) -> String {
        self.url.trim_end_matches("/v1").to_string()
    }

    /// `GET` an admin path with the key of the app `admin`.
    pub async fn admin_get(&self, path: &str) -> Result<reqwest::Response, reqwest::Error> {
        self.http.get(format!("{}{path}", self.base())).bearer_auth(key_for("admin")).send().await
    }

    /// `POST` JSON to an admin path with the key of the app `admin`.
    pub async fn admin_post(&self, path: &str, body: Value) -> Result<reqwest::Response, reqwest::Error> {
        self.http.post(format!("{}{path}", self.base())).bearer_auth(key_for("admin")).json(&body).send().await
    }

    /// Collects a held answer's decision from its status URL with `app`'s key.
    pub async fn collect(&self, app: &str, status_url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        let r = self.http.get(format!("{}{status_url}", self.base())).bearer_auth(key_for(app)).send().await?;
        if r.status() != 200 {
            return Err(format!("{status_url} answered {}", r.status()).into());
        }
        Ok(r.json().await?)
    }

    /// The stored events of `kind`.
    pub async fn events(&self, kind: &str) -> Result<Vec<psf_store::Event>, Box<dyn std::error::Error>> {
        Ok(self.store.events(Some(kind), 0, 100).await?)
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
