//! The SQLite engine: one file, WAL mode so readers never wait for the writer, write
//! transactions begun `IMMEDIATE` so two writers queue on the busy timeout instead of
//! failing when a read lock cannot be upgraded.

use super::rows::{
    audit_from_row, client_from_row, key_from_row, ms, refresh_from_row, revocation_columns, revocation_from_row, roles_json, scopes_json,
    session_from_row, user_from_row,
};
use super::{AuditEvent, Conflict, KeyRotation, MAX_VERIFIER_LEEWAY, RefreshToken, Revocation, SessionScope, Store, StoreError, StoredKey};
use crate::domain::keys::Kid;
use crate::domain::{Client, ClientId, Email, Session, SessionId, TokenHash, User, UserId, Username};
use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// A [`Store`] on an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection this process writes through. SQLite allows one writer at a time,
    /// and a writer that finds the lock taken sleeps in its busy handler for milliseconds at
    /// a time; queueing here instead costs microseconds. Readers use the pool and never wait
    /// for it (WAL), and a writer never waits for a pooled connection while others queue
    /// behind it.
    writer: Arc<tokio::sync::Mutex<SqliteConnection>>,
}

fn migrator() -> Migrator {
    let step = |version, description: &'static str, sql: &'static str| {
        Migration::new(version, description.into(), MigrationType::Simple, sql.into_sql_str(), false)
    };
    use sqlx::SqlSafeStr;
    Migrator::with_migrations(vec![
        step(1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
        step(2, "clients", include_str!("../../migrations/sqlite/0002_clients.sql")),
        step(3, "rate_limits", include_str!("../../migrations/sqlite/0003_rate_limits.sql")),
        step(4, "audit", include_str!("../../migrations/sqlite/0004_audit.sql")),
        step(5, "rotation", include_str!("../../migrations/sqlite/0005_rotation.sql")),
    ])
}

impl SqliteStore {
    /// The user a one-parameter query finds, if any.
    async fn one_user(&self, sql: &'static str, key: impl ToString) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(sql).bind(key.to_string()).fetch_optional(&self.pool).await.map_err(classify)?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Opens (creating if missing) the database at a `sqlite://PATH` URL.
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::other)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // Switching a new file to WAL needs an exclusive lock, and SQLite refuses it at once
        // (no busy wait) while another process opening the same new file holds it; so a
        // process starting beside another one retries briefly.
        let mut attempt = 0;
        loop {
            let opened = async {
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .acquire_timeout(acquire_timeout)
                    .connect_with(options.clone())
                    .await?;
                let writer = options.connect().await?;
                Ok::<_, sqlx::Error>((pool, writer))
            };
            match opened.await {
                Ok((pool, writer)) => return Ok(SqliteStore { pool, writer: Arc::new(tokio::sync::Mutex::new(writer)) }),
                Err(e) if attempt < 10 && is_locked(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
                Err(e) => return Err(classify(e)),
            }
        }
    }

    /// Applies pending migrations. SQLite has no advisory lock, so when several processes
    /// start on one new file, the losers' migration transactions fail and roll back; they
    /// retry and then find the winner's work done.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            match migrator().run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(StoreError::other(e)),
            }
        }
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED.
fn is_locked(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6")))
}

/// Maps driver errors: uniqueness → conflict, I/O and pool exhaustion → unavailable.
fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let msg = db.message();
            StoreError::Conflict(if msg.contains("users.email_normalized") {
                Conflict::Email
            } else if msg.contains("users.username") {
                Conflict::Username
            } else if msg.contains("signing_keys.status") {
                Conflict::KeyStatus
            } else {
                Conflict::Other
            })
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => StoreError::Unavailable(e),
        _ => StoreError::other(e),
    }
}

const WRITE: &str = "BEGIN IMMEDIATE";

