//! The reads of the OpenID Connect code flow that used to take several round trips, in one.
//!
//! The authorization endpoint needs, for the browser's cookie, its live session, whether the
//! person's account may still sign in, and what the person has allowed the client: one
//! statement joins them, where three reads (session, user, consent) did.
//!
//! The token endpoint reads the code, checks it against the request, and then spends it and
//! starts its token session with the first refresh token in one statement (an insert whose
//! trigger does the rest, migration 14), under the conditions that make the exchange valid.
//! The code flow is bound by the single writer (SQLite's, or the rows it locks on
//! PostgreSQL): this is one write where a transaction of six round trips was. A replay either
//! comes first (and the session is never started) or finds the session to end.
//!
//! [`flow_impl!`] expands inside an engine's module like `store_impl!` (statements in `$N`
//! placeholders through the engine's `sql!`, its `classify`).

use super::RefreshToken;
use super::StoreError;
use super::rows::BrowserSessionRow;
use crate::domain::{AuthorizationCode, BrowserSession, ClientId, Session, TokenHash, User};
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

/// An unspent authorization code and its person, as the token endpoint reads them.
#[derive(Debug, Clone)]
pub struct CodeWithOwner {
    /// The code as it was issued.
    pub code: AuthorizationCode,
    /// Its person's account as it is now.
    pub owner: User,
}

/// The joined row of [`FlowStore::unspent_code`].
#[derive(sqlx::FromRow)]
pub(crate) struct CodeWithOwnerRow {
    #[sqlx(flatten)]
    pub(crate) code: super::rows::CodeRow,
    #[sqlx(flatten)]
    pub(crate) owner: super::rows::UserRow,
}

impl TryFrom<CodeWithOwnerRow> for CodeWithOwner {
    type Error = StoreError;

    fn try_from(row: CodeWithOwnerRow) -> Result<Self, StoreError> {
        Ok(CodeWithOwner { code: row.code.try_into()?, owner: row.owner.try_into()? })
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

    /// The code `hash` names while it is unspent and unexpired at `now`, with its person, in
    /// one read (spending it is [`FlowStore::exchange_code`]'s).
    async fn unspent_code(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<CodeWithOwner>, StoreError>;

    /// Spends the code `code` and starts `session` with its first refresh token, in one
    /// statement, only while the code is unspent and unexpired at `session.created_at`, the
    /// account is as `seen` (enabled, same roles, same token cut-off) and the browser session
    /// exists: false, and nothing written, otherwise (then [`super::Store::consume_code`] tells
    /// a replay from the rest).
    async fn exchange_code(&self, code: &TokenHash, session: &Session, token: &RefreshToken, seen: &User) -> Result<bool, StoreError>;
}

macro_rules! flow_impl {
    // `$lock`: what makes the exchange hold the rows it checks until it commits (PostgreSQL:
    // the code for update, the account and browser session for share; SQLite's one writer
    // already does).
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

            async fn unspent_code(
                &self,
                hash: &TokenHash,
                now: OffsetDateTime,
            ) -> Result<Option<crate::store::flow::CodeWithOwner>, StoreError> {
                let row: Option<crate::store::flow::CodeWithOwnerRow> = sqlx::query_as(sql!(
                    "SELECT c.hash, c.client_id, c.user_id, c.browser_session_id, c.redirect_uri, c.code_challenge, c.nonce, c.scope, ",
                    "c.auth_time, c.amr, c.created_at AS code_created_at, c.expires_at, c.used_at, c.token_session_id, ",
                    "u.id, u.email, u.username, u.password_hash, u.roles, u.disabled, u.tokens_not_before, u.created_at, u.updated_at, ",
                    "u.two_factor, u.email_verified FROM authorization_codes c JOIN users u ON u.id = c.user_id ",
                    "WHERE c.hash = $1 AND c.used_at IS NULL AND c.expires_at > $2"
                ))
                .bind(hash.as_bytes().as_slice())
                .bind(ms(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
                row.map(crate::store::flow::CodeWithOwner::try_from).transpose()
            }

            async fn exchange_code(
                &self,
                code: &TokenHash,
                session: &Session,
                token: &RefreshToken,
                seen: &User,
            ) -> Result<bool, StoreError> {
                let Some(browser_session) = session.browser_session_id else { return Ok(false) };
                let Some(client) = session.client_id.as_ref() else { return Ok(false) };
                let mut w = self.write().await?;
                // The trigger of migration 14 spends the code and starts the session with its
                // refresh token. The rows checked are joined (not tested with EXISTS) so that
                // `$lock` holds them: a racing exchange of the same code waits and then finds
                // it spent; a disabling or a sign-out either committed before (and the
                // condition fails) or waits for this session (and ends it).
                let inserted = sqlx::query(sql!(
                    "INSERT INTO code_exchanges (code_hash, session_id, user_id, client_id, scope, browser_session_id, offline, amr, ",
                    "ip, user_agent, created_at, last_used_at, expires_at, refresh_hash, refresh_created_at, refresh_expires_at) ",
                    "SELECT c.hash, $2, u.id, c.client_id, $3, b.id, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 ",
                    "FROM authorization_codes c JOIN users u ON u.id = c.user_id JOIN browser_sessions b ON b.id = c.browser_session_id ",
                    "WHERE c.hash = $1 AND c.used_at IS NULL AND c.expires_at > $8 AND c.client_id = $14 AND b.id = $15 ",
                    "AND u.id = $16 AND u.disabled = FALSE AND u.roles = $17 AND u.tokens_not_before = $18",
                    $lock
                ))
                .bind(code.as_bytes().as_slice())
                .bind(session.id.to_string())
                .bind(scopes_json(&session.scope))
                .bind(session.offline)
                .bind(amr_json(&session.amr))
                .bind(session.ip.map(|ip| ip.to_string()))
                .bind(session.user_agent.as_deref())
                .bind(ms(session.created_at))
                .bind(ms(session.last_used_at))
                .bind(ms(session.expires_at))
                .bind(token.hash.as_bytes().as_slice())
                .bind(ms(token.created_at))
                .bind(ms(token.expires_at))
                .bind(client.as_str())
                .bind(browser_session.to_string())
                .bind(seen.id.to_string())
                .bind(roles_json(&seen.roles))
                .bind(seen.tokens_not_before)
                .execute(&mut *w)
                .await
                .map_err(classify)?;
                Ok(inserted.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use flow_impl;
