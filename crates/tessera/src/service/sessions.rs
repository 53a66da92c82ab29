//! Sessions: a password check starts one (a family of rotating refresh tokens); refreshing
//! rotates its token; presenting a rotated token again ends it (reuse detection), unless it
//! was rotated within the configured grace window; logging out ends it.

use super::error::{Error, Result, TokenError};
use super::tokens::Grant;
use super::{Tessera, accounts::public_id};
use crate::domain::{ClientId, PlainToken, Session, SessionId, TokenKind, User, UserId};
use crate::store::{RefreshToken, Revocation, SessionScope};
use std::net::IpAddr;
use tessera_verify::Claims;
use time::OffsetDateTime;

/// Where a request came from: remembered on the session it starts, and the address is written
/// to the audit trail. The HTTP layer extracts it from each request and passes it to every use
/// case that audits, rate-limits or starts a session; the command line passes the default
/// (no address).
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

/// How a person names their account at login.
#[derive(Debug, Clone)]
pub enum LoginId {
    /// By email.
    Email(String),
    /// By username.
    Username(String),
}

/// An access token and, for people, the refresh token that goes with it.
#[derive(Debug)]
pub struct IssuedTokens {
    /// The signed JWT.
    pub access_token: String,
    /// Its claims.
    pub claims: Claims,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The new refresh token, if any.
    pub refresh_token: Option<PlainToken>,
}

impl Tessera {
    /// Starts a session for `user` after a password check: a fresh access token and the first
    /// refresh token of a new family. The session is stored only while the account is still as
    /// it was read; when an admin or the person changed it meanwhile (disabled it, changed its
    /// roles, cut its tokens off), it is read again, so no session outlives such a change.
    pub(crate) async fn start_session(&self, user: User, meta: &ClientMeta) -> Result<(User, IssuedTokens)> {
        self.start_session_by(user, vec!["pwd".to_owned()], meta).await
    }

    /// [`Tessera::start_session`] for a person who signed in by `amr` (a password, a second
    /// factor, a passkey); the session and every access token of it carry `amr`.
    pub(crate) async fn start_session_by(&self, mut user: User, amr: Vec<String>, meta: &ClientMeta) -> Result<(User, IssuedTokens)> {
        for _ in 0..3 {
            self.wait_for_cutoff(&user).await;
            let now = self.now();
            let session = Session { amr: amr.clone(), ..new_session(&user, meta, now) };
            let (plain, record) = self.new_refresh_token(&session, now)?;
            let session = Session { expires_at: record.expires_at, ..session };
            if self.store.insert_session(&session, &record, &user).await? {
                let tokens = self.issue_for_person(&user, &session, true, Some(plain))?;
                return Ok((user, tokens));
            }
            user = self.store.user_by_id(user.id).await?.ok_or(Error::InvalidCredentials)?;
            if user.disabled {
                return Err(Error::AccountDisabled);
            }
        }
        Err(Error::Conflict("the account changed during sign-in; try again"))
    }

    /// Exchanges a refresh token for a new access token and a new refresh token.
    ///
    /// Exactly one request wins the rotation of a token (the store's conditional write). A
    /// loser is a reuse, which ends the session, unless the reuse grace is on, the token was
    /// rotated within it, and its one second chance is still unspent (again decided by one
    /// conditional write, so racing duplicates cannot both take it).
    pub async fn refresh(&self, presented: &str, meta: &ClientMeta) -> Result<IssuedTokens> {
        self.refresh_for(presented, None, meta).await
    }

