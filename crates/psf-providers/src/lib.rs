//! psf-providers: talking to the models.
//!
//! The gateway's own wire format is OpenAI's Chat Completions: clients speak it, and the
//! pipeline reads and writes it. A provider takes a request in that format and returns a
//! completion, or a stream of chunks, in that format too, whatever the upstream speaks;
//! Anthropic's Messages API is translated both ways here and nowhere else. The front
//! doors clients speak besides Chat Completions (the Responses API, Anthropic's Messages)
//! are translated here too ([`door`]). So the invariant "wire formats never leak past
//! psf-providers" holds by construction.
//!
//! A reply of the wrong shape never reaches the gateway: [`shape`] checks each completion
//! and chunk at this boundary and makes it a malformed-reply error.
//!
//! Errors are data: each says where it came from (connect, timeout, status, malformed
//! reply) and whether trying again or falling back can help, so the router decides on
//! facts rather than on error strings.
#![deny(missing_docs)]

mod anthropic;
pub mod door;
mod error;
mod openai;
pub mod shape;
pub mod sse;

use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use serde_json::{Map, Value};

pub use error::{ErrorKind, ProviderError};

/// A stream of OpenAI-format `chat.completion.chunk` objects.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Value, ProviderError>> + Send>>;

/// The wire protocol an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI Chat Completions at `{base_url}/chat/completions`, bearer auth (OpenAI,
    /// vLLM, Ollama, llama.cpp server and other compatible servers).
    OpenAi,
    /// Azure OpenAI: `base_url` is the deployment's URL
    /// (`https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT`), `api-key` auth.
    AzureOpenAi,
    /// Anthropic's Messages API at `{base_url}/v1/messages`.
    Anthropic,
}

/// One upstream endpoint, ready to call. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The provider's id in the manifest, used in errors and audit records.
    pub id: String,
    protocol: Protocol,
    base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

/// Limits on what an upstream may send back.
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimits {
    /// Largest non-streaming reply body, in bytes.
    pub max_body_bytes: usize,
    /// Largest single SSE event, in bytes.
    pub max_event_bytes: usize,
    /// Longest silence between two stream events before the stream is cut.
    pub stream_idle: Duration,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits { max_body_bytes: 16 << 20, max_event_bytes: 1 << 20, stream_idle: Duration::from_secs(30) }
    }
}

/// A shared HTTP client for all providers: pooled connections, HTTP/1.1 and HTTP/2 (by ALPN).
pub fn http_client() -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ProviderError::new("client", ErrorKind::Config, format!("HTTP client: {e}")))
}

impl Provider {
    /// A provider at `base_url` speaking `protocol`, authenticated with `api_key`.
    pub fn new(
        id: impl Into<String>,
        protocol: Protocol,
        base_url: &str,
        api_key: Option<String>,
        http: reqwest::Client,
    ) -> Provider {
        Provider { id: id.into(), protocol, base_url: base_url.trim_end_matches('/').to_string(), api_key, http }
    }

    /// The protocol this provider speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sends `request` (an OpenAI Chat Completions body, `stream` ignored) for `model`,
    /// and returns the OpenAI-format completion.
    pub async fn complete(
        &self,
        request: &Map<String, Value>,
        model: &str,
        limits: ReplyLimits,
    ) -> Result<Value, ProviderError> {
        match self.protocol {
            Protocol::OpenAi | Protocol::AzureOpenAi => openai::complete(self, request, model, limits).await,
            Protocol::Anthropic => anthropic::complete(self, request, model, limits).await,
        }
    }

    /// Sends `request` as a streaming call for `model`. Returns once the upstream has
    /// answered with a success status, so a failure before the first byte can still fall
    /// back; the stream yields OpenAI-format chunks.
    pub async fn stream(
        &self,
        request: &Map<String, Value>,
        model: &str,
        limits: ReplyLimits,
    ) -> Result<ChunkStream, ProviderError> {
        match self.protocol {
            Protocol::OpenAi | Protocol::AzureOpenAi => openai::stream(self, request, model, limits).await,
            Protocol::Anthropic => anthropic::stream(self, request, model, limits).await,
        }
    }

