//! What the assessment reads from the audit log: counts over a time window, computed in
//! the database so that a large log is never loaded whole.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// Counts over the audit records in `[since_ms, until_ms)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditSummary {
    /// The window's start, in milliseconds since the epoch.
    pub since_ms: i64,
    /// The window's end (exclusive).
    pub until_ms: i64,
    /// Records in the window.
    pub requests: u64,
    /// Records by outcome (`delivered`, `blocked`, …).
    pub by_outcome: BTreeMap<String, u64>,
    /// Records by decision point.
    pub by_decision_point: BTreeMap<String, u64>,
    /// Stage decisions by stage code, then decision (`pass`, `block`, …).
    pub stages: BTreeMap<String, BTreeMap<String, u64>>,
    /// Distinct keys that called.
    pub distinct_keys: u64,
    /// Distinct calendar days (UTC) with at least one record.
    pub active_days: u64,
    /// The first and last record's time.
    pub first_ms: Option<i64>,
    /// The last record's time.
    pub last_ms: Option<i64>,
    /// Records with more than one upstream attempt.
    pub multi_attempt: u64,
    /// The oldest record in the whole log (any window), for retention checks.
    pub oldest_ms: Option<i64>,
    /// Records that name their subject (`x-psf-subject`), so erasure can find them.
    pub with_subject: u64,
}

impl AuditSummary {
    /// How many times stage `code` decided `decision`.
    pub fn stage(&self, code: &str, decision: &str) -> u64 {
        self.stages.get(code).and_then(|d| d.get(decision)).copied().unwrap_or(0)
    }

