//! The one error type of the use cases. Each variant is something a caller can act on; the
//! HTTP layer maps each to a status and a stable `code` in one place (`http/error.rs`).
//! Internal causes are logged there and never shown to callers.

use crate::store::{Conflict, StoreError};
use std::time::Duration;

/// Why a bearer or refresh token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was presented.
    #[error("no bearer token was presented")]
    Missing,
    /// The token is malformed, forged, or not for us; the reason is safe to show.
    #[error("{0}")]
    Invalid(&'static str),
    /// The token's `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// The token, its session or its subject was revoked.
    #[error("the token has been revoked")]
    Revoked,
}

/// Everything a use case can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown account or wrong password (never says which).
    #[error("invalid email, username or password")]
    InvalidCredentials,
    /// A service client's id or secret is wrong (outside `/oauth2/*`, which answers RFC 6749's
    /// `invalid_client` itself).
    #[error("client authentication failed")]
    InvalidClient,
    /// The `current_password` of a password change is wrong.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    /// The account is disabled.
    #[error("this account is disabled")]
    AccountDisabled,
    /// The address must be verified before signing in (`TESSERA_REQUIRE_VERIFIED_EMAIL=true`).
    #[error("the email address of this account is not verified yet; open the link we sent to it")]
    EmailNotVerified,
    /// The operation's purpose is a mail and no mail server is configured (profile `prod`).
    #[error("email is not available on this server")]
    EmailUnavailable,
    /// A link token that is unknown, used or expired.
    #[error("this link is not valid: it may have been used already, or expired")]
    InvalidLink,
    /// Registration is closed (`TESSERA_REGISTRATION=closed`).
    #[error("registration is closed; ask an administrator for an account")]
    RegistrationClosed,
    /// Another account has this email.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Another account has this username.
    #[error("this username is taken")]
    UsernameTaken,
    /// A field broke a rule; the message names the field.
    #[error("{0}")]
    Validation(String),
    /// A redirect URI breaks the rules (`invalid_redirect_uri`); the message says which.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// The operation needs a client secret and the client is public (it has none).
    #[error("a public client has no secret")]
    PublicClient,
    /// A new password is too weak; the message says how to do better.
    #[error("{0}")]
    WeakPassword(String),
    /// A bearer token was refused.
    #[error(transparent)]
    Bearer(TokenError),
    /// A refresh token was refused.
    #[error("refresh token refused: {0}")]
    Refresh(TokenError),
    /// The password was right and the person has a second factor: the sign-in continues at
    /// `POST /v1/auth/login/mfa` with `mfa_token` (single use, 5 minutes).
    #[error("this account has a second factor: finish signing in with one of the methods offered")]
    MfaRequired {
        /// The token naming this sign-in.
        mfa_token: String,
        /// The methods the person may finish with (`totp`, `recovery_code`, `passkey`).
        methods: Vec<&'static str>,
    },
    /// A TOTP or recovery code is wrong, or was used already.
    #[error("the code is wrong or was used already")]
    InvalidCode,
    /// An `mfa_token` is unknown, used, expired, or ended by too many wrong codes.
    #[error("the sign-in has expired or ended; sign in again with your password")]
    InvalidMfaToken,
    /// A passkey ceremony's `challenge_id` is unknown, finished, expired, or not this caller's.
    #[error("the passkey challenge is unknown, used or expired; start again")]
    InvalidChallenge,
    /// The operation needs a token straight from a password check.
    #[error("this operation needs a fresh token: log in again")]
    FreshTokenRequired,
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The token lacks a scope the operation requires (RFC 6750 `insufficient_scope`).
    #[error("the token lacks a required scope")]
    InsufficientScope,
    /// No such resource (or not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(&'static str),
    /// A paging cursor that we did not hand out.
    #[error("the cursor is not valid")]
    InvalidCursor,
    /// Too many attempts; try again after the given time.
    #[error("too many attempts; try again later")]
    RateLimited { retry_after: Duration },
    /// Too much work queued (password hashing); try again shortly.
    #[error("the server is busy; try again shortly")]
    Busy { retry_after: Duration },
    /// The database cannot be reached.
    #[error("the database is unavailable")]
    Unavailable,
    /// A bug or corrupt data; the cause, with its whole source chain, is logged, not shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps an unexpected failure, keeping it (and what caused it) for the log. A plain
    /// message (`&str`, `String`) works too.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(e.into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Conflict::Email) => Error::EmailTaken,
            StoreError::Conflict(Conflict::Username) => Error::UsernameTaken,
            StoreError::Conflict(_) => Error::Conflict("the resource was changed concurrently; retry"),
            StoreError::Unavailable(_) => Error::Unavailable,
            e @ StoreError::Other(_) => Error::internal(e),
        }
    }
}

/// Result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, thiserror::Error)]
    #[error("the disk is on fire")]
    struct Root;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write the row")]
    struct Outer(#[source] Root);

    #[test]
    fn an_internal_error_keeps_its_whole_source_chain() {
        let e = Error::internal(Outer(Root));

        let cause = e.source().expect("the cause is kept");
        assert_eq!(cause.to_string(), "cannot write the row");
        assert_eq!(cause.source().map(ToString::to_string).as_deref(), Some("the disk is on fire"));
    }

    #[test]
    fn a_store_failure_becomes_internal_with_the_driver_error_below_it() {
        let e = Error::from(StoreError::other(Outer(Root)));

        assert!(matches!(e, Error::Internal(_)));
        let chain: Vec<String> = std::iter::successors(e.source(), |c| (*c).source()).map(ToString::to_string).collect();
        assert_eq!(chain, ["database error: cannot write the row", "cannot write the row", "the disk is on fire"]);
    }
}
