//! The SQLite engine: one file, WAL mode so readers never wait for the writer, write
//! transactions begun `IMMEDIATE` so two writers queue on the busy timeout instead of
//! failing when a read lock cannot be upgraded.

use super::flow::{EXCHANGE_PARAMS, Exchange, bind_exchange, exchange_insert, exchange_row};
use super::mail::{Enqueued, LinkKind, LinkToken, MailKind, MailLimit, MailStore, OutgoingMail, QueuedMail, mail_impl};
use super::rows::*;
use super::shared::{dollar_to_question, store_impl};
use super::{
    AuditEvent, BrowserSessionScope, CODE_KEPT_AFTER_EXPIRY, ClientPatch, Conflict, EndedBrowserSessions, KeyRotation, MAX_VERIFIER_LEEWAY,
    RefreshToken, Revocation, SessionScope, Store, StoreError, StoredKey,
};
use crate::domain::keys::Kid;
use crate::domain::{
    AuthorizationCode, BrowserSession, BrowserSessionId, Client, ClientId, ClientName, Consent, Email, PasswordHash, Roles, Session,
    SessionId, TokenHash, User, UserId, Username,
};
use sqlx::Row as _;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, Sqlite, SqlitePool};
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
    /// Code exchanges waiting for the writer (see [`exchange_in_groups`]).
    exchanges: tokio::sync::mpsc::Sender<QueuedExchange>,
}

fn migrator() -> Migrator {
    migrator!("sqlite")
}

/// A statement in SQLite's placeholders, converted once per call site.
macro_rules! sql {
    ($($part:tt)+) => {{
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SQL.get_or_init(|| dollar_to_question(concat!($($part)+))).as_str()
    }};
}

/// How many queued exchanges one statement inserts at most.
const MAX_GROUP: usize = 32;

/// A code exchange waiting for the writer, and where its answer goes.
#[derive(Debug)]
struct QueuedExchange {
    exchange: Exchange,
    answer: tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
}

/// The writer has stopped (the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the database writer has stopped")]
struct WriterStopped;

/// Code exchanges, inserted in groups. An exchange is one statement and the code flow is
/// bound by the single writer; but most of the time a statement holds the writer is not
/// SQLite's work: it is the hand-offs between the request's task and the connection's thread
/// (each a wake-up of an idle thread), and the commit. Exchanges that queue while the writer is
/// busy are therefore inserted by one statement, its rows the exchange's row once per exchange
/// joined by `UNION ALL` (`RETURNING` says which rows went in), so a burst pays for one round
/// trip and one commit. Each row keeps its own conditions, and the statement is atomic: if
/// any row breaks a unique rule, nothing of it is written and the group's exchanges run one
/// by one. A code twice in one group is exchanged at most once: its repeats run after it.
async fn exchange_in_groups(writer: Arc<tokio::sync::Mutex<SqliteConnection>>, mut queue: tokio::sync::mpsc::Receiver<QueuedExchange>) {
    let mut queued = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut queued, MAX_GROUP).await > 0 {
        let mut conn = writer.lock().await;
        let mut seen = std::collections::HashSet::with_capacity(queued.len());
        let (mut group, repeats): (Vec<_>, Vec<_>) = queued.drain(..).partition(|q| seen.insert(q.exchange.code_hash.clone()));
        // Sizes that are powers of two: few statements to prepare and keep.
        while !group.is_empty() {
            let size = 1 << group.len().ilog2();
            let rest = group.split_off(size);
            insert_group(&mut conn, group).await;
            group = rest;
        }
        for one in repeats {
            let answer = insert_one(&mut conn, one.exchange).await;
            let _ = one.answer.send(answer);
        }
    }
}

async fn insert_one(conn: &mut SqliteConnection, exchange: Exchange) -> Result<bool, StoreError> {
    let statement = sqlx::query(sql!(exchange_insert!(), exchange_row!("")));
    match bind_exchange!(statement, exchange).execute(&mut *conn).await.map_err(classify) {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn insert_group(conn: &mut SqliteConnection, group: Vec<QueuedExchange>) {
    if group.len() > 1 {
        let mut statement = sqlx::query(group_statement(group.len()));
        for queued in &group {
            statement = bind_exchange!(statement, queued.exchange.clone());
        }
        let inserted: Result<Vec<Vec<u8>>, StoreError> =
            statement.fetch_all(&mut *conn).await.map(|rows| rows.iter().map(|row| row.get(0)).collect()).map_err(classify);
        match inserted {
            Ok(hashes) => {
                for queued in group {
                    let _ = queued.answer.send(Ok(hashes.contains(&queued.exchange.code_hash)));
                }
                return;
            }
            // Nothing was written; each on its own finds which one it was.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => {
                let why = e.to_string();
                for queued in group {
                    let _ = queued.answer.send(Err(StoreError::other(GroupFailed(why.clone()))));
                }
                return;
            }
        }
    }
    for queued in group {
        let answer = insert_one(conn, queued.exchange).await;
        let _ = queued.answer.send(answer);
    }
}

/// A group's statement failed, `0` saying why.
#[derive(Debug, thiserror::Error)]
#[error("the grouped code exchange failed: {0}")]
struct GroupFailed(String);

/// The statement that inserts `size` exchanges' rows (a power of two up to [`MAX_GROUP`]).
fn group_statement(size: usize) -> &'static str {
    static STATEMENTS: [std::sync::OnceLock<String>; MAX_GROUP + 1] = [const { std::sync::OnceLock::new() }; MAX_GROUP + 1];
    STATEMENTS[size.min(MAX_GROUP)].get_or_init(|| {
        let row = dollar_to_question(exchange_row!(""));
        let rows: Vec<String> = (0..size).map(|i| renumbered(&row, i * EXCHANGE_PARAMS)).collect();
        format!("{}{} RETURNING code_hash", exchange_insert!(), rows.join(" UNION ALL "))
    })
}

