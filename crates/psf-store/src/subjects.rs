//! Personal data kept per subject, and its erasure (DG-3).
//!
//! The only personal data psf keeps in a form that can be read back is the caller's
//! values behind the placeholders of an answer held for review. They are sealed with
//! ChaCha20-Poly1305 under a data key of their own subject (or of the review, when the
//! request named no subject). Erasing a subject destroys its key — what was sealed under
//! it can no longer be read, wherever a copy went — and deletes its rows. Subjects are
//! stored as their SHA-256, never as the identifier the client sent.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::{Store, StoreError, key_digest, new_id, now_ms};

/// How a subject is stored: the SHA-256 of its identifier, so the store holds no
/// identifier that names a person.
pub fn subject_ref(subject: &str) -> String {
    format!("sub_{}", key_digest(subject))
}

/// What an erasure removed: the receipt given to whoever asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    /// `era_…`, to quote.
    pub id: String,
    /// The subject as stored (its SHA-256).
    pub subject: String,
    /// Who asked for it.
    pub requested_by: String,
    /// When (ms since the epoch).
    pub erased_ms: i64,
    /// Data keys destroyed.
    pub keys_destroyed: u64,
    /// Sealed values deleted.
    pub held_values: u64,
    /// Audit records deleted.
    pub audit_records: u64,
    /// Reviews deleted.
    pub reviews: u64,
}

/// What is still there for a subject; all zero after an erasure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Remaining {
    /// Data keys.
    pub keys: u64,
    /// Sealed values (readable or not).
    pub held_values: u64,
    /// Audit records.
    pub audit_records: u64,
    /// Reviews.
    pub reviews: u64,
}

impl Remaining {
    /// Whether nothing of the subject is left.
    pub fn is_empty(&self) -> bool {
        *self == Remaining::default()
    }
}

fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::other(format!("no randomness for a data key: {e}")))?;
    Ok(buf)
}

fn cipher(key: &[u8]) -> Result<LessSafeKey, StoreError> {
    UnboundKey::new(&CHACHA20_POLY1305, key)
        .map(LessSafeKey::new)
        .map_err(|_| StoreError::other("a data key in the store has the wrong length"))
}

