//! The audit log: one record per request (IG-3, OB-5).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use crate::{Store, StoreError};

/// One request as the gateway saw and handled it. Inputs and outputs are redacted
/// before a record is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The request id, also sent to the client as `x-request-id`.
    pub request_id: String,
    /// When the request arrived, in milliseconds since the epoch.
    pub ts_ms: i64,
    /// The calling app, once known.
    pub app: Option<String>,
    /// The id of the key it called with (never the key).
    pub key_id: Option<String>,
    /// The decision point.
    pub decision_point: Option<String>,
    /// The HTTP status returned.
    pub status: u16,
    /// `delivered`, `blocked`, `degraded`, `rate_limited`, `unauthorized` or `error`.
    pub outcome: String,
    /// The code of the stage that decided the outcome, e.g. `IG-1.injection`.
    pub code: Option<String>,
    /// The model that answered.
    pub model: Option<String>,
    /// The provider that answered.
    pub provider: Option<String>,
    /// Whether the reply was streamed.
    pub stream: bool,
    /// Total time in the gateway, upstream included, in milliseconds.
    pub latency_ms: f64,
    /// Time spent in psf itself, upstream excluded.
    pub overhead_ms: f64,
    /// Prompt tokens, as the provider counted them.
    pub prompt_tokens: Option<i64>,
    /// Completion tokens, as the provider counted them.
    pub completion_tokens: Option<i64>,
    /// Every upstream attempt: model, provider, outcome, milliseconds.
    pub attempts: Value,
    /// Every stage's decision: stage, decision, code, detail, milliseconds.
    pub stages: Value,
    /// The messages the client sent, with PII redacted.
    pub input_redacted: Value,
    /// The output delivered, with PII redacted.
    pub output_redacted: Option<String>,
    /// The subject the request concerned, as its SHA-256 ([`crate::subject_ref`]), for erasure.
    #[serde(default)]
    pub subject: Option<String>,
}

/// One request, as the console's charts see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPoint {
    /// When it arrived (ms since the epoch).
    pub ts_ms: i64,
    /// The HTTP status psf answered with.
    pub status: u16,
    /// `delivered`, `blocked`, `held`, `error`, …
    pub outcome: String,
    /// The code of the stage that decided it, when one did.
    pub code: Option<String>,
    /// Milliseconds from arrival to the answer.
    pub latency_ms: f64,
    /// Whether a fallback model answered.
    pub fallback: bool,
}

/// Which records to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this decision point.
    pub decision_point: Option<String>,
    /// Only records at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only records before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Only this request.
    pub request_id: Option<String>,
    /// Only this app.
    pub app: Option<String>,
    /// Only records whose code is this (`IG-1.injection`, …), or, ending in `.`, starts with it.
    pub code: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

