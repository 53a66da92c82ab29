//! The JWKS cache: one parsed key per `kid`, swapped whole on refetch. Refetches happen on an
//! unknown `kid` or when the copy is old, at most once per `refetch_interval`, so a flood of
//! tokens with made-up `kid`s costs Tessera one request per interval, not one per token.

use super::fetch;
use crate::keys::{kid_of, parse_header, verify_with};
use crate::{Claims, Expected, KeySet, VerifyError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct RemoteKeys {
    url: String,
    keys: RwLock<Arc<KeySet>>,
    /// When the last fetch was attempted (success or not), for the rate limit and max age.
    last_attempt: Mutex<Instant>,
    /// One fetch at a time: requests that find an unknown `kid` together share one fetch.
    in_flight: tokio::sync::Mutex<()>,
    refetch_interval: Duration,
    max_age: Duration,
    fetches: AtomicU64,
}

impl RemoteKeys {
    /// Fetches the JWKS once; failing here fails `build`.
    pub(crate) async fn load(
        http: &reqwest::Client,
        url: String,
        refetch_interval: Duration,
        max_age: Duration,
    ) -> Result<Self, VerifyError> {
        let jwks = fetch::jwks(http, &url).await?;
        Ok(RemoteKeys {
            url,
            keys: RwLock::new(Arc::new(KeySet::from_jwks(&jwks))),
            last_attempt: Mutex::new(Instant::now()),
            in_flight: tokio::sync::Mutex::new(()),
            refetch_interval,
            max_age,
            fetches: AtomicU64::new(1),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn since_last_attempt(&self) -> Duration {
        self.last_attempt.lock().unwrap_or_else(PoisonError::into_inner).elapsed()
    }

    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    pub(crate) fn len(&self) -> usize {
        self.current().len()
    }

    pub(crate) async fn verify(&self, http: &reqwest::Client, token: &str, expected: &Expected, now: i64) -> Result<Claims, VerifyError> {
        let header = parse_header(token)?;
        let kid = kid_of(&header)?;
        if self.since_last_attempt() >= self.max_age {
            self.refetch(http).await;
        }
        let mut keys = self.current();
        if keys.get(kid).is_none() {
            self.refetch(http).await;
            keys = self.current();
        }
        let key = keys.get(kid).ok_or(VerifyError::UnknownKey)?;
        verify_with(key, &header, token, expected, now)
    }

    /// Refetches unless a fetch was attempted within `refetch_interval`. A failure keeps the
    /// old keys: an outage of Tessera must not stop verification of tokens already known.
    async fn refetch(&self, http: &reqwest::Client) {
        let _one_at_a_time = self.in_flight.lock().await;
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() < self.refetch_interval {
                return;
            }
            *last = Instant::now();
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match fetch::jwks(http, &self.url).await {
            Ok(jwks) => {
                let fresh = Arc::new(KeySet::from_jwks(&jwks));
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
            }
            Err(e) => tracing::warn!(error = %e, "cannot refresh the JWKS; keeping the cached keys"),
        }
    }
}
