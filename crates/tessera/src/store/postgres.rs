//! The PostgreSQL engine, for several stateless instances on one database. Transactions
//! that append to the revocation feed first take a transaction-scoped advisory lock, so feed
//! entries commit in `seq` order and a follower's cursor never passes an entry that is still
//! being written.

use super::mail::{Enqueued, LinkKind, LinkToken, MailKind, MailLimit, MailStore, OutgoingMail, QueuedMail, mail_impl};
use super::rows::*;
use super::shared::store_impl;
use super::{
    AuditEvent, BrowserSessionScope, CODE_KEPT_AFTER_EXPIRY, ClientPatch, Conflict, EndedBrowserSessions, KeyRotation, MAX_VERIFIER_LEEWAY,
    RefreshToken, Revocation, SessionScope, Store, StoreError, StoredKey,
};
use crate::domain::keys::Kid;
use crate::domain::{
    AuthorizationCode, BrowserSession, BrowserSessionId, Client, ClientId, ClientName, Consent, Email, PasswordHash, Roles, Session,
    SessionId, TokenHash, User, UserId, Username,
};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection as _, PgPool, Postgres};
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
    // The migrator holds an advisory lock while it runs, so instances starting together
    // migrate once.
    migrator!("postgres")
}

impl PgStore {
    /// A pooled connection for a write.
    async fn write(&self) -> Result<sqlx::pool::PoolConnection<Postgres>, StoreError> {
        self.pool.acquire().await.map_err(classify)
    }

    /// One code exchange (see `store/flow.rs`), holding the account and browser session it
    /// checks until it commits.
    async fn exchange(&self, exchange: super::flow::Exchange) -> Result<bool, StoreError> {
        use super::flow::{bind_exchange, exchange_insert, exchange_row};
        let statement = sqlx::query(concat!(exchange_insert!(), exchange_row!(" FOR SHARE"), " FOR SHARE OF u, b"));
        match bind_exchange!(statement, exchange).execute(&self.pool).await.map_err(classify) {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A write transaction.
    async fn begin(conn: &mut PgConnection) -> Result<sqlx::Transaction<'_, Postgres>, StoreError> {
        conn.begin().await.map_err(classify)
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

/// Feed writers take a transaction-scoped advisory lock first, so entries commit in `seq`
/// order and a follower's cursor never passes an entry that is still being written.
async fn lock_feed(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(FEED_LOCK).execute(conn).await.map(|_| ()).map_err(classify)
}

/// Statements are written in PostgreSQL's placeholders already.
macro_rules! sql {
    ($($part:tt)+) => {
        concat!($($part)+)
    };
}

store_impl!(PgStore, Postgres, {
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

    async fn insert_session(&self, session: &Session, token: &RefreshToken, seen: &User) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        // FOR SHARE holds off a concurrent disabling or role change until this session is
        // committed (so the change's end of sessions sees it), and re-reads a row that such
        // a change committed first (so the condition then fails).
        let unchanged =
            sqlx::query("SELECT 1 FROM users WHERE id = $1 AND disabled = FALSE AND roles = $2 AND tokens_not_before = $3 FOR SHARE")
                .bind(seen.id.to_string())
                .bind(roles_json(&seen.roles))
                .bind(seen.tokens_not_before)
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
        if unchanged.is_none() {
            return Ok(false);
        }
        // Likewise for the browser session it is issued through: a sign-out deleting it
        // either waits for this session (and then ends it) or has deleted it already.
        if let Some(browser_session) = session.browser_session_id {
            let signed_in = sqlx::query("SELECT 1 FROM browser_sessions WHERE id = $1 FOR SHARE")
                .bind(browser_session.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
            if signed_in.is_none() {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip, \
             client_id, scope, browser_session_id, offline, amr) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(session.id.to_string())
        .bind(session.user_id.to_string())
        .bind(ms(session.created_at))
        .bind(ms(session.last_used_at))
        .bind(ms(session.expires_at))
        .bind(session.user_agent.as_deref())
        .bind(session.ip.map(|ip| ip.to_string()))
        .bind(session.client_id.as_ref().map(ClientId::as_str))
        .bind(scopes_json(&session.scope))
        .bind(session.browser_session_id.map(|id| id.to_string()))
        .bind(session.offline)
        .bind(amr_json(&session.amr))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        insert_refresh(&mut tx, token).await?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }
});

super::console::console_impl!(PgStore, " COLLATE \"C\"");
super::factors::factors_impl!(PgStore, Postgres);
mail_impl!(PgStore, Postgres, " FOR UPDATE SKIP LOCKED", " FOR UPDATE");
super::flow::flow_impl!(PgStore);
super::browser::browser_impl!(PgStore);
