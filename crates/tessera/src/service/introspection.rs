//! Remote checks and revocation of single tokens: RFC 7662 introspection and RFC 7009
//! revocation, for access tokens and refresh tokens alike.

use super::error::{Result, TokenError};
use super::{ClientMeta, Tessera};
use crate::domain::{Client, ClientId, PlainToken};
use crate::store::{Revocation, SessionScope};
use tessera_verify::Claims;

/// What introspection found.
#[derive(Debug, Clone)]
pub enum Introspection {
    /// Unknown, expired, revoked or forged: RFC 7662 says only `active: false`.
    Inactive,
    /// A valid access token.
    Access(std::sync::Arc<Claims>),
    /// A live refresh token of a person's session.
    Refresh {
        /// The client the token was issued to: an application's id, or `tessera` for a
        /// person's own sign-in.
        client_id: String,
        /// The user.
        sub: String,
        /// The session.
        sid: String,
        /// Issued at, seconds.
        iat: i64,
        /// Expiry, seconds.
        exp: i64,
    },
}

/// Who asks to revoke a token.
#[derive(Debug, Clone)]
pub enum Revoker {
    /// An authenticated confidential client: the tokens issued to it, or any token when it
    /// is an admin client.
    Client(Box<Client>),
    /// A public client by `client_id` alone, the first-party `tessera` among them: it has no
    /// credentials (RFC 7009 §2.1), so only the tokens issued to it, whatever its roles.
    Public(ClientId),
}

impl Revoker {
    /// Who revoked, for the audit trail.
    fn actor(&self) -> &str {
        match self {
            Revoker::Client(c) => c.id.as_str(),
            Revoker::Public(id) => id.as_str(),
        }
    }

    fn may_revoke(&self, issued_to: &str) -> bool {
        match self {
            Revoker::Client(c) => c.roles.is_admin() || c.id.as_str() == issued_to,
            Revoker::Public(id) => id.as_str() == issued_to,
        }
    }
}

/// The caller may not revoke a token issued to another client (RFC 7009 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the token was not issued to this client")]
pub struct NotYourToken;

fn is_refresh_token(token: &str) -> bool {
    token.starts_with("tsr_")
}

impl Tessera {
    /// RFC 7662: whether `token` is active, and its claims when it is.
    pub async fn introspect(&self, token: &str) -> Result<Introspection> {
        if !is_refresh_token(token) {
            return Ok(self.check_token(token).map_or(Introspection::Inactive, Introspection::Access));
        }
        let now = self.now();
        let Some(record) = self.store.refresh_token(&PlainToken::from_presented(token).hash()).await? else {
            return Ok(Introspection::Inactive);
        };
        let session = self.store.session(record.session_id).await?;
        match session {
            Some(s) if s.is_live(now) && record.rotated_at.is_none() && record.expires_at > now => Ok(Introspection::Refresh {
                client_id: s.client_id.as_ref().map_or(ClientId::FIRST_PARTY, ClientId::as_str).to_owned(),
                sub: s.user_id.to_string(),
                sid: s.id.to_string(),
                iat: record.created_at.unix_timestamp(),
                exp: record.expires_at.unix_timestamp(),
            }),
            _ => Ok(Introspection::Inactive),
        }
    }

    /// RFC 7009: revokes `token` if `by` may; unknown or invalid tokens are not an error.
    pub async fn revoke_token(&self, by: &Revoker, token: &str, meta: &ClientMeta) -> Result<Result<(), NotYourToken>> {
        if is_refresh_token(token) {
            let Some(record) = self.store.refresh_token(&PlainToken::from_presented(token).hash()).await? else {
                return Ok(Ok(()));
            };
            let Some(session) = self.store.session(record.session_id).await? else { return Ok(Ok(())) };
            if !by.may_revoke(session.client_id.as_ref().map_or(ClientId::FIRST_PARTY, ClientId::as_str)) {
                return Ok(Err(NotYourToken));
            }
            self.end_sessions(SessionScope::One(session.user_id, session.id)).await?;
            let detail = format!("refresh token of session {}", session.id);
            self.audit(meta, "token.revoked", Some(by.actor()), Some(&session.user_id.to_string()), Some(detail)).await;
            return Ok(Ok(()));
        }
        let claims = match self.check_token(token) {
            Ok(claims) => claims,
            // Already revoked, expired or not ours: nothing left to revoke.
            Err(TokenError::Revoked | TokenError::Expired | TokenError::Invalid(_) | TokenError::Missing) => {
                return Ok(Ok(()));
            }
        };
        if !by.may_revoke(&claims.client_id) {
            return Ok(Err(NotYourToken));
        }
        self.revoke(&[Revocation::Token { jti: claims.jti.clone(), exp: claims.exp }]).await?;
        self.audit(meta, "token.revoked", Some(by.actor()), Some(&claims.sub), Some(format!("access token {}", claims.jti))).await;
        Ok(Ok(()))
    }
}
