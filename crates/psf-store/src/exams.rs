//! Knowledge-check results (`psf exam`, the console's exam): who took it, when, with
//! which bank, and how they did. The assessment reads the latest pass of each person it
//! expects to know the framework (reviewers, people on call).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Store, StoreError, new_id};

/// One attempt's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamResult {
    /// `exm_…`.
    pub id: String,
    /// Who took it (kept in lower case).
    pub email: String,
    /// Their name.
    pub name: String,
    /// When it was submitted (ms since the epoch).
    pub taken_ms: i64,
    /// The question bank's version.
    pub bank_version: String,
    /// Right answers.
    pub right: u32,
    /// Questions asked.
    pub total: u32,
    /// The pass mark it was judged against (a share).
    pub pass_mark: f64,
    /// Whether it passed.
    pub passed: bool,
    /// Right and asked per domain.
    pub per_domain: BTreeMap<String, (u32, u32)>,
}

fn result(row: &sqlx::any::AnyRow) -> Result<ExamResult, StoreError> {
    let get = |e| StoreError::query("read an exam result", e);
    let per_domain: String = row.try_get("per_domain").map_err(get)?;
    let n = |name: &str| -> Result<u32, StoreError> {
        let v: i64 = row.try_get(name).map_err(|e| StoreError::query("read an exam result", e))?;
        Ok(u32::try_from(v).unwrap_or(0))
    };
    Ok(ExamResult {
        id: row.try_get("id").map_err(get)?,
        email: row.try_get("email").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        taken_ms: row.try_get("taken_ms").map_err(get)?,
        bank_version: row.try_get("bank_version").map_err(get)?,
        right: n("score_right")?,
        total: n("score_total")?,
        pass_mark: row.try_get("pass_mark").map_err(get)?,
        passed: n("passed")? != 0,
        per_domain: serde_json::from_str(&per_domain)
            .map_err(|e| StoreError::other(format!("an exam result's domains are not JSON: {e}")))?,
    })
}

impl Store {
    /// Records a result; its id and email (lower case) are set here.
    pub async fn insert_exam_result(&self, r: &ExamResult) -> Result<ExamResult, StoreError> {
        let r = ExamResult { id: new_id("exm")?, email: r.email.trim().to_lowercase(), ..r.clone() };
        sqlx::query(
            "INSERT INTO exam_results (id, email, name, taken_ms, bank_version, score_right, score_total, pass_mark, passed, per_domain)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&r.id)
        .bind(&r.email)
        .bind(&r.name)
        .bind(r.taken_ms)
        .bind(&r.bank_version)
        .bind(i64::from(r.right))
        .bind(i64::from(r.total))
        .bind(r.pass_mark)
        .bind(i64::from(r.passed))
        .bind(serde_json::to_string(&r.per_domain).unwrap_or_default())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("record an exam result", e))?;
        Ok(r)
    }

    /// Results, newest first, at most `limit`; only `email`'s when given.
    pub async fn exam_results(&self, email: Option<&str>, limit: u32) -> Result<Vec<ExamResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM exam_results WHERE (CAST($1 AS TEXT) IS NULL OR email = $1) ORDER BY taken_ms DESC, id DESC LIMIT $2",
        )
        .bind(email.map(|e| e.trim().to_lowercase()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query("read exam results", e))?;
        rows.iter().map(result).collect()
    }

    /// Each person's latest pass, by email.
    pub async fn latest_passes(&self) -> Result<BTreeMap<String, ExamResult>, StoreError> {
        let mut out = BTreeMap::new();
        for r in self.exam_results(None, 100_000).await? {
            if r.passed {
                out.entry(r.email.clone()).or_insert(r);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(email: &str, taken_ms: i64, passed: bool) -> ExamResult {
        ExamResult {
            id: String::new(),
            email: email.into(),
            name: "Ana".into(),
            taken_ms,
            bank_version: "2026.11.1".into(),
            right: if passed { 18 } else { 9 },
            total: 20,
            pass_mark: 0.75,
            passed,
            per_domain: BTreeMap::from([("IG".to_string(), (2, 2))]),
        }
    }

    #[tokio::test]
    async fn results_round_trip_and_the_latest_pass_counts() -> Result<(), StoreError> {
        for store in crate::testing::stores().await {
            let first = store.insert_exam_result(&sample("Ana@Example.com", 1_000, true)).await?;
            assert!(first.id.starts_with("exm_") && first.email == "ana@example.com");
            store.insert_exam_result(&sample("ana@example.com", 2_000, true)).await?;
            store.insert_exam_result(&sample("ana@example.com", 3_000, false)).await?;
            store.insert_exam_result(&sample("bo@example.com", 1_500, false)).await?;
            let mine = store.exam_results(Some("ANA@example.com"), 10).await?;
            assert_eq!(mine.iter().map(|r| r.taken_ms).collect::<Vec<_>>(), [3_000, 2_000, 1_000]);
            assert_eq!(mine[1].per_domain, sample("x", 0, true).per_domain);
            let passes = store.latest_passes().await?;
            assert_eq!(passes.len(), 1, "a fail is no pass");
            assert_eq!(passes["ana@example.com"].taken_ms, 2_000, "the latest pass, not the latest attempt");
        }
        Ok(())
    }
}