async fn append_in<'c>(
    tx: &mut sqlx::Transaction<'c, sqlx::Sqlite>,
    entries: &[Revocation],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for entry in entries {
        let (kind, value, not_before) = revocation_columns(entry);
        sqlx::query("INSERT INTO revocations (kind, value, not_before, exp, created_at) VALUES (?, ?, ?, ?, ?)")
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
impl Store for SqliteStore {
    fn pool_stats(&self) -> (u32, u32) {
        (self.pool.size(), u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(classify)
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO users (id, email, email_normalized, username, password_hash, roles, disabled, \
             tokens_not_before, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *writer)
        .await
        .map(|_| ())
        .map_err(classify)
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.one_user("SELECT * FROM users WHERE id = ?", id.to_string()).await
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.one_user("SELECT * FROM users WHERE email_normalized = ?", email.normalized()).await
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.one_user("SELECT * FROM users WHERE username = ?", username.as_str()).await
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let mut writer = self.writer.lock().await;
        let done = sqlx::query(
            "UPDATE users SET email = ?, email_normalized = ?, username = ?, password_hash = ?, roles = ?, \
             disabled = ?, tokens_not_before = ?, updated_at = ? WHERE id = ?",
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
        .execute(&mut *writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user(&self, id: UserId, revocations: &[Revocation], now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        let done = sqlx::query("DELETE FROM users WHERE id = ?").bind(id.to_string()).execute(&mut *tx).await.map_err(classify)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_in(&mut tx, revocations, now).await?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after.map(|id| id.to_string()).unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO clients (client_id, name, secret_hash, scopes, roles, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(client.id.as_str())
        .bind(client.name.as_str())
        .bind(client.secret_hash.as_bytes().as_slice())
        .bind(scopes_json(&client.scopes))
        .bind(roles_json(&client.roles))
        .bind(ms(client.created_at))
        .bind(ms(client.updated_at))
        .execute(&mut *writer)
        .await
        .map(|_| ())
        .map_err(classify)
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = ?")
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
        let mut writer = self.writer.lock().await;
        let done = sqlx::query("UPDATE clients SET secret_hash = ?, updated_at = ? WHERE client_id = ?")
            .bind(hash.as_bytes().as_slice())
            .bind(ms(now))
            .bind(id.as_str())
            .execute(&mut *writer)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_client(&self, id: &ClientId, revocations: &[Revocation], now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        let done = sqlx::query("DELETE FROM clients WHERE client_id = ?").bind(id.as_str()).execute(&mut *tx).await.map_err(classify)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_in(&mut tx, revocations, now).await?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn insert_session(&self, session: &Session, token: &RefreshToken) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip) \
             VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
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
            sqlx::query("SELECT * FROM sessions WHERE id = ?").bind(id.to_string()).fetch_optional(&self.pool).await.map_err(classify)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn live_sessions(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? \
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
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE hash = ?")
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.as_ref().map(refresh_from_row).transpose()
    }

    async fn rotate_refresh_token(&self, old: &TokenHash, next: &RefreshToken) -> Result<bool, StoreError> {
        // The successor is inserted only while its parent is unspent; the insert trigger
        // (migration 5) then marks the parent spent and extends the session, all in this
        // one atomic statement.
        let mut writer = self.writer.lock().await;
        let inserted = sqlx::query(
            "INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, rotated_at, parent) \
             SELECT ?, session_id, ?, ?, NULL, hash FROM refresh_tokens \
             WHERE hash = ? AND session_id = ? AND rotated_at IS NULL",
        )
        .bind(next.hash.as_bytes().as_slice())
        .bind(ms(next.created_at))
        .bind(ms(next.expires_at))
        .bind(old.as_bytes().as_slice())
        .bind(next.session_id.to_string())
        .execute(&mut *writer)
        .await
        .map_err(classify)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn add_refresh_token(&self, next: &RefreshToken) -> Result<(), StoreError> {
        // The insert trigger extends the session.
        let mut writer = self.writer.lock().await;
        insert_refresh(&mut writer, next).await
    }

    async fn end_sessions(&self, scope: SessionScope, now: OffsetDateTime, feed_exp: i64) -> Result<Vec<SessionId>, StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        let (user, only, except) = match scope {
            SessionScope::One(user, id) => (user, Some(id), None),
            SessionScope::AllOf(user) => (user, None, None),
            SessionScope::AllBut(user, id) => (user, None, Some(id)),
        };
        let rows = sqlx::query(
            "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL \
             AND (? IS NULL OR id = ?) AND (? IS NULL OR id <> ?) RETURNING id",
        )
        .bind(ms(now))
        .bind(user.to_string())
        .bind(only.map(|id| id.to_string()))
        .bind(only.map(|id| id.to_string()))
        .bind(except.map(|id| id.to_string()))
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
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        append_in(&mut tx, entries, now).await?;
        tx.commit().await.map_err(classify)
    }

    async fn revocations_after(&self, cursor: i64, now: OffsetDateTime, limit: u32) -> Result<Vec<(i64, Revocation)>, StoreError> {
        let rows = sqlx::query("SELECT * FROM revocations WHERE seq > ? AND exp >= ? ORDER BY seq LIMIT ?")
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
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        insert_key_in(&mut tx, key).await?;
        tx.commit().await.map_err(classify)
    }

    async fn rotate_keys(&self, rotation: &KeyRotation) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        for kid in &rotation.delete {
            sqlx::query("DELETE FROM signing_keys WHERE kid = ?").bind(kid.as_str()).execute(&mut *tx).await.map_err(classify)?;
        }
        if let Some(kid) = &rotation.retire {
            let done = sqlx::query("UPDATE signing_keys SET status = 'retiring', retired_at = ? WHERE kid = ? AND status = 'active'")
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
            let done = sqlx::query("UPDATE signing_keys SET status = 'active' WHERE kid = ? AND status = 'next'")
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
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        for kid in kids {
            sqlx::query("DELETE FROM signing_keys WHERE kid = ?").bind(kid.as_str()).execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await.map_err(classify)
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = ?").bind(name).fetch_optional(&self.pool).await.map_err(classify)
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&mut *writer)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn record_login_failure(&self, login: &str, now: OffsetDateTime, window: Duration) -> Result<(i64, i64), StoreError> {
        let mut writer = self.writer.lock().await;
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO login_failures (login, failures, window_start) VALUES (?1, 1, ?2) \
             ON CONFLICT (login) DO UPDATE SET \
             failures = CASE WHEN login_failures.window_start < ?3 THEN 1 ELSE login_failures.failures + 1 END, \
             window_start = CASE WHEN login_failures.window_start < ?3 THEN ?2 ELSE login_failures.window_start END \
             RETURNING failures, window_start",
        )
        .bind(login)
        .bind(ms(now))
        .bind(ms(now).saturating_sub(window_ms))
        .fetch_one(&mut *writer)
        .await
        .map_err(classify)
    }

    async fn login_failures(&self, login: &str) -> Result<Option<(i64, i64)>, StoreError> {
        sqlx::query_as::<_, (i64, i64)>("SELECT failures, window_start FROM login_failures WHERE login = ?")
            .bind(login)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)
    }

    async fn clear_login_failures(&self, login: &str) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        sqlx::query("DELETE FROM login_failures WHERE login = ?").bind(login).execute(&mut *writer).await.map(|_| ()).map_err(classify)
    }

    async fn add_rate_hits(&self, minute: i64, hits: &[(String, i64)]) -> Result<Vec<(String, i64)>, StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        let mut totals = Vec::with_capacity(hits.len());
        for (client, n) in hits {
            let total: i64 = sqlx::query_scalar(
                "INSERT INTO rate_counters (client, minute, hits) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (client, minute) DO UPDATE SET hits = rate_counters.hits + ?3 RETURNING hits",
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
        let mut writer = self.writer.lock().await;
        sqlx::query("INSERT INTO audit_events (at, kind, actor, subject, ip, detail) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(ms(event.at))
            .bind(&event.kind)
            .bind(event.actor.as_deref())
            .bind(event.subject.as_deref())
            .bind(event.ip.as_deref())
            .bind(event.detail.as_deref())
            .execute(&mut *writer)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn audit_events(&self, before: Option<i64>, limit: u32) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE seq < ? ORDER BY seq DESC LIMIT ?")
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn prune_audit(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        let mut writer = self.writer.lock().await;
        sqlx::query("DELETE FROM audit_events WHERE at < ?")
            .bind(ms(cutoff))
            .execute(&mut *writer)
            .await
            .map(|d| d.rows_affected())
            .map_err(classify)
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut writer = self.writer.lock().await;
        let mut tx = writer.begin_with(WRITE).await.map_err(classify)?;
        let mut pruned = 0;
        for sql in
            ["DELETE FROM refresh_tokens WHERE expires_at < ?1", "DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at IS NOT NULL"]
        {
            pruned += sqlx::query(sql).bind(ms(now)).execute(&mut *tx).await.map_err(classify)?.rows_affected();
        }
        pruned += sqlx::query("DELETE FROM rate_counters WHERE minute < ?")
            .bind(now.unix_timestamp() / 60 - 1)
            .execute(&mut *tx)
            .await
            .map_err(classify)?
            .rows_affected();
        pruned += sqlx::query("DELETE FROM revocations WHERE exp < ?")
            .bind(now.unix_timestamp() - MAX_VERIFIER_LEEWAY)
            .execute(&mut *tx)
            .await
            .map_err(classify)?
            .rows_affected();
        tx.commit().await.map_err(classify)?;
        Ok(pruned)
    }
}

async fn insert_refresh(conn: &mut SqliteConnection, token: &RefreshToken) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, rotated_at) VALUES (?, ?, ?, ?, NULL)")
        .bind(token.hash.as_bytes().as_slice())
        .bind(token.session_id.to_string())
        .bind(ms(token.created_at))
        .bind(ms(token.expires_at))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(classify)
}

async fn insert_key_in<'c>(tx: &mut sqlx::Transaction<'c, sqlx::Sqlite>, key: &StoredKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, status, private_key, encrypted, public_jwk, created_at, retired_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