impl Store {
    /// The data key of `key_id`, created on first use.
    async fn data_key(&self, key_id: &str) -> Result<Vec<u8>, StoreError> {
        let fresh = random::<32>()?;
        sqlx::query(
            "INSERT INTO data_keys (key_id, key, created_ms) VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(key_id)
        .bind(fresh.as_slice())
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("create a data key", e))?;
        sqlx::query_scalar("SELECT key FROM data_keys WHERE key_id = $1")
            .bind(key_id)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::query("read a data key", e))
    }

    /// Seals the values behind a held answer under its subject's key (`subject` as
    /// [`subject_ref`] gives it), or under a key of the review's own.
    pub async fn seal_held_values(
        &self,
        review_id: &str,
        subject: Option<&str>,
        plain: &[u8],
    ) -> Result<(), StoreError> {
        let key_id = subject.map_or_else(|| format!("review:{review_id}"), str::to_string);
        let key = cipher(&self.data_key(&key_id).await?)?;
        let nonce = random::<NONCE_LEN>()?;
        let mut sealed = plain.to_vec();
        // The review id is bound in as associated data: a sealed blob cannot be moved to
        // another review and opened there.
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(review_id.as_bytes()), &mut sealed)
            .map_err(|_| StoreError::other("could not seal held values"))?;
        sqlx::query(
            "INSERT INTO held_values (review_id, key_id, nonce, sealed) VALUES ($1, $2, $3, $4)
             ON CONFLICT (review_id) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, sealed = excluded.sealed",
        )
            .bind(review_id)
            .bind(&key_id)
            .bind(nonce.as_slice())
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("keep held values", e))?;
        Ok(())
    }

    /// The values behind a held answer, or `None` when there are none or they can no
    /// longer be read (the subject was erased).
    pub async fn open_held_values(&self, review_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query(
            "SELECT h.nonce, h.sealed, k.key FROM held_values h JOIN data_keys k ON k.key_id = h.key_id WHERE h.review_id = $1",
        )
        .bind(review_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StoreError::query("read held values", e))?;
        let Some(row) = row else { return Ok(None) };
        let get = |e| StoreError::query("read a held value column", e);
        let nonce: Vec<u8> = row.try_get("nonce").map_err(get)?;
        let mut sealed: Vec<u8> = row.try_get("sealed").map_err(get)?;
        let key: Vec<u8> = row.try_get("key").map_err(get)?;
        let nonce = Nonce::try_assume_unique_for_key(&nonce)
            .map_err(|_| StoreError::other("a held value's nonce is damaged"))?;
        let plain = cipher(&key)?
            .open_in_place(nonce, Aad::from(review_id.as_bytes()), &mut sealed)
            .map_err(|_| StoreError::other(format!("the held values of review `{review_id}` fail authentication")))?;
        Ok(Some(plain.to_vec()))
    }

    /// Deletes the values behind a held answer once it has been delivered, with the
    /// review's own data key where it had one: nothing of the caller's is kept longer
    /// than it is needed.
    pub async fn forget_held_values(&self, review_id: &str) -> Result<(), StoreError> {
        let own_key = format!("review:{review_id}");
        for sql in ["DELETE FROM held_values WHERE review_id = $1", "DELETE FROM data_keys WHERE key_id = $1"] {
            let arg = if sql.contains("held_values") { review_id } else { own_key.as_str() };
            sqlx::query(sql)
                .bind(arg)
                .execute(&self.pool)
                .await
                .map_err(|e| StoreError::query("forget held values", e))?;
        }
        Ok(())
    }

    /// Erases a subject: destroys its data key, deletes what was sealed under it, its
    /// audit records and reviews, and keeps a receipt (holding the subject's hash only).
    pub async fn erase_subject(&self, subject: &str, requested_by: &str) -> Result<Erasure, StoreError> {
        let sref = subject_ref(subject);
        let mut tx = self.pool.begin().await.map_err(|e| StoreError::query("begin an erasure", e))?;
        let mut n = [0u64; 4];
        for (i, sql) in [
            "DELETE FROM data_keys WHERE key_id = $1",
            "DELETE FROM held_values WHERE key_id = $1",
            "DELETE FROM audit_log WHERE subject = $1",
            "DELETE FROM reviews WHERE subject = $1",
        ]
        .into_iter()
        .enumerate()
        {
            n[i] = sqlx::query(sql)
                .bind(&sref)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::query("erase a subject", e))?
                .rows_affected();
        }
        let erasure = Erasure {
            id: new_id("era")?,
            subject: sref,
            requested_by: requested_by.to_string(),
            erased_ms: now_ms(),
            keys_destroyed: n[0],
            held_values: n[1],
            audit_records: n[2],
            reviews: n[3],
        };
        let counts = json!({"keys_destroyed": n[0], "held_values": n[1], "audit_records": n[2], "reviews": n[3]});
        sqlx::query("INSERT INTO erasures (id, subject, requested_by, erased_ms, counts) VALUES ($1, $2, $3, $4, $5)")
            .bind(&erasure.id)
            .bind(&erasure.subject)
            .bind(&erasure.requested_by)
            .bind(erasure.erased_ms)
            .bind(counts.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::query("record an erasure", e))?;
        tx.commit().await.map_err(|e| StoreError::query("commit an erasure", e))?;
        Ok(erasure)
    }

    /// The receipts of the latest erasures, newest first, at most `limit`.
    pub async fn erasures(&self, limit: u32) -> Result<Vec<Erasure>, StoreError> {
        let rows = sqlx::query("SELECT * FROM erasures ORDER BY erased_ms DESC, id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| StoreError::query("read erasure receipts", e))?;
        rows.iter()
            .map(|row| {
                let get = |e| StoreError::query("read an erasure receipt", e);
                let counts: String = row.try_get("counts").map_err(get)?;
                let counts: serde_json::Value = serde_json::from_str(&counts)
                    .map_err(|e| StoreError::other(format!("an erasure's counts are not JSON: {e}")))?;
                let n = |k: &str| counts[k].as_u64().unwrap_or(0);
                Ok(Erasure {
                    id: row.try_get("id").map_err(get)?,
                    subject: row.try_get("subject").map_err(get)?,
                    requested_by: row.try_get("requested_by").map_err(get)?,
                    erased_ms: row.try_get("erased_ms").map_err(get)?,
                    keys_destroyed: n("keys_destroyed"),
                    held_values: n("held_values"),
                    audit_records: n("audit_records"),
                    reviews: n("reviews"),
                })
            })
            .collect()
    }

    /// What the store still holds of a subject.
    pub async fn subject_remaining(&self, subject: &str) -> Result<Remaining, StoreError> {
        let sref = subject_ref(subject);
        let mut n = [0u64; 4];
        for (i, sql) in [
            "SELECT COUNT(*) FROM data_keys WHERE key_id = $1",
            "SELECT COUNT(*) FROM held_values WHERE key_id = $1",
            "SELECT COUNT(*) FROM audit_log WHERE subject = $1",
            "SELECT COUNT(*) FROM reviews WHERE subject = $1",
        ]
        .into_iter()
        .enumerate()
        {
            let c: i64 = sqlx::query_scalar(sql)
                .bind(&sref)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| StoreError::query("count a subject's data", e))?;
            n[i] = u64::try_from(c).unwrap_or(0);
        }
        Ok(Remaining { keys: n[0], held_values: n[1], audit_records: n[2], reviews: n[3] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sealed_values_open_until_their_subject_is_erased_and_others_are_untouched() {
        for store in crate::testing::stores().await {
            let (ann, bob) = (subject_ref("ann@example.org"), subject_ref("bob@example.org"));
            store.seal_held_values("rev_a", Some(&ann), b"[EMAIL_1]=ann@example.org").await.unwrap();
            store.seal_held_values("rev_b", Some(&bob), b"[EMAIL_1]=bob@example.org").await.unwrap();
            store.seal_held_values("rev_c", None, b"no subject").await.unwrap();
            assert_eq!(
                store.open_held_values("rev_a").await.unwrap().as_deref(),
                Some(&b"[EMAIL_1]=ann@example.org"[..])
            );
            // The sealed bytes hold no value in clear.
            let raw: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM held_values WHERE review_id = 'rev_a'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert!(!raw.windows(3).any(|w| w == b"ann"));
            // Moved to another review, a sealed blob does not open.
            sqlx::query("UPDATE held_values SET review_id = 'rev_x' WHERE review_id = 'rev_a'")
                .execute(&store.pool)
                .await
                .unwrap();
            assert!(store.open_held_values("rev_x").await.is_err());
            sqlx::query("UPDATE held_values SET review_id = 'rev_a' WHERE review_id = 'rev_x'")
                .execute(&store.pool)
                .await
                .unwrap();

            let receipt = store.erase_subject("ann@example.org", "dpo@example.com").await.unwrap();
            assert_eq!((receipt.keys_destroyed, receipt.held_values), (1, 1));
            assert!(receipt.subject.starts_with("sub_") && !receipt.subject.contains("ann"));
            assert!(store.subject_remaining("ann@example.org").await.unwrap().is_empty());
            assert_eq!(
                store.erasures(10).await.unwrap(),
                std::slice::from_ref(&receipt),
                "the receipt is kept as given"
            );
            assert_eq!(store.open_held_values("rev_a").await.unwrap(), None);
            assert_eq!(
                store.open_held_values("rev_b").await.unwrap().as_deref(),
                Some(&b"[EMAIL_1]=bob@example.org"[..])
            );
            assert_eq!(store.open_held_values("rev_c").await.unwrap().as_deref(), Some(&b"no subject"[..]));
        }
    }
}
