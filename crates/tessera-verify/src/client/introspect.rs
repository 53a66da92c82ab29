//! Remote mode: every token goes to Tessera's RFC 7662 introspection endpoint. Answers are
//! cached for a few seconds, keyed by the token's SHA-256 (the cache never holds tokens), in a
//! bounded map so a flood of distinct tokens cannot grow memory.

use super::{ClientCredentials, fetch};
use crate::{Claims, Expected, VerifyError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const MAX_CACHED: usize = 10_000;
/// Longer than any Tessera token; refuse before sending garbage over the network.
const MAX_TOKEN_LEN: usize = 8 * 1024;

type Digest = [u8; 32];
/// A cached answer: until when it holds, and what it was.
type Cached = (Instant, Result<Claims, VerifyError>);

#[derive(Debug)]
pub(crate) struct Introspector {
    url: String,
    credentials: ClientCredentials,
    ttl: Duration,
    cache: Mutex<HashMap<Digest, Cached>>,
    calls: AtomicU64,
}

impl Introspector {
    pub(crate) fn new(url: String, credentials: ClientCredentials, ttl: Duration) -> Self {
        Introspector { url, credentials, ttl, cache: Mutex::new(HashMap::new()), calls: AtomicU64::new(0) }
    }

    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub(crate) async fn verify(&self, http: &reqwest::Client, token: &str, expected: &Expected, now: i64) -> Result<Claims, VerifyError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed("the token is empty or too long"));
        }
        let digest = sha256(token);
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.get(&digest).filter(|(until, _)| Instant::now() < *until).map(|(_, answer)| answer.clone())
        };
        let answer = match cached {
            Some(answer) => answer,
            None => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                // Outages are not cached: the next request should try again.
                let body = fetch::introspect(http, &self.url, &self.credentials, token).await?;
                let answer = judge(body);
                self.remember(digest, answer.clone());
                answer
            }
        };
        let claims = answer?;
        // Tessera vouches for the signature and revocation; which audience this service
        // accepts, and the time (the answer may be cached), are still ours to check.
        expected.check_claims(&claims, now)?;
        Ok(claims)
    }

    fn remember(&self, digest: Digest, answer: Result<Claims, VerifyError>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            let now = Instant::now();
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(digest, (Instant::now() + self.ttl, answer));
    }
}

fn judge(body: serde_json::Value) -> Result<Claims, VerifyError> {
    if body.get("active").and_then(serde_json::Value::as_bool) != Some(true) {
        return Err(VerifyError::Inactive);
    }
    // An active refresh token is not a credential for calling a service.
    let is_access = body.get("token_type").and_then(serde_json::Value::as_str).is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
    if !is_access {
        return Err(VerifyError::Malformed("not an access token"));
    }
    serde_json::from_value(body).map_err(|_| VerifyError::Malformed("introspection answered claims that do not parse"))
}

fn sha256(token: &str) -> Digest {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}
