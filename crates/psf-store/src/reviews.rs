//! The human review queue (HO-1, HO-2): answers held until a named reviewer approves,
//! edits or rejects them.
//!
//! What is kept is the answer as the gateway would deliver it *before* the caller's own
//! values are put back: tokenized PII stays a placeholder (`[EMAIL_1]`), and the values
//! live only in the memory of the gateway that holds the request.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, json_column};

/// A held answer and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    /// `rev_…`.
    pub id: String,
    /// The request whose answer is held.
    pub request_id: String,
    /// When it was held (ms since the epoch).
    pub created_ms: i64,
    /// When it escalates if still undecided.
    pub deadline_ms: Option<i64>,
    /// The app that asked.
    pub app: Option<String>,
    /// The key that asked (its id).
    pub key_id: Option<String>,
    /// The decision point.
    pub decision_point: String,
    /// Why it is held: `supervised` or `low_confidence`.
    pub reason: String,
    /// `pending`, `approved`, `edited` or `rejected`.
    pub status: String,
    /// The client's messages, PII redacted.
    pub input_redacted: Value,
    /// The model's answer as it would be delivered (placeholders kept).
    pub output: String,
    /// The gateway's stage records for the request (the detectors' findings).
    pub findings: Value,
    /// Mean token log-probability, where the model gave them.
    pub confidence: Option<f64>,
    /// The completion body to deliver, its answer text left out.
    pub response: Value,
    /// Who decided (an identity the manifest names as a reviewer).
    pub reviewer: Option<String>,
    /// When they decided.
    pub decided_ms: Option<i64>,
    /// Their reason.
    pub note: Option<String>,
    /// The answer as approved or edited.
    pub final_output: Option<String>,
    /// When it passed its deadline undecided.
    pub escalated_ms: Option<i64>,
    /// When the client collected the decision.
    pub delivered_ms: Option<i64>,
    /// The subject the request concerned, as its SHA-256, for erasure.
    pub subject: Option<String>,
}

impl Review {
    /// A pending review of `output`, with nothing else known yet; callers fill in the rest
    /// with struct update syntax.
    pub fn pending(id: &str, request_id: &str, created_ms: i64, decision_point: &str, output: &str) -> Review {
        Review {
            id: id.to_string(),
            request_id: request_id.to_string(),
            created_ms,
            deadline_ms: None,
            app: None,
            key_id: None,
            decision_point: decision_point.to_string(),
            reason: "supervised".into(),
            status: "pending".into(),
            input_redacted: Value::Array(Vec::new()),
            output: output.to_string(),
            findings: Value::Array(Vec::new()),
            confidence: None,
            response: Value::Object(serde_json::Map::new()),
            reviewer: None,
            decided_ms: None,
            note: None,
            final_output: None,
            escalated_ms: None,
            delivered_ms: None,
            subject: None,
        }
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Deliver the answer as it is.
    Approve,
    /// Deliver this text instead.
    Edit(String),
    /// Deliver nothing.
    Reject,
}

impl ReviewDecision {
    /// A decision as the admin API and the console receive it: `approve`, `edit` (with
    /// the text to deliver) or `reject`; the error says what to send instead.
    pub fn parse(decision: &str, output: Option<String>) -> Result<ReviewDecision, String> {
        match (decision, output) {
            ("approve", None) => Ok(ReviewDecision::Approve),
            ("edit", Some(text)) => Ok(ReviewDecision::Edit(text)),
            ("reject", None) => Ok(ReviewDecision::Reject),
            ("edit", None) => Err("`edit` needs `output`".into()),
            ("approve" | "reject", Some(_)) => Err("`output` goes only with `edit`".into()),
            (other, _) => Err(format!("`{other}` is not a decision; use approve, edit or reject")),
        }
    }

    /// The status it leaves the review in.
    pub fn status(&self) -> &'static str {
        match self {
            ReviewDecision::Approve => "approved",
            ReviewDecision::Edit(_) => "edited",
            ReviewDecision::Reject => "rejected",
        }
    }
}

