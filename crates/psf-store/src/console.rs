//! The console's people and their sessions.
//!
//! A user's password is kept only as the PHC string the console's hasher made (argon2id);
//! this crate never sees a password. A session is kept as the SHA-256 of its cookie, so a
//! copy of the store lets nobody sign in; sessions live in the store so that every
//! gateway of a cluster knows them.

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError, key_digest, new_id, now_ms};

/// A person who may sign in to the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleUser {
    /// `usr_…`.
    pub id: String,
    /// What they sign in with (kept in lower case).
    pub email: String,
    /// Their name, shown in the console and written into what they do.
    pub name: String,
    /// `operator`, `reviewer` or `auditor`.
    pub role: String,
    /// The password's PHC string; never serialised.
    #[serde(skip)]
    pub password_hash: String,
    /// When the user was created (ms since the epoch).
    pub created_ms: i64,
    /// When the user was disabled, if they were.
    pub disabled_ms: Option<i64>,
}

/// A signed-in session, as read back for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Who signed in.
    pub user: ConsoleUser,
    /// The session's CSRF token, which every form must carry back.
    pub csrf: String,
    /// When the session ends (ms since the epoch).
    pub expires_ms: i64,
}

fn user(row: &sqlx::any::AnyRow) -> Result<ConsoleUser, StoreError> {
    let get = |e| StoreError::query("read a console user", e);
    Ok(ConsoleUser {
        id: row.try_get("id").map_err(get)?,
        email: row.try_get("email").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        role: row.try_get("role").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        created_ms: row.try_get("created_ms").map_err(get)?,
        disabled_ms: row.try_get("disabled_ms").map_err(get)?,
    })
}

impl Store {
    /// Adds a console user; an email already taken is an error that says so.
    pub async fn create_console_user(
        &self,
        email: &str,
        name: &str,
        role: &str,
        password_hash: &str,
    ) -> Result<ConsoleUser, StoreError> {
        let email = email.trim().to_lowercase();
        if self.console_user(&email).await?.is_some() {
            return Err(StoreError::other(format!(
                "a console user `{email}` already exists; `psf users password` changes a password"
            )));
        }
        let u = ConsoleUser {
            id: new_id("usr")?,
            email,
            name: name.to_string(),
            role: role.to_string(),
            password_hash: password_hash.to_string(),
            created_ms: now_ms(),
            disabled_ms: None,
        };
        sqlx::query(
            "INSERT INTO console_users (id, email, name, role, password_hash, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.role)
        .bind(&u.password_hash)
        .bind(u.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("create a console user", e))?;
        Ok(u)
    }

    /// The user with this email (any case), disabled or not.
    pub async fn console_user(&self, email: &str) -> Result<Option<ConsoleUser>, StoreError> {
        let row = sqlx::query("SELECT * FROM console_users WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| StoreError::query("read a console user", e))?;
        row.as_ref().map(user).transpose()
    }

    /// Every console user, by email.
    pub async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        let rows = sqlx::query("SELECT * FROM console_users ORDER BY email")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| StoreError::query("read console users", e))?;
        rows.iter().map(user).collect()
    }

