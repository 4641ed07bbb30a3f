//! Cluster mode's shared state in Redis: request rate limits that hold across every
//! gateway (IG-4), and incident changes pushed to every instance (IR-2).
//!
//! Rate limits are GCRA buckets evaluated by one Lua script on Redis's own clock, all the
//! buckets of a request at once, all or nothing: no instance's clock matters, and a
//! request refused by its app's bucket does not use up its key's. When Redis cannot be
//! reached the gateway falls back to its own limiter (per instance) and says so in the
//! log; the connection manager reconnects by itself, so limits are shared again as soon
//! as Redis is back. Incident pushes only make changes arrive sooner: every instance
//! still re-reads the store every 250 ms, so a missed message cannot leave it open.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands as _, Script};
use sha2::{Digest, Sha256};

/// The channel incident changes are announced on.
pub const INCIDENTS_CHANNEL: &str = "psf:incidents";

const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat - tolerance
  if now < allow_at then
    return {i, allow_at - now}
  end
  tats[i] = tat + interval
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%d', tats[i]), 'PX', math.floor((tats[i] - now) / 1000) + 1000)
end
return {0, 0}
"#;

/// One bucket of a request: its Redis key and its GCRA parameters in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Which bucket, for the refusal.
    pub index: usize,
    /// The Redis key.
    pub key: String,
    /// Time between requests at the steady rate.
    pub interval_us: u64,
    /// How far ahead of the steady rate a burst may go.
    pub tolerance_us: u64,
}

/// A connection to the cluster's Redis.
#[derive(Clone)]
pub struct Cluster {
    conn: ConnectionManager,
    script: Script,
    namespace: String,
    url: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to Redis at `url`. Gateways that share `store_url` are one cluster and
    /// share buckets; the namespace is a hash of it, so clusters never mix.
    pub async fn connect(url: &str, store_url: &str) -> Result<Cluster, String> {
        let client = redis::Client::open(url).map_err(|e| format!("`{url}` is not a Redis URL: {e}"))?;
        let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
            .await
            .map_err(|_| format!("Redis at {url} did not answer within 5 s"))?
            .map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
        let digest = Sha256::digest(store_url.as_bytes());
        let namespace: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Ok(Cluster { conn, script: Script::new(GCRA), namespace, url: url.to_string() })
    }

    /// The Redis key of a bucket: one hash tag per cluster, so one script can touch
    /// all of a request's buckets even on a Redis Cluster.
    pub fn key(&self, scope: &str, name: &str) -> String {
        format!("psf:{{{}}}:rl:{scope}:{name}", self.namespace)
    }

    /// Takes one request from every bucket, or from none: `Ok(None)` when allowed,
    /// `Ok(Some((index, wait)))` naming the first bucket that refused.
    pub async fn take(&self, buckets: &[Bucket]) -> Result<Option<(usize, Duration)>, redis::RedisError> {
        if buckets.is_empty() {
            return Ok(None);
        }
        let mut invocation = self.script.prepare_invoke();
        for b in buckets {
            invocation.key(&b.key).arg(b.interval_us).arg(b.tolerance_us);
        }
        let mut conn = self.conn.clone();
        let (at, wait_us): (usize, u64) = invocation.invoke_async(&mut conn).await?;
        Ok(match at {
            0 => None,
            i => Some((buckets.get(i - 1).map_or(0, |b| b.index), Duration::from_micros(wait_us))),
        })
    }

    /// Announces that incidents changed, so every instance re-reads them now.
    pub async fn announce_incidents(&self, id: &str) {
        let mut conn = self.conn.clone();
        let sent: Result<i64, _> = conn.publish(INCIDENTS_CHANNEL, id).await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not announce an incident change; instances pick it up within 250 ms");
        }
    }

    /// The Redis URL, for subscribing.
    pub fn url(&self) -> &str {
        &self.url
    }
}
