//! The PostgreSQL engine, for several stateless instances on one database. Transactions
//! that append to the revocation feed first take a transaction-scoped advisory lock, so feed
//! entries commit in `seq` order and a follower's cursor never passes an entry that is still
//! being written.

use super::rows::{
    audit_from_row, client_from_row, key_from_row, ms, refresh_from_row, revocation_columns, revocation_from_row, roles_json, scopes_json,
    session_from_row, user_from_row,
};
use super::{AuditEvent, Conflict, KeyRotation, MAX_VERIFIER_LEEWAY, RefreshToken, Revocation, SessionScope, Store, StoreError, StoredKey};
use crate::domain::keys::Kid;
use crate::domain::{Client, ClientId, Email, Session, SessionId, TokenHash, User, UserId, Username};
use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;

/// Arbitrary key of the advisory lock that orders revocation-feed writers.
const FEED_LOCK: i64 = 0x7e55_e4a0_0001;

/// A [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

fn migrator() -> Migrator {
    let step = |version, description: &'static str, sql: &'static str| {
        Migration::new(version, description.into(), MigrationType::Simple, sql.into_sql_str(), false)
    };
    use sqlx::SqlSafeStr;
    // The migrator holds an advisory lock while it runs, so instances starting together
    // migrate once.
    Migrator::with_migrations(vec![
        step(1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
        step(2, "clients", include_str!("../../migrations/postgres/0002_clients.sql")),
        step(3, "rate_limits", include_str!("../../migrations/postgres/0003_rate_limits.sql")),
        step(4, "audit", include_str!("../../migrations/postgres/0004_audit.sql")),
        step(5, "rotation", include_str!("../../migrations/postgres/0005_rotation.sql")),
    ])
}

impl PgStore {
    /// The user a one-parameter query finds, if any.
    async fn one_user(&self, sql: &'static str, key: impl ToString) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(sql).bind(key.to_string()).fetch_optional(&self.pool).await.map_err(classify)?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Connects to a `postgres://` URL. Requests wait at most `acquire_timeout` for a
    /// connection, so an outage answers 503 quickly instead of hanging.
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::other)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(classify)?;
        Ok(PgStore { pool })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator().run(&self.pool).await.map_err(StoreError::other)
    }
}

/// Maps driver errors: named unique constraints → conflicts; lost connections, pool
/// exhaustion and a server shutting down → unavailable.
fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(match db.constraint() {
            Some("users_email_key") => Conflict::Email,
            Some("users_username_key") => Conflict::Username,
            Some("signing_keys_one_active" | "signing_keys_one_next") => Conflict::KeyStatus,
            _ => Conflict::Other,
        }),
        // Class 08: connection exceptions; 57P01-03: the server is shutting down or starting.
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) => StoreError::Unavailable(e),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(e)
        }
        _ => StoreError::other(e),
    }
}

async fn lock_feed<'c>(tx: &mut sqlx::Transaction<'c, sqlx::Postgres>) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(FEED_LOCK).execute(&mut **tx).await.map(|_| ()).map_err(classify)
}