    /// Replaces a user's password hash and ends their sessions; false when there is no such user.
    pub async fn set_console_password(&self, email: &str, password_hash: &str) -> Result<bool, StoreError> {
        let Some(u) = self.console_user(email).await? else { return Ok(false) };
        sqlx::query("UPDATE console_users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(&u.id)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("change a console password", e))?;
        self.end_console_sessions(&u.id).await?;
        Ok(true)
    }

    /// Disables a user and ends their sessions; false when there is no such active user.
    pub async fn disable_console_user(&self, email: &str) -> Result<bool, StoreError> {
        let Some(u) = self.console_user(email).await?.filter(|u| u.disabled_ms.is_none()) else { return Ok(false) };
        sqlx::query("UPDATE console_users SET disabled_ms = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(&u.id)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("disable a console user", e))?;
        self.end_console_sessions(&u.id).await?;
        Ok(true)
    }

    async fn end_console_sessions(&self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("end console sessions", e))?;
        Ok(())
    }

    /// Starts a session for `user_id`, kept as the SHA-256 of `token`.
    pub async fn create_console_session(
        &self,
        token: &str,
        user_id: &str,
        csrf: &str,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        // Expired sessions go as new ones come, so the table stays the size of the team.
        sqlx::query("DELETE FROM console_sessions WHERE expires_ms <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("drop expired console sessions", e))?;
        sqlx::query(
            "INSERT INTO console_sessions (token_sha256, user_id, csrf, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key_digest(token))
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query("start a console session", e))?;
        Ok(())
    }

    /// The live session behind `token`: not expired, its user not disabled.
    pub async fn console_session(&self, token: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "SELECT u.*, s.csrf AS session_csrf, s.expires_ms AS session_expires_ms
             FROM console_sessions s JOIN console_users u ON u.id = s.user_id
             WHERE s.token_sha256 = $1 AND s.expires_ms > $2 AND u.disabled_ms IS NULL",
        )
        .bind(key_digest(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StoreError::query("read a console session", e))?;
        let Some(row) = row else { return Ok(None) };
        let get = |e| StoreError::query("read a console session", e);
        Ok(Some(ConsoleSession {
            user: user(&row)?,
            csrf: row.try_get("session_csrf").map_err(get)?,
            expires_ms: row.try_get("session_expires_ms").map_err(get)?,
        }))
    }

    /// Ends the session behind `token` (sign-out).
    pub async fn end_console_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE token_sha256 = $1")
            .bind(key_digest(token))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::query("end a console session", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn users_and_sessions_round_trip() -> Result<(), StoreError> {
        for store in crate::testing::stores().await {
            let u = store.create_console_user("Ana@Example.com ", "Ana", "reviewer", "$argon2id$x").await?;
            assert_eq!(u.email, "ana@example.com");
            let again = store.create_console_user("ana@example.com", "Ana", "auditor", "h").await;
            assert!(again.is_err_and(|e| e.to_string().contains("already exists")));
            assert_eq!(store.console_user("ANA@example.com").await?, Some(u.clone()));

            store.create_console_session("tok-1", &u.id, "csrf-1", now_ms() + 60_000).await?;
            store.create_console_session("tok-old", &u.id, "csrf-2", now_ms() - 1).await?;
            let kept: Vec<String> = sqlx::query_scalar("SELECT token_sha256 FROM console_sessions")
                .fetch_all(&store.pool)
                .await
                .map_err(|e| StoreError::query("read sessions", e))?;
            assert!(kept.iter().all(|k| k.len() == 64 && !k.contains("tok")), "only digests are kept: {kept:?}");
            let s = store.console_session("tok-1").await?;
            assert_eq!(s.as_ref().map(|s| (s.user.id.as_str(), s.csrf.as_str())), Some((u.id.as_str(), "csrf-1")));
            assert_eq!(store.console_session("tok-old").await?, None, "an expired session is no session");
            assert_eq!(store.console_session("tok-2").await?, None);

            store.end_console_session("tok-1").await?;
            assert_eq!(store.console_session("tok-1").await?, None);

            store.create_console_session("tok-3", &u.id, "c", now_ms() + 60_000).await?;
            assert!(store.set_console_password("ana@example.com", "new").await?);
            assert_eq!(store.console_session("tok-3").await?, None, "a new password ends sessions");
            store.create_console_session("tok-4", &u.id, "c", now_ms() + 60_000).await?;
            assert!(store.disable_console_user("ana@example.com").await?);
            assert!(!store.disable_console_user("ana@example.com").await?);
            assert_eq!(store.console_session("tok-4").await?, None, "a disabled user has no session");
            assert_eq!(store.console_users().await?.len(), 1);
        }
        Ok(())
    }
}
