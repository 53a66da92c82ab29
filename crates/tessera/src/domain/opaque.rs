//! Opaque secrets Tessera generates (refresh tokens, client secrets): random, prefixed so
//! a leaked one is recognisable by secret scanners, and stored only as a SHA-256 verifier.
//! A slow hash would buy nothing here: 256 random bits cannot be guessed, only stolen.

use aws_lc_rs::{digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use subtle::ConstantTimeEq;

/// Which kind of secret a plain token is; the prefix of its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A person's refresh token.
    Refresh,
    /// A service client's secret.
    ClientSecret,
    /// The secret in a browser session's cookie.
    BrowserSession,
    /// A password sign-in waiting for its second factor (`mfa_token`).
    MfaToken,
    /// The token of a link sent by mail (address verification, password reset).
    EmailLink,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Refresh => "tsr_",
            TokenKind::ClientSecret => "tcs_",
            TokenKind::BrowserSession => "tbs_",
            TokenKind::MfaToken => "tmf_",
            TokenKind::EmailLink => "tml_",
        }
    }
}

/// The text a caller holds. `Debug` never shows it.
#[derive(Clone)]
pub struct PlainToken(SecretString);

impl PlainToken {
    /// 256 random bits, base64url, behind the kind's prefix.
    pub fn generate(kind: TokenKind) -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes)?;
        Ok(PlainToken(SecretString::from(format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes)))))
    }

    /// Wraps a token received from a caller, to hash it for look-up.
    pub fn from_presented(raw: &str) -> Self {
        PlainToken(SecretString::from(raw.to_owned()))
    }

    /// The verifier to store or look up.
    pub fn hash(&self) -> TokenHash {
        let digest = digest::digest(&digest::SHA256, self.0.expose_secret().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        TokenHash(out)
    }

    /// The text, to hand to its owner once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainToken([redacted])")
    }
}

/// SHA-256 of a plain token: what storage holds.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Wraps stored bytes; `None` when they are not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(TokenHash)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    // Constant time, so comparing a presented secret leaks nothing about the stored one.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_and_carry_256_bits() {
        let token = PlainToken::generate(TokenKind::Refresh).unwrap();
        let body = token.expose().strip_prefix("tsr_").unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert!(PlainToken::generate(TokenKind::ClientSecret).unwrap().expose().starts_with("tcs_"));
    }

    #[test]
    fn the_same_text_hashes_the_same_and_other_text_does_not() {
        let token = PlainToken::generate(TokenKind::Refresh).unwrap();
        assert_eq!(PlainToken::from_presented(token.expose()).hash(), token.hash());
        assert_ne!(PlainToken::from_presented("tsr_other").hash(), token.hash());
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = PlainToken::generate(TokenKind::Refresh).unwrap();
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
