//! The reads of the OpenID Connect code flow that used to take several round trips, in one.
//!
//! The authorization endpoint needs, for the browser's cookie, its live session, whether the
//! person's account may still sign in, and what the person has allowed the client: one
//! statement joins them, where three reads (session, user, consent) did.
//!
//! Codes are sealed (`service/codes.rs`): issuing one writes nothing. The token endpoint opens
//! the code, checks it against the request, and then records it as spent and starts its token
//! session with the first refresh token in one statement (an insert whose trigger does the
//! rest, migrations 14 and 15), under the conditions that make the exchange valid. The code
//! flow is bound by the single writer (SQLite's, or the rows it locks on PostgreSQL): this is
//! its one write, where a flow once took six round trips to it. A replay either comes first
//! (and the session is never started) or finds the session to end.
//!
//! [`flow_impl!`] expands inside an engine's module like `store_impl!` (statements in `$N`
//! placeholders through the engine's `sql!`, its `classify`).

use super::RefreshToken;
use super::StoreError;
use super::rows::BrowserSessionRow;
use crate::domain::{AuthorizationCode, BrowserSession, ClientId, Session, SessionId, TokenHash, User, UserId};
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

/// What spending a code that cannot be exchanged found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSpending {
    /// Its first use: it is now recorded as spent, and cannot be exchanged any more.
    Spent,
    /// It was used before: a replay (RFC 6749 §4.1.2), now recorded on the code. The token
    /// session issued from it, if it started one, should end.
    Replayed {
        /// Whom the code was issued to.
        client_id: ClientId,
        /// Whose code it was.
        user_id: UserId,
        /// The token session its exchange started.
        token_session: Option<SessionId>,
    },
}

/// The exchange statement, in two parts: the insert, and the row it inserts, selected under
/// the conditions that make the exchange valid. The trigger of migration 15 records the code
/// as spent and starts the session with its refresh token. The account and browser session
/// are joined (not tested with EXISTS) so that PostgreSQL can lock them (`FOR SHARE`): a
/// disabling or a sign-out either committed before (and the condition fails) or waits for
/// this session (and ends it). Of two racing exchanges of one code, the second breaks the
/// primary key (PostgreSQL) or finds the code spent (SQLite, one writer). SQLite inserts the
/// rows of the exchanges queued meanwhile in one statement (`store/sqlite.rs`).
macro_rules! exchange_insert {
    () => {
        concat!(
            "INSERT INTO code_exchanges (code_hash, session_id, user_id, client_id, scope, browser_session_id, offline, amr, ",
            "ip, user_agent, created_at, last_used_at, expires_at, refresh_hash, refresh_created_at, refresh_expires_at, ",
            "redirect_uri, code_challenge, nonce, auth_time, code_created_at, code_expires_at) "
        )
    };
}
pub(crate) use exchange_insert;

/// One exchange's row (see [`exchange_insert!`]); its placeholders are `$1` to
/// [`EXCHANGE_PARAMS`], bound by [`bind_exchange!`]. A client that asks for consent gets a
/// session only while the person's consent stands: PostgreSQL locks it (`$lock`, `FOR
/// SHARE`), so a withdrawal either deletes it first (and the row is not selected) or waits
/// for this session, and then finds it to end.
macro_rules! exchange_row {
    ($lock:literal) => {
        concat!(
            "SELECT $1, $2, u.id, $3, $4, b.id, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20 ",
            "FROM users u JOIN browser_sessions b ON b.user_id = u.id ",
            "WHERE u.id = $21 AND b.id = $22 AND u.disabled = FALSE AND u.roles = $23 AND u.tokens_not_before = $24 ",
            "AND $20 > $9 AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.hash = $1) ",
            "AND ($25 = FALSE OR EXISTS (SELECT 1 FROM consents k WHERE k.user_id = u.id AND k.client_id = $3",
            $lock,
            "))"
        )
    };
}
pub(crate) use exchange_row;

/// How many placeholders one exchange's row has.
pub(crate) const EXCHANGE_PARAMS: usize = 25;

/// The values of one exchange statement, owned: on SQLite it may wait its turn in a queue.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) code_hash: Vec<u8>,
    pub(crate) session_id: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) offline: bool,
    pub(crate) amr: String,
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) last_used_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) refresh_hash: Vec<u8>,
    pub(crate) refresh_created_at: i64,
    pub(crate) refresh_expires_at: i64,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) auth_time: i64,
    pub(crate) code_created_at: i64,
    pub(crate) code_expires_at: i64,
    pub(crate) user_id: String,
    pub(crate) browser_session_id: String,
    pub(crate) roles: String,
    pub(crate) tokens_not_before: i64,
    pub(crate) consent_required: bool,
}

impl Exchange {
    /// The exchange of the code `hash` names (issued for `code`), starting `session` with
    /// `token`, while the account is as `seen` (and the person's consent stands, when it is
    /// `consent_required`).
    pub(crate) fn new(
        hash: &TokenHash,
        code: &AuthorizationCode,
        session: &Session,
        token: &RefreshToken,
        seen: &User,
        consent_required: bool,
    ) -> Exchange {
        use super::rows::{amr_json, ms, roles_json, scopes_json};
        Exchange {
            code_hash: hash.as_bytes().to_vec(),
            session_id: session.id.to_string(),
            client_id: code.client_id.as_str().to_owned(),
            scope: scopes_json(&code.scope),
            offline: session.offline,
            amr: amr_json(&code.amr),
            ip: session.ip.map(|ip| ip.to_string()),
            user_agent: session.user_agent.clone(),
            created_at: ms(session.created_at),
            last_used_at: ms(session.last_used_at),
            expires_at: ms(session.expires_at),
            refresh_hash: token.hash.as_bytes().to_vec(),
            refresh_created_at: ms(token.created_at),
            refresh_expires_at: ms(token.expires_at),
            redirect_uri: code.redirect_uri.clone(),
            code_challenge: code.code_challenge.as_str().to_owned(),
            nonce: code.nonce.clone(),
            auth_time: ms(code.auth_time),
            code_created_at: ms(code.created_at),
            code_expires_at: ms(code.expires_at),
            user_id: seen.id.to_string(),
            browser_session_id: code.browser_session_id.to_string(),
            roles: roles_json(&seen.roles),
            tokens_not_before: seen.tokens_not_before,
            consent_required,
        }
    }
}

