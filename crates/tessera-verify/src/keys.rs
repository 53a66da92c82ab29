//! The published keys and the checks a token must pass, with no I/O: a [`KeySet`] is parsed
//! once from a JWKS (one `DecodingKey` per `kid`), and [`KeySet::verify`] judges a token
//! against [`Expected`] values at a given second.

use crate::{Claims, VerifyError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::time::Duration;

/// Tessera allows 5 seconds of clock skew; so does a verifier unless told otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// More skew than this hides broken clocks and stretches every token's life.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);
/// Longer than any token Tessera issues; refusing early bounds the work a garbage header costs.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// What a token must say: its issuer, one of its audiences, and the clock leeway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    issuer: String,
    /// Empty only for [`Expected::any_audience`].
    audiences: Vec<String>,
    leeway: i64,
}

impl Expected {
    /// Expects `iss` = `issuer` and, like Tessera's default, `aud` = the issuer; 5 s leeway.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Expected { audiences: vec![issuer.clone()], issuer, leeway: secs(DEFAULT_LEEWAY) }
    }

    /// Expects `iss` = `issuer` and takes a token for any audience; 5 s leeway. For the issuer
    /// itself, which answers for every resource it issues tokens to (introspection, its
    /// revocation endpoint) and checks the audience of each use itself. A resource server must
    /// name its own audience instead ([`Expected::new`], [`Expected::with_audiences`]): a
    /// verifier that accepts every audience accepts tokens minted for other services.
    pub fn any_audience(issuer: impl Into<String>) -> Self {
        Expected { issuer: issuer.into(), audiences: Vec::new(), leeway: secs(DEFAULT_LEEWAY) }
    }

    /// Replaces the accepted audiences; a token is accepted when its `aud` names any of them.
    /// An empty list is refused: a verifier that accepts every audience accepts tokens minted
    /// for other services.
    pub fn with_audiences(mut self, audiences: Vec<String>) -> Result<Self, VerifyError> {
        if audiences.is_empty() {
            return Err(VerifyError::Config("at least one audience is required".into()));
        }
        self.audiences = audiences;
        Ok(self)
    }

    /// Sets the clock leeway on `exp` and `nbf` (at most 60 s).
    pub fn with_leeway(mut self, leeway: Duration) -> Result<Self, VerifyError> {
        if leeway > MAX_LEEWAY {
            return Err(VerifyError::Config(format!("leeway must be at most {}s", MAX_LEEWAY.as_secs())));
        }
        self.leeway = secs(leeway);
        Ok(self)
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences (empty: any, see [`Expected::any_audience`]).
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The leeway in seconds.
    pub fn leeway_secs(&self) -> i64 {
        self.leeway
    }

    /// Checks `iss`, `aud`, `exp` and `nbf` of already-authenticated claims at `now`.
    pub fn check_claims(&self, claims: &Claims, now: i64) -> Result<(), VerifyError> {
        if claims.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !self.audiences.is_empty() && !self.audiences.iter().any(|a| claims.aud.contains(a)) {
            return Err(VerifyError::WrongAudience);
        }
        // Same boundaries as Tessera: expired once `exp + leeway` is reached.
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(VerifyError::Expired);
        }
        if claims.nbf.saturating_sub(self.leeway) > now {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// One published key, parsed, with the only algorithm it may verify.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Algorithm,
    /// The `alg` a token's header must name exactly: the JWK's own `alg`.
    name: &'static str,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("alg", &self.name).finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Parses one public JWK, which must name its `alg` (an asymmetric signature algorithm),
    /// not be meant for encryption, and hold a key of that algorithm's type and curve. The
    /// reason it is unusable otherwise is [`VerifyError::Config`]; the JWK's `kid` is not read.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, VerifyError> {
        fn unusable<T>(why: &str) -> Result<T, VerifyError> {
            Err(VerifyError::Config(format!("unusable JWK: {why}")))
        }
        if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
            return unusable("not a signature key");
        }
        let Some(declared) = jwk.common.key_algorithm else { return unusable("no `alg`") };
        let (alg, name) = match (declared, &jwk.algorithm) {
            // jsonwebtoken 11 reads RFC 9864's `Ed25519` as an unknown algorithm. On an
            // Ed25519 key no other signature algorithm exists, so that is what it must be.
            (KeyAlgorithm::UNKNOWN_ALGORITHM, AlgorithmParameters::OctetKeyPair(p)) if p.curve == EllipticCurve::Ed25519 => {
                (Algorithm::EdDSA, ED25519)
            }
            (declared, _) => match signing_alg(declared) {
                Some(known) => known,
                None => return unusable("not an asymmetric signature algorithm"),
            },
        };
        // jsonwebtoken checks only the key family when verifying: a P-384 key published for
        // ES256 would be taken here and fail every token later, far from the cause.
        let fits = match (&jwk.algorithm, alg) {
            (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
            (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
            (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512,
            ) => true,
            _ => false,
        };
        if !fits {
            return unusable("the key type or curve does not fit its `alg`");
        }
        let key = DecodingKey::from_jwk(jwk).or_else(|_| unusable("the key does not parse"))?;
        Ok(VerifyingKey { alg, name, key })
    }

    /// An HS256 key over a shared secret. Whoever holds the secret can also mint tokens, so
    /// only the issuer itself (or a service it shares the secret with on purpose) makes one;
    /// [`KeySet::from_jwks`] never does.
    pub fn hs256(secret: &[u8]) -> Self {
        VerifyingKey { alg: Algorithm::HS256, name: "HS256", key: DecodingKey::from_secret(secret) }
    }

    /// The signature algorithm the key was published for (its JWK `alg`; both `Ed25519` and
    /// `EdDSA` keys compute jsonwebtoken's `EdDSA`).
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The JOSE name a token's header must carry for this key, e.g. `ES256` or `Ed25519`.
    pub fn alg_name(&self) -> &'static str {
        self.name
    }
}

