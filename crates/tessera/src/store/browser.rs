//! The browser session (the sign-in cookie of Tessera's pages) and the consents people give
//! applications: what the authorization endpoint, the pages and sign-out read and end.
//!
//! A browser session is stored server-side, so it can be listed and ended; the token
//! sessions an application gets through it end with it (all but the offline ones), in the
//! transaction that deletes it. [`browser_impl!`] expands inside an engine's module like
//! `store_impl!` (statements in `$N` placeholders through the engine's `sql!`, its
//! `classify`, `Self::write`, `Self::begin` and `lock_feed`, and `append_in` of `store_impl!`).

use super::StoreError;
use crate::domain::{BrowserSession, BrowserSessionId, ClientId, Consent, SessionId, TokenHash, UserId};
use async_trait::async_trait;
use time::OffsetDateTime;

/// Which browser sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum BrowserSessionScope {
    /// One browser session of one user (signing out, or ending it from the account page).
    One(UserId, BrowserSessionId),
    /// Every browser session of a user (logout-all, disabling).
    AllOf(UserId),
}

/// What ending browser sessions ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndedBrowserSessions {
    /// The browser sessions deleted.
    pub browser_sessions: Vec<BrowserSessionId>,
    /// The token sessions issued through them, ended with them (all but the offline ones).
    pub token_sessions: Vec<SessionId>,
}

