//! Client API keys managed in the store (`psf keys create|list|revoke`).
//!
//! A key is shown once, when it is created; the store keeps its SHA-256 only.

use std::fmt::Write as _;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Store, StoreError, now_ms};

/// A key as the store knows it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    /// Stable id, shown in audit records.
    pub id: String,
    /// The app it belongs to.
    pub app: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// A note about who holds it.
    pub label: Option<String>,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// The subject every request with this key concerns (a per-person key), as its
    /// SHA-256 ([`crate::subject_ref`]); a request's `x-psf-subject` header wins.
    pub subject: Option<String>,
}

/// A freshly created key: the record, and the key itself to hand over once.
#[derive(Debug)]
pub struct NewKey {
    /// What the store keeps.
    pub record: KeyRecord,
    /// The key. Not stored anywhere; show it to the person once.
    pub secret: String,
}

/// Hex SHA-256 of a key, the form the store and the manifest keep.
pub fn key_digest(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::other(format!("no randomness for a key: {e}")))?;
    let mut out = String::with_capacity(bytes * 2);
    for b in buf {
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

impl Store {
    /// Creates a key for `app`, for one subject's requests if `subject` is given. The
    /// caller checks that the app exists in the manifest.
    pub async fn create_key(
        &self,
        app: &str,
        label: Option<&str>,
        subject: Option<&str>,
    ) -> Result<NewKey, StoreError> {
        let id = format!("key_{}", random_hex(6)?);
        let secret = format!("psf_{}", random_hex(24)?);
        let record = KeyRecord {
            id,
            app: app.to_string(),
            sha256: key_digest(&secret),
            label: label.map(str::to_string),
            created_ms: now_ms(),
            revoked_ms: None,
            subject: subject.map(crate::subject_ref),
        };
        sqlx::query(
            "INSERT INTO api_keys (id, app, sha256, label, created_ms, subject) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(&record.app)
        .bind(&record.sha256)
        .bind(&record.label)
        .bind(record.created_ms)
        .bind(&record.subject)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("create a key", e))?;
        Ok(NewKey { record, secret })
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, app, sha256, label, created_ms, revoked_ms, subject FROM api_keys ORDER BY created_ms, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query("list keys", e))?;
        rows.iter()
            .map(|row| {
                let get = |e| StoreError::query("read a key", e);
                Ok(KeyRecord {
                    id: row.try_get("id").map_err(get)?,
                    app: row.try_get("app").map_err(get)?,
                    sha256: row.try_get("sha256").map_err(get)?,
                    label: row.try_get("label").map_err(get)?,
                    created_ms: row.try_get("created_ms").map_err(get)?,
                    revoked_ms: row.try_get("revoked_ms").map_err(get)?,
                    subject: row.try_get("subject").map_err(get)?,
                })
            })
            .collect()
    }

    /// Revokes the key `id`. Returns false when there is no such key (or it was already revoked).
    pub async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("revoke a key", e))?;
        Ok(done.rows_affected() == 1)
    }

    /// A number that changes whenever a key is created or revoked, so a gateway can
    /// reload its keys only when they changed.
    pub async fn keys_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(MAX(created_ms), 0) + COALESCE(SUM(revoked_ms), 0) AS BIGINT) AS v FROM api_keys",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::query("read the keys' version", e))?;
        let n: i64 = row.try_get("n").map_err(|e| StoreError::query("read the keys' version", e))?;
        let v: i64 = row.try_get("v").map_err(|e| StoreError::query("read the keys' version", e))?;
        Ok(n.wrapping_mul(1_000_003).wrapping_add(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_list_revoke() -> Result<(), StoreError> {
        for store in crate::testing::stores().await {
            let v0 = store.keys_version().await?;
            let key = store.create_key("chat", Some("widget"), None).await?;
            assert!(key.secret.starts_with("psf_"));
            assert_eq!(key.record.sha256, key_digest(&key.secret));
            let v1 = store.keys_version().await?;
            assert_ne!(v0, v1);
            assert!(store.revoke_key(&key.record.id).await?);
            assert!(!store.revoke_key(&key.record.id).await?, "a second revoke changes nothing");
            assert_ne!(v1, store.keys_version().await?);
            let keys = store.keys().await?;
            assert_eq!(keys.len(), 1);
            assert!(keys[0].revoked_ms.is_some());
            // The secret is nowhere in what the store returns.
            assert!(!format!("{keys:?}").contains(&key.secret));
        }
        Ok(())
    }
}