fn review_from(row: &AnyRow) -> Result<Review, StoreError> {
    let get = |e| StoreError::query("read a review column", e);
    Ok(Review {
        id: row.try_get("id").map_err(get)?,
        request_id: row.try_get("request_id").map_err(get)?,
        created_ms: row.try_get("created_ms").map_err(get)?,
        deadline_ms: row.try_get("deadline_ms").map_err(get)?,
        app: row.try_get("app").map_err(get)?,
        key_id: row.try_get("key_id").map_err(get)?,
        decision_point: row.try_get("decision_point").map_err(get)?,
        reason: row.try_get("reason").map_err(get)?,
        status: row.try_get("status").map_err(get)?,
        input_redacted: json_column(row, "input_redacted")?,
        output: row.try_get("output").map_err(get)?,
        findings: json_column(row, "findings")?,
        confidence: row.try_get("confidence").map_err(get)?,
        response: json_column(row, "response")?,
        reviewer: row.try_get("reviewer").map_err(get)?,
        decided_ms: row.try_get("decided_ms").map_err(get)?,
        note: row.try_get("note").map_err(get)?,
        final_output: row.try_get("final_output").map_err(get)?,
        escalated_ms: row.try_get("escalated_ms").map_err(get)?,
        delivered_ms: row.try_get("delivered_ms").map_err(get)?,
        subject: row.try_get("subject").map_err(get)?,
    })
}

