//! The admin console's use cases.
//!
//! A person with role `admin` signed in through the browser acts in the console as a
//! [`ConsoleAdmin`]: the same caller the API's administration calls take (its [`Claims`]
//! name the person as `sub`, carry their roles, their browser session as `sid`, and count as
//! `fresh` from the session's sign-in time), so every console action is the API's service
//! call, checked the same way and audited with the admin as actor. Destructive actions also
//! need a recent sign-in: [`Tessera::console_require_fresh`] applies the API's fresh rule
//! (`TESSERA_FRESH_MAX_AGE`) to the browser session's sign-in time.
//!
//! What the API has no call for (finding people by the start of their email, the filtered
//! audit trail, the overview, ending one person's sessions) is here, admin-only as well.

use super::accounts::require_admin;
use super::audit::AuditPage;
use super::error::{Error, Result};
use super::{ClientMeta, Tessera};
use crate::domain::{BrowserSession, BrowserSessionId, ClientId, Session, SessionId, User, UserId};
use crate::store::{AuditEvent, AuditFilter, BrowserSessionScope, ConsoleCounts, SessionScope};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_verify::{Audience, Claims};

/// The audit kinds of a successful password sign-in (the API's and the pages').
pub const SIGN_IN_KINDS: [&str; 2] = ["login.succeeded", "login.page.succeeded"];

/// The audit kinds of a refused sign-in: wrong credentials, disabled, locked out.
pub const FAILED_SIGN_IN_KINDS: [&str; 4] = ["login.failed", "login.page.failed", "login.locked", "login.page.locked"];

/// An admin signed in through the browser: the console's actor.
#[derive(Debug, Clone)]
pub struct ConsoleAdmin {
    /// The person.
    pub user: User,
    /// Their browser session.
    pub session: BrowserSession,
    claims: Claims,
}

impl ConsoleAdmin {
    /// The caller as the API's administration calls take it.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
}

/// A page of people found by the console's search.
#[derive(Debug)]
pub struct UserSearchPage {
    /// The accounts, in order of their email.
    pub users: Vec<User>,
    /// Cursor for the next page, when there may be one.
    pub next_cursor: Option<String>,
}

/// Everything the console shows about one person.
#[derive(Debug)]
pub struct PersonDetail {
    /// The account.
    pub user: User,
    /// Their live browser sessions, newest first.
    pub browser_sessions: Vec<BrowserSession>,
    /// Their live token sessions, newest first.
    pub token_sessions: Vec<Session>,
    /// The latest audit events about them, newest first.
    pub events: Vec<AuditEvent>,
}

/// The overview's figures.
#[derive(Debug)]
pub struct Overview {
    /// Accounts, sessions and clients now.
    pub counts: ConsoleCounts,
    /// Successful password sign-ins in the last day.
    pub sign_ins: i64,
    /// Refused sign-ins in the last day.
    pub failed_sign_ins: i64,
    /// The database answered a ping.
    pub database_ok: bool,
    /// Connections in the pool: `(open, idle)`.
    pub pool: (u32, u32),
    /// The revocation feed's head: the cursor a reader starting now would get.
    pub feed_head: i64,
    /// How mails leave (SMTP, the log, or not at all).
    pub mail_delivery: &'static str,
    /// Seconds the oldest mail still waiting in the outbox has waited (0: none waits).
    pub mail_oldest_unsent_age: i64,
}

/// Which kind of session the console ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A sign-in through the pages.
    Browser,
    /// A token session (API sign-in or application).
    Token,
}

/// How many of a person's latest audit events their page shows.
const PERSON_EVENTS: u32 = 20;

impl Tessera {
    /// The console's actor for a browser session, when its person has role `admin`.
    pub fn console_admin(&self, session: BrowserSession, user: User) -> Result<ConsoleAdmin> {
        if !user.roles.is_admin() || user.disabled {
            return Err(Error::Forbidden("the console is for people with the admin role"));
        }
        let claims = self.browser_caller(&session, &user);
        Ok(ConsoleAdmin { user, session, claims })
    }

    /// The person of a browser session as the caller the service's calls take (`sub`, roles,
    /// the session as `sid`, `fresh` counted from the session's sign-in time), so a page
    /// action is the API's call under the API's rules, the fresh rule included. Held only in
    /// memory, never issued.
    pub fn browser_caller(&self, session: &BrowserSession, user: &User) -> Claims {
        let auth_time = session.auth_time.unix_timestamp();
        Claims {
            iss: self.settings.issuer.clone(),
            sub: user.id.to_string(),
            aud: Audience::One(self.settings.issuer.clone()),
            exp: session.expires_at.unix_timestamp(),
            iat: auth_time,
            nbf: auth_time,
            jti: format!("browser:{}", session.id),
            scope: String::new(),
            client_id: ClientId::FIRST_PARTY.to_owned(),
            roles: user.roles.to_vec(),
            sid: Some(session.id.to_string()),
            fresh: Some(true),
            amr: None,
        }
    }

    /// Refuses with [`Error::FreshTokenRequired`] unless the admin signed in within
    /// `TESSERA_FRESH_MAX_AGE` (the API's fresh rule, applied to the sign-in time).
    pub fn console_require_fresh(&self, admin: &ConsoleAdmin) -> Result<()> {
        if self.is_fresh(&admin.claims) { Ok(()) } else { Err(Error::FreshTokenRequired) }
    }

