//! The checks a token must pass, at pinned times, with no network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use std::time::Duration;
use support::{ISSUER, NOW, TestKey, b64, jwks};
use tessera_verify::{Expected, KeySet, VerifyError, VerifyingKey};

fn setup() -> (TestKey, KeySet, Expected) {
    let key = TestKey::es256("k1");
    let set = KeySet::from_jwks(&jwks(&[&key]));
    (key, set, Expected::new(ISSUER))
}

#[test]
fn a_token_signed_by_a_published_key_is_accepted() {
    let (key, set, expected) = setup();
    let claims = set.verify(&key.token(NOW), &expected, NOW).unwrap();
    assert_eq!(claims.sub, "user-1");
    assert!(claims.is_fresh());
}

#[test]
fn a_token_signed_by_another_key_under_the_same_kid_is_refused() {
    let (_, set, expected) = setup();
    let forger = TestKey::es256("k1");
    assert_eq!(set.verify(&forger.token(NOW), &expected, NOW), Err(VerifyError::BadSignature));
}

#[test]
fn an_unknown_kid_is_refused() {
    let (_, set, expected) = setup();
    let other = TestKey::es256("k2");
    assert_eq!(set.verify(&other.token(NOW), &expected, NOW), Err(VerifyError::UnknownKey));
}

#[test]
fn alg_none_is_refused() {
    let (key, set, expected) = setup();
    let payload = key.token(NOW).split('.').nth(1).unwrap().to_owned();
    let header = b64(br#"{"alg":"none","kid":"k1","typ":"at+jwt"}"#);
    let token = format!("{header}.{payload}.");
    let refused = set.verify(&token, &expected, NOW).unwrap_err();
    assert_eq!(refused.code(), "invalid_token");
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let (key, set, expected) = setup();
    // The classic confusion attack: HMAC keyed with public material the attacker can read.
    let public_json = serde_json::to_vec(&key.jwk).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    header.typ = Some("at+jwt".into());
    let token = encode(&header, &support::claims(NOW), &EncodingKey::from_secret(&public_json)).unwrap();
    assert_eq!(set.verify(&token, &expected, NOW), Err(VerifyError::WrongAlgorithm));
}

#[test]
fn symmetric_keys_in_a_jwks_are_never_used() {
    let jwks: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "alg": "HS256", "kid": "h"}
    ]}))
    .unwrap();
    assert!(KeySet::from_jwks(&jwks).is_empty());
}

#[test]
fn a_key_without_alg_is_not_used() {
    let mut key = TestKey::es256("k1");
    key.jwk.common.key_algorithm = None;
    assert!(KeySet::from_jwks(&jwks(&[&key])).is_empty());
}

#[test]
fn a_token_that_is_not_an_access_token_is_refused() {
    let (key, set, expected) = setup();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    header.typ = Some("JWT".into());
    let token = encode(&header, &support::claims(NOW), &key.encoding).unwrap();
    assert!(matches!(set.verify(&token, &expected, NOW), Err(VerifyError::Malformed(_))));
}

#[test]
fn expiry_is_checked_against_the_given_time_with_the_leeway() {
    let (key, set, expected) = setup();
    let token = key.token(NOW); // exp = NOW + 900, leeway 5 s
    assert!(set.verify(&token, &expected, NOW + 904).is_ok());
    assert_eq!(set.verify(&token, &expected, NOW + 905), Err(VerifyError::Expired));
    assert_eq!(VerifyError::Expired.code(), "token_expired");
}

#[test]
fn a_token_from_the_future_is_not_valid_yet() {
    let (key, set, expected) = setup();
    let token = key.token(NOW + 10);
    assert_eq!(set.verify(&token, &expected, NOW), Err(VerifyError::NotYetValid));
    assert!(set.verify(&token, &expected, NOW + 5).is_ok());
}