impl Store {
    /// Holds an answer for review.
    pub async fn insert_review(&self, r: &Review) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reviews (id, request_id, created_ms, deadline_ms, app, key_id, decision_point, reason, status,
                                  input_redacted, output, findings, confidence, response, subject)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&r.id)
        .bind(&r.request_id)
        .bind(r.created_ms)
        .bind(r.deadline_ms)
        .bind(&r.app)
        .bind(&r.key_id)
        .bind(&r.decision_point)
        .bind(&r.reason)
        .bind(&r.status)
        .bind(r.input_redacted.to_string())
        .bind(&r.output)
        .bind(r.findings.to_string())
        .bind(r.confidence)
        .bind(r.response.to_string())
        .bind(&r.subject)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("hold an answer for review", e))?;
        Ok(())
    }

    /// One review, if it exists.
    pub async fn review(&self, id: &str) -> Result<Option<Review>, StoreError> {
        let row = sqlx::query("SELECT * FROM reviews WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreError::query("read a review", e))?;
        row.as_ref().map(review_from).transpose()
    }

    /// Reviews with `status` (all if `None`), oldest first, at most `limit`.
    pub async fn reviews(&self, status: Option<&str>, limit: u32) -> Result<Vec<Review>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM reviews WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) ORDER BY created_ms, id LIMIT $2",
        )
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query("list reviews", e))?;
        rows.iter().map(review_from).collect()
    }

    /// Records a decision on a pending review. A review is decided once: a second
    /// decision is refused, whoever makes it.
    pub async fn decide_review(
        &self,
        id: &str,
        decision: &ReviewDecision,
        reviewer: &str,
        note: Option<&str>,
        at_ms: i64,
    ) -> Result<Review, StoreError> {
        let Some(review) = self.review(id).await? else {
            return Err(StoreError::other(format!("no review `{id}`; `psf review list` shows the pending ones")));
        };
        let final_output = match decision {
            ReviewDecision::Approve => Some(review.output.as_str()),
            ReviewDecision::Edit(text) => Some(text.as_str()),
            ReviewDecision::Reject => None,
        };
        let done = sqlx::query(
            "UPDATE reviews SET status = $1, reviewer = $2, decided_ms = $3, note = $4, final_output = $5
             WHERE id = $6 AND status = 'pending'",
        )
        .bind(decision.status())
        .bind(reviewer)
        .bind(at_ms)
        .bind(note)
        .bind(final_output)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("record a review decision", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::other(format!(
                "review `{id}` was already decided ({} by {})",
                review.status,
                review.reviewer.as_deref().unwrap_or("unknown")
            )));
        }
        self.review(id).await?.ok_or_else(|| StoreError::other(format!("review `{id}` vanished")))
    }

    /// Marks a decided review as collected by its client; false if it already was.
    pub async fn mark_review_delivered(&self, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE reviews SET delivered_ms = $1 WHERE id = $2 AND delivered_ms IS NULL")
            .bind(at_ms)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("mark a review delivered", e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks pending reviews past their deadline as escalated; returns the ones newly so.
    pub async fn escalate_overdue_reviews(&self, now_ms: i64) -> Result<Vec<Review>, StoreError> {
        let rows = sqlx::query(
            "UPDATE reviews SET escalated_ms = $1
             WHERE status = 'pending' AND escalated_ms IS NULL AND deadline_ms IS NOT NULL AND deadline_ms < $1
             RETURNING *",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query("escalate overdue reviews", e))?;
        rows.iter().map(review_from).collect()
    }

    /// How many reviews wait for a decision.
    pub async fn pending_reviews(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::query("count pending reviews", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn held(id: &str, deadline_ms: Option<i64>) -> Review {
        Review {
            deadline_ms,
            app: Some("loans".into()),
            key_id: Some("k1".into()),
            input_redacted: json!([{"role": "user", "content": "[EMAIL]"}]),
            confidence: Some(-0.4),
            ..Review::pending(id, &format!("req_{id}"), 1_000, "prescreen", "refer to an underwriter")
        }
    }

    #[tokio::test]
    async fn a_review_is_decided_once_and_delivered_once() {
        for store in crate::testing::stores().await {
            store.insert_review(&held("rev_a", None)).await.unwrap();
            store.insert_review(&held("rev_b", None)).await.unwrap();
            assert_eq!(store.pending_reviews().await.unwrap(), 2);
            let edit = ReviewDecision::Edit("refer, with reasons".into());
            let r = store.decide_review("rev_a", &edit, "rita@example.com", Some("tone"), 2_000).await.unwrap();
            assert_eq!(r.status, "edited");
            assert_eq!(r.final_output.as_deref(), Some("refer, with reasons"));
            assert_eq!(r.reviewer.as_deref(), Some("rita@example.com"));
            let again = store.decide_review("rev_a", &ReviewDecision::Reject, "sam@example.com", None, 3_000).await;
            assert!(again.is_err_and(|e| e.to_string().contains("already decided (edited by rita@example.com)")));
            let r =
                store.decide_review("rev_b", &ReviewDecision::Reject, "sam@example.com", None, 3_000).await.unwrap();
            assert_eq!(r.final_output, None, "a rejected answer keeps no deliverable text");
            assert!(store.mark_review_delivered("rev_a", 4_000).await.unwrap());
            assert!(!store.mark_review_delivered("rev_a", 5_000).await.unwrap());
            assert_eq!(store.reviews(Some("pending"), 10).await.unwrap(), vec![]);
            assert!(store.decide_review("rev_x", &ReviewDecision::Approve, "r", None, 1).await.is_err());
        }
    }

    #[tokio::test]
    async fn overdue_reviews_escalate_once() {
        for store in crate::testing::stores().await {
            store.insert_review(&held("rev_a", Some(5_000))).await.unwrap();
            store.insert_review(&held("rev_b", Some(50_000))).await.unwrap();
            store.insert_review(&held("rev_c", None)).await.unwrap();
            let first = store.escalate_overdue_reviews(6_000).await.unwrap();
            assert_eq!(first.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["rev_a"]);
            assert_eq!(first[0].escalated_ms, Some(6_000));
            assert!(store.escalate_overdue_reviews(7_000).await.unwrap().is_empty());
        }
    }
}