/// Browser sessions and consents.
#[async_trait]
pub trait BrowserStore {
    /// Stores a new browser session. `Conflict(Other)` if its id or secret is taken (never,
    /// with random values).
    async fn insert_browser_session(&self, session: &BrowserSession) -> Result<(), StoreError>;
    /// The browser session whose cookie secret hashes to `secret_hash`, when it has not
    /// expired at `now`.
    async fn browser_session_by_secret(&self, secret_hash: &TokenHash, now: OffsetDateTime) -> Result<Option<BrowserSession>, StoreError>;
    /// A browser session by its public id (an id_token's `sid`), when it has not expired at `now`.
    async fn browser_session(&self, id: BrowserSessionId, now: OffsetDateTime) -> Result<Option<BrowserSession>, StoreError>;
    /// Records that the cookie was presented at `now` (moves `last_seen_at` forward only);
    /// false when the session is gone.
    async fn touch_browser_session(&self, id: BrowserSessionId, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// A person's browser sessions that have not expired at `now`, newest first.
    async fn browser_sessions_of(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<BrowserSession>, StoreError>;
    /// Ends browser sessions: deletes them, ends the token sessions issued through them
    /// except the offline ones, and appends one feed entry per ended token session (expiring
    /// at `feed_exp`), all in one transaction. A token session being issued through one of
    /// them at the same moment is either ended too or not issued (see `insert_session`).
    async fn end_browser_sessions(
        &self,
        scope: BrowserSessionScope,
        now: OffsetDateTime,
        feed_exp: i64,
    ) -> Result<EndedBrowserSessions, StoreError>;

    /// Stores what a person allowed a client, replacing an earlier consent (callers that
    /// widen a consent pass the union of the old and new scopes).
    async fn upsert_consent(&self, consent: &Consent) -> Result<(), StoreError>;
    /// What a person allowed a client, if anything.
    async fn consent(&self, user: UserId, client: &ClientId) -> Result<Option<Consent>, StoreError>;
    /// Every consent a person gave, newest first.
    async fn consents_of(&self, user: UserId) -> Result<Vec<Consent>, StoreError>;
    /// Withdraws a consent; false when there was none.
    async fn delete_consent(&self, user: UserId, client: &ClientId) -> Result<bool, StoreError>;
}

macro_rules! browser_impl {
    ($engine:ty) => {
        #[async_trait::async_trait]
        impl crate::store::BrowserStore for $engine {
            async fn insert_browser_session(&self, session: &BrowserSession) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!(
                    "INSERT INTO browser_sessions (id, secret_hash, user_id, auth_time, amr, created_at, last_seen_at, expires_at, ip, user_agent) ",
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind(session.id.to_string())
                .bind(session.secret_hash.as_bytes().as_slice())
                .bind(session.user_id.to_string())
                .bind(ms(session.auth_time))
                .bind(amr_json(&session.amr))
                .bind(ms(session.created_at))
                .bind(ms(session.last_seen_at))
                .bind(ms(session.expires_at))
                .bind(session.ip.map(|ip| ip.to_string()))
                .bind(session.user_agent.as_deref())
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(classify)
            }

            async fn browser_session_by_secret(&self, secret_hash: &TokenHash, now: OffsetDateTime) -> Result<Option<BrowserSession>, StoreError> {
                let row: Option<BrowserSessionRow> = sqlx::query_as(sql!(
                    "SELECT ", browser_session_columns!(), " FROM browser_sessions WHERE secret_hash = $1 AND expires_at > $2"
                ))
                .bind(secret_hash.as_bytes().as_slice())
                .bind(ms(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
                row.map(BrowserSession::try_from).transpose()
            }

            async fn browser_session(&self, id: BrowserSessionId, now: OffsetDateTime) -> Result<Option<BrowserSession>, StoreError> {
                let row: Option<BrowserSessionRow> =
                    sqlx::query_as(sql!("SELECT ", browser_session_columns!(), " FROM browser_sessions WHERE id = $1 AND expires_at > $2"))
                        .bind(id.to_string())
                        .bind(ms(now))
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(classify)?;
                row.map(BrowserSession::try_from).transpose()
            }

            async fn touch_browser_session(&self, id: BrowserSessionId, now: OffsetDateTime) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let done = sqlx::query(sql!(
                    "UPDATE browser_sessions SET last_seen_at = CASE WHEN last_seen_at > $1 THEN last_seen_at ELSE $1 END WHERE id = $2"
                ))
                .bind(ms(now))
                .bind(id.to_string())
                .execute(&mut *w)
                .await
                .map_err(classify)?;
                Ok(done.rows_affected() == 1)
            }

            async fn browser_sessions_of(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<BrowserSession>, StoreError> {
                let rows: Vec<BrowserSessionRow> = sqlx::query_as(sql!(
                    "SELECT ",
                    browser_session_columns!(),
                    " FROM browser_sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id"
                ))
                .bind(user.to_string())
                .bind(ms(now))
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
                rows.into_iter().map(BrowserSession::try_from).collect()
            }

            async fn end_browser_sessions(
                &self,
                scope: BrowserSessionScope,
                now: OffsetDateTime,
                feed_exp: i64,
            ) -> Result<EndedBrowserSessions, StoreError> {
                let (user, only) = match scope {
                    BrowserSessionScope::One(user, id) => (user, Some(id)),
                    BrowserSessionScope::AllOf(user) => (user, None),
                };
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                lock_feed(&mut tx).await?;
                // Deleting first locks the rows (PostgreSQL), so a token session being
                // inserted through one of them either committed before (and the UPDATE below,
                // a new snapshot, ends it) or finds it gone and is not inserted.
                let deleted: Vec<String> = sqlx::query_scalar(sql!(
                    "DELETE FROM browser_sessions WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id = $2) RETURNING id"
                ))
                .bind(user.to_string())
                .bind(only.map(|id| id.to_string()))
                .fetch_all(&mut *tx)
                .await
                .map_err(classify)?;
                let mut token_ids: Vec<String> = Vec::new();
                for browser_session in &deleted {
                    let ended: Vec<String> = sqlx::query_scalar(sql!(
                        "UPDATE sessions SET revoked_at = $1 ",
                        "WHERE browser_session_id = $2 AND offline = FALSE AND revoked_at IS NULL RETURNING id"
                    ))
                    .bind(ms(now))
                    .bind(browser_session)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(classify)?;
                    token_ids.extend(ended);
                }
                let token_sessions = session_ids(&token_ids)?;
                append_in(&mut tx, &session_feed(&token_sessions, feed_exp), now).await?;
                tx.commit().await.map_err(classify)?;
                let browser_sessions =
                    deleted.iter().map(|id| id.parse::<BrowserSessionId>()).collect::<Result<Vec<_>, _>>().map_err(StoreError::other)?;
                Ok(EndedBrowserSessions { browser_sessions, token_sessions })
            }

            async fn upsert_consent(&self, consent: &Consent) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!(
                    "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) ",
                    "ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at"
                ))
                .bind(consent.user_id.to_string())
                .bind(consent.client_id.as_str())
                .bind(scopes_json(&consent.scopes))
                .bind(ms(consent.granted_at))
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(classify)
            }

            async fn consent(&self, user: UserId, client: &ClientId) -> Result<Option<Consent>, StoreError> {
                let row: Option<ConsentRow> =
                    sqlx::query_as(sql!("SELECT ", consent_columns!(), " FROM consents WHERE user_id = $1 AND client_id = $2"))
                        .bind(user.to_string())
                        .bind(client.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(classify)?;
                row.map(Consent::try_from).transpose()
            }

            async fn consents_of(&self, user: UserId) -> Result<Vec<Consent>, StoreError> {
                let rows: Vec<ConsentRow> =
                    sqlx::query_as(sql!("SELECT ", consent_columns!(), " FROM consents WHERE user_id = $1 ORDER BY granted_at DESC, client_id"))
                        .bind(user.to_string())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(classify)?;
                rows.into_iter().map(Consent::try_from).collect()
            }

            async fn delete_consent(&self, user: UserId, client: &ClientId) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let done = sqlx::query(sql!("DELETE FROM consents WHERE user_id = $1 AND client_id = $2"))
                    .bind(user.to_string())
                    .bind(client.as_str())
                    .execute(&mut *w)
                    .await
                    .map_err(classify)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use browser_impl;