/// Binds an [`Exchange`]'s values to a query, in the order of [`exchange_row!`]'s
/// placeholders (after any bound before them).
macro_rules! bind_exchange {
    ($query:expr, $exchange:expr) => {{
        let e: crate::store::flow::Exchange = $exchange;
        $query
            .bind(e.code_hash)
            .bind(e.session_id)
            .bind(e.client_id)
            .bind(e.scope)
            .bind(e.offline)
            .bind(e.amr)
            .bind(e.ip)
            .bind(e.user_agent)
            .bind(e.created_at)
            .bind(e.last_used_at)
            .bind(e.expires_at)
            .bind(e.refresh_hash)
            .bind(e.refresh_created_at)
            .bind(e.refresh_expires_at)
            .bind(e.redirect_uri)
            .bind(e.code_challenge)
            .bind(e.nonce)
            .bind(e.auth_time)
            .bind(e.code_created_at)
            .bind(e.code_expires_at)
            .bind(e.user_id)
            .bind(e.browser_session_id)
            .bind(e.roles)
            .bind(e.tokens_not_before)
            .bind(e.consent_required)
    }};
}
pub(crate) use bind_exchange;

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

    /// Records the code `hash` names (issued for `code`) as spent and starts `session` with
    /// its first refresh token, in one statement, only while the code is unspent and
    /// unexpired at `session.created_at`, the account is as `seen` (enabled, same roles, same
    /// token cut-off), the code's browser session exists and, when `consent_required` (a
    /// client that is not first-party), the person's consent to the client stands: false,
    /// and nothing written, otherwise (then [`FlowStore::spend_code`] tells a replay from the
    /// rest). Of racing exchanges of one code, one starts a session.
    async fn exchange_code(
        &self,
        hash: &TokenHash,
        code: &AuthorizationCode,
        session: &Session,
        token: &RefreshToken,
        seen: &User,
        consent_required: bool,
    ) -> Result<bool, StoreError>;

    /// Records the code `hash` names (issued for `code`) as spent, when it was not: `Spent`;
    /// when it was, records the replay and names the token session its exchange started:
    /// `Replayed`.
    async fn spend_code(&self, hash: &TokenHash, code: &AuthorizationCode, now: OffsetDateTime) -> Result<CodeSpending, StoreError>;
}

macro_rules! flow_impl {
    ($engine:ty) => {
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

            async fn exchange_code(
                &self,
                hash: &TokenHash,
                code: &AuthorizationCode,
                session: &Session,
                token: &RefreshToken,
                seen: &User,
                consent_required: bool,
            ) -> Result<bool, StoreError> {
                self.exchange(crate::store::flow::Exchange::new(hash, code, session, token, seen, consent_required)).await
            }

            async fn spend_code(
                &self,
                hash: &TokenHash,
                code: &AuthorizationCode,
                now: OffsetDateTime,
            ) -> Result<crate::store::flow::CodeSpending, StoreError> {
                let mut w = self.write().await?;
                let spent = sqlx::query(sql!(
                    "INSERT INTO authorization_codes (hash, client_id, user_id, browser_session_id, redirect_uri, code_challenge, ",
                    "nonce, scope, auth_time, amr, created_at, expires_at, used_at, replayed_at, token_session_id) ",
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL) ON CONFLICT (hash) DO NOTHING"
                ))
                .bind(hash.as_bytes().as_slice())
                .bind(code.client_id.as_str())
                .bind(code.user_id.to_string())
                .bind(code.browser_session_id.to_string())
                .bind(code.redirect_uri.as_deref())
                .bind(code.code_challenge.as_str())
                .bind(code.nonce.as_deref())
                .bind(scopes_json(&code.scope))
                .bind(ms(code.auth_time))
                .bind(amr_json(&code.amr))
                .bind(ms(code.created_at))
                .bind(ms(code.expires_at))
                .bind(ms(now))
                .execute(&mut *w)
                .await
                .map_err(classify)?;
                if spent.rows_affected() == 1 {
                    return Ok(crate::store::flow::CodeSpending::Spent);
                }
                let replayed: Option<(String, String, Option<String>)> = sqlx::query_as(sql!(
                    "UPDATE authorization_codes SET replayed_at = $2 WHERE hash = $1 RETURNING client_id, user_id, token_session_id"
                ))
                .bind(hash.as_bytes().as_slice())
                .bind(ms(now))
                .fetch_optional(&mut *w)
                .await
                .map_err(classify)?;
                // Pruned between the two statements (ten minutes past its expiry): spent.
                let Some((client_id, user_id, token_session)) = replayed else { return Ok(crate::store::flow::CodeSpending::Spent) };
                Ok(crate::store::flow::CodeSpending::Replayed {
                    client_id: ClientId::new(client_id),
                    user_id: user_id.parse().map_err(StoreError::other)?,
                    token_session: token_session.map(|id| id.parse()).transpose().map_err(StoreError::other)?,
                })
            }
        }
    };
}
pub(crate) use flow_impl;
