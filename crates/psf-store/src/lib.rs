//! psf-store: what the gateway writes down and what the assessment reads.
//!
//! The only crate that knows SQL. It holds the audit log, events, API keys, the human
//! review queue, incidents, console users, exam passes and subjects' data keys, in
//! SQLite — the embedded default, one file, no other service — or in PostgreSQL, which
//! every gateway of a cluster shares, behind the same methods (`Store` hides which
//! database it is). The schema is created and upgraded by numbered migrations kept in
//! this crate, applied at open.
//!
//! What goes in is already safe to keep: audit records hold inputs and outputs with PII
//! redacted (the gateway does that before a record exists), and keys are kept as their
//! SHA-256, never in clear.
#![deny(missing_docs)]

mod audit;
mod console;
mod error;
mod events;
mod exams;
mod incidents;
mod keys;
mod migrate;
mod retention;
mod reviews;
mod subjects;
mod summary;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, AnyRow};

pub use audit::{AuditPoint, AuditQuery, AuditRecord};
pub use console::{ConsoleSession, ConsoleUser};
pub use error::StoreError;
pub use events::Event;
pub use exams::ExamResult;
pub use incidents::{Incident, NewIncident};
pub use keys::{KeyRecord, NewKey, key_digest};
pub use retention::Swept;
pub use reviews::{Review, ReviewDecision};
pub use subjects::{Erasure, Remaining, subject_ref};
pub use summary::AuditSummary;

/// Which database a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one file, no other service (the embedded default).
    Sqlite,
    /// PostgreSQL: shared by every gateway of a cluster.
    Postgres,
}

/// A handle on the store. Cheap to clone; clones share the connection pool.
///
/// Both databases are reached through sqlx's `Any` driver with one set of statements:
/// `$N` placeholders (SQLite reads them by number too), `CAST(… AS …)` where PostgreSQL
/// must know a parameter's type, `ON CONFLICT` and `RETURNING`, which both speak. Only
/// the schema and the JSON queries of the summary differ, and say so where they do.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    url: String,
    backend: Backend,
}

impl Store {
    /// Opens the store at `url` and applies any migrations it has not had yet:
    /// `sqlite://PATH` or `sqlite:PATH` (a file, created if missing), `sqlite::memory:`,
    /// or `postgres://USER@HOST:PORT/DB` (the database must exist).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, connect_url, memory) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string(), false)
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(StoreError::url(url));
            }
            let memory = path == ":memory:";
            // `mode=rwc` creates the file when it is missing.
            let connect = if memory {
                "sqlite::memory:".to_string()
            } else {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            };
            (Backend::Sqlite, connect, memory)
        } else {
            return Err(StoreError::url(url));
        };
        let mut options = AnyPoolOptions::new();
        if backend == Backend::Sqlite {
            options = options
                // An in-memory database lives in one connection; keep exactly that one.
                .max_connections(if memory { 1 } else { 4 })
                .min_connections(if memory { 1 } else { 0 })
                .idle_timeout(if memory { None } else { Some(Duration::from_secs(600)) })
                .max_lifetime(if memory { None } else { Some(Duration::from_secs(3600)) })
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        // WAL lets the gateway write while `psf keys` and `psf assess` read.
                        // `secure_delete`: what is deleted (an erased subject, delivered held
                        // values) is overwritten, not left readable in free pages.
                        let pragmas: &[&str] = if memory {
                            &["PRAGMA foreign_keys = ON"]
                        } else {
                            &[
                                "PRAGMA busy_timeout = 5000",
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = NORMAL",
                                "PRAGMA foreign_keys = ON",
                                "PRAGMA secure_delete = ON",
                            ]
                        };
                        for pragma in pragmas {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                });
        } else {
            options = options.max_connections(8).acquire_timeout(Duration::from_secs(10));
        }
        let pool = options.connect(&connect_url).await.map_err(|e| StoreError::open(url, e))?;
        migrate::run(&pool, backend).await?;
        Ok(Store { pool, url: url.to_string(), backend })
    }

    /// The URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which database it is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The newest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM psf_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::query("read its schema version", e))?;
        Ok(v.unwrap_or(0))
    }

    /// `sqlite` or `postgres`, for messages.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Waits for every connection to finish and closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A new, empty schema on the PostgreSQL server at `base`, as a store URL that uses it:
/// for tests and staging, so that runs never share tables.
pub async fn postgres_schema_url(base: &str) -> Result<String, StoreError> {
    sqlx::any::install_default_drivers();
    let schema = new_id("psf_t")?;
    let admin = AnyPoolOptions::new().max_connections(1).connect(base).await.map_err(|e| StoreError::open(base, e))?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .map_err(|e| StoreError::query("create a schema", e))?;
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
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

fn json_column(row: &AnyRow, name: &str) -> Result<serde_json::Value, StoreError> {
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

/// Stores for tests: always an in-memory SQLite; and PostgreSQL, in a schema of its own,
/// when `PSF_TEST_DATABASE_URL` names one (`.ci/run` sets it). The same tests run on both.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A fresh PostgreSQL schema on `PSF_TEST_DATABASE_URL`, or `None` (said once per test)
    /// outside CI. A URL that is set but unusable fails the test, and so does none in CI.
    pub async fn postgres() -> Option<Store> {
        let Ok(base) = std::env::var("PSF_TEST_DATABASE_URL") else {
            // In CI (.ci/run sets the URL) a missing database fails: a skip is not a pass.
            // (psf-testkit's `need` says the same for the other crates' tests.)
            assert!(
                std::env::var_os("CI").is_none(),
                "PSF_TEST_DATABASE_URL is not set, and CI must not skip PostgreSQL"
            );
            eprintln!("skipping the PostgreSQL half: PSF_TEST_DATABASE_URL is not set");
            return None;
        };
        let url = postgres_schema_url(&base).await.unwrap();
        Some(Store::open(&url).await.unwrap())
    }

    /// Every store the tests run on.
    pub async fn stores() -> Vec<Store> {
        let mut out = vec![Store::open("sqlite::memory:").await.unwrap()];
        out.extend(postgres().await);
        out
    }
}