async fn append_in<'c>(
    tx: &mut sqlx::Transaction<'c, sqlx::Postgres>,
    entries: &[Revocation],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    lock_feed(tx).await?;
    for entry in entries {
        let (kind, value, not_before) = revocation_columns(entry);
        sqlx::query("INSERT INTO revocations (kind, value, not_before, exp, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(kind)
            .bind(value)
            .bind(not_before)
            .bind(entry.expires())
            .bind(ms(now))
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
    }
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    fn pool_stats(&self) -> (u32, u32) {
        (self.pool.size(), u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(classify)
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, email, email_normalized, username, password_hash, roles, disabled, \
             tokens_not_before, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(user.id.to_string())
        .bind(user.email.as_str())
        .bind(user.email.normalized())
        .bind(user.username.as_ref().map(Username::as_str))
        .bind(user.password_hash.as_str())
        .bind(roles_json(&user.roles))
        .bind(user.disabled)
        .bind(user.tokens_not_before)
        .bind(ms(user.created_at))
        .bind(ms(user.updated_at))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(classify)
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.one_user("SELECT * FROM users WHERE id = $1", id.to_string()).await
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.one_user("SELECT * FROM users WHERE email_normalized = $1", email.normalized()).await
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.one_user("SELECT * FROM users WHERE username = $1", username.as_str()).await
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET email = $1, email_normalized = $2, username = $3, password_hash = $4, roles = $5, \
             disabled = $6, tokens_not_before = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(user.email.as_str())
        .bind(user.email.normalized())
        .bind(user.username.as_ref().map(Username::as_str))
        .bind(user.password_hash.as_str())
        .bind(roles_json(&user.roles))
        .bind(user.disabled)
        .bind(user.tokens_not_before)
        .bind(ms(user.updated_at))
        .bind(user.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user(&self, id: UserId, revocations: &[Revocation], now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await.map_err(classify)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_in(&mut tx, revocations, now).await?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.map(|id| id.to_string()).unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clients (client_id, name, secret_hash, scopes, roles, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(client.id.as_str())
        .bind(client.name.as_str())
        .bind(client.secret_hash.as_bytes().as_slice())
        .bind(scopes_json(&client.scopes))
        .bind(roles_json(&client.roles))
        .bind(ms(client.created_at))
        .bind(ms(client.updated_at))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(classify)
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id").fetch_all(&self.pool).await.map_err(classify)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn set_client_secret(&self, id: &ClientId, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE client_id = $3")
            .bind(hash.as_bytes().as_slice())
            .bind(ms(now))
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_client(&self, id: &ClientId, revocations: &[Revocation], now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(id.as_str()).execute(&mut *tx).await.map_err(classify)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_in(&mut tx, revocations, now).await?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn insert_session(&self, session: &Session, token: &RefreshToken) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
        )
        .bind(session.id.to_string())
        .bind(session.user_id.to_string())
        .bind(ms(session.created_at))
        .bind(ms(session.last_used_at))
        .bind(ms(session.expires_at))
        .bind(session.user_agent.as_deref())
        .bind(session.ip.map(|ip| ip.to_string()))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        insert_refresh(&mut tx, token).await?;
        tx.commit().await.map_err(classify)
    }

    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM sessions WHERE id = $1").bind(id.to_string()).fetch_optional(&self.pool).await.map_err(classify)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn live_sessions(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, id",
        )
        .bind(user.to_string())
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshToken>, StoreError> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE hash = $1")
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.as_ref().map(refresh_from_row).transpose()
    }

    async fn rotate_refresh_token(&self, old: &TokenHash, next: &RefreshToken) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let won = sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE hash = $2 AND rotated_at IS NULL")
            .bind(ms(next.created_at))
            .bind(old.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        if won.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, rotated_at, parent) VALUES ($1, $2, $3, $4, NULL, $5)",
        )
        .bind(next.hash.as_bytes().as_slice())
        .bind(next.session_id.to_string())
        .bind(ms(next.created_at))
        .bind(ms(next.expires_at))
        .bind(old.as_bytes().as_slice())
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        extend_session(&mut tx, next).await?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn add_refresh_token(&self, next: &RefreshToken) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        insert_refresh(&mut tx, next).await?;
        extend_session(&mut tx, next).await?;
        tx.commit().await.map_err(classify)
    }

    async fn end_sessions(&self, scope: SessionScope, now: OffsetDateTime, feed_exp: i64) -> Result<Vec<SessionId>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        lock_feed(&mut tx).await?;
        let (user, only, except) = match scope {
            SessionScope::One(user, id) => (user, Some(id), None),
            SessionScope::AllOf(user) => (user, None, None),
            SessionScope::AllBut(user, id) => (user, None, Some(id)),
        };
        let rows = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             AND ($3::text IS NULL OR id = $3) AND ($4::text IS NULL OR id <> $4) RETURNING id",
        )
        .bind(ms(now))
        .bind(user.to_string())
        .bind(only.map(|id| id.to_string()))
        .bind(except.map(|id| id.to_string()))
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?;
        // Refresh tokens stay until pruning, so presenting one says "revoked", not "unknown".
        let mut ended = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id").map_err(classify)?;
            ended.push(id.parse::<SessionId>().map_err(StoreError::other)?);
        }
        let feed: Vec<Revocation> = ended.iter().map(|sid| Revocation::Session { sid: sid.to_string(), exp: feed_exp }).collect();
        append_in(&mut tx, &feed, now).await?;
        tx.commit().await.map_err(classify)?;
        Ok(ended)
    }

    async fn append_revocations(&self, entries: &[Revocation], now: OffsetDateTime) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        append_in(&mut tx, entries, now).await?;
        tx.commit().await.map_err(classify)
    }

    async fn revocations_after(&self, cursor: i64, now: OffsetDateTime, limit: u32) -> Result<Vec<(i64, Revocation)>, StoreError> {
        let rows = sqlx::query("SELECT * FROM revocations WHERE seq > $1 AND exp >= $2 ORDER BY seq LIMIT $3")
            .bind(cursor)
            .bind(now.unix_timestamp() - MAX_VERIFIER_LEEWAY)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter().map(revocation_from_row).collect()
    }

    async fn revocation_head(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM revocations")
            .fetch_one(&self.pool)
            .await
            .map(Option::unwrap_or_default)
            .map_err(classify)
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid").fetch_all(&self.pool).await.map_err(classify)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        insert_key_in(&mut tx, key).await?;
        tx.commit().await.map_err(classify)
    }

    async fn rotate_keys(&self, rotation: &KeyRotation) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        for kid in &rotation.delete {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid.as_str()).execute(&mut *tx).await.map_err(classify)?;
        }
        if let Some(kid) = &rotation.retire {
            let done = sqlx::query("UPDATE signing_keys SET status = 'retiring', retired_at = $1 WHERE kid = $2 AND status = 'active'")
                .bind(ms(rotation.now))
                .bind(kid.as_str())
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(Conflict::KeyStatus));
            }
        }
        if let Some(kid) = &rotation.promote {
            let done = sqlx::query("UPDATE signing_keys SET status = 'active' WHERE kid = $1 AND status = 'next'")
                .bind(kid.as_str())
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(Conflict::KeyStatus));
            }
        }
        for key in &rotation.insert {
            insert_key_in(&mut tx, key).await?;
        }
        tx.commit().await.map_err(classify)
    }

    async fn delete_keys(&self, kids: &[Kid]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        for kid in kids {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid.as_str()).execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await.map_err(classify)
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&self.pool).await.map_err(classify)
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn record_login_failure(&self, login: &str, now: OffsetDateTime, window: Duration) -> Result<(i64, i64), StoreError> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO login_failures (login, failures, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (login) DO UPDATE SET \
             failures = CASE WHEN login_failures.window_start < $3 THEN 1 ELSE login_failures.failures + 1 END, \
             window_start = CASE WHEN login_failures.window_start < $3 THEN $2 ELSE login_failures.window_start END \
             RETURNING failures, window_start",
        )
        .bind(login)
        .bind(ms(now))
        .bind(ms(now).saturating_sub(window_ms))
        .fetch_one(&self.pool)
        .await
        .map_err(classify)
    }

    async fn login_failures(&self, login: &str) -> Result<Option<(i64, i64)>, StoreError> {
        sqlx::query_as::<_, (i64, i64)>("SELECT failures, window_start FROM login_failures WHERE login = $1")
            .bind(login)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)
    }

    async fn clear_login_failures(&self, login: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE login = $1").bind(login).execute(&self.pool).await.map(|_| ()).map_err(classify)
    }

    async fn add_rate_hits(&self, minute: i64, hits: &[(String, i64)]) -> Result<Vec<(String, i64)>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let mut totals = Vec::with_capacity(hits.len());
        for (client, n) in hits {
            let total: i64 = sqlx::query_scalar(
                "INSERT INTO rate_counters (client, minute, hits) VALUES ($1, $2, $3) \
                 ON CONFLICT (client, minute) DO UPDATE SET hits = rate_counters.hits + $3 RETURNING hits",
            )
            .bind(client)
            .bind(minute)
            .bind(n)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
            totals.push((client.clone(), total));
        }
        tx.commit().await.map_err(classify)?;
        Ok(totals)
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_events (at, kind, actor, subject, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(ms(event.at))
            .bind(&event.kind)
            .bind(event.actor.as_deref())
            .bind(event.subject.as_deref())
            .bind(event.ip.as_deref())
            .bind(event.detail.as_deref())
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn audit_events(&self, before: Option<i64>, limit: u32) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE seq < $1 ORDER BY seq DESC LIMIT $2")
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn prune_audit(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(ms(cutoff))
            .execute(&self.pool)
            .await
            .map(|d| d.rows_affected())
            .map_err(classify)
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let mut pruned = 0;
        for sql in
            ["DELETE FROM refresh_tokens WHERE expires_at < $1", "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at IS NOT NULL"]
        {
            pruned += sqlx::query(sql).bind(ms(now)).execute(&mut *tx).await.map_err(classify)?.rows_affected();
        }
        pruned += sqlx::query("DELETE FROM rate_counters WHERE minute < $1")
            .bind(now.unix_timestamp() / 60 - 1)
            .execute(&mut *tx)
            .await
            .map_err(classify)?
            .rows_affected();
        pruned += sqlx::query("DELETE FROM revocations WHERE exp < $1")
            .bind(now.unix_timestamp() - MAX_VERIFIER_LEEWAY)
            .execute(&mut *tx)
            .await
            .map_err(classify)?
            .rows_affected();
        tx.commit().await.map_err(classify)?;
        Ok(pruned)
    }
}

