//! Access tokens: issuing (claims + one signature with a pre-parsed key) and checking
//! (tessera-verify's [`tessera_verify::KeySet`] over the key ring: signature with the key its
//! `kid` names, then `iss`, `exp`, `nbf` against our clock with bounded leeway; then the
//! in-memory revocation list, then `aud`). No I/O on either path.
//!
//! The audience rule: a token's `aud` is the configured audience (people) or one of its
//! client's audiences (RFC 8707). Tessera's own API is one resource among these and takes
//! only tokens for the configured audience ([`Tessera::authenticate`]), so a token minted for
//! another API cannot be replayed against it. Introspection, verify and revocation answer
//! for every resource Tessera issues tokens to, so they accept any audience on a token that
//! Tessera signed ([`Tessera::check_token`]); each resource server restricts to its own
//! (tessera-verify's `.audience(..)`, or `aud=` on verify).

use super::error::{Result, TokenError};
use super::{LEEWAY_SECS, Tessera};
use std::sync::Arc;
use tessera_verify::{Audience, Claims, VerifyError};
use uuid::Uuid;

/// What an access token is issued for.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// How the token was earned, for the metrics: `password`, `refresh_token`, `client_credentials`.
    pub(crate) grant: &'static str,
    pub(crate) sub: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) roles: Vec<String>,
    pub(crate) sid: Option<String>,
    pub(crate) fresh: Option<bool>,
    /// How the person signed in (`amr`), for people's tokens.
    pub(crate) amr: Option<Vec<String>>,
}

impl Tessera {
    /// Signs an access token for `grant` and the configured audience, issued now.
    pub(crate) fn issue_access_token(&self, grant: Grant) -> Result<(String, Claims)> {
        self.issue_access_token_for(grant, self.settings.audience.clone())
    }

    /// Signs an access token for `grant` and `aud`, issued now.
    pub(crate) fn issue_access_token_for(&self, grant: Grant, aud: Audience) -> Result<(String, Claims)> {
        let iat = self.now().unix_timestamp();
        let grant_kind = grant.grant;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: grant.sub,
            aud,
            exp: iat + self.settings.access_ttl,
            iat,
            nbf: iat,
            jti: Uuid::new_v4().simple().to_string(),
            scope: grant.scope,
            client_id: grant.client_id,
            roles: grant.roles,
            sid: grant.sid,
            fresh: grant.fresh,
            amr: grant.amr,
        };
        let token = self.keys.get()?.signer.sign_jwt(&claims).map_err(super::Error::internal)?;
        self.metrics.hot.issued(grant_kind).inc();
        Ok((token, claims))
    }

    /// Checks an access token for Tessera's own API: [`Tessera::check_token`], and its `aud`
    /// must name a configured audience.
    pub fn authenticate(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        let claims = self.check_token(token)?;
        if !self.settings.audiences.iter().any(|a| claims.aud.contains(a)) {
            return Err(TokenError::Invalid("the token is for another audience"));
        }
        Ok(claims)
    }

    /// Checks an access token for any audience Tessera issues to and returns its claims. A
    /// token seen before skips the signature check (see `cache.rs`); expiry and revocation are
    /// checked every time.
    pub fn check_token(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        let now = self.now().unix_timestamp();
        let claims = match self.verified.get(token, now, LEEWAY_SECS) {
            Some(claims) => {
                self.metrics.hot.cache_hit.inc();
                claims
            }
            None => {
                self.metrics.hot.cache_miss.inc();
                let claims = Arc::new(self.verify_signature_and_claims(token, now)?);
                self.verified.insert(token, claims.clone(), now, LEEWAY_SECS);
                claims
            }
        };
        if self.revocations.is_revoked(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// The signature and the claims, by tessera-verify's checks (what services that verify
    /// locally run): at most 8 KiB, `typ` `at+jwt`, a `kid` of the ring and the exact `alg`
    /// of its key, the signature, then `iss`, `exp` and `nbf` at `now` with [`LEEWAY_SECS`].
    /// The audience is the caller's to check (see the top).
    fn verify_signature_and_claims(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let keys = self.keys.get().map_err(|_| TokenError::Invalid("no signing keys loaded"))?;
        keys.verifiers.verify(token, &self.expected, now).map_err(refused)
    }
}

/// tessera-verify's reasons as the service's, with the same problem codes.
fn refused(e: VerifyError) -> TokenError {
    match e {
        VerifyError::Expired => TokenError::Expired,
        VerifyError::Revoked => TokenError::Revoked,
        VerifyError::Malformed(why) => TokenError::Invalid(why),
        VerifyError::UnknownKey => TokenError::Invalid("the token was signed by an unknown key"),
        VerifyError::WrongAlgorithm => TokenError::Invalid("the token's algorithm does not match its key"),
        VerifyError::BadSignature => TokenError::Invalid("the token's signature is invalid"),
        VerifyError::NotYetValid => TokenError::Invalid("the token is not valid yet"),
        VerifyError::WrongIssuer => TokenError::Invalid("the token was issued by someone else"),
        VerifyError::WrongAudience => TokenError::Invalid("the token is for another audience"),
        _ => TokenError::Invalid("the token cannot be verified"),
    }
}
