//! Incidents (IR-2, IR-3): the kill switch as data. A declared, unresolved incident is in
//! force on every gateway that reads this store; resolving it lifts it. Its post-incident
//! review is kept with it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, json_column, new_id};

/// What an operator declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    /// Who declares it.
    pub declared_by: String,
    /// `disable`, `degrade` or `isolate`.
    pub action: String,
    /// `all`, `app:X`, `point:Y` or `provider:Z`.
    pub scope: String,
    /// `sev1` … `sev4`.
    pub severity: String,
    /// Why, in a line.
    pub reason: String,
    /// A rehearsal (`psf drill`), not a real incident.
    pub drill: bool,
}

/// An incident as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `inc_…`.
    pub id: String,
    /// When it was declared (ms since the epoch).
    pub declared_ms: i64,
    /// Who declared it.
    pub declared_by: String,
    /// `disable`, `degrade` or `isolate`.
    pub action: String,
    /// `all`, `app:X`, `point:Y` or `provider:Z`.
    pub scope: String,
    /// `sev1` … `sev4`.
    pub severity: String,
    /// Why.
    pub reason: String,
    /// A rehearsal.
    pub drill: bool,
    /// When it was resolved, if it was.
    pub resolved_ms: Option<i64>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// The post-incident review (root cause, actions with owners and due dates).
    pub review: Option<Value>,
}

impl Incident {
    /// Whether its post-incident review is written (it names a root cause).
    pub fn review_written(&self) -> bool {
        self.review.as_ref().is_some_and(|r| r.get("root_cause").is_some_and(|c| !c.is_null()))
    }
}

fn incident_from(row: &AnyRow) -> Result<Incident, StoreError> {
    let get = |e| StoreError::query("read an incident column", e);
    let drill: i64 = row.try_get("drill").map_err(get)?;
    let review: Option<String> = row.try_get("review").map_err(get)?;
    Ok(Incident {
        id: row.try_get("id").map_err(get)?,
        declared_ms: row.try_get("declared_ms").map_err(get)?,
        declared_by: row.try_get("declared_by").map_err(get)?,
        action: row.try_get("action").map_err(get)?,
        scope: row.try_get("scope").map_err(get)?,
        severity: row.try_get("severity").map_err(get)?,
        reason: row.try_get("reason").map_err(get)?,
        drill: drill != 0,
        resolved_ms: row.try_get("resolved_ms").map_err(get)?,
        resolved_by: row.try_get("resolved_by").map_err(get)?,
        resolution: row.try_get("resolution").map_err(get)?,
        review: match review {
            Some(_) => Some(json_column(row, "review")?),
            None => None,
        },
    })
}

impl Store {
    /// Declares an incident; it is in force from now until resolved.
    pub async fn declare_incident(&self, new: &NewIncident, at_ms: i64) -> Result<Incident, StoreError> {
        let id = new_id("inc")?;
        sqlx::query(
            "INSERT INTO incidents (id, declared_ms, declared_by, action, scope, severity, reason, drill)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(at_ms)
        .bind(&new.declared_by)
        .bind(&new.action)
        .bind(&new.scope)
        .bind(&new.severity)
        .bind(&new.reason)
        .bind(i64::from(new.drill))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("declare an incident", e))?;
        self.incident(&id).await?.ok_or_else(|| StoreError::other(format!("incident `{id}` vanished")))
    }

    /// One incident, if it exists.
    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let row = sqlx::query("SELECT * FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreError::query("read an incident", e))?;
        row.as_ref().map(incident_from).transpose()
    }

    /// Incidents in force (unresolved) when `active`, else all; oldest first.
    pub async fn incidents(&self, active: bool) -> Result<Vec<Incident>, StoreError> {
        let sql = if active {
            "SELECT * FROM incidents WHERE resolved_ms IS NULL ORDER BY declared_ms, id"
        } else {
            "SELECT * FROM incidents ORDER BY declared_ms, id"
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await.map_err(|e| StoreError::query("list incidents", e))?;
        rows.iter().map(incident_from).collect()
    }

    /// Resolves an incident in force.
    pub async fn resolve_incident(
        &self,
        id: &str,
        by: &str,
        resolution: &str,
        at_ms: i64,
    ) -> Result<Incident, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET resolved_ms = $1, resolved_by = $2, resolution = $3 WHERE id = $4 AND resolved_ms IS NULL",
        )
        .bind(at_ms)
        .bind(by)
        .bind(resolution)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("resolve an incident", e))?;
        let incident = self.incident(id).await?;
        match incident {
            Some(i) if done.rows_affected() > 0 => Ok(i),
            Some(_) => Err(StoreError::other(format!("incident `{id}` is already resolved"))),
            None => Err(StoreError::other(format!("no incident `{id}`; `psf incident list --all` shows them"))),
        }
    }

    /// Keeps the post-incident review of an incident (replacing an earlier draft).
    pub async fn set_incident_review(&self, id: &str, review: &Value) -> Result<Incident, StoreError> {
        let done = sqlx::query("UPDATE incidents SET review = $1 WHERE id = $2")
            .bind(review.to_string())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("record a post-incident review", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::other(format!("no incident `{id}`; `psf incident list --all` shows them")));
        }
        self.incident(id).await?.ok_or_else(|| StoreError::other(format!("incident `{id}` vanished")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_incident_is_in_force_until_resolved_and_keeps_its_review() {
        for store in crate::testing::stores().await {
            let new = NewIncident {
                declared_by: "olive@example.com".into(),
                action: "disable".into(),
                scope: "point:prescreen".into(),
                severity: "sev2".into(),
                reason: "wrong declines".into(),
                drill: false,
            };
            let i = store.declare_incident(&new, 1_000).await.unwrap();
            assert!(i.id.starts_with("inc_"));
            assert_eq!(store.incidents(true).await.unwrap(), vec![i.clone()]);
            let r = store.resolve_incident(&i.id, "olive@example.com", "model pinned back", 2_000).await.unwrap();
            assert_eq!(r.resolved_ms, Some(2_000));
            assert!(store.incidents(true).await.unwrap().is_empty());
            assert_eq!(store.incidents(false).await.unwrap().len(), 1);
            let again = store.resolve_incident(&i.id, "x", "y", 3_000).await;
            assert!(again.is_err_and(|e| e.to_string().contains("already resolved")));
            let review = serde_json::json!({"root_cause": "unpinned model"});
            let r = store.set_incident_review(&i.id, &review).await.unwrap();
            assert_eq!(r.review, Some(review));
            assert!(store.set_incident_review("inc_missing", &serde_json::json!({})).await.is_err());
        }
    }
}