    /// [`Tessera::refresh`] for the client presenting the token: `None` for the first-party
    /// client `tessera`, else an application's client id. A token of another client's session
    /// is refused as unknown (RFC 6749 §6: bound to the client it was issued to).
    pub async fn refresh_for(&self, presented: &str, client: Option<&ClientId>, meta: &ClientMeta) -> Result<IssuedTokens> {
        let hash = PlainToken::from_presented(presented).hash();
        let Some(token) = self.store.refresh_token(&hash).await? else {
            return Err(Error::Refresh(TokenError::Invalid("unknown refresh token")));
        };
        let now = self.now();
        let session = self.store.session(token.session_id).await?;
        let Some(session) = session.filter(|s| s.is_live(now)) else {
            return Err(Error::Refresh(TokenError::Revoked));
        };
        if session.client_id.as_ref() != client {
            return Err(Error::Refresh(TokenError::Invalid("the refresh token was issued to another client")));
        }
        if token.expires_at <= now || session.created_at + self.settings.session_max_age <= now {
            return Err(Error::Refresh(TokenError::Expired));
        }
        let user = self.store.user_by_id(session.user_id).await?.ok_or(Error::Refresh(TokenError::Revoked))?;
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        self.require_verified(&user)?;
        let (plain, next) = self.new_refresh_token(&session, now)?;
        let rotated = token.rotated_at.is_none() && self.store.rotate_refresh_token(&hash, &next).await?;
        if !rotated {
            let grace = self.settings.reuse_grace;
            let second_chance = !grace.is_zero() && self.store.rotate_within_grace(&hash, &next, now - grace).await?;
            if !second_chance {
                self.end_session_for_reuse(&user, session.id, meta).await?;
                return Err(Error::Refresh(TokenError::Revoked));
            }
        }
        self.wait_for_cutoff(&user).await;
        if session.client_id.is_some() {
            return self.issue_for_app("refresh_token", &user, &session, Some(plain));
        }
        self.issue_for_person(&user, &session, false, Some(plain))
    }

    async fn end_session_for_reuse(&self, user: &User, sid: SessionId, meta: &ClientMeta) -> Result<()> {
        tracing::warn!(user = %user.id, session = %sid, "refresh token reuse detected; session revoked");
        self.metrics.refresh_reuse.inc();
        self.audit(meta, "refresh.reuse_detected", None, Some(&user.id.to_string()), Some(format!("session {sid}"))).await;
        self.end_sessions(SessionScope::One(user.id, sid)).await.map(|_| ())
    }

    /// Logs out: revokes this access token and its session (and the session of
    /// `refresh_token`, when it is the caller's).
    pub async fn logout(&self, claims: &Claims, refresh_token: Option<&str>, meta: &ClientMeta) -> Result<()> {
        let user = self.person(claims)?;
        self.revoke(&[Revocation::Token { jti: claims.jti.clone(), exp: claims.exp }]).await?;
        if let Some(sid) = claims.sid.as_deref().and_then(|s| s.parse().ok()) {
            self.end_sessions(SessionScope::One(user, sid)).await?;
        }
        if let Some(presented) = refresh_token {
            let hash = PlainToken::from_presented(presented).hash();
            if let Some(token) = self.store.refresh_token(&hash).await? {
                // end_sessions is scoped to the caller, so a stranger's session is untouched.
                self.end_sessions(SessionScope::One(user, token.session_id)).await?;
            }
        }
        self.audit(meta, "logout", Some(&claims.sub), Some(&claims.sub), None).await;
        Ok(())
    }

    /// Logs out everywhere: every session and every access token of the user.
    pub async fn logout_all(&self, claims: &Claims, meta: &ClientMeta) -> Result<()> {
        let user = self.person(claims)?;
        self.revoke_everything_of(user).await?;
        self.audit(meta, "logout.all", Some(&claims.sub), Some(&claims.sub), None).await;
        Ok(())
    }

    /// The caller's live sessions, newest first, with the one the token came from marked.
    pub async fn sessions(&self, claims: &Claims) -> Result<Vec<(Session, bool)>> {
        let user = self.person(claims)?;
        let sessions = self.store.live_sessions(user, self.now()).await?;
        Ok(sessions
            .into_iter()
            .map(|s| {
                let current = claims.sid.as_deref() == Some(s.id.to_string().as_str());
                (s, current)
            })
            .collect())
    }

    /// Ends one of the caller's sessions.
    pub async fn end_session(&self, claims: &Claims, id: &str, meta: &ClientMeta) -> Result<()> {
        let user = self.person(claims)?;
        let sid: SessionId = id.parse().map_err(|_| Error::NotFound("session"))?;
        if self.end_sessions(SessionScope::One(user, sid)).await?.is_empty() {
            return Err(Error::NotFound("session"));
        }
        self.audit(meta, "session.ended", Some(&claims.sub), Some(&claims.sub), Some(format!("session {sid}"))).await;
        Ok(())
    }

