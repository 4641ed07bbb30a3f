//! Numbered schema migrations, applied once each, in order, inside a transaction.
//!
//! A migration is never edited after it has shipped: a change is a new migration, written
//! for both databases. PostgreSQL arrived at schema 5, so its list starts there with the
//! whole schema; from 6 on, the two lists grow together.

use sqlx::AnyPool;

use crate::{Backend, StoreError};

const SQLITE: &[(i64, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE audit_log (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id        TEXT NOT NULL UNIQUE,
        ts_ms             INTEGER NOT NULL,
        app               TEXT,
        key_id            TEXT,
        decision_point    TEXT,
        status            INTEGER NOT NULL,
        outcome           TEXT NOT NULL,
        code              TEXT,
        model             TEXT,
        provider          TEXT,
        stream            INTEGER NOT NULL,
        latency_ms        REAL NOT NULL,
        overhead_ms       REAL NOT NULL,
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        attempts          TEXT NOT NULL,
        stages            TEXT NOT NULL,
        input_redacted    TEXT NOT NULL,
        output_redacted   TEXT
    );
    CREATE INDEX audit_log_ts ON audit_log (ts_ms);
    CREATE INDEX audit_log_point ON audit_log (decision_point, ts_ms);
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        app         TEXT NOT NULL,
        sha256      TEXT NOT NULL UNIQUE,
        label       TEXT,
        created_ms  INTEGER NOT NULL,
        revoked_ms  INTEGER
    );
    "#,
    ),
    (
        2,
        r#"
    CREATE TABLE events (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms     INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        severity  TEXT NOT NULL,
        app       TEXT,
        key_id    TEXT,
        summary   TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE INDEX events_kind_ts ON events (kind, ts_ms);
    "#,
    ),
    (
        3,
        r#"
    CREATE TABLE reviews (
        id              TEXT PRIMARY KEY,
        request_id      TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        deadline_ms     INTEGER,
        app             TEXT,
        key_id          TEXT,
        decision_point  TEXT NOT NULL,
        reason          TEXT NOT NULL,
        status          TEXT NOT NULL,
        input_redacted  TEXT NOT NULL,
        output          TEXT NOT NULL,
        findings        TEXT NOT NULL,
        confidence      REAL,
        response        TEXT NOT NULL,
        reviewer        TEXT,
        decided_ms      INTEGER,
        note            TEXT,
        final_output    TEXT,
        escalated_ms    INTEGER,
        delivered_ms    INTEGER
    );
    CREATE INDEX reviews_status ON reviews (status, created_ms);
    CREATE TABLE incidents (
        id           TEXT PRIMARY KEY,
        declared_ms  INTEGER NOT NULL,
        declared_by  TEXT NOT NULL,
        action       TEXT NOT NULL,
        scope        TEXT NOT NULL,
        severity     TEXT NOT NULL,
        reason       TEXT NOT NULL,
        drill        INTEGER NOT NULL,
        resolved_ms  INTEGER,
        resolved_by  TEXT,
        resolution   TEXT,
        review       TEXT
    );
    CREATE INDEX incidents_open ON incidents (resolved_ms);
    "#,
    ),
    (
        4,
        r#"
    ALTER TABLE reviews ADD COLUMN anonymised_ms INTEGER;
    CREATE INDEX events_ts ON events (ts_ms);
    "#,
    ),
    (
        5,
        r#"
    ALTER TABLE audit_log ADD COLUMN subject TEXT;
    CREATE INDEX audit_log_subject ON audit_log (subject);
    ALTER TABLE reviews ADD COLUMN subject TEXT;
    CREATE TABLE data_keys (
        key_id      TEXT PRIMARY KEY,
        key         BLOB NOT NULL,
        created_ms  INTEGER NOT NULL
    );
    CREATE TABLE held_values (
        review_id  TEXT PRIMARY KEY,
        key_id     TEXT NOT NULL,
        nonce      BLOB NOT NULL,
        sealed     BLOB NOT NULL
    );
    CREATE INDEX held_values_key ON held_values (key_id);
    CREATE TABLE erasures (
        id            TEXT PRIMARY KEY,
        subject       TEXT NOT NULL,
        requested_by  TEXT NOT NULL,
        erased_ms     INTEGER NOT NULL,
        counts        TEXT NOT NULL
    );
    "#,
    ),
    (6, "ALTER TABLE api_keys ADD COLUMN subject TEXT;"),
    (
        7,
        r#"
    CREATE TABLE console_users (
        id             TEXT PRIMARY KEY,
        email          TEXT NOT NULL UNIQUE,
        name           TEXT NOT NULL,
        role           TEXT NOT NULL,
        password_hash  TEXT NOT NULL,
        created_ms     INTEGER NOT NULL,
        disabled_ms    INTEGER
    );
    CREATE TABLE console_sessions (
        token_sha256  TEXT PRIMARY KEY,
        user_id       TEXT NOT NULL,
        csrf          TEXT NOT NULL,
        created_ms    INTEGER NOT NULL,
        expires_ms    INTEGER NOT NULL
    );
    CREATE INDEX console_sessions_user ON console_sessions (user_id);
    "#,
    ),
    (
        8,
        r#"
    CREATE TABLE exam_results (
        id            TEXT PRIMARY KEY,
        email         TEXT NOT NULL,
        name          TEXT NOT NULL,
        taken_ms      INTEGER NOT NULL,
        bank_version  TEXT NOT NULL,
        score_right   INTEGER NOT NULL,
        score_total   INTEGER NOT NULL,
        pass_mark     REAL NOT NULL,
        passed        INTEGER NOT NULL,
        per_domain    TEXT NOT NULL
    );
    CREATE INDEX exam_results_email ON exam_results (email, taken_ms);
    "#,
    ),
];