impl Store {
    /// Writes records in one transaction.
    pub async fn insert_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| StoreError::query("begin an audit write", e))?;
        for r in records {
            sqlx::query(
                "INSERT INTO audit_log (request_id, ts_ms, app, key_id, decision_point, status, outcome, code, model, provider, stream, latency_ms, overhead_ms, prompt_tokens, completion_tokens, attempts, stages, input_redacted, output_redacted, subject)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            )
            .bind(&r.request_id)
            .bind(r.ts_ms)
            .bind(&r.app)
            .bind(&r.key_id)
            .bind(&r.decision_point)
            .bind(i64::from(r.status))
            .bind(&r.outcome)
            .bind(&r.code)
            .bind(&r.model)
            .bind(&r.provider)
            .bind(i64::from(r.stream))
            .bind(r.latency_ms)
            .bind(r.overhead_ms)
            .bind(r.prompt_tokens)
            .bind(r.completion_tokens)
            .bind(r.attempts.to_string())
            .bind(r.stages.to_string())
            .bind(r.input_redacted.to_string())
            .bind(&r.output_redacted)
            .bind(&r.subject)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::query("write an audit record", e))?;
        }
        tx.commit().await.map_err(|e| StoreError::query("commit audit records", e))
    }

    /// Reads records, newest first.
    pub async fn audit_records(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log
             WHERE (CAST($1 AS TEXT) IS NULL OR decision_point = $1) AND (CAST($2 AS BIGINT) IS NULL OR ts_ms >= $2) AND (CAST($3 AS TEXT) IS NULL OR request_id = $3)
               AND (CAST($5 AS BIGINT) IS NULL OR ts_ms < $5) AND (CAST($6 AS TEXT) IS NULL OR app = $6)
               AND (CAST($7 AS TEXT) IS NULL OR code = $7 OR code LIKE $8)
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(&q.decision_point)
        .bind(q.since_ms)
        .bind(&q.request_id)
        .bind(i64::from(q.limit.unwrap_or(100)))
        .bind(q.until_ms)
        .bind(&q.app)
        .bind(&q.code)
        // A code ending in `.` is a family (`IG-1.`); `%` and `_` in it are taken literally
        // by refusing them (codes never hold them).
        .bind(q.code.as_ref().filter(|c| c.ends_with('.') && !c.contains(['%', '_', '\\'])).map(|c| format!("{c}%")))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query("read audit records", e))?;
        rows.iter().map(record).collect()
    }

    /// The few fields of each record at or after `since_ms` that the console's charts
    /// need, newest first, at most `limit`.
    pub async fn audit_points(&self, since_ms: i64, limit: u32) -> Result<Vec<AuditPoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts_ms, status, outcome, code, latency_ms, attempts FROM audit_log WHERE ts_ms >= $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query("read audit records", e))?;
        rows.iter()
            .map(|row| {
                let get = |e| StoreError::query("read an audit record", e);
                let status: i64 = row.try_get("status").map_err(get)?;
                // A fallback answered: more than one attempt, the last one `ok`.
                let attempts = json(row, "attempts")?;
                let list = attempts.as_array().map(Vec::as_slice).unwrap_or_default();
                let fallback = list.len() > 1 && list.last().is_some_and(|a| a["outcome"] == "ok");
                Ok(AuditPoint {
                    ts_ms: row.try_get("ts_ms").map_err(get)?,
                    status: u16::try_from(status).unwrap_or(0),
                    outcome: row.try_get("outcome").map_err(get)?,
                    code: row.try_get("code").map_err(get)?,
                    latency_ms: row.try_get("latency_ms").map_err(get)?,
                    fallback,
                })
            })
            .collect()
    }

    /// Records in `[since_ms, until_ms)` after sequence number `after_seq`, oldest first,
    /// at most `limit`, each with its sequence number: read page by page, a window of any
    /// size is walked in bounded memory.
    pub async fn audit_page(
        &self,
        since_ms: i64,
        until_ms: i64,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, AuditRecord)>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM audit_log WHERE ts_ms >= $1 AND ts_ms < $2 AND seq > $3 ORDER BY seq LIMIT $4")
                .bind(since_ms)
                .bind(until_ms)
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| StoreError::query("read a page of audit records", e))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq").map_err(|e| StoreError::query("read an audit record", e))?;
                Ok((seq, record(row)?))
            })
            .collect()
    }

    /// The time of the oldest record in the whole log, for retention checks.
    pub async fn oldest_audit_ms(&self) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT MIN(ts_ms) FROM audit_log")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::query("find the oldest audit record", e))
    }

    /// How many records fall in `[since_ms, until_ms)`.
    pub async fn audit_count_between(&self, since_ms: i64, until_ms: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE ts_ms >= $1 AND ts_ms < $2")
            .bind(since_ms)
            .bind(until_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::query("count audit records", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How many records the log holds.
    pub async fn audit_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::query("count audit records", e))
    }
}

fn json(row: &sqlx::any::AnyRow, column: &str) -> Result<Value, StoreError> {
    let text: String = row.try_get(column).map_err(|e| StoreError::query("read an audit column", e))?;
    serde_json::from_str(&text).map_err(|e| StoreError::other(format!("audit column `{column}` is not JSON: {e}")))
}