/// RFC 9864's fully-specified name for EdDSA over Ed25519.
const ED25519: &str = "Ed25519";

/// The usable keys of a JWKS by `kid`, each parsed once.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl FromIterator<(String, VerifyingKey)> for KeySet {
    fn from_iter<I: IntoIterator<Item = (String, VerifyingKey)>>(keys: I) -> Self {
        KeySet { keys: keys.into_iter().collect() }
    }
}

impl KeySet {
    /// Parses every usable key of `jwks`. A key is skipped (never guessed at) when it has no
    /// `kid`, or [`VerifyingKey::from_jwk`] refuses it: no `alg`, meant for encryption,
    /// symmetric (HS*: a verifier holding an HMAC key could mint tokens), or its key type does
    /// not fit its `alg`.
    pub fn from_jwks(jwks: &JwkSet) -> Self {
        jwks.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, VerifyingKey::from_jwk(jwk).ok()?))).collect()
    }

    /// Adds (or replaces) the key under `kid`: for keys that do not come from a JWKS, such as
    /// the issuer's own HS256 secret ([`VerifyingKey::hs256`]).
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(kid.into(), key);
    }

    /// The key published under `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies `token` completely (except revocation) at `now` (NumericDate seconds): at most
    /// 8 KiB, `typ` `at+jwt`, a `kid` of this set, the `alg` its key is for, the signature,
    /// then [`Expected::check_claims`].
    pub fn verify(&self, token: &str, expected: &Expected, now: i64) -> Result<Claims, VerifyError> {
        let header = parse_header(token)?;
        let key = self.get(kid_of(&header)?).ok_or(VerifyError::UnknownKey)?;
        verify_with(key, &header, token, expected, now)
    }

    /// Checks only the signature of a JWT whose header `typ` is `typ` (say an id_token, `JWT`,
    /// that its issuer gets back as a logout hint) and returns its claims unchecked: what they
    /// must say depends on the use (an expired id_token is still a fine hint), so the caller
    /// checks it. The same key and algorithm rules as [`KeySet::verify`] apply.
    pub fn verify_signature<T: DeserializeOwned>(&self, token: &str, typ: &str) -> Result<T, VerifyError> {
        let header = read_header(token)?;
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(typ)) {
            return Err(VerifyError::Malformed("the token is not of the expected type"));
        }
        let key = self.get(kid_of(&header)?).ok_or(VerifyError::UnknownKey)?;
        signed_claims(key, &header, token)
    }
}

