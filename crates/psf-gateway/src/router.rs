//! The router (MS-4, DG-5): the decision point's model chain, tried in order, with a
//! per-attempt and a total timeout, retries with jittered back-off, and a circuit
//! breaker per model endpoint. Falls back on connect errors, timeouts, 429, 5xx and malformed
//! replies; never on a client error, which would fail the same way everywhere.
//! For a stream, a provider counts as answering only once its first chunk has arrived,
//! so a failure before the first byte to the client still falls back.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use psf_providers::{ChunkStream, ErrorKind, ProviderError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{ChainLink, Point};
use crate::incident::KillSwitch;
use crate::metrics::{Attempt as AttemptLabel, Metrics, ModelLabel, ProviderLabel};

/// One upstream attempt, for the audit record.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// The manifest's model id.
    pub model: String,
    /// The provider's id.
    pub provider: String,
    /// `ok`, or the failure's code (`timeout`, `status_503`, `circuit_open`, `region_not_allowed` …).
    pub outcome: String,
    /// Milliseconds it took.
    pub ms: f64,
}

/// What the chain is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A whole completion.
    Complete,
    /// A stream of chunks.
    Stream,
    /// Embeddings.
    Embed,
}

/// What the chain produced.
pub enum Answer {
    /// A whole completion.
    Complete(Value),
    /// A stream whose first chunk has arrived.
    Stream(Value, ChunkStream),
    /// An embeddings reply.
    Embedding(Value),
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Complete(v) => f.debug_tuple("Complete").field(v).finish(),
            Answer::Stream(first, _) => f.debug_tuple("Stream").field(first).finish_non_exhaustive(),
            Answer::Embedding(v) => f.debug_tuple("Embedding").field(v).finish(),
        }
    }
}

/// The outcome of routing one request.
#[derive(Debug)]
pub struct Routed {
    /// The answer, or why there is none.
    pub result: Result<(Answer, usize), Failure>,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Time spent waiting on upstreams.
    pub upstream: Duration,
}

/// Why the chain produced no answer.
#[derive(Debug)]
pub enum Failure {
    /// An upstream refused the request itself (a 4xx other than 408/429).
    Rejected(ProviderError),
    /// Every model in the chain failed, was skipped, or time ran out.
    Unavailable,
    /// No model in the chain may receive this request's data (DG-5): a defined refusal,
    /// never a degraded answer that hides it.
    Residency,
}

/// What, beside the chain itself, decides where a request may go.
#[derive(Debug)]
pub struct Guards<'a> {
    /// Incidents in force (providers cut out).
    pub kill: &'a KillSwitch,
    /// Classes of personal data the request carries to the model, with the regions each
    /// may be processed in.
    pub residency: Vec<(&'static str, &'a [String])>,
}

fn jitter_ms(base: u64) -> u64 {
    let mut b = [0u8; 2];
    let r = getrandom::fill(&mut b).map(|()| u64::from(u16::from_le_bytes(b))).unwrap_or(0);
    base / 2 + r % base.max(1)
}

