//! Cluster mode's shared state in Redis: request rate limits that hold across every
//! gateway (IG-4), and incident changes pushed to every instance (IR-2).
//!
//! Rate limits are GCRA buckets evaluated by one Lua script on Redis's own clock, all the
//! buckets of a request at once, all or nothing: no instance's clock matters, and a
//! request refused by its app's bucket does not use up its key's. When Redis cannot be
//! reached within [`DEADLINE`] the manifest's `rate_limits.on_store_unreachable` decides:
//! refuse (`fail_closed`) or fall back to the instance's own limiter (`local_limits`).
//! Either way the request gets its answer within the deadline. The connection manager
//! reconnects by itself with a short, capped back-off, so limits are shared again within
//! about a second of Redis coming back. Incident pushes only make changes arrive sooner: every instance
//! still re-reads the store every 250 ms, so a missed message cannot leave it open.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};
use sha2::{Digest, Sha256};

/// How long a request waits for Redis before the fail mode decides. A GCRA evaluation
/// takes well under a millisecond on a healthy Redis; this only bounds a sick one.
pub const DEADLINE: Duration = Duration::from_millis(250);

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
        // Bounded everywhere: a reply within the deadline, a connection attempt within a
        // second, and reconnection attempts no more than 500 ms apart, for as long as it
        // takes (the default gives up after six and waits out an exponential back-off).
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(DEADLINE)
            .set_connection_timeout(Duration::from_secs(1))
            .set_factor(50)
            .set_max_delay(500)
            .set_number_of_retries(usize::MAX);
        let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new_with_config(client, config))
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
    /// `Ok(Some((index, wait)))` naming the first bucket that refused; an error when Redis
    /// did not answer within [`DEADLINE`].
    pub async fn take(&self, buckets: &[Bucket]) -> Result<Option<(usize, Duration)>, String> {
        match tokio::time::timeout(DEADLINE, self.evaluate(buckets)).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("Redis did not answer within {} ms", DEADLINE.as_millis())),
        }
    }

    async fn evaluate(&self, buckets: &[Bucket]) -> Result<Option<(usize, Duration)>, redis::RedisError> {
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

    /// Whether Redis answers a PING within the deadline, for `/readyz`.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let ping = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
        match tokio::time::timeout(DEADLINE, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("Redis did not answer within {} ms", DEADLINE.as_millis())),
        }
    }

    /// Announces that incidents changed, so every instance re-reads them now. Bounded by
    /// the deadline: the poll picks the change up anyway.
    pub async fn announce_incidents(&self, id: &str) {
        let mut conn = self.conn.clone();
        let publish = async move { conn.publish::<_, _, i64>(INCIDENTS_CHANNEL, id).await.map_err(|e| e.to_string()) };
        let sent = tokio::time::timeout(DEADLINE, publish).await.unwrap_or_else(|_| Err("timed out".into()));
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not announce an incident change; instances pick it up within 250 ms");
        }
    }

    /// The Redis URL, for subscribing.
    pub fn url(&self) -> &str {
        &self.url
    }
}