/// `sql` with every `?N` placeholder moved up by `offset`.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('?') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

impl SqliteStore {
    /// The one connection writes go through (see [`SqliteStore::writer`]).
    async fn write(&self) -> Result<tokio::sync::MutexGuard<'_, SqliteConnection>, StoreError> {
        Ok(self.writer.lock().await)
    }

    /// One code exchange, inserted with the others queued meanwhile (see
    /// [`exchange_in_groups`]).
    async fn exchange(&self, exchange: Exchange) -> Result<bool, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.exchanges.send(QueuedExchange { exchange, answer }).await.map_err(|_| StoreError::other(WriterStopped))?;
        answered.await.map_err(|_| StoreError::other(WriterStopped))?
    }

    /// A write transaction, begun `IMMEDIATE` so it holds the write lock from its first
    /// statement instead of failing to upgrade a read lock later.
    async fn begin(conn: &mut SqliteConnection) -> Result<sqlx::Transaction<'_, Sqlite>, StoreError> {
        conn.begin_with("BEGIN IMMEDIATE").await.map_err(classify)
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
                Ok((pool, writer)) => {
                    let writer = Arc::new(tokio::sync::Mutex::new(writer));
                    // The task ends when the last clone of the store, and with it the queue's
                    // sender, is gone.
                    let (exchanges, queue) = tokio::sync::mpsc::channel(4 * MAX_GROUP);
                    tokio::spawn(exchange_in_groups(writer.clone(), queue));
                    return Ok(SqliteStore { pool, writer, exchanges });
                }
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

/// SQLite has one writer at a time, so feed entries are appended in order already.
async fn lock_feed(_conn: &mut SqliteConnection) -> Result<(), StoreError> {
    Ok(())
}

store_impl!(SqliteStore, Sqlite, {
    async fn rotate_refresh_token(&self, old: &TokenHash, next: &RefreshToken) -> Result<bool, StoreError> {
        // The successor is inserted only while its parent is unspent; the insert trigger
        // (migration 5) then marks the parent spent and extends the session, all in this
        // one atomic statement.
        let mut writer = self.write().await?;
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

    async fn insert_session(&self, session: &Session, token: &RefreshToken, seen: &User) -> Result<bool, StoreError> {
        let mut writer = self.write().await?;
        let mut tx = Self::begin(&mut writer).await?;
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip, \
             client_id, scope, browser_session_id, offline, amr) \
             SELECT ?1, id, ?2, ?3, ?4, NULL, ?5, ?6, ?10, ?11, ?12, ?13, ?14 FROM users \
             WHERE id = ?7 AND disabled = 0 AND roles = ?8 AND tokens_not_before = ?9 \
             AND (?12 IS NULL OR EXISTS (SELECT 1 FROM browser_sessions WHERE id = ?12))",
        )
        .bind(session.id.to_string())
        .bind(ms(session.created_at))
        .bind(ms(session.last_used_at))
        .bind(ms(session.expires_at))
        .bind(session.user_agent.as_deref())
        .bind(session.ip.map(|ip| ip.to_string()))
        .bind(seen.id.to_string())
        .bind(roles_json(&seen.roles))
        .bind(seen.tokens_not_before)
        .bind(session.client_id.as_ref().map(ClientId::as_str))
        .bind(scopes_json(&session.scope))
        .bind(session.browser_session_id.map(|id| id.to_string()))
        .bind(session.offline)
        .bind(amr_json(&session.amr))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        if inserted.rows_affected() != 1 {
            return Ok(false);
        }
        insert_refresh(&mut tx, token).await?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }
});

super::console::console_impl!(SqliteStore, "");
super::factors::factors_impl!(SqliteStore, Sqlite);
mail_impl!(SqliteStore, Sqlite, "", "");
super::flow::flow_impl!(SqliteStore);
super::browser::browser_impl!(SqliteStore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_statement_numbers_each_rows_placeholders_after_the_last_rows() {
        assert_eq!(renumbered("a = ?1 AND b = ?24 OR c = ?1", 24), "a = ?25 AND b = ?48 OR c = ?25");
        let two = group_statement(2);
        let last = format!("?{}", 2 * EXCHANGE_PARAMS);
        let beyond = format!("?{}", 2 * EXCHANGE_PARAMS + 1);
        assert!(two.contains(&last) && !two.contains(&beyond) && two.ends_with("RETURNING code_hash"), "{two}");
        assert_eq!(two.matches(" UNION ALL ").count(), 1);
    }
}
