//! The reads of the OpenID Connect code flow that used to take several round trips, in one.
//!
//! The authorization endpoint needs, for the browser's cookie, its live session, whether the
//! person's account may still sign in, and what the person has allowed the client: one
//! statement joins them, where three reads (session, user, consent) did.
//!
//! The token endpoint spends a code and names the token session it will start in one
//! statement (the session's id is chosen before), then starts that session in one
//! transaction that holds only while the code has not been replayed: a replay either comes
//! first (and the session is never started) or finds the session to end. Before, the code
//! was spent, the session started, and the link recorded in three separate writes.
//!
//! [`flow_impl!`] expands inside an engine's module like `store_impl!` (statements in `$N`
//! placeholders through the engine's `sql!`, its `classify`).

use super::RefreshToken;
use super::StoreError;
use super::rows::BrowserSessionRow;
use crate::domain::{AuthorizationCode, BrowserSession, ClientId, Session, SessionId, TokenHash, User};
use time::OffsetDateTime;

/// A signed-in browser as the authorization endpoint sees it for one client.
#[derive(Debug, Clone)]
pub struct BrowserForClient {
    /// The live browser session.
    pub session: BrowserSession,
    /// Whether its account exists and is not disabled.
    pub account_enabled: bool,
    /// What the person has allowed the client (the consent's scopes), if anything.
    pub consent: Option<crate::domain::Consent>,
}

/// The joined row of [`FlowStore::browser_for_client`].
#[derive(sqlx::FromRow)]
pub(crate) struct BrowserForClientRow {
    #[sqlx(flatten)]
    pub(crate) session: BrowserSessionRow,
    pub(crate) account_enabled: bool,
    pub(crate) consent_scopes: Option<String>,
    pub(crate) consent_granted_at: Option<i64>,
}

impl BrowserForClientRow {
    pub(crate) fn into_domain(self, client: &ClientId) -> Result<BrowserForClient, StoreError> {
        let session = BrowserSession::try_from(self.session)?;
        let consent = match (self.consent_scopes, self.consent_granted_at) {
            (Some(scopes), Some(granted_at)) => Some(crate::domain::Consent {
                user_id: session.user_id,
                client_id: client.clone(),
                scopes: super::rows::parse_list(&scopes, crate::domain::Scopes::parse)?,
                granted_at: super::rows::from_ms(granted_at),
            }),
            _ => None,
        };
        Ok(BrowserForClient { session, account_enabled: self.account_enabled, consent })
    }
}

/// The code flow's joined reads.
#[async_trait::async_trait]
pub trait FlowStore: Send + Sync {
    /// The browser session whose cookie secret hashes to `secret_hash`, live at `now`, with
    /// whether its account may sign in and the person's consent to `client`, in one read.
    /// `None` when no such live session exists.
    async fn browser_for_client(
        &self,
        secret_hash: &TokenHash,
        now: OffsetDateTime,
        client: &ClientId,
    ) -> Result<Option<BrowserForClient>, StoreError>;

    /// Spends the code `hash` names when it is unused, unexpired and its browser session
    /// still exists, recording `session` as the token session it issues, in one statement:
    /// the code as it was issued, or `None` (then [`super::Store::consume_code`] tells a
    /// replay from an unknown code).
    async fn spend_code(&self, hash: &TokenHash, now: OffsetDateTime, session: SessionId) -> Result<Option<AuthorizationCode>, StoreError>;

    /// Starts the token session that [`FlowStore::spend_code`] recorded for the code `code`,
    /// with its first refresh token, in one transaction, only while the account is as `seen`
    /// (enabled, same roles, same token cut-off), the browser session exists, and the code
    /// has not been replayed: false, and nothing written, otherwise.
    async fn start_code_session(&self, code: &TokenHash, session: &Session, token: &RefreshToken, seen: &User) -> Result<bool, StoreError>;

    /// Forgets `session` as the token session of the code `code` (the exchange was refused
    /// after the code was spent, so no such session exists).
    async fn unlink_code_session(&self, code: &TokenHash, session: SessionId) -> Result<(), StoreError>;
}

