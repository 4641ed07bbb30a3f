//! psf-store: what the gateway writes down and what the assessment reads.
//!
//! The only crate that knows SQL. Today it holds the audit log, events, API keys, the
//! human review queue and incidents, in SQLite — the embedded default, one file, no other service. The schema is created and
//! upgraded by numbered migrations kept in this crate, applied at open. PostgreSQL for
//! a cluster arrives behind the same methods (`Store` hides which database it is).
//!
//! What goes in is already safe to keep: audit records hold inputs and outputs with PII
//! redacted (the gateway does that before a record exists), and keys are kept as their
//! SHA-256, never in clear.
#![deny(missing_docs)]

mod audit;
mod error;
mod events;
mod incidents;
mod keys;
mod migrate;
mod retention;
mod reviews;
mod subjects;
mod summary;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use audit::{AuditQuery, AuditRecord};
pub use error::StoreError;
pub use events::Event;
pub use incidents::{Incident, NewIncident};
pub use keys::{KeyRecord, NewKey, key_digest};
pub use retention::Swept;
pub use reviews::{Review, ReviewDecision};
pub use subjects::{Erasure, Remaining, subject_ref};
pub use summary::AuditSummary;

/// A handle on the store. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    url: String,
}

impl Store {
    /// Opens (creating if needed) the store at `url`: `sqlite://PATH`, `sqlite:PATH` or
    /// `sqlite::memory:`. Applies any migrations the file has not had yet.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::url(url))?;
        let memory = path == ":memory:";
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| StoreError::open(url, e))?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                // WAL lets the gateway write while `psf keys` and `psf assess` read.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        }
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            // An in-memory database lives in one connection; keep exactly that one.
            .max_connections(if memory { 1 } else { 4 })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if memory { None } else { Some(Duration::from_secs(3600)) })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::open(url, e))?;
        migrate::run(&pool).await?;
        Ok(Store { pool, url: url.to_string() })
    }

    /// The URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits for every connection to finish and closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A fresh id: `prefix` and a time-ordered random suffix (`rev_…`, `inc_…`).
pub fn new_id(prefix: &str) -> Result<String, StoreError> {
    let mut buf = [0u8; 10];
    getrandom::fill(&mut buf).map_err(|e| StoreError::other(format!("no randomness for an id: {e}")))?;
    let mut out = format!("{prefix}_{:011x}", now_ms());
    for b in buf {
        out.push_str(&format!("{b:02x}"));
    }
    Ok(out)
}

fn json_column(row: &sqlx::sqlite::SqliteRow, name: &str) -> Result<serde_json::Value, StoreError> {
    use sqlx::Row as _;
    let text: String = row.try_get(name).map_err(|e| StoreError::query("read a JSON column", e))?;
    serde_json::from_str(&text).map_err(|e| StoreError::other(format!("column `{name}` is not JSON: {e}")))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
