//! Browser sessions: the sign-in behind Tessera's cookie, stored server-side so that it can be
//! listed, ended, and shared by every instance. The pages (sign-in, sign-out, account) and
//! the authorization endpoint build on these.
//!
//! The cookie holds a 256-bit random secret (`tbs_…`); only its SHA-256 is stored. The
//! session's public id (`sid` in id_tokens) is a separate random value, so an id_token never
//! carries anything that could be replayed as the cookie.

use super::Tessera;
use super::accounts::{LoginChannel, Registration};
use super::error::{Error, Result};
use super::sessions::{ClientMeta, LoginId};
use crate::domain::{Amr, BrowserSession, BrowserSessionId, PlainToken, Session, SessionId, TokenKind, User, UserId};
use crate::store::{BrowserSessionScope, EndedBrowserSessions};
use time::Duration;

/// How stale `last_seen_at` may get before presenting the cookie writes it again, so that
/// requests with a cookie cost no write each.
pub const TOUCH_EVERY: Duration = Duration::minutes(1);

/// A browser that has just signed in: the person, their new session, and the cookie's secret.
#[derive(Debug)]
pub struct BrowserSignIn {
    /// Who signed in.
    pub user: User,
    /// The new session.
    pub session: BrowserSession,
    /// The cookie's value (not stored).
    pub secret: PlainToken,
}

impl Tessera {
    /// Signs a browser in with a password, exactly as `POST /v1/auth/login` checks it (the
    /// same failed-login count per login name and address, the same cost whether the account
    /// exists or not), and starts a new browser session (`amr` `["pwd"]`). The session the
    /// browser's `previous` cookie names, if any, is ended: a browser holds one sign-in, and
    /// each sign-in gets a new id.
    pub async fn sign_in_browser(&self, id: LoginId, password: String, meta: &ClientMeta, previous: Option<&str>) -> Result<BrowserSignIn> {
        self.login_with(id, password, meta, LoginChannel::Page, |user| async move {
            self.require_second_factor_if_any(&user, super::factors::MfaChannel::Page).await?;
            self.replace_browser_session(user, meta, previous).await
        })
        .await
    }

    /// Registers a person (while registration is open) and signs their browser in.
    pub async fn register_browser(&self, reg: Registration, meta: &ClientMeta, previous: Option<&str>) -> Result<BrowserSignIn> {
        let user = self.register_account(reg, meta).await?;
        // The account exists; signing in waits for the address to be verified when required.
        self.require_verified(&user)?;
        self.replace_browser_session(user, meta, previous).await
    }

    async fn replace_browser_session(&self, user: User, meta: &ClientMeta, previous: Option<&str>) -> Result<BrowserSignIn> {
        self.replace_browser_session_by(user, vec!["pwd".to_owned()], meta, previous).await
    }

    /// Starts a browser session for `user`, who signed in by `amr`, ending the one `previous` names.
    pub(crate) async fn replace_browser_session_by(
        &self,
        user: User,
        amr: Amr,
        meta: &ClientMeta,
        previous: Option<&str>,
    ) -> Result<BrowserSignIn> {
        if let Some(old) = previous
            && let Some(session) = self.browser_session_from_cookie(old).await?
        {
            self.sign_out(&session, meta).await?;
        }
        let (session, secret) = self.start_browser_session(&user, amr, meta).await?;
        Ok(BrowserSignIn { user, session, secret })
    }

    /// The person the cookie's `secret` signs in, with their session: `None` when the session
    /// is unknown, ended or expired, or the account is gone or disabled.
    pub async fn signed_in(&self, secret: &str) -> Result<Option<(BrowserSession, User)>> {
        let Some(session) = self.browser_session_from_cookie(secret).await? else { return Ok(None) };
        let user = self.store.user_by_id(session.user_id).await?;
        Ok(user.filter(|u| !u.disabled).map(|u| (session, u)))
    }

    /// Signs the browser session out (the sign-out page, RP-initiated logout, or a new
    /// sign-in in the same browser): ends it and the token sessions issued through it, except
    /// offline ones, and records `logout.page`. False when it had already ended.
    pub async fn sign_out(&self, session: &BrowserSession, meta: &ClientMeta) -> Result<bool> {
        let ended = self.end_browser_sessions(BrowserSessionScope::One(session.user_id, session.id)).await?;
        if ended.browser_sessions.is_empty() {
            return Ok(false);
        }
        let user = session.user_id.to_string();
        self.audit(meta, "logout.page", Some(&user), Some(&user), Some(format!("browser session {}", session.id))).await;
        Ok(true)
    }

    /// A person's live token sessions (the API's and the applications'), newest first.
    pub async fn token_sessions_of(&self, user: UserId) -> Result<Vec<Session>> {
        Ok(self.store.live_sessions(user, self.now()).await?)
    }

    /// Ends one of `user`'s token sessions (from the account page). `NotFound` when `user`
    /// has no such live session.
    pub async fn end_token_session_of(&self, user: UserId, id: SessionId, meta: &ClientMeta) -> Result<()> {
        if self.end_sessions(crate::store::SessionScope::One(user, id)).await?.is_empty() {
            return Err(Error::NotFound("session"));
        }
        let user = user.to_string();
        self.audit(meta, "session.ended", Some(&user), Some(&user), Some(format!("session {id}"))).await;
        Ok(())
    }

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
        self.touch_browser_session(&mut session, now).await?;
        Ok(Some(session))
    }

    /// Records that `session` was seen at `now`, when it was last seen [`TOUCH_EVERY`] ago or
    /// more (so requests with a cookie cost no write each).
    pub(crate) async fn touch_browser_session(&self, session: &mut BrowserSession, now: time::OffsetDateTime) -> Result<()> {
        if now - session.last_seen_at >= TOUCH_EVERY && self.store.touch_browser_session(session.id, now).await? {
            session.last_seen_at = now;
        }
        Ok(())
    }

    /// A person's live browser sessions, newest first.
    pub async fn browser_sessions_of(&self, user: UserId) -> Result<Vec<BrowserSession>> {
        Ok(self.store.browser_sessions_of(user, self.now()).await?)
    }

    /// Ends one of `user`'s browser sessions (signing out) and the token sessions issued
    /// through it, except offline ones; their access tokens are refused at once here and
    /// through the revocation feed everywhere. `NotFound` when `user` has no such session.
    pub async fn end_browser_session(&self, user: UserId, id: BrowserSessionId, meta: &ClientMeta) -> Result<EndedBrowserSessions> {
        let ended = self.end_browser_sessions(BrowserSessionScope::One(user, id)).await?;
        if ended.browser_sessions.is_empty() {
            return Err(Error::NotFound("browser session"));
        }
        let user = user.to_string();
        self.audit(meta, "browser_session.ended", Some(&user), Some(&user), Some(format!("browser session {id}"))).await;
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