async fn insert_refresh<'c>(tx: &mut sqlx::Transaction<'c, sqlx::Postgres>, token: &RefreshToken) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, rotated_at) VALUES ($1, $2, $3, $4, NULL)")
        .bind(token.hash.as_bytes().as_slice())
        .bind(token.session_id.to_string())
        .bind(ms(token.created_at))
        .bind(ms(token.expires_at))
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(classify)
}

async fn extend_session<'c>(tx: &mut sqlx::Transaction<'c, sqlx::Postgres>, token: &RefreshToken) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET last_used_at = $1, expires_at = GREATEST(expires_at, $2) WHERE id = $3")
        .bind(ms(token.created_at))
        .bind(ms(token.expires_at))
        .bind(token.session_id.to_string())
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(classify)
}

async fn insert_key_in<'c>(tx: &mut sqlx::Transaction<'c, sqlx::Postgres>, key: &StoredKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, status, private_key, encrypted, public_jwk, created_at, retired_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(key.kid.as_str())
    .bind(key.alg.as_str())
    .bind(key.status.as_str())
    .bind(key.private_key.as_deref())
    .bind(key.encrypted)
    .bind(key.public_jwk.as_deref())
    .bind(ms(key.created_at))
    .bind(key.retired_at.map(ms))
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(classify)
}