fn record(row: &sqlx::any::AnyRow) -> Result<AuditRecord, StoreError> {
    let get = |e| StoreError::query("read an audit record", e);
    let status: i64 = row.try_get("status").map_err(get)?;
    Ok(AuditRecord {
        request_id: row.try_get("request_id").map_err(get)?,
        ts_ms: row.try_get("ts_ms").map_err(get)?,
        app: row.try_get("app").map_err(get)?,
        key_id: row.try_get("key_id").map_err(get)?,
        decision_point: row.try_get("decision_point").map_err(get)?,
        status: u16::try_from(status).unwrap_or(0),
        outcome: row.try_get("outcome").map_err(get)?,
        code: row.try_get("code").map_err(get)?,
        model: row.try_get("model").map_err(get)?,
        provider: row.try_get("provider").map_err(get)?,
        stream: row.try_get::<i64, _>("stream").map_err(get)? != 0,
        latency_ms: row.try_get("latency_ms").map_err(get)?,
        overhead_ms: row.try_get("overhead_ms").map_err(get)?,
        prompt_tokens: row.try_get("prompt_tokens").map_err(get)?,
        completion_tokens: row.try_get("completion_tokens").map_err(get)?,
        attempts: json(row, "attempts")?,
        stages: json(row, "stages")?,
        input_redacted: json(row, "input_redacted")?,
        output_redacted: row.try_get("output_redacted").map_err(get)?,
        subject: row.try_get("subject").map_err(get)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(id: &str, point: &str) -> AuditRecord {
        AuditRecord {
            request_id: id.into(),
            ts_ms: 1_700_000_000_000,
            app: Some("chat".into()),
            key_id: Some("key_1".into()),
            decision_point: Some(point.into()),
            status: 200,
            outcome: "delivered".into(),
            code: None,
            model: Some("gpt".into()),
            provider: Some("openai".into()),
            stream: false,
            latency_ms: 51.5,
            overhead_ms: 0.4,
            prompt_tokens: Some(10),
            completion_tokens: Some(5),
            attempts: json!([{"model": "gpt", "outcome": "ok"}]),
            stages: json!([{"stage": "IG-1.injection", "decision": "pass"}]),
            input_redacted: json!([{"role": "user", "content": "Mail [EMAIL]"}]),
            output_redacted: Some("ok".into()),
            subject: None,
        }
    }

    #[tokio::test]
    async fn records_round_trip_and_filter() -> Result<(), StoreError> {
        for store in crate::testing::stores().await {
            store.insert_audit(&[sample("r1", "a"), sample("r2", "b"), sample("r3", "a")]).await?;
            assert_eq!(store.audit_count().await?, 3);
            let a = store.audit_records(&AuditQuery { decision_point: Some("a".into()), ..Default::default() }).await?;
            assert_eq!(a.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(), ["r3", "r1"]);
            assert_eq!(a[1], sample("r1", "a"));
            let one = store.audit_records(&AuditQuery { request_id: Some("r2".into()), ..Default::default() }).await?;
            assert_eq!(one.len(), 1);
            let mut blocked = sample("r4", "a");
            blocked.app = Some("other".into());
            blocked.code = Some("IG-1.injection".into());
            blocked.ts_ms += 10;
            store.insert_audit(&[blocked]).await?;
            let ids = |q: AuditQuery| {
                let store = store.clone();
                async move { store.audit_records(&q).await.map(|v| v.into_iter().map(|r| r.request_id).collect::<Vec<_>>()) }
            };
            assert_eq!(ids(AuditQuery { app: Some("other".into()), ..Default::default() }).await?, ["r4"]);
            assert_eq!(ids(AuditQuery { code: Some("IG-1.".into()), ..Default::default() }).await?, ["r4"]);
            assert_eq!(ids(AuditQuery { code: Some("IG-1.injection".into()), ..Default::default() }).await?, ["r4"]);
            assert!(ids(AuditQuery { code: Some("IG-".into()), ..Default::default() }).await?.is_empty());
            let before = AuditQuery { until_ms: Some(1_700_000_000_005), ..Default::default() };
            assert_eq!(ids(before).await?, ["r3", "r2", "r1"]);
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_window_is_read_in_pages_and_counted() -> Result<(), StoreError> {
        for store in crate::testing::stores().await {
            let mut records = Vec::new();
            for i in 0..5 {
                let mut r = sample(&format!("w{i}"), "a");
                r.ts_ms += i;
                records.push(r);
            }
            store.insert_audit(&records).await?;
            let (since, until) = (1_700_000_000_001, 1_700_000_000_004);
            assert_eq!(store.audit_count_between(since, until).await?, 3);
            let mut seen = Vec::new();
            let mut after = 0;
            loop {
                let page = store.audit_page(since, until, after, 2).await?;
                let Some((last, _)) = page.last() else { break };
                assert!(page.len() <= 2);
                after = *last;
                seen.extend(page.into_iter().map(|(_, r)| r.request_id));
            }
            assert_eq!(seen, ["w1", "w2", "w3"], "oldest first, each once, the window's end excluded");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_file_store_survives_reopening() -> Result<(), StoreError> {
        let dir = std::env::temp_dir().join(format!("psf-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::other(e.to_string()))?;
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let store = Store::open(&url).await?;
        store.insert_audit(&[sample("r1", "a")]).await?;
        store.close().await;
        let again = Store::open(&url).await?;
        assert_eq!(again.audit_count().await?, 1);
        again.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[tokio::test]
    async fn bad_urls_say_what_to_write() {
        let err = Store::open("mysql://x").await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("sqlite://PATH"), "{err}");
    }
}