    /// Sends an embeddings request (an OpenAI `/embeddings` body) for `model`, and returns
    /// the reply. Anthropic serves no embeddings: that is [`ErrorKind::Unsupported`].
    pub async fn embed(
        &self,
        request: &Map<String, Value>,
        model: &str,
        limits: ReplyLimits,
    ) -> Result<Value, ProviderError> {
        match self.protocol {
            Protocol::OpenAi | Protocol::AzureOpenAi => openai::embed(self, request, model, limits).await,
            Protocol::Anthropic => Err(ProviderError::new(
                &self.id,
                ErrorKind::Unsupported,
                "the request asks for embeddings, which Anthropic's API does not serve",
            )),
        }
    }

    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, ProviderError> {
        let mut req = self.http.post(url).header("content-type", "application/json").body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = req.send().await.map_err(|e| ProviderError::from_reqwest(&self.id, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // A little of the body helps whoever reads the audit log; never more.
        let text = read_limited(response, 2048).await.unwrap_or_default();
        Err(ProviderError::status(&self.id, status.as_u16(), retry_after, &text))
    }
}

/// Reads a body up to `limit` bytes; more is an error, never a silent truncation, unless
/// the caller only wants a prefix (error bodies), in which case it is cut at `limit`.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<String, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| ProviderError::from_reqwest("upstream", e))? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn read_json(provider: &str, mut response: reqwest::Response, limit: usize) -> Result<Value, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| ProviderError::from_reqwest(provider, e))? {
        if body.len() + chunk.len() > limit {
            return Err(ProviderError::new(
                provider,
                ErrorKind::Malformed,
                format!("the reply is larger than {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| ProviderError::new(provider, ErrorKind::Malformed, format!("the reply is not JSON: {e}")))
}

/// The events of an SSE response body as a stream of `data` payloads, with the idle
/// timeout and event size limit applied.
fn sse_events(
    provider: String,
    response: reqwest::Response,
    limits: ReplyLimits,
) -> impl Stream<Item = Result<sse::Event, ProviderError>> + Send {
    let body = response.bytes_stream();
    futures_util::stream::unfold(
        (Box::pin(body), sse::Decoder::new(limits.max_event_bytes), std::collections::VecDeque::new(), false),
        move |(mut body, mut decoder, mut queue, mut done)| {
            let provider = provider.clone();
            async move {
                loop {
                    if let Some(event) = queue.pop_front() {
                        return Some((Ok(event), (body, decoder, queue, done)));
                    }
                    if done {
                        return None;
                    }
                    let next = tokio_timeout(limits.stream_idle, futures_util::StreamExt::next(&mut body)).await;
                    match next {
                        None => {
                            done = true;
                            let err = ProviderError::new(
                                &provider,
                                ErrorKind::Timeout,
                                format!("the stream was idle for {} ms", limits.stream_idle.as_millis()),
                            );
                            return Some((Err(err), (body, decoder, queue, done)));
                        }
                        Some(None) => {
                            done = true;
                            queue.extend(decoder.finish());
                        }
                        Some(Some(Err(e))) => {
                            done = true;
                            return Some((
                                Err(ProviderError::from_reqwest(&provider, e)),
                                (body, decoder, queue, done),
                            ));
                        }
                        Some(Some(Ok(bytes))) => match decoder.push(&bytes) {
                            Ok(events) => queue.extend(events),
                            Err(e) => {
                                done = true;
                                let err = ProviderError::new(&provider, ErrorKind::Malformed, e.to_string());
                                return Some((Err(err), (body, decoder, queue, done)));
                            }
                        },
                    }
                }
            }
        },
    )
}

/// `None` when `duration` passes first.
async fn tokio_timeout<F: std::future::Future>(duration: Duration, f: F) -> Option<F::Output> {
    tokio::time::timeout(duration, f).await.ok()
}