/// Tries the chain.
pub async fn route(
    point: &Point,
    body: &Map<String, Value>,
    call: Call,
    retries: u32,
    limits: psf_providers::ReplyLimits,
    metrics: &Metrics,
    guards: &Guards<'_>,
) -> Routed {
    let deadline = Instant::now() + point.total_timeout;
    let mut attempts = Vec::new();
    let mut upstream = Duration::ZERO;
    let mut outside = 0;
    for (index, link) in point.chain.iter().enumerate() {
        if !link.region_allowed {
            attempts.push(skip(link, "region_not_allowed"));
            outside += 1;
            continue;
        }
        if let Some((class, _)) = guards.residency.iter().find(|(_, regions)| !link.serves_in(regions)) {
            attempts.push(skip(link, &format!("residency_{class}")));
            outside += 1;
            continue;
        }
        // A provider cut out by an incident (IR-2) is skipped; its fallbacks serve.
        if guards.kill.provider_cut(&link.provider.id).is_some() {
            attempts.push(skip(link, "incident_isolated"));
            continue;
        }
        for try_no in 0..=retries {
            if !link.breaker.allow() {
                attempts.push(skip(link, "circuit_open"));
                break;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                link.breaker.release();
                return Routed { result: Err(Failure::Unavailable), attempts, upstream };
            }
            let t = Instant::now();
            let result = attempt(link, body, call, link.timeout.min(remaining), limits).await;
            let took = t.elapsed();
            upstream += took;
            metrics
                .upstream
                .get_or_create(&ProviderLabel { provider: link.provider.id.clone() })
                .observe(took.as_secs_f64());
            let outcome = match &result {
                Ok(_) => "ok".to_string(),
                Err(e) => e.code(),
            };
            metrics
                .attempts
                .get_or_create(&AttemptLabel { provider: link.provider.id.clone(), result: outcome.clone() })
                .inc();
            attempts.push(Attempt {
                model: link.model_id.clone(),
                provider: link.provider.id.clone(),
                outcome,
                ms: took.as_secs_f64() * 1000.0,
            });
            match result {
                Ok(answer) => {
                    link.breaker.success();
                    return Routed { result: Ok((answer, index)), attempts, upstream };
                }
                Err(e) => {
                    if e.is_provider_fault() {
                        link.breaker.failure();
                    } else {
                        link.breaker.release();
                    }
                    update_breaker_gauge(metrics, link);
                    if !e.is_retryable() {
                        return Routed { result: Err(Failure::Rejected(e)), attempts, upstream };
                    }
                    tracing::warn!(provider = %link.provider.id, model = %link.model_id, error = %e, "upstream attempt failed");
                    // A 429 says this provider is busy now: go on to the next one.
                    let busy = matches!(e.kind, ErrorKind::Status { code: 429, .. });
                    if busy || try_no == retries {
                        break;
                    }
                    let backoff = Duration::from_millis(jitter_ms(50 << try_no));
                    if Instant::now() + backoff >= deadline {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
    let failure = if outside == point.chain.len() { Failure::Residency } else { Failure::Unavailable };
    Routed { result: Err(failure), attempts, upstream }
}

fn update_breaker_gauge(metrics: &Metrics, link: &ChainLink) {
    let open = i64::from(link.breaker.is_open());
    metrics
        .breaker_open
        .get_or_create(&ModelLabel { provider: link.provider.id.clone(), model: link.model_id.clone() })
        .set(open);
}

fn skip(link: &ChainLink, why: &str) -> Attempt {
    Attempt { model: link.model_id.clone(), provider: link.provider.id.clone(), outcome: why.to_string(), ms: 0.0 }
}

async fn attempt(
    link: &ChainLink,
    body: &Map<String, Value>,
    call: Call,
    timeout: Duration,
    limits: psf_providers::ReplyLimits,
) -> Result<Answer, ProviderError> {
    let timed_out = || {
        ProviderError::new(
            &link.provider.id,
            ErrorKind::Timeout,
            format!("no answer within {} ms", timeout.as_millis()),
        )
    };
    match call {
        Call::Complete => {
            return tokio::time::timeout(timeout, link.provider.complete(body, &link.model, limits))
                .await
                .map_err(|_| timed_out())?
                .map(Answer::Complete);
        }
        Call::Embed => {
            return tokio::time::timeout(timeout, link.provider.embed(body, &link.model, limits))
                .await
                .map_err(|_| timed_out())?
                .map(Answer::Embedding);
        }
        Call::Stream => {}
    }
    tokio::time::timeout(timeout, async {
        let mut chunks = link.provider.stream(body, &link.model, limits).await?;
        match chunks.next().await {
            Some(Ok(first)) => Ok(Answer::Stream(first, chunks)),
            Some(Err(e)) => Err(e),
            None => {
                Err(ProviderError::new(&link.provider.id, ErrorKind::Malformed, "the stream ended before any chunk"))
            }
        }
    })
    .await
    .map_err(|_| timed_out())?
}