    /// The overview: counts now, sign-ins in the last day, the database and the feed.
    pub async fn console_overview(&self, caller: &Claims) -> Result<Overview> {
        require_admin(caller)?;
        let now = self.now();
        let counts = self.store.console_counts(now).await?;
        let kinds = self.store.audit_kinds_since(now - time::Duration::days(1)).await?;
        let total = |wanted: &[&str]| kinds.iter().filter(|(k, _)| wanted.contains(&k.as_str())).map(|(_, n)| *n).sum();
        Ok(Overview {
            counts,
            sign_ins: total(&SIGN_IN_KINDS),
            failed_sign_ins: total(&FAILED_SIGN_IN_KINDS),
            database_ok: self.store.ping().await.is_ok(),
            pool: self.store.pool_stats(),
            feed_head: self.revocations.cursor(),
            mail_delivery: self.outbox.delivery(),
            mail_oldest_unsent_age: self.oldest_unsent_mail_age().await?,
        })
    }

    /// People in order of their email, those whose email (or, for a term without `@`, whose
    /// username) starts with `term` when one is given (admin).
    pub async fn search_users(&self, caller: &Claims, term: Option<&str>, cursor: Option<&str>, limit: u32) -> Result<UserSearchPage> {
        require_admin(caller)?;
        let limit = limit.clamp(1, 200);
        let term = term.map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty());
        let after = cursor
            .map(|c| URL_SAFE_NO_PAD.decode(c).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(Error::InvalidCursor))
            .transpose()?;
        let usernames = term.as_deref().is_some_and(|t| !t.contains('@'));
        // One more than a page tells whether there is a next one.
        let mut users = self.store.search_users(term.as_deref(), usernames, after.as_deref(), limit + 1).await?;
        let more = users.len() > limit as usize;
        users.truncate(limit as usize);
        let next_cursor = more.then(|| users.last().map(|u| URL_SAFE_NO_PAD.encode(u.email.normalized().as_bytes()))).flatten();
        Ok(UserSearchPage { users, next_cursor })
    }

    /// One person with their sessions and the latest events about them (admin).
    pub async fn person_detail(&self, caller: &Claims, id: &str) -> Result<PersonDetail> {
        require_admin(caller)?;
        let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
        let user = self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        let now = self.now();
        let browser_sessions = self.store.browser_sessions_of(id, now).await?;
        let token_sessions = self.store.live_sessions(id, now).await?;
        let filter = AuditFilter { subject: Some(id.to_string()), ..AuditFilter::default() };
        let events = self.store.filtered_audit(&filter, None, PERSON_EVENTS).await?.into_iter().map(|(_, e)| e).collect();
        Ok(PersonDetail { user, browser_sessions, token_sessions, events })
    }

    /// The trail filtered, newest first (admin).
    pub async fn filtered_audit(&self, caller: &Claims, filter: &AuditFilter, limit: u32, cursor: Option<&str>) -> Result<AuditPage> {
        require_admin(caller)?;
        let limit = limit.clamp(1, 1000);
        let before = cursor.map(|c| c.parse::<i64>().ok().filter(|n| *n > 0).ok_or(Error::InvalidCursor)).transpose()?;
        let mut rows = self.store.filtered_audit(filter, before, limit + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = more.then(|| rows.last().map(|(seq, _)| seq.to_string())).flatten();
        Ok(AuditPage { events: rows.into_iter().map(|(_, e)| e).collect(), next_cursor })
    }

    /// Ends every session of a person, browser and token sessions alike, and revokes every
    /// token they hold (admin). They can sign in again.
    pub async fn admin_end_sessions(&self, caller: &Claims, id: &str, meta: &ClientMeta) -> Result<()> {
        require_admin(caller)?;
        let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
        self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        self.revoke_everything_of(id).await?;
        self.audit(meta, "sessions.ended_by_admin", Some(&caller.sub), Some(&id.to_string()), None).await;
        Ok(())
    }

    /// Ends one session of a person (admin): a browser session with the token sessions
    /// issued through it, or one token session. `NotFound` when they have no such session.
    pub async fn admin_end_session(&self, caller: &Claims, user: &str, kind: SessionKind, id: &str, meta: &ClientMeta) -> Result<()> {
        require_admin(caller)?;
        let user: UserId = user.parse().map_err(|_| Error::NotFound("user"))?;
        let ended = match kind {
            SessionKind::Browser => {
                let sid: BrowserSessionId = id.parse().map_err(|_| Error::NotFound("session"))?;
                !self.end_browser_sessions(BrowserSessionScope::One(user, sid)).await?.browser_sessions.is_empty()
            }
            SessionKind::Token => {
                let sid: SessionId = id.parse().map_err(|_| Error::NotFound("session"))?;
                !self.end_sessions(SessionScope::One(user, sid)).await?.is_empty()
            }
        };
        if !ended {
            return Err(Error::NotFound("session"));
        }
        let detail = match kind {
            SessionKind::Browser => format!("browser session {id}"),
            SessionKind::Token => format!("session {id}"),
        };
        self.audit(meta, "session.ended_by_admin", Some(&caller.sub), Some(&user.to_string()), Some(detail)).await;
        Ok(())
    }
}
