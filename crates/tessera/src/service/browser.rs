//! Browser sessions: the sign-in behind Tessera's cookie, stored server-side so that it can be
//! listed, ended, and shared by every instance. The pages (sign-in, sign-out, account) and
//! the authorization endpoint build on these.
//!
//! The cookie holds a 256-bit random secret (`tbs_…`); only its SHA-256 is stored. The
//! session's public id (`sid` in id_tokens) is a separate random value, so an id_token never
//! carries anything that could be replayed as the cookie.

use super::Tessera;
use super::error::{Error, Result};
use super::sessions::ClientMeta;
use crate::domain::{Amr, BrowserSession, BrowserSessionId, PlainToken, TokenKind, User, UserId};
use crate::store::{BrowserSessionScope, EndedBrowserSessions};
use time::Duration;

/// How stale `last_seen_at` may get before presenting the cookie writes it again, so that
/// requests with a cookie cost no write each.
pub const TOUCH_EVERY: Duration = Duration::minutes(1);

impl Tessera {
    /// Starts a browser session for `user`, who has just signed in by `amr` (a new session
    /// for each sign-in, never a reused id). Returns it with the cookie's secret, which is
    /// not kept. It lasts `TESSERA_SESSION_MAX_AGE`.
    pub async fn start_browser_session(&self, user: &User, amr: Amr, meta: &ClientMeta) -> Result<(BrowserSession, PlainToken)> {
        let secret = PlainToken::generate(TokenKind::BrowserSession).map_err(Error::internal)?;
        let now = self.now();
        let session = BrowserSession {
            id: BrowserSessionId::new_random(),
            secret_hash: secret.hash(),
            user_id: user.id,
            auth_time: now,
            amr,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.settings.session_max_age,
            ip: meta.ip,
            user_agent: meta.user_agent.as_ref().map(|ua| ua.chars().take(256).collect()),
        };
        self.store.insert_browser_session(&session).await?;
        Ok((session, secret))
    }

    /// The live browser session the cookie's `secret` names, if any; records that it was seen
    /// (at most once per [`TOUCH_EVERY`]).
    pub async fn browser_session_from_cookie(&self, secret: &str) -> Result<Option<BrowserSession>> {
        let now = self.now();
        let Some(mut session) = self.store.browser_session_by_secret(&PlainToken::from_presented(secret).hash(), now).await? else {
            return Ok(None);
        };
        if now - session.last_seen_at >= TOUCH_EVERY && self.store.touch_browser_session(session.id, now).await? {
            session.last_seen_at = now;
        }
        Ok(Some(session))
    }

    /// A person's live browser sessions, newest first.
    pub async fn browser_sessions_of(&self, user: UserId) -> Result<Vec<BrowserSession>> {
        Ok(self.store.browser_sessions_of(user, self.now()).await?)
    }

    /// Ends one of `user`'s browser sessions (signing out) and the token sessions issued
    /// through it, except offline ones; their access tokens are refused at once here and
    /// through the revocation feed everywhere. `NotFound` when `user` has no such session.
    pub async fn end_browser_session(&self, user: UserId, id: BrowserSessionId) -> Result<EndedBrowserSessions> {
        let ended = self.end_browser_sessions(BrowserSessionScope::One(user, id)).await?;
        if ended.browser_sessions.is_empty() {
            return Err(Error::NotFound("browser session"));
        }
        self.audit("browser_session.ended", Some(&user.to_string()), Some(&user.to_string()), Some(format!("browser session {id}"))).await;
        Ok(ended)
    }

    /// Ends browser sessions with their token sessions and applies the revocations here at once.
    pub(crate) async fn end_browser_sessions(&self, scope: BrowserSessionScope) -> Result<EndedBrowserSessions> {
        let ended = self.store.end_browser_sessions(scope, self.now(), self.session_feed_exp()).await?;
        if !ended.token_sessions.is_empty() {
            self.sync_revocations().await?;
        }
        Ok(ended)
    }
}
