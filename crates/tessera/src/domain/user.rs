use super::{BrowserSessionId, ClientId, Email, PasswordHash, Roles, Scopes, SessionId, UserId, Username};
use std::net::IpAddr;
use time::OffsetDateTime;

/// A person's account.
#[derive(Debug, Clone)]
pub struct User {
    /// Stable id, the `sub` of their tokens.
    pub id: UserId,
    /// Login address, trimmed.
    pub email: Email,
    /// Whether the person proved the address is theirs (a verification or reset link).
    pub email_verified: bool,
    /// Optional login name, folded to lower case.
    pub username: Option<Username>,
    /// argon2id verifier of the password.
    pub password_hash: PasswordHash,
    /// Roles carried into tokens.
    pub roles: Roles,
    /// A disabled account cannot log in and its tokens are revoked.
    pub disabled: bool,
    /// Tokens issued before this second are revoked (logout-all, disabling).
    pub tokens_not_before: i64,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// When the account last changed.
    pub updated_at: OffsetDateTime,
    /// Whether signing in needs a second factor (a confirmed TOTP secret or a passkey).
    pub two_factor: bool,
}

/// A token session: a login's refresh-token family (the `sid` of its access tokens).
#[derive(Debug, Clone)]
pub struct Session {
    /// The `sid` of the session's access tokens.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// When the password check that began it happened.
    pub created_at: OffsetDateTime,
    /// When its refresh token was last used.
    pub last_used_at: OffsetDateTime,
    /// When its newest refresh token expires.
    pub expires_at: OffsetDateTime,
    /// Set when the session was ended.
    pub revoked_at: Option<OffsetDateTime>,
    /// The `User-Agent` of the login, truncated.
    pub user_agent: Option<String>,
    /// The client address of the login.
    pub ip: Option<IpAddr>,
    /// The application it was issued to through the authorization endpoint; `None`: the
    /// first-party client `tessera` (sign-in by the API).
    pub client_id: Option<ClientId>,
    /// The scopes granted to that application (empty for the first-party client).
    pub scope: Scopes,
    /// The browser session it was issued through: signing out of it ends this session too,
    /// unless `offline`.
    pub browser_session_id: Option<BrowserSessionId>,
    /// `offline_access` was granted: the session outlives the browser session.
    pub offline: bool,
    /// How the person signed in (`amr`), carried onto every access token of the session.
    pub amr: Vec<String>,
}

impl Session {
    /// Whether the session can still be refreshed at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}
