//! Sealed authorization codes: a code carries what it was issued for, encrypted and
//! authenticated, so issuing one writes nothing.
//!
//! The code flow is bound by the database's single writer (SQLite's, or the rows it locks on
//! PostgreSQL). A code stored at the authorization endpoint and spent at the token endpoint
//! cost two writes per flow; a sealed code costs none until it is exchanged, and the exchange's
//! own statement records it as spent (`store/flow.rs`): one write per flow. Its single use is
//! kept by that record (by the code's hash), which is also what a replay finds.
//!
//! A code is `tac_` + base64url(nonce ‖ AES-256-GCM-SIV(payload)), with 16 random bytes in the
//! payload (the contract's "at least 128 random bits"). GCM-SIV because the 96-bit nonces are
//! random and a long-lived key seals billions of codes: a repeated nonce costs GCM its
//! authentication key, and costs GCM-SIV nothing here (no two payloads are the same). The key
//! is derived from the root secret every instance shares (the master key, or the database's
//! own secret without one), so any instance can open a code another issued.

use crate::domain::{AuthorizationCode, BrowserSessionId, ClientId, CodeChallenge, PlainToken, Scopes, UserId};
use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The HKDF purpose of the code key under the root secret.
pub(crate) const CODE_PURPOSE: &str = "tessera authorization code v1";

/// What every code's tag also covers: a sealed code is no other sealed thing.
const AAD: &[u8] = b"tessera authorization code v1";

const PREFIX: &str = "tac_";

/// The key that seals and opens authorization codes.
pub(crate) struct CodeKey(LessSafeKey);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey([redacted])")
    }
}

/// The sealing failed (no random bytes, or the payload would not serialize).
#[derive(Debug, thiserror::Error)]
#[error("cannot seal an authorization code")]
pub(crate) struct SealError;

/// What a code carries, with short names: it travels in a redirect URL.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The client.
    c: String,
    /// The person.
    u: String,
    /// The browser session.
    b: String,
    /// The `redirect_uri`, when the request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    /// The PKCE challenge.
    p: String,
    /// The `nonce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    /// The scopes, space-separated.
    s: String,
    /// `auth_time`, Unix milliseconds.
    t: i64,
    /// `amr`.
    a: Vec<String>,
    /// Issued at, Unix milliseconds.
    i: i64,
    /// Expires at, Unix milliseconds.
    e: i64,
    /// 128 random bits.
    j: String,
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

impl CodeKey {
    /// The key for `bytes` (32 bytes derived for [`CODE_PURPOSE`]).
    pub(crate) fn new(bytes: &[u8; 32]) -> CodeKey {
        // 32 bytes is AES-256's key length: `new` cannot fail on it.
        let key = UnboundKey::new(&AES_256_GCM_SIV, bytes).unwrap_or_else(|_| unreachable!("a 32-byte AES-256 key"));
        CodeKey(LessSafeKey::new(key))
    }

    /// Seals `code` into a code to hand out.
    pub(crate) fn seal(&self, code: &AuthorizationCode) -> Result<PlainToken, SealError> {
        let mut random = [0u8; 16];
        rand::fill(&mut random).map_err(|_| SealError)?;
        let payload = Payload {
            c: code.client_id.as_str().to_owned(),
            u: code.user_id.to_string(),
            b: code.browser_session_id.to_string(),
            r: code.redirect_uri.clone(),
            p: code.code_challenge.as_str().to_owned(),
            n: code.nonce.clone(),
            s: code.scope.to_string(),
            t: millis(code.auth_time),
            a: code.amr.clone(),
            i: millis(code.created_at),
            e: millis(code.expires_at),
            j: URL_SAFE_NO_PAD.encode(random),
        };
        let mut sealed = serde_json::to_vec(&payload).map_err(|_| SealError)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| SealError)?;
        self.0.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut sealed).map_err(|_| SealError)?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(PlainToken::from_presented(&format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// What `presented` was issued for, when it is a code this key sealed (expired or not:
    /// the caller decides, and a late replay must still be recognised). `None` for anything
    /// else.
    pub(crate) fn open(&self, presented: &str) -> Option<AuthorizationCode> {
        let encoded = presented.strip_prefix(PREFIX)?;
        let mut bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let mut sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self.0.open_in_place(nonce, Aad::from(AAD), &mut sealed).ok()?;
        let p: Payload = serde_json::from_slice(plain).ok()?;
        Some(AuthorizationCode {
            client_id: ClientId::new(p.c),
            user_id: p.u.parse::<UserId>().ok()?,
            browser_session_id: p.b.parse::<BrowserSessionId>().ok()?,
            redirect_uri: p.r,
            code_challenge: CodeChallenge::parse(&p.p).ok()?,
            nonce: p.n,
            scope: Scopes::parse_space_separated(&p.s).ok()?,
            auth_time: from_millis(p.t)?,
            amr: p.a,
            created_at: from_millis(p.i)?,
            expires_at: from_millis(p.e)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::Duration;

    fn issued() -> AuthorizationCode {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        AuthorizationCode {
            client_id: ClientId::parse("notes").unwrap(),
            user_id: UserId::new_random(),
            browser_session_id: BrowserSessionId::new_random(),
            redirect_uri: Some("https://notes.example/cb".to_owned()),
            code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap(),
            nonce: Some("n-0S6_WzA2Mj".to_owned()),
            scope: Scopes::parse(&["openid", "email"]).unwrap(),
            auth_time: at - Duration::minutes(5),
            amr: vec!["pwd".to_owned()],
            created_at: at,
            expires_at: at + Duration::seconds(60),
        }
    }

    #[test]
    fn a_sealed_code_opens_to_what_it_was_issued_for() {
        let key = CodeKey::new(&[3; 32]);
        let code = issued();
        let sealed = key.seal(&code).unwrap();
        assert!(sealed.expose().starts_with("tac_"));
        let opened = key.open(sealed.expose()).unwrap();
        assert_eq!(opened.client_id, code.client_id);
        assert_eq!(opened.user_id, code.user_id);
        assert_eq!(opened.browser_session_id, code.browser_session_id);
        assert_eq!(opened.redirect_uri, code.redirect_uri);
        assert_eq!(opened.code_challenge.as_str(), code.code_challenge.as_str());
        assert_eq!(opened.nonce, code.nonce);
        assert_eq!(opened.scope, code.scope);
        assert_eq!((opened.auth_time, opened.created_at, opened.expires_at), (code.auth_time, code.created_at, code.expires_at));
        assert_eq!(opened.amr, code.amr);
    }

    #[test]
    fn two_codes_for_the_same_request_differ() {
        let key = CodeKey::new(&[3; 32]);
        let code = issued();
        assert_ne!(key.seal(&code).unwrap().expose(), key.seal(&code).unwrap().expose());
    }

    #[test]
    fn a_code_opens_only_under_the_key_that_sealed_it_and_only_untouched() {
        let key = CodeKey::new(&[3; 32]);
        let sealed = key.seal(&issued()).unwrap();
        assert!(CodeKey::new(&[4; 32]).open(sealed.expose()).is_none());
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed.expose()[4..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(key.open(&format!("tac_{}", URL_SAFE_NO_PAD.encode(&bytes))).is_none());
        assert!(key.open(&sealed.expose()[4..]).is_none(), "without its prefix");
        for garbage in ["", "tac_", "tac_AAAA", "tac_!!!", "tsr_abc"] {
            assert!(key.open(garbage).is_none(), "{garbage:?}");
        }
    }
}
