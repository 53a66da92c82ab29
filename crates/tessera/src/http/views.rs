//! Response bodies: how domain values look on the wire.

use crate::domain::{Session, User};
use crate::service::IssuedTokens;
use serde::Serialize;
use time::OffsetDateTime;

/// A user as the owner or an admin sees it. Never a password hash.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            email: u.email.as_str().to_owned(),
            username: u.username.as_ref().map(|n| n.as_str().to_owned()),
            roles: u.roles.to_vec(),
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A user as anyone else sees it.
#[derive(Debug, Serialize)]
pub struct PublicUserView {
    pub id: String,
    pub username: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for PublicUserView {
    fn from(u: &User) -> Self {
        PublicUserView { id: u.id.to_string(), username: u.username.as_ref().map(|n| n.as_str().to_owned()), created_at: u.created_at }
    }
}

/// The token fields of register, login and refresh answers.
#[derive(Debug, Serialize)]
pub struct TokenView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub token_type: &'static str,
    pub expires_in: i64,
}

impl TokenView {
    /// The answer for `tokens`, with the user when the request was a login.
    pub fn new(user: Option<&User>, tokens: IssuedTokens) -> Self {
        TokenView {
            user: user.map(UserView::from),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.map(|t| t.expose().to_owned()),
            token_type: "Bearer",
            expires_in: tokens.expires_in,
        }
    }
}

/// One of the caller's sessions.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

impl SessionView {
    /// The view of `s`.
    pub fn new(s: &Session, current: bool) -> Self {
        SessionView {
            id: s.id.to_string(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            user_agent: s.user_agent.clone(),
            ip: s.ip.map(|ip| ip.to_string()),
            current,
        }
    }
}
