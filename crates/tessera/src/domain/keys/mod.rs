//! Signing-key crypto, no I/O. Here: the key ring's value types (algorithms, key ids,
//! statuses) and key generation with the public JWK and its RFC 7638 `kid`. In `signing`: the
//! [`Signer`], which signs JWTs with a key parsed once, and [`verifying_key`], its public half
//! as tessera-verify parses it. In
//! `master`: the [`MasterKey`], which seals private keys at rest.

mod master;
mod signing;

pub use master::MasterKey;
pub use signing::{Signer, verifying_key};

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// What can go wrong with keys. Messages never carry key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not one of the algorithms Tessera signs with.
    #[error("`{0}` is not one of ES256, RS256, Ed25519, EdDSA, HS256")]
    UnknownAlgorithm(String),
    /// Not a key status.
    #[error("`{0}` is not a key status")]
    UnknownStatus(String),
    /// HS256 has no key pair.
    #[error("HS256 uses a shared secret, not a key pair")]
    NotAsymmetric,
    /// Key generation failed.
    #[error("cannot generate a key")]
    Generate,
    /// Stored key material does not parse, or does not fit the algorithm.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// Signing failed.
    #[error("cannot sign")]
    Sign,
    /// The master key is malformed.
    #[error("{0}")]
    InvalidMasterKey(&'static str),
    /// Sealing failed.
    #[error("cannot encrypt")]
    Encrypt,
    /// Wrong master key, wrong associated data, or tampered ciphertext.
    #[error("cannot decrypt: wrong master key or damaged data")]
    Decrypt,
}

/// JWS algorithms Tessera can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256 (the default).
    ES256,
    /// RSA PKCS#1 v1.5 with SHA-256, 2048-bit keys.
    RS256,
    /// Ed25519 under RFC 9864's fully-specified name.
    Ed25519,
    /// Ed25519 under the older, polymorphic name (RFC 8037), for libraries that know only it.
    EdDSA,
    /// HMAC-SHA-256 with a shared secret.
    HS256,
}

impl SigningAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
            SigningAlg::Ed25519 => "Ed25519",
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::HS256 => "HS256",
        }
    }

    /// Whether the algorithm has a public key to publish.
    pub fn is_asymmetric(self) -> bool {
        self != SigningAlg::HS256
    }
}

impl FromStr for SigningAlg {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::Ed25519, SigningAlg::EdDSA, SigningAlg::HS256]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| KeyError::UnknownAlgorithm(s.chars().take(20).collect()))
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SigningAlg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SigningAlg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A key id: the RFC 7638 thumbprint of the public key, or for HS256 a value derived from the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kid(String);

impl Kid {
    /// Wraps a key id.
    pub fn new(s: impl Into<String>) -> Self {
        Kid(s.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a key stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Published ahead of use.
    Next,
    /// Signs new tokens.
    Active,
    /// Signs nothing; published until its tokens have expired.
    Retiring,
}

impl KeyStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Next => "next",
            KeyStatus::Active => "active",
            KeyStatus::Retiring => "retiring",
        }
    }
}

impl FromStr for KeyStatus {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "next" => Ok(KeyStatus::Next),
            "active" => Ok(KeyStatus::Active),
            "retiring" => Ok(KeyStatus::Retiring),
            other => Err(KeyError::UnknownStatus(other.chars().take(20).collect())),
        }
    }
}

impl Serialize for KeyStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// PKCS#8 v1 DER of a private key.
pub struct PrivateKeyDer(SecretBox<Vec<u8>>);

impl PrivateKeyDer {
    /// Wraps DER bytes.
    pub fn from_bytes(v: Vec<u8>) -> Self {
        PrivateKeyDer(SecretBox::new(Box::new(v)))
    }

    /// The DER bytes, to parse or seal.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PrivateKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyDer([redacted])")
    }
}

