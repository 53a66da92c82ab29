//! Keys and tokens for tests: an ES256 key pair published as a JWK, and a minter for
//! access tokens shaped like Tessera's.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

pub const ISSUER: &str = "http://tessera.test";
pub const NOW: i64 = 1_700_000_000;

pub struct TestKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        TestKey { kid: kid.to_owned(), encoding, jwk }
    }

    /// A Tessera-shaped access token issued at `iat`, valid 900 s.
    pub fn token(&self, iat: i64) -> String {
        self.token_with(iat, |_| {})
    }

    pub fn token_with(&self, iat: i64, adjust: impl FnOnce(&mut Value)) -> String {
        let mut claims = claims(iat);
        adjust(&mut claims);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// An Ed25519 key published under `alg` (`Ed25519` or `EdDSA`), as raw JSON: jsonwebtoken's
/// `Jwk` would turn `Ed25519` into an unknown algorithm.
pub struct EdKey {
    pub kid: String,
    pub name: &'static str,
    pair: Ed25519KeyPair,
    pub jwk: Value,
}

impl TestKey {
    pub fn ed25519(kid: &str, name: &'static str) -> EdKey {
        let pair = Ed25519KeyPair::generate().unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()), "kid": kid, "alg": name, "use": "sig"});
        EdKey { kid: kid.to_owned(), name, pair, jwk }
    }
}

impl EdKey {
    /// A Tessera-shaped token whose header says the key's own algorithm name.
    pub fn token(&self, iat: i64) -> String {
        self.token_named(iat, self.name)
    }

    /// The same, signed by this key but with `alg` in the header.
    pub fn token_named(&self, iat: i64, alg: &str) -> String {
        let header = json!({"alg": alg, "kid": self.kid, "typ": "at+jwt"});
        let message = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims(iat).to_string().as_bytes()));
        let signature = self.pair.sign(message.as_bytes());
        format!("{message}.{}", b64(signature.as_ref()))
    }
}

pub fn claims(iat: i64) -> Value {
    json!({
        "iss": ISSUER, "sub": "user-1", "aud": ISSUER, "exp": iat + 900, "iat": iat, "nbf": iat,
        "jti": format!("jti-{}", uuid_like()), "scope": "", "client_id": "tessera", "roles": [],
        "sid": "session-1", "fresh": true
    })
}

pub fn jwks(keys: &[&TestKey]) -> JwkSet {
    JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() }
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