macro_rules! flow_impl {
    // `$lock`: what makes the session insert hold the rows it checks until it commits
    // (PostgreSQL: `FOR SHARE`; SQLite's one writer already does).
    ($engine:ty, $lock:literal) => {
        #[async_trait::async_trait]
        impl crate::store::flow::FlowStore for $engine {
            async fn browser_for_client(
                &self,
                secret_hash: &TokenHash,
                now: OffsetDateTime,
                client: &ClientId,
            ) -> Result<Option<crate::store::flow::BrowserForClient>, StoreError> {
                let row: Option<crate::store::flow::BrowserForClientRow> = sqlx::query_as(sql!(
                    "SELECT b.id, b.secret_hash, b.user_id, b.auth_time, b.amr, b.created_at, b.last_seen_at, b.expires_at, b.ip, ",
                    "b.user_agent, COALESCE(u.disabled = FALSE, FALSE) AS account_enabled, c.scopes AS consent_scopes, ",
                    "c.granted_at AS consent_granted_at FROM browser_sessions b LEFT JOIN users u ON u.id = b.user_id ",
                    "LEFT JOIN consents c ON c.user_id = b.user_id AND c.client_id = $3 ",
                    "WHERE b.secret_hash = $1 AND b.expires_at > $2"
                ))
                .bind(secret_hash.as_bytes().as_slice())
                .bind(ms(now))
                .bind(client.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
                row.map(|row| row.into_domain(client)).transpose()
            }

            async fn spend_code(
                &self,
                hash: &TokenHash,
                now: OffsetDateTime,
                session: SessionId,
            ) -> Result<Option<AuthorizationCode>, StoreError> {
                let mut w = self.write().await?;
                let spent: Option<CodeRow> = sqlx::query_as(sql!(
                    "UPDATE authorization_codes SET used_at = $2, token_session_id = $3 ",
                    "WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 ",
                    "AND EXISTS (SELECT 1 FROM browser_sessions b WHERE b.id = authorization_codes.browser_session_id) RETURNING ",
                    code_columns!()
                ))
                .bind(hash.as_bytes().as_slice())
                .bind(ms(now))
                .bind(session.to_string())
                .fetch_optional(&mut *w)
                .await
                .map_err(classify)?;
                spent.map(AuthorizationCode::try_from).transpose()
            }

            async fn start_code_session(
                &self,
                code: &TokenHash,
                session: &Session,
                token: &RefreshToken,
                seen: &User,
            ) -> Result<bool, StoreError> {
                let Some(browser_session) = session.browser_session_id else { return Ok(false) };
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                // The rows checked are joined (not tested with EXISTS) so that `$lock` holds
                // them: a disabling, a sign-out or a replay racing this either committed
                // before (and the condition fails) or waits for this session (and ends it).
                let inserted = sqlx::query(sql!(
                    "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip, ",
                    "client_id, scope, browser_session_id, offline, amr) ",
                    "SELECT $1, u.id, $2, $3, $4, NULL, $5, $6, $10, $11, b.id, $13, $14 ",
                    "FROM users u JOIN browser_sessions b ON b.id = $12 JOIN authorization_codes c ON c.hash = $15 ",
                    "WHERE u.id = $7 AND u.disabled = FALSE AND u.roles = $8 AND u.tokens_not_before = $9 ",
                    "AND c.token_session_id = $1 AND c.replayed_at IS NULL",
                    $lock
                ))
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
                .bind(browser_session.to_string())
                .bind(session.offline)
                .bind(amr_json(&session.amr))
                .bind(code.as_bytes().as_slice())
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

            async fn unlink_code_session(&self, code: &TokenHash, session: SessionId) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!("UPDATE authorization_codes SET token_session_id = NULL WHERE hash = $1 AND token_session_id = $2"))
                    .bind(code.as_bytes().as_slice())
                    .bind(session.to_string())
                    .execute(&mut *w)
                    .await
                    .map(|_| ())
                    .map_err(classify)
            }
        }
    };
}
pub(crate) use flow_impl;
