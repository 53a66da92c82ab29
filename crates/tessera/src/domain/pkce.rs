//! PKCE (RFC 7636) with the `S256` method, the only one Tessera accepts: the client sends
//! `code_challenge = BASE64URL(SHA256(code_verifier))` with the authorization request and the
//! verifier with the token request.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// An `S256` code challenge: the base64url (no padding) of a SHA-256, so exactly 43
/// characters of the base64url alphabet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

/// Why a PKCE value was refused (`invalid_request` at the authorization endpoint,
/// `invalid_grant` at the token endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// The challenge is not the base64url of a SHA-256.
    #[error("code_challenge must be 43 base64url characters (BASE64URL(SHA256(code_verifier)))")]
    Challenge,
    /// The verifier breaks RFC 7636 §4.1.
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    Verifier,
}

impl CodeChallenge {
    /// Checks the shape of an `S256` challenge.
    pub fn parse(raw: &str) -> Result<Self, PkceError> {
        let ok = raw.len() == 43 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        // 43 characters carry 258 bits; the last two must be zero for a 32-byte value.
        if ok && URL_SAFE_NO_PAD.decode(raw).is_ok_and(|bytes| bytes.len() == 32) {
            Ok(CodeChallenge(raw.to_owned()))
        } else {
            Err(PkceError::Challenge)
        }
    }

    /// Wraps a challenge read from storage (checked when it was stored).
    pub fn from_stored(raw: String) -> Self {
        CodeChallenge(raw)
    }

    /// The challenge as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` is well formed (RFC 7636 §4.1) and its `S256` transform is this
    /// challenge, compared in constant time. A malformed verifier is `Err`, a wrong one `Ok(false)`.
    pub fn verify(&self, verifier: &str) -> Result<bool, PkceError> {
        check_verifier(verifier)?;
        let computed = s256(verifier);
        Ok(computed.as_bytes().ct_eq(self.0.as_bytes()).into())
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 characters of the unreserved set `A-Z a-z 0-9 - . _ ~`.
pub fn check_verifier(verifier: &str) -> Result<(), PkceError> {
    let ok = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok { Ok(()) } else { Err(PkceError::Verifier) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636, Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_appendix_b_example_verifies() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        let challenge = CodeChallenge::parse(CHALLENGE).unwrap();
        assert_eq!(challenge.verify(VERIFIER), Ok(true));
    }

    #[test]
    fn another_verifier_does_not_verify() {
        let challenge = CodeChallenge::parse(CHALLENGE).unwrap();
        let mut other = VERIFIER.to_owned();
        other.replace_range(0..1, "e");
        assert_eq!(challenge.verify(&other), Ok(false));
        assert_eq!(challenge.verify(CHALLENGE), Ok(false), "the challenge itself (plain) is not a verifier of it");
    }

    #[test]
    fn verifiers_outside_the_rfc_alphabet_or_length_are_refused() {
        let challenge = CodeChallenge::parse(CHALLENGE).unwrap();
        for bad in ["short".to_owned(), "a".repeat(42), "a".repeat(129), format!("{}+", "a".repeat(42)), format!("{} ", "a".repeat(43))] {
            assert_eq!(challenge.verify(&bad), Err(PkceError::Verifier), "{bad:?}");
        }
        assert_eq!(check_verifier(&"~".repeat(128)), Ok(()));
        assert_eq!(check_verifier(&"a".repeat(43)), Ok(()));
    }

    #[test]
    fn challenges_must_be_a_base64url_sha256() {
        for bad in ["", "plain-verifier", &CHALLENGE[..42], &format!("{CHALLENGE}A"), &CHALLENGE.replace('E', "+")] {
            assert_eq!(CodeChallenge::parse(bad), Err(PkceError::Challenge), "{bad:?}");
        }
    }
}