    /// How many times stage `code` ran, whatever it decided.
    pub fn stage_total(&self, code: &str) -> u64 {
        self.stages.get(code).map_or(0, |d| d.values().sum())
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Summarises the audit log over `[since_ms, until_ms)`.
    pub async fn audit_summary(&self, since_ms: i64, until_ms: i64) -> Result<AuditSummary, StoreError> {
        let q = |what: &'static str| move |e| StoreError::query(what, e);
        // The JSON functions are the one place the two databases differ.
        let attempts = match self.backend {
            Backend::Sqlite => "json_array_length(attempts)",
            Backend::Postgres => "jsonb_array_length(attempts::jsonb)",
        };
        let sql = format!(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT key_id) AS keys, MIN(ts_ms) AS first, MAX(ts_ms) AS last,
                    COUNT(DISTINCT ts_ms / 86400000) AS days,
                    CAST(COALESCE(SUM(CASE WHEN {attempts} > 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS multi,
                    COUNT(subject) AS subjects
             FROM audit_log WHERE ts_ms >= $1 AND ts_ms < $2"
        );
        let row = sqlx::query(&sql)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(q("summarise the audit log"))?;
        let get = |name: &str| row.try_get::<Option<i64>, _>(name).map_err(q("read an audit summary"));
        let mut summary = AuditSummary {
            since_ms,
            until_ms,
            requests: count(get("n")?.unwrap_or(0)),
            distinct_keys: count(get("keys")?.unwrap_or(0)),
            active_days: count(get("days")?.unwrap_or(0)),
            first_ms: get("first")?,
            last_ms: get("last")?,
            multi_attempt: count(get("multi")?.unwrap_or(0)),
            with_subject: count(get("subjects")?.unwrap_or(0)),
            ..AuditSummary::default()
        };
        summary.oldest_ms = sqlx::query_scalar("SELECT MIN(ts_ms) FROM audit_log")
            .fetch_one(&self.pool)
            .await
            .map_err(q("find the oldest audit record"))?;
        for (column, map) in [("outcome", &mut summary.by_outcome), ("decision_point", &mut summary.by_decision_point)]
        {
            // The column name comes from the list above, never from input.
            let sql = format!(
                "SELECT {column} AS k, COUNT(*) AS n FROM audit_log WHERE ts_ms >= $1 AND ts_ms < $2 AND {column} IS NOT NULL GROUP BY {column}"
            );
            for row in sqlx::query(&sql)
                .bind(since_ms)
                .bind(until_ms)
                .fetch_all(&self.pool)
                .await
                .map_err(q("count audit records by a column"))?
            {
                let key: String = row.try_get("k").map_err(q("read a count"))?;
                let n: i64 = row.try_get("n").map_err(q("read a count"))?;
                map.insert(key, count(n));
            }
        }
        let stages = match self.backend {
            Backend::Sqlite => {
                "SELECT json_extract(s.value, '$.code') AS stage_code, json_extract(s.value, '$.decision') AS stage_decision, COUNT(*) AS n
                 FROM audit_log, json_each(audit_log.stages) AS s
                 WHERE audit_log.ts_ms >= $1 AND audit_log.ts_ms < $2
                 GROUP BY stage_code, stage_decision"
            }
            Backend::Postgres => {
                "SELECT s.value->>'code' AS stage_code, s.value->>'decision' AS stage_decision, COUNT(*) AS n
                 FROM audit_log, jsonb_array_elements(audit_log.stages::jsonb) AS s(value)
                 WHERE audit_log.ts_ms >= $1 AND audit_log.ts_ms < $2
                 GROUP BY stage_code, stage_decision"
            }
        };
        let rows = sqlx::query(stages)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(q("count stage decisions"))?;
        for row in rows {
            let code: Option<String> = row.try_get("stage_code").map_err(q("read a stage count"))?;
            let decision: Option<String> = row.try_get("stage_decision").map_err(q("read a stage count"))?;
            let n: i64 = row.try_get("n").map_err(q("read a stage count"))?;
            if let (Some(code), Some(decision)) = (code, decision) {
                summary.stages.entry(code).or_default().insert(decision, count(n));
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::AuditRecord;

    fn record(
        id: &str,
        ts_ms: i64,
        key: &str,
        outcome: &str,
        stages: serde_json::Value,
        attempts: usize,
    ) -> AuditRecord {
        AuditRecord {
            request_id: id.into(),
            ts_ms,
            app: Some("a".into()),
            key_id: Some(key.into()),
            decision_point: Some("p".into()),
            status: 200,
            outcome: outcome.into(),
            code: None,
            model: None,
            provider: None,
            stream: false,
            latency_ms: 1.0,
            overhead_ms: 0.1,
            prompt_tokens: None,
            completion_tokens: None,
            attempts: serde_json::Value::Array(vec![json!({}); attempts]),
            stages,
            input_redacted: json!([]),
            output_redacted: None,
            subject: None,
        }
    }

    #[tokio::test]
    async fn counts_over_the_window_only() {
        for store in crate::testing::stores().await {
            let day = 86_400_000;
            let inj = |d: &str| json!([{"code": "IG-1.injection", "decision": d, "us": 3}, {"code": "DG-1.pii", "decision": "pass", "us": 1}]);
            store
                .insert_audit(&[
                    record("old", day, "k1", "delivered", inj("pass"), 1),
                    record("r1", 10 * day, "k1", "delivered", inj("pass"), 2),
                    record(
                        "r2",
                        10 * day + 5,
                        "k2",
                        "blocked",
                        json!([{"code": "IG-1.injection", "decision": "block", "us": 3}]),
                        0,
                    ),
                    record("r3", 12 * day, "k2", "delivered", inj("pass"), 1),
                ])
                .await
                .unwrap();
            let s = store.audit_summary(5 * day, 20 * day).await.unwrap();
            assert_eq!(s.requests, 3);
            assert_eq!(s.distinct_keys, 2);
            assert_eq!(s.active_days, 2);
            assert_eq!((s.first_ms, s.last_ms, s.oldest_ms), (Some(10 * day), Some(12 * day), Some(day)));
            assert_eq!(s.multi_attempt, 1);
            assert_eq!(s.by_outcome.get("delivered"), Some(&2));
            assert_eq!(s.by_outcome.get("blocked"), Some(&1));
            assert_eq!(s.stage("IG-1.injection", "pass"), 2);
            assert_eq!(s.stage("IG-1.injection", "block"), 1);
            assert_eq!(s.stage_total("DG-1.pii"), 2);
            assert_eq!(s.stage_total("OV-2.schema"), 0);
            let empty = store.audit_summary(30 * day, 40 * day).await.unwrap();
            assert_eq!((empty.requests, empty.first_ms, empty.oldest_ms), (0, None, Some(day)));
        }
    }
}