    /// Ends sessions and applies their revocation here at once.
    pub(crate) async fn end_sessions(&self, scope: SessionScope) -> Result<Vec<SessionId>> {
        let ended = self.store.end_sessions(scope, self.now(), self.session_feed_exp()).await?;
        self.sync_revocations().await?;
        Ok(ended)
    }

    /// Revokes every token a user holds: a subject cut-off at the next whole second (so the
    /// boundary is exact with second-granular `iat`), and every session, browser sessions
    /// (the person is signed out of the pages) included.
    pub(crate) async fn revoke_everything_of(&self, user: UserId) -> Result<()> {
        let not_before = self.next_whole_second();
        self.store.raise_tokens_not_before(user, not_before, self.now()).await?;
        self.end_browser_sessions(crate::store::BrowserSessionScope::AllOf(user)).await?;
        self.end_sessions(SessionScope::AllOf(user)).await?;
        self.revoke(&[self.subject_revocation(user, not_before)]).await
    }

    pub(crate) fn subject_revocation(&self, user: UserId, not_before: i64) -> Revocation {
        self.subject_cutoff(&user.to_string(), not_before)
    }

    pub(crate) fn next_whole_second(&self) -> i64 {
        self.now().unix_timestamp() + 1
    }

    /// Tokens issued in the second of a subject cut-off would carry an `iat` the cut-off
    /// refuses; waiting out that second (at most one) keeps new tokens valid.
    async fn wait_for_cutoff(&self, user: &User) {
        let now = self.now();
        let cutoff = OffsetDateTime::from_unix_timestamp(user.tokens_not_before).unwrap_or(now);
        if cutoff > now {
            let wait = (cutoff - now).min(time::Duration::seconds(1));
            tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
        }
    }

    /// A new refresh token of `session`, expiring after the refresh TTL but never past the
    /// session's absolute lifetime.
    pub(crate) fn new_refresh_token(&self, session: &Session, now: OffsetDateTime) -> Result<(PlainToken, RefreshToken)> {
        let plain = PlainToken::generate(TokenKind::Refresh).map_err(Error::internal)?;
        let record = RefreshToken {
            hash: plain.hash(),
            session_id: session.id,
            created_at: now,
            expires_at: (now + self.settings.refresh_ttl).min(session.created_at + self.settings.session_max_age),
            rotated_at: None,
        };
        Ok((plain, record))
    }

    /// The fresh rule: a token straight from a password check, and that check recent enough.
    pub(crate) fn is_fresh(&self, claims: &Claims) -> bool {
        claims.is_fresh() && self.now().unix_timestamp() - claims.iat <= self.settings.fresh_max_age
    }

    fn issue_for_person(&self, user: &User, session: &Session, fresh: bool, refresh: Option<PlainToken>) -> Result<IssuedTokens> {
        let (access_token, claims) = self.issue_access_token(Grant {
            grant: if fresh { "password" } else { "refresh_token" },
            sub: user.id.to_string(),
            client_id: ClientId::FIRST_PARTY.to_owned(),
            scope: String::new(),
            roles: user.roles.to_vec(),
            sid: Some(session.id.to_string()),
            fresh: Some(fresh),
            amr: Some(session.amr.clone()).filter(|amr| !amr.is_empty()),
        })?;
        Ok(IssuedTokens { access_token, expires_in: claims.exp - claims.iat, claims, refresh_token: refresh })
    }

    /// The user behind a person's token; client tokens are refused.
    pub(crate) fn person(&self, claims: &Claims) -> Result<UserId> {
        public_id(claims).ok_or(Error::Forbidden("this operation is for people, not service clients"))
    }
}

/// A token session of the first-party client begun at `now` for `user` from `meta`'s
/// address; its expiry is set from its first refresh token. Applications' sessions are this
/// with their client, scopes and browser session.
pub(crate) fn new_session(user: &User, meta: &ClientMeta, now: OffsetDateTime) -> Session {
    Session {
        id: SessionId::new_random(),
        user_id: user.id,
        created_at: now,
        last_used_at: now,
        expires_at: now,
        revoked_at: None,
        user_agent: meta.user_agent.as_ref().map(|ua| ua.chars().take(256).collect()),
        ip: meta.ip,
        client_id: None,
        scope: crate::domain::Scopes::default(),
        browser_session_id: None,
        offline: false,
        amr: vec!["pwd".to_owned()],
    }
}