const POSTGRES: &[(i64, &str)] = &[
    (
        5,
        r#"
    CREATE TABLE audit_log (
        seq               BIGSERIAL PRIMARY KEY,
        request_id        TEXT NOT NULL UNIQUE,
        ts_ms             BIGINT NOT NULL,
        app               TEXT,
        key_id            TEXT,
        decision_point    TEXT,
        status            BIGINT NOT NULL,
        outcome           TEXT NOT NULL,
        code              TEXT,
        model             TEXT,
        provider          TEXT,
        stream            BIGINT NOT NULL,
        latency_ms        DOUBLE PRECISION NOT NULL,
        overhead_ms       DOUBLE PRECISION NOT NULL,
        prompt_tokens     BIGINT,
        completion_tokens BIGINT,
        attempts          TEXT NOT NULL,
        stages            TEXT NOT NULL,
        input_redacted    TEXT NOT NULL,
        output_redacted   TEXT,
        subject           TEXT
    );
    CREATE INDEX audit_log_ts ON audit_log (ts_ms);
    CREATE INDEX audit_log_point ON audit_log (decision_point, ts_ms);
    CREATE INDEX audit_log_subject ON audit_log (subject);
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        app         TEXT NOT NULL,
        sha256      TEXT NOT NULL UNIQUE,
        label       TEXT,
        created_ms  BIGINT NOT NULL,
        revoked_ms  BIGINT
    );
    CREATE TABLE events (
        seq       BIGSERIAL PRIMARY KEY,
        ts_ms     BIGINT NOT NULL,
        kind      TEXT NOT NULL,
        severity  TEXT NOT NULL,
        app       TEXT,
        key_id    TEXT,
        summary   TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE INDEX events_kind_ts ON events (kind, ts_ms);
    CREATE INDEX events_ts ON events (ts_ms);
    CREATE TABLE reviews (
        id              TEXT PRIMARY KEY,
        request_id      TEXT NOT NULL,
        created_ms      BIGINT NOT NULL,
        deadline_ms     BIGINT,
        app             TEXT,
        key_id          TEXT,
        decision_point  TEXT NOT NULL,
        reason          TEXT NOT NULL,
        status          TEXT NOT NULL,
        input_redacted  TEXT NOT NULL,
        output          TEXT NOT NULL,
        findings        TEXT NOT NULL,
        confidence      DOUBLE PRECISION,
        response        TEXT NOT NULL,
        reviewer        TEXT,
        decided_ms      BIGINT,
        note            TEXT,
        final_output    TEXT,
        escalated_ms    BIGINT,
        delivered_ms    BIGINT,
        anonymised_ms   BIGINT,
        subject         TEXT
    );
    CREATE INDEX reviews_status ON reviews (status, created_ms);
    CREATE TABLE incidents (
        id           TEXT PRIMARY KEY,
        declared_ms  BIGINT NOT NULL,
        declared_by  TEXT NOT NULL,
        action       TEXT NOT NULL,
        scope        TEXT NOT NULL,
        severity     TEXT NOT NULL,
        reason       TEXT NOT NULL,
        drill        BIGINT NOT NULL,
        resolved_ms  BIGINT,
        resolved_by  TEXT,
        resolution   TEXT,
        review       TEXT
    );
    CREATE INDEX incidents_open ON incidents (resolved_ms);
    CREATE TABLE data_keys (
        key_id      TEXT PRIMARY KEY,
        key         BYTEA NOT NULL,
        created_ms  BIGINT NOT NULL
    );
    CREATE TABLE held_values (
        review_id  TEXT PRIMARY KEY,
        key_id     TEXT NOT NULL,
        nonce      BYTEA NOT NULL,
        sealed     BYTEA NOT NULL
    );
    CREATE INDEX held_values_key ON held_values (key_id);
    CREATE TABLE erasures (
        id            TEXT PRIMARY KEY,
        subject       TEXT NOT NULL,
        requested_by  TEXT NOT NULL,
        erased_ms     BIGINT NOT NULL,
        counts        TEXT NOT NULL
    );
    "#,
    ),
    (6, "ALTER TABLE api_keys ADD COLUMN subject TEXT;"),
    (
        7,
        r#"
    CREATE TABLE console_users (
        id             TEXT PRIMARY KEY,
        email          TEXT NOT NULL UNIQUE,
        name           TEXT NOT NULL,
        role           TEXT NOT NULL,
        password_hash  TEXT NOT NULL,
        created_ms     BIGINT NOT NULL,
        disabled_ms    BIGINT
    );
    CREATE TABLE console_sessions (
        token_sha256  TEXT PRIMARY KEY,
        user_id       TEXT NOT NULL,
        csrf          TEXT NOT NULL,
        created_ms    BIGINT NOT NULL,
        expires_ms    BIGINT NOT NULL
    );
    CREATE INDEX console_sessions_user ON console_sessions (user_id);
    "#,
    ),
    (
        8,
        r#"
    CREATE TABLE exam_results (
        id            TEXT PRIMARY KEY,
        email         TEXT NOT NULL,
        name          TEXT NOT NULL,
        taken_ms      BIGINT NOT NULL,
        bank_version  TEXT NOT NULL,
        score_right   BIGINT NOT NULL,
        score_total   BIGINT NOT NULL,
        pass_mark     DOUBLE PRECISION NOT NULL,
        passed        BIGINT NOT NULL,
        per_domain    TEXT NOT NULL
    );
    CREATE INDEX exam_results_email ON exam_results (email, taken_ms);
    "#,
    ),
];

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let list = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    for (version, sql) in list {
        let mut tx = pool.begin().await.map_err(|e| StoreError::query("begin a migration", e))?;
        if backend == Backend::Postgres {
            // Gateways starting together must not migrate at once: one waits for the other.
            sqlx::query("SELECT pg_advisory_xact_lock(7365746)")
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::query("lock its migrations", e))?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS psf_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::query("create its migrations table", e))?;
        let done: Option<i64> = sqlx::query_scalar("SELECT version FROM psf_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| StoreError::query("read its migrations", e))?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| StoreError::query("apply a migration", e))?;
        sqlx::query("INSERT INTO psf_migrations (version, applied_ms) VALUES ($1, $2)")
            .bind(version)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::query("record a migration", e))?;
        tx.commit().await.map_err(|e| StoreError::query("commit a migration", e))?;
    }
    Ok(())
}
