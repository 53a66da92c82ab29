//! Feeds arbitrary text to the token verifier that services run on every request: header
//! parsing, `kid` lookup, signature and claim checks. It must return an error, never panic,
//! and never accept a token, since the fuzzer cannot forge an ES256 signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tessera_verify::{Expected, KeySet};

// A public key only; its private half was thrown away, so no input can carry a valid signature.
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"fuzz","alg":"ES256","use":"sig",
  "x":"ulufkukbi-DWWNJpwd6B2-jUiUsSmcrIaKs1bg8PW7k","y":"OqMJtQbEBgPZ8GX5R57t9FNy-TSro8m75hzWGYazM04"}]}"#;

static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    let jwks = serde_json::from_str(JWKS).expect("the fixed JWKS parses");
    let keys = KeySet::from_jwks(&jwks);
    assert_eq!(keys.len(), 1, "the fixed key is usable");
    keys
});
static EXPECTED: LazyLock<Expected> = LazyLock::new(|| Expected::new("https://auth.example.com"));

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let verdict = KEYS.verify(token, &EXPECTED, 1_800_000_000);
    assert!(verdict.is_err(), "a token without a valid signature was accepted");
});
