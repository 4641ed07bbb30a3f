//! Retention (DG-2, OB-5): deleting what has been kept long enough. The caller decides the
//! cut-offs (from the manifest, with the clock it is given) and does what needs a
//! detector (anonymising); these are the store's halves, each one statement.

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError};

/// What one sweep removed or anonymised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Audit records deleted.
    pub audit_records: u64,
    /// Events deleted.
    pub events: u64,
    /// Reviews deleted.
    pub reviews: u64,
    /// Reviews whose texts were anonymised.
    pub reviews_anonymised: u64,
}

impl Store {
    /// Deletes audit records, events and reviews older than `before_ms`.
    pub async fn delete_before(&self, before_ms: i64) -> Result<Swept, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| StoreError::query("begin a retention sweep", e))?;
        let mut counts = [0u64; 3];
        for (i, sql) in [
            "DELETE FROM audit_log WHERE ts_ms < $1",
            "DELETE FROM events WHERE ts_ms < $1",
            // A pending review is never deleted: its answer still waits for a person.
            "DELETE FROM reviews WHERE created_ms < $1 AND status <> 'pending'",
        ]
        .into_iter()
        .enumerate()
        {
            let done = sqlx::query(sql)
                .bind(before_ms)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::query("delete expired records", e))?;
            counts[i] = done.rows_affected();
        }
        // Values sealed for reviews that are gone go with them, and the per-review keys.
        for sql in [
            "DELETE FROM held_values WHERE review_id NOT IN (SELECT id FROM reviews)",
            "DELETE FROM data_keys WHERE key_id LIKE 'review:%' AND substr(key_id, 8) NOT IN (SELECT id FROM reviews)",
        ] {
            sqlx::query(sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::query("delete orphaned held values", e))?;
        }
        tx.commit().await.map_err(|e| StoreError::query("commit a retention sweep", e))?;
        Ok(Swept { audit_records: counts[0], events: counts[1], reviews: counts[2], reviews_anonymised: 0 })
    }

    /// Decided reviews created before `before_ms` whose texts are not yet anonymised:
    /// `(id, output, final_output)`.
    pub async fn reviews_to_anonymise(
        &self,
        before_ms: i64,
    ) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, output, final_output FROM reviews
             WHERE created_ms < $1 AND status <> 'pending' AND anonymised_ms IS NULL",
        )
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query("find reviews to anonymise", e))?;
        rows.iter()
            .map(|r| {
                let get = |e| StoreError::query("read a review to anonymise", e);
                Ok((
                    r.try_get("id").map_err(get)?,
                    r.try_get("output").map_err(get)?,
                    r.try_get("final_output").map_err(get)?,
                ))
            })
            .collect()
    }

    /// Replaces a review's texts with their anonymised forms.
    pub async fn anonymise_review(
        &self,
        id: &str,
        output: &str,
        final_output: Option<&str>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE reviews SET output = $1, final_output = $2, anonymised_ms = $3 WHERE id = $4")
            .bind(output)
            .bind(final_output)
            .bind(at_ms)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("anonymise a review", e))?;
        // The caller's values behind its placeholders are personal data too.
        sqlx::query("DELETE FROM held_values WHERE review_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("delete a review's held values", e))?;
        Ok(())
    }
}