#[test]
fn issuer_and_audience_must_match() {
    let (key, set, expected) = setup();
    let token = key.token_with(NOW, |c| c["iss"] = "http://evil.test".into());
    assert_eq!(set.verify(&token, &expected, NOW), Err(VerifyError::WrongIssuer));
    let token = key.token_with(NOW, |c| c["aud"] = serde_json::json!(["billing", "mail"]));
    assert_eq!(set.verify(&token, &expected, NOW), Err(VerifyError::WrongAudience));
    let billing = Expected::new(ISSUER).with_audiences(vec!["billing".into()]).unwrap();
    assert!(set.verify(&token, &billing, NOW).is_ok());
}

#[test]
fn leeway_is_bounded() {
    assert!(Expected::new(ISSUER).with_leeway(Duration::from_secs(60)).is_ok());
    assert!(matches!(Expected::new(ISSUER).with_leeway(Duration::from_secs(61)), Err(VerifyError::Config(_))));
    assert!(Expected::new(ISSUER).with_audiences(vec![]).is_err());
}

#[test]
fn an_hs256_key_added_by_its_holder_verifies_tokens_signed_with_the_secret() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let mut set = KeySet::default();
    set.insert("h1", VerifyingKey::hs256(secret));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("h1".into());
    header.typ = Some("at+jwt".into());
    let sign = |key: &[u8]| encode(&header, &support::claims(NOW), &EncodingKey::from_secret(key)).unwrap();

    assert_eq!(set.verify(&sign(secret), &Expected::new(ISSUER), NOW).unwrap().sub, "user-1");
    assert_eq!(set.verify(&sign(b"another secret of 32 bytes......"), &Expected::new(ISSUER), NOW), Err(VerifyError::BadSignature));
    assert_eq!(set.get("h1").map(VerifyingKey::alg_name), Some("HS256"));
}

#[test]
fn an_es256_token_is_refused_by_an_hs256_key_under_its_kid() {
    let key = TestKey::es256("k1");
    let mut set = KeySet::default();
    set.insert("k1", VerifyingKey::hs256(b"0123456789abcdef0123456789abcdef"));
    assert_eq!(set.verify(&key.token(NOW), &Expected::new(ISSUER), NOW), Err(VerifyError::WrongAlgorithm));
}

#[test]
fn a_key_set_built_from_single_jwks_verifies_like_one_parsed_from_a_jwks() {
    let key = TestKey::es256("k1");
    let set: KeySet = [("k1".to_owned(), VerifyingKey::from_jwk(&key.jwk).unwrap())].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert_eq!(set.verify(&key.token(NOW), &Expected::new(ISSUER), NOW).unwrap().sub, "user-1");
}

#[test]
fn a_jwk_whose_curve_does_not_fit_its_alg_is_refused_with_the_reason() {
    let mut key = TestKey::es256("k1");
    key.jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::ES384);
    assert!(matches!(VerifyingKey::from_jwk(&key.jwk), Err(VerifyError::Config(why)) if why.contains("curve")));
    assert!(KeySet::from_jwks(&jwks(&[&key])).is_empty());
    key.jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::ES256);
    key.jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Encryption);
    assert!(matches!(VerifyingKey::from_jwk(&key.jwk), Err(VerifyError::Config(_))));
}

#[test]
fn any_audience_takes_every_audience_but_still_checks_issuer_and_time() {
    let (key, set, _) = setup();
    let any = Expected::any_audience(ISSUER);
    let elsewhere = key.token_with(NOW, |c| c["aud"] = serde_json::json!(["billing", "mail"]));
    assert_eq!(set.verify(&elsewhere, &any, NOW).unwrap().sub, "user-1");
    assert!(any.audiences().is_empty());
    let foreign = key.token_with(NOW, |c| c["iss"] = "http://evil.test".into());
    assert_eq!(set.verify(&foreign, &any, NOW), Err(VerifyError::WrongIssuer));
    assert_eq!(set.verify(&key.token(NOW), &any, NOW + 905), Err(VerifyError::Expired));
}
