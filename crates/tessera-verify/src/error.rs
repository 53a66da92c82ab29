//! Why a token was refused, as one enum whose `code()` matches Tessera's problem codes, so a
//! service answers its callers exactly as Tessera would.

/// Why a token was not accepted.
///
/// The `Display` text is safe to show to the caller: it names the rule that failed, never a
/// key, a secret or an internal error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a compact JWS, not an access token (`typ` is not `at+jwt`), no `kid`, too long,
    /// or claims that do not parse.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// The token names a key (`kid`) that the issuer does not publish.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The header's `alg` is not the algorithm the named key is published for (this is what
    /// refuses `alg: none` and HS256-signed-with-the-public-key forgeries).
    #[error("the token's algorithm does not match its key")]
    WrongAlgorithm,
    /// The signature does not verify with the named key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("the token was issued by someone else")]
    WrongIssuer,
    /// `aud` names none of the expected audiences.
    #[error("the token is for another audience")]
    WrongAudience,
    /// The token, its session or its subject was revoked.
    #[error("the token has been revoked")]
    Revoked,
    /// Introspection answered `{"active": false}`: expired, revoked or unknown to Tessera.
    #[error("the token is not active")]
    Inactive,
    /// Tessera could not be reached (keys, revocation feed or introspection), so the token
    /// cannot be judged either way. The detail is for logs.
    #[error("token verification is unavailable: {0}")]
    Unavailable(String),
    /// The verifier's options are unusable (raised while building it).
    #[error("invalid verifier configuration: {0}")]
    Config(String),
}

impl VerifyError {
    /// A stable snake_case code; the same as Tessera's problem `code` where the two overlap
    /// (`invalid_token`, `token_expired`, `token_revoked`).
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Expired => "token_expired",
            VerifyError::Revoked => "token_revoked",
            VerifyError::Unavailable(_) => "verification_unavailable",
            VerifyError::Config(_) => "invalid_configuration",
            VerifyError::Malformed(_)
            | VerifyError::UnknownKey
            | VerifyError::WrongAlgorithm
            | VerifyError::BadSignature
            | VerifyError::NotYetValid
            | VerifyError::WrongIssuer
            | VerifyError::WrongAudience
            | VerifyError::Inactive => "invalid_token",
        }
    }

    /// Whether the token itself was judged (and refused), as opposed to the verifier being
    /// unable to judge it: the difference between a 401 and a 503.
    pub fn is_token_error(&self) -> bool {
        !matches!(self, VerifyError::Unavailable(_) | VerifyError::Config(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_tesseras_problem_codes() {
        assert_eq!(VerifyError::Expired.code(), "token_expired");
        assert_eq!(VerifyError::Revoked.code(), "token_revoked");
        assert_eq!(VerifyError::BadSignature.code(), "invalid_token");
        assert!(!VerifyError::Unavailable("down".into()).is_token_error());
    }
}
