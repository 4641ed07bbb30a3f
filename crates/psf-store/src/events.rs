//! Events: what happened to the deployment beside single requests — alerts raised by the
//! gateway (abuse, anomalies), and later incidents, reviews and erasures. The assessment
//! reads them as evidence that a control fired.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use crate::{Store, StoreError};

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened, in milliseconds since the epoch.
    pub ts_ms: i64,
    /// What kind of event, as a competency code: `IG-4.abuse`, …
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// The app it concerns, if one.
    pub app: Option<String>,
    /// The key it concerns (its id, never the key), if one.
    pub key_id: Option<String>,
    /// One line for people.
    pub summary: String,
    /// Details for machines.
    pub detail: Value,
}

impl Store {
    /// Records an event.
    pub async fn insert_event(&self, e: &Event) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (ts_ms, kind, severity, app, key_id, summary, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(e.ts_ms)
        .bind(&e.kind)
        .bind(&e.severity)
        .bind(&e.app)
        .bind(&e.key_id)
        .bind(&e.summary)
        .bind(e.detail.to_string())
        .execute(&self.pool)
        .await
        .map_err(|err| StoreError::query("write an event", err))?;
        Ok(())
    }

    /// Events at or after `since_ms`, of `kind` if given, oldest first, at most `limit`.
    pub async fn events(&self, kind: Option<&str>, since_ms: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE (CAST($1 AS TEXT) IS NULL OR kind = $1) AND ts_ms >= $2 ORDER BY ts_ms, seq LIMIT $3",
        )
        .bind(kind)
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query("read events", e))?;
        rows.iter()
            .map(|row| {
                let get = |e| StoreError::query("read an event column", e);
                let detail: String = row.try_get("detail").map_err(get)?;
                Ok(Event {
                    ts_ms: row.try_get("ts_ms").map_err(get)?,
                    kind: row.try_get("kind").map_err(get)?,
                    severity: row.try_get("severity").map_err(get)?,
                    app: row.try_get("app").map_err(get)?,
                    key_id: row.try_get("key_id").map_err(get)?,
                    summary: row.try_get("summary").map_err(get)?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|e| StoreError::other(format!("event detail is not JSON: {e}")))?,
                })
            })
            .collect()
    }
}

impl Store {
    /// How many events of each kind fall in `[since_ms, until_ms)`, counted in the database.
    pub async fn event_counts(&self, since_ms: i64, until_ms: i64) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT kind, COUNT(*) AS n FROM events WHERE ts_ms >= $1 AND ts_ms < $2 GROUP BY kind")
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| StoreError::query("count events", e))?;
        rows.iter()
            .map(|row| {
                let get = |e| StoreError::query("read an event count", e);
                let n: i64 = row.try_get("n").map_err(get)?;
                Ok((row.try_get("kind").map_err(get)?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_round_trip_and_filter() {
        for store in crate::testing::stores().await {
            let event = |ts_ms, kind: &str| Event {
                ts_ms,
                kind: kind.into(),
                severity: "warning".into(),
                app: Some("a".into()),
                key_id: Some("k1".into()),
                summary: "s".into(),
                detail: serde_json::json!({"count": 20}),
            };
            store.insert_event(&event(10, "IG-4.abuse")).await.unwrap();
            store.insert_event(&event(20, "OB-3.anomaly")).await.unwrap();
            store.insert_event(&event(30, "IG-4.abuse")).await.unwrap();
            let abuse = store.events(Some("IG-4.abuse"), 0, 10).await.unwrap();
            assert_eq!(abuse, vec![event(10, "IG-4.abuse"), event(30, "IG-4.abuse")]);
            assert_eq!(store.events(None, 15, 10).await.unwrap().len(), 2);
            assert_eq!(store.events(None, 0, 1).await.unwrap(), vec![event(10, "IG-4.abuse")]);
            let counts = store.event_counts(0, 30).await.unwrap();
            assert_eq!(counts, BTreeMap::from([("IG-4.abuse".to_string(), 1), ("OB-3.anomaly".to_string(), 1)]));
        }
    }
}
