//! Brute force meets limits. Two of them, both shared by every instance through the store:
//!
//! - failed logins per account (or per login name, when no such account exists, so a lockout
//!   does not reveal which accounts exist): after `TESSERA_LOGIN_MAX_FAILURES` within
//!   `TESSERA_LOGIN_FAILURE_WINDOW`, even the right password gets 429;
//! - credential-endpoint requests per client address per minute (`TESSERA_RATE_LIMIT_PER_IP`).
//!
//! The per-address limit is checked in memory on every request and reconciled with the
//! store every half second (each instance adds its new hits and reads back the totals), so a
//! request never waits on a database write, and several instances together still hold an
//! address to the limit, overshooting by at most what they admit in half a second.

use super::Tessera;
use super::error::{Error, Result};
use crate::store::StoreError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;

/// Addresses tracked at once; beyond this, older minutes are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    minute: i64,
    /// Hits admitted here and not yet added to the store.
    unflushed: i64,
    /// Total of every instance, as the store last reported it.
    shared: i64,
}

/// Per-address request counting for the credential endpoints.
#[derive(Debug)]
pub struct IpRateLimiter {
    per_minute: i64,
    counters: Mutex<HashMap<IpAddr, Counter>>,
}

impl IpRateLimiter {
    /// A limiter admitting `per_minute` requests per address; 0 turns it off.
    pub fn new(per_minute: u32) -> Self {
        IpRateLimiter { per_minute: i64::from(per_minute), counters: Mutex::new(HashMap::new()) }
    }

    /// Admits one request from `ip`, or says how long to wait.
    pub fn check(&self, ip: IpAddr, now: OffsetDateTime) -> Result<()> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let secs = now.unix_timestamp();
        let minute = secs.div_euclid(60);
        let Ok(mut counters) = self.counters.lock() else { return Ok(()) };
        if counters.len() >= MAX_TRACKED && !counters.contains_key(&ip) {
            counters.retain(|_, c| c.minute == minute);
        }
        let counter = counters.entry(ip).or_default();
        if counter.minute != minute {
            *counter = Counter { minute, ..Counter::default() };
        }
        if counter.shared + counter.unflushed >= self.per_minute {
            let retry_after = Duration::from_secs(u64::try_from(60 - secs.rem_euclid(60)).unwrap_or(60));
            return Err(Error::RateLimited { retry_after });
        }
        counter.unflushed += 1;
        Ok(())
    }

    /// Adds this instance's new hits to the shared counters and learns everyone's totals.
    async fn reconcile(&self, store: &dyn crate::store::Store, now: OffsetDateTime) -> Result<(), StoreError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let minute = now.unix_timestamp().div_euclid(60);
        let pending: Vec<(String, i64)> = {
            let Ok(mut counters) = self.counters.lock() else { return Ok(()) };
            counters.retain(|_, c| c.minute == minute);
            counters
                .iter_mut()
                .filter(|(_, c)| c.unflushed > 0)
                .map(|(ip, c)| {
                    let n = std::mem::take(&mut c.unflushed);
                    c.shared += n;
                    (ip.to_string(), n)
                })
                .collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        let totals = store.add_rate_hits(minute, &pending).await?;
        let Ok(mut counters) = self.counters.lock() else { return Ok(()) };
        for (client, total) in totals {
            let counter = client.parse().ok().and_then(|ip: IpAddr| counters.get_mut(&ip));
            if let Some(c) = counter.filter(|c| c.minute == minute) {
                c.shared = c.shared.max(total);
            }
        }
        Ok(())
    }
}

impl Tessera {
    /// Admits one credential-endpoint request from `ip`.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<()> {
        let verdict = match ip {
            Some(ip) => self.rate_limiter.check(ip, self.now()),
            None => Ok(()),
        };
        if verdict.is_err() {
            crate::metrics::Metrics::count(&self.metrics.rate_limited, "limit", "address");
        }
        verdict
    }

    /// Reconciles the per-address counters with the other instances (a background job).
    pub async fn reconcile_rate_limits(&self) -> Result<()> {
        Ok(self.rate_limiter.reconcile(self.store.as_ref(), self.now()).await?)
    }

    /// Refuses a login while its account is locked by failed attempts; says whether any
    /// failures are on record.
    pub(crate) async fn check_lockout(&self, login: &str) -> Result<bool> {
        let Some((failures, window_start)) = self.store.login_failures(login).await? else { return Ok(false) };
        let window = i64::try_from(self.settings.login_failure_window.as_millis()).unwrap_or(i64::MAX);
        let ends = window_start.saturating_add(window);
        let now = crate::store::now_ms(self.now());
        if failures >= i64::from(self.settings.login_max_failures) && ends > now {
            let wait = u64::try_from(ends - now).unwrap_or(0).div_ceil(1000);
            crate::metrics::Metrics::count(&self.metrics.rate_limited, "limit", "account");
            return Err(Error::RateLimited { retry_after: Duration::from_secs(wait.max(1)) });
        }
        Ok(true)
    }

    /// Counts a failed login.
    pub(crate) async fn record_failure(&self, login: &str) -> Result<()> {
        let (failures, _) = self.store.record_login_failure(login, self.now(), self.settings.login_failure_window).await?;
        if failures == i64::from(self.settings.login_max_failures) {
            tracing::warn!(failures, "login locked after repeated failures");
        }
        Ok(())
    }

    /// Forgets failed logins after a success.
    pub(crate) async fn clear_failures(&self, login: &str) -> Result<()> {
        Ok(self.store.clear_login_failures(login).await?)
    }
}