/// A freshly generated asymmetric key.
#[derive(Debug)]
pub struct GeneratedKey {
    /// Its id (RFC 7638 thumbprint).
    pub kid: Kid,
    /// Its algorithm.
    pub alg: SigningAlg,
    /// PKCS#8 v1 DER.
    pub private_key: PrivateKeyDer,
    /// The public JWK, with `kid`, `alg` and `use: sig`, exactly as published (as JSON: a
    /// jsonwebtoken `Jwk` would turn `alg: Ed25519` into an unknown algorithm).
    pub public_jwk: serde_json::Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
fn thumbprint(canonical: &str) -> Kid {
    Kid(b64(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()))
}

/// Generates a key pair for `alg`: P-256, Ed25519 or RSA 2048.
pub fn generate(alg: SigningAlg) -> Result<GeneratedKey, KeyError> {
    let (der, members): (Vec<u8>, Vec<(&str, String)>) = match alg {
        SigningAlg::HS256 => return Err(KeyError::NotAsymmetric),
        SigningAlg::ES256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError::Generate)?;
            let der = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?.as_ref().to_vec();
            // Uncompressed point: 0x04 || X (32) || Y (32).
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(KeyError::Generate);
            }
            (der, vec![("crv", "P-256".into()), ("kty", "EC".into()), ("x", b64(&point[1..33])), ("y", b64(&point[33..]))])
        }
        SigningAlg::Ed25519 | SigningAlg::EdDSA => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
            let der = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?.as_ref().to_vec();
            (der, vec![("crv", "Ed25519".into()), ("kty", "OKP".into()), ("x", b64(pair.public_key().as_ref()))])
        }
        SigningAlg::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().map_err(|_| KeyError::Generate)?;
            let public = pair.public_key();
            let n = b64(public.modulus().big_endian_without_leading_zero());
            let e = b64(public.exponent().big_endian_without_leading_zero());
            (der.as_ref().to_vec(), vec![("e", e), ("kty", "RSA".into()), ("n", n)])
        }
    };
    let canonical = format!("{{{}}}", members.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"")).collect::<Vec<_>>().join(","));
    let kid = thumbprint(&canonical);
    let mut jwk: serde_json::Map<String, serde_json::Value> =
        members.into_iter().map(|(k, v)| (k.to_owned(), serde_json::Value::String(v))).collect();
    jwk.insert("kid".into(), kid.as_str().into());
    jwk.insert("alg".into(), alg.as_str().into());
    jwk.insert("use".into(), "sig".into());
    Ok(GeneratedKey { kid, alg, private_key: PrivateKeyDer::from_bytes(der), public_jwk: serde_json::Value::Object(jwk) })
}

/// The kid of an HS256 key: a hash of the secret, so it identifies without revealing.
pub fn hs256_kid(secret: &[u8]) -> Kid {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"tessera-hs256-kid:");
    ctx.update(secret);
    let mut kid = b64(ctx.finish().as_ref());
    kid.truncate(16);
    Kid(kid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::{Jwk, ThumbprintHash};

    pub(super) const ASYMMETRIC: [SigningAlg; 4] = [SigningAlg::ES256, SigningAlg::Ed25519, SigningAlg::EdDSA, SigningAlg::RS256];

    #[test]
    fn kids_are_rfc_7638_thumbprints() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let canonical = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(thumbprint(&canonical).as_str(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn generated_kids_match_the_thumbprint_jsonwebtoken_computes_and_the_jwk_says_so() {
        for alg in ASYMMETRIC {
            let key = generate(alg).unwrap();
            let jwk: Jwk = serde_json::from_value(key.public_jwk.clone()).unwrap();
            assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), key.kid.as_str(), "{alg}");
            let json = &key.public_jwk;
            assert_eq!(
                (json["kid"].as_str(), json["alg"].as_str(), json["use"].as_str()),
                (Some(key.kid.as_str()), Some(alg.as_str()), Some("sig"))
            );
            assert!(json.get("d").is_none(), "{alg}: the public JWK carries a private member");
        }
    }

    #[test]
    fn algorithms_parse_case_insensitively_and_nothing_else_does() {
        assert_eq!("es256".parse::<SigningAlg>().unwrap(), SigningAlg::ES256);
        assert_eq!("EDDSA".parse::<SigningAlg>().unwrap(), SigningAlg::EdDSA);
        assert_eq!("Ed25519".parse::<SigningAlg>().unwrap(), SigningAlg::Ed25519);
        assert_eq!(serde_json::to_string(&SigningAlg::Ed25519).unwrap(), r#""Ed25519""#);
        for bad in ["none", "HS512", "", "ES384"] {
            assert!(matches!(bad.parse::<SigningAlg>(), Err(KeyError::UnknownAlgorithm(_))), "{bad}");
        }
        assert_eq!(serde_json::to_string(&SigningAlg::EdDSA).unwrap(), r#""EdDSA""#);
        assert_eq!(serde_json::from_str::<SigningAlg>(r#""rs256""#).unwrap(), SigningAlg::RS256);
        assert!(serde_json::from_str::<SigningAlg>(r#""none""#).is_err());
    }

    #[test]
    fn statuses_and_kids_read_and_write_as_plain_strings() {
        for status in [KeyStatus::Next, KeyStatus::Active, KeyStatus::Retiring] {
            assert_eq!(status.as_str().parse::<KeyStatus>().unwrap(), status);
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{}\"", status.as_str()));
        }
        assert!(matches!("gone".parse::<KeyStatus>(), Err(KeyError::UnknownStatus(_))));
        assert_eq!(serde_json::to_string(&Kid::new("abc")).unwrap(), r#""abc""#);
        assert_eq!(serde_json::from_str::<Kid>(r#""abc""#).unwrap(), Kid::new("abc"));
    }
}
