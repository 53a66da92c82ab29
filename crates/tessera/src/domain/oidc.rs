//! What OpenID Connect adds to the domain: the browser session, authorization codes,
//! consents, and the scopes OpenID Connect defines.
//!
//! How they relate: signing in on Tessera's pages starts a [`BrowserSession`] (the cookie).
//! An authorization request answered from it hands out an [`AuthorizationCode`] bound to that
//! browser session (sealed into the code itself); exchanging the code starts a token session
//! (a [`Session`](super::Session), the refresh-token family) that remembers the browser
//! session, so signing out of the browser ends it, unless `offline_access` was granted.

use super::{BrowserSessionId, ClientId, Scopes, TokenHash, UserId};
use crate::domain::pkce::CodeChallenge;
use std::net::IpAddr;
use time::OffsetDateTime;

/// The scope that makes a request an OpenID Connect request (an id_token is issued).
pub const OPENID: &str = "openid";
/// `preferred_username` and `updated_at` in the id_token and userinfo.
pub const PROFILE: &str = "profile";
/// `email` and `email_verified` in the id_token and userinfo.
pub const EMAIL: &str = "email";
/// A refresh token that outlives the browser session.
pub const OFFLINE_ACCESS: &str = "offline_access";
/// The scopes OpenID Connect defines, which any client with redirect URIs may ask for on top
/// of its own scopes.
pub const OIDC_SCOPES: [&str; 4] = [OPENID, PROFILE, EMAIL, OFFLINE_ACCESS];

/// Whether `scope` is one of the scopes OpenID Connect defines.
pub fn is_oidc_scope(scope: &str) -> bool {
    OIDC_SCOPES.contains(&scope)
}

/// How a person signed in (RFC 8176 values: `pwd`, `otp`, `hwk`, `user`, `mfa`), in the
/// order the methods were used.
pub type Amr = Vec<String>;

/// A person signed in on Tessera's pages: what the cookie names.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// The public id: the `sid` of id_tokens.
    pub id: BrowserSessionId,
    /// SHA-256 of the secret the cookie holds (256 random bits); the secret is never stored.
    pub secret_hash: TokenHash,
    /// Who signed in.
    pub user_id: UserId,
    /// When they signed in (`auth_time`); a new sign-in makes a new session.
    pub auth_time: OffsetDateTime,
    /// How they signed in.
    pub amr: Amr,
    /// When the session began.
    pub created_at: OffsetDateTime,
    /// When the cookie was last presented (updated at most now and then).
    pub last_seen_at: OffsetDateTime,
    /// When it ends whatever happens.
    pub expires_at: OffsetDateTime,
    /// The address it began from.
    pub ip: Option<IpAddr>,
    /// The `User-Agent` it began with, truncated.
    pub user_agent: Option<String>,
}

impl BrowserSession {
    /// Whether it still signs its person in at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }
}

/// What an authorization code was issued for, so the token request can be checked against it
/// (RFC 6749 §4.1.3, RFC 7636 §4.6). The code carries it, sealed (`service/codes.rs`); storage
/// only records spent codes, by hash.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    /// The client it was issued to.
    pub client_id: ClientId,
    /// Whose consent it carries.
    pub user_id: UserId,
    /// The browser session it was issued from (the id_token's `sid`).
    pub browser_session_id: BrowserSessionId,
    /// The `redirect_uri` of the authorization request, only when the request named one: the
    /// token request must then repeat it exactly.
    pub redirect_uri: Option<String>,
    /// The PKCE `S256` challenge.
    pub code_challenge: CodeChallenge,
    /// The `nonce` of the request, for the id_token.
    pub nonce: Option<String>,
    /// The scopes granted.
    pub scope: Scopes,
    /// When the person signed in.
    pub auth_time: OffsetDateTime,
    /// How they signed in.
    pub amr: Amr,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working (60 s after issue).
    pub expires_at: OffsetDateTime,
}

/// What a person allowed an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Who allowed it.
    pub user_id: UserId,
    /// Which application.
    pub client_id: ClientId,
    /// The scopes allowed.
    pub scopes: Scopes,
    /// When it was (last) given.
    pub granted_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openid_connect_scopes_are_known_and_others_are_not() {
        for s in ["openid", "profile", "email", "offline_access"] {
            assert!(is_oidc_scope(s), "{s}");
        }
        assert!(!is_oidc_scope("notes:read"));
        assert!(!is_oidc_scope("OPENID"));
    }
}