/// Only asymmetric signature algorithms, with their JOSE names; HS* and encryption algorithms
/// are never accepted.
fn signing_alg(alg: KeyAlgorithm) -> Option<(Algorithm, &'static str)> {
    match alg {
        KeyAlgorithm::ES256 => Some((Algorithm::ES256, "ES256")),
        KeyAlgorithm::ES384 => Some((Algorithm::ES384, "ES384")),
        KeyAlgorithm::EdDSA => Some((Algorithm::EdDSA, "EdDSA")),
        KeyAlgorithm::RS256 => Some((Algorithm::RS256, "RS256")),
        KeyAlgorithm::RS384 => Some((Algorithm::RS384, "RS384")),
        KeyAlgorithm::RS512 => Some((Algorithm::RS512, "RS512")),
        KeyAlgorithm::PS256 => Some((Algorithm::PS256, "PS256")),
        KeyAlgorithm::PS384 => Some((Algorithm::PS384, "PS384")),
        KeyAlgorithm::PS512 => Some((Algorithm::PS512, "PS512")),
        _ => None,
    }
}

/// The protected-header members a verifier reads; others are ignored. Read here rather than
/// by jsonwebtoken, which refuses RFC 9864's `Ed25519` name in a header.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
}

/// Reads the protected header of an access token and checks what can be checked before any
/// key is chosen.
pub(crate) fn parse_header(token: &str) -> Result<TokenHeader, VerifyError> {
    let header = read_header(token)?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(VerifyError::Malformed("not an access token (typ must be at+jwt)"));
    }
    Ok(header)
}

/// Reads the protected header of any signed JWT of at most 8 KiB.
fn read_header(token: &str) -> Result<TokenHeader, VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed("the token is too long"));
    }
    let malformed = || VerifyError::Malformed("not a signed JWT");
    let (encoded, rest) = token.split_once('.').ok_or_else(malformed)?;
    if rest.split('.').count() != 2 {
        return Err(malformed());
    }
    let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| malformed())?;
    // An unknown `alg` (including "none") matches no key's algorithm below.
    serde_json::from_slice(&json).map_err(|_| malformed())
}

pub(crate) fn kid_of(header: &TokenHeader) -> Result<&str, VerifyError> {
    header.kid.as_deref().ok_or(VerifyError::Malformed("the token names no key (kid)"))
}

pub(crate) fn verify_with(
    key: &VerifyingKey,
    header: &TokenHeader,
    token: &str,
    expected: &Expected,
    now: i64,
) -> Result<Claims, VerifyError> {
    let claims: Claims = signed_claims(key, header, token)?;
    // Time and audience are checked by `Expected::check_claims` against the injected clock.
    expected.check_claims(&claims, now)?;
    Ok(claims)
}

/// The claims of `token` once its signature checks out with `key`; nothing else is checked.
fn signed_claims<T: DeserializeOwned>(key: &VerifyingKey, header: &TokenHeader, token: &str) -> Result<T, VerifyError> {
    // The key decides the algorithm, by its exact name, never the token: this is what defeats
    // alg confusion.
    if header.alg != key.name {
        return Err(VerifyError::WrongAlgorithm);
    }
    let (message, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed("not a signed JWT"))?;
    let (_, payload) = message.split_once('.').ok_or(VerifyError::Malformed("not a signed JWT"))?;
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.key, key.alg) {
        Ok(true) => {}
        _ => return Err(VerifyError::BadSignature),
    }
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(VerifyError::Malformed("the claims do not parse"))
}
