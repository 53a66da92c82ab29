//! Brute force meets limits, all shared by every instance through the store:
//!
//! - password checks per login name (the email or the username as typed, folded) and client
//!   address: past `TESSERA_LOGIN_MAX_FAILURES` within `TESSERA_LOGIN_FAILURE_WINDOW`, that
//!   name from that address gets 429, even with the right password. The attempt is counted
//!   before the password is checked, in one atomic write, so concurrent guesses cannot all
//!   pass the check; a success clears it. Counting by name, never by account, means an
//!   account's email and username never answer for each other (a lockout would otherwise
//!   tell which username owns which address), and a lockout looks the same whether or not
//!   the account exists;
//! - failures per login name from every address together: an account attacked from many
//!   addresses is slowed down (each check waits a little more, up to a few seconds), never
//!   locked, so its owner can always sign in from their own address;
//! - credential-endpoint requests per client address per minute (`TESSERA_RATE_LIMIT_PER_IP`).
//!   Introspection and the revocation feed, which resource servers call for every request
//!   they serve, count only their failed client authentications against that budget (and
//!   are refused once it is spent), so a resource server that authenticates correctly is
//!   never starved while guessing client secrets stays as limited as on the token endpoint.
//!
//! The per-address limit is checked in memory on every request and reconciled with the
//! store every half second (each instance adds its new hits and reads back the totals), so a
//! request never waits on a database write, and several instances together still hold an
//! address to the limit, overshooting by at most what they admit in half a second.

use super::Tessera;
use super::error::{Error, Result};
use super::sessions::LoginId;
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

/// What one call to the limiter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    /// Refuse when over the limit, else count.
    Admit,
    /// Refuse when over the limit; count nothing.
    Peek,
    /// Count, whatever the total.
    Record,
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
        self.hit(ip, now, Hit::Admit)
    }

    /// Says how long to wait when `ip` is over the limit, without counting this request.
    pub fn peek(&self, ip: IpAddr, now: OffsetDateTime) -> Result<()> {
        self.hit(ip, now, Hit::Peek)
    }

    /// Counts one request from `ip` that was let in by [`IpRateLimiter::peek`] and failed.
    pub fn record(&self, ip: IpAddr, now: OffsetDateTime) {
        // Recording never refuses.
        let _ = self.hit(ip, now, Hit::Record);
    }

    fn hit(&self, ip: IpAddr, now: OffsetDateTime, hit: Hit) -> Result<()> {
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
        if hit != Hit::Record && counter.shared + counter.unflushed >= self.per_minute {
            let retry_after = Duration::from_secs(u64::try_from(60 - secs.rem_euclid(60)).unwrap_or(60));
            return Err(Error::RateLimited { retry_after });
        }
        if hit != Hit::Peek {
            counter.unflushed += 1;
        }
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

    /// Refuses a request from `ip` while its address is over the limit, without counting it
    /// (see [`Tessera::count_failure`]).
    pub fn admit_if_under_limit(&self, ip: Option<IpAddr>) -> Result<()> {
        let verdict = match ip {
            Some(ip) => self.rate_limiter.peek(ip, self.now()),
            None => Ok(()),
        };
        if verdict.is_err() {
            crate::metrics::Metrics::count(&self.metrics.rate_limited, "limit", "address");
        }
        verdict
    }

    /// Counts a failed client authentication from `ip` against its address's limit.
    pub fn count_failure(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.rate_limiter.record(ip, self.now());
        }
    }

    /// Reconciles the per-address counters with the other instances (a background job).
    pub async fn reconcile_rate_limits(&self) -> Result<()> {
        Ok(self.rate_limiter.reconcile(self.store.as_ref(), self.now()).await?)
    }

    /// The counters a password check for `name` from `ip` is held to.
    pub(crate) fn login_counters(&self, name: &LoginId, ip: Option<IpAddr>) -> LoginCounters {
        let per_name = match name {
            LoginId::Email(e) => format!("email:{}", digest(&e.trim().to_lowercase())),
            LoginId::Username(u) => format!("username:{}", digest(&u.trim().to_lowercase())),
        };
        let per_address = format!("{per_name}@{}", ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string()));
        LoginCounters { per_address, per_name }
    }

    /// Counts a password check before it happens: 429 when this name from this address is
    /// past the limit, and a pause when the name is under attack from many addresses.
    pub(crate) async fn admit_password_check(&self, counters: &LoginCounters) -> Result<()> {
        let window = self.settings.login_failure_window;
        let now = self.now();
        let (attempts, window_start) = self.store.record_login_failure(&counters.per_address, now, window).await?;
        let max = i64::from(self.settings.login_max_failures);
        if attempts > max {
            let ends = window_start.saturating_add(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
            let wait = u64::try_from(ends - crate::store::now_ms(now)).unwrap_or(0).div_ceil(1000);
            crate::metrics::Metrics::count(&self.metrics.rate_limited, "limit", "login");
            return Err(Error::RateLimited { retry_after: Duration::from_secs(wait.max(1)) });
        }
        if let Some(pause) = self.pause_for(&counters.per_name).await? {
            crate::metrics::Metrics::count(&self.metrics.rate_limited, "limit", "login_slowed");
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }

    /// How long a check on a name waits while failures on it from all addresses together are
    /// past the limit: a quarter second more per failure beyond it, at most five seconds.
    async fn pause_for(&self, per_name: &str) -> Result<Option<Duration>> {
        let Some((failures, window_start)) = self.store.login_failures(per_name).await? else { return Ok(None) };
        let window = i64::try_from(self.settings.login_failure_window.as_millis()).unwrap_or(i64::MAX);
        let excess = failures - i64::from(self.settings.login_max_failures) + 1;
        if excess <= 0 || window_start.saturating_add(window) <= crate::store::now_ms(self.now()) {
            return Ok(None);
        }
        Ok(Some(Duration::from_millis(250 * u64::try_from(excess.min(20)).unwrap_or(20))))
    }

    /// A check failed: it stays counted for the address, and counts for the name.
    pub(crate) async fn password_check_failed(&self, counters: &LoginCounters) -> Result<()> {
        let (failures, _) = self.store.record_login_failure(&counters.per_name, self.now(), self.settings.login_failure_window).await?;
        if failures == i64::from(self.settings.login_max_failures) {
            tracing::warn!(failures, "repeated failed sign-ins on one login name; slowing it down");
        }
        Ok(())
    }

    /// A check passed: the owner is here, so both counters start over.
    pub(crate) async fn password_check_passed(&self, counters: &LoginCounters) -> Result<()> {
        self.store.clear_login_failures(&counters.per_address).await?;
        self.store.clear_login_failures(&counters.per_name).await?;
        Ok(())
    }
}

/// Where a password check is counted: the login name from one address, and the name alone.
/// Names are stored as digests, so whatever an attacker typed is never stored as such.
#[derive(Debug, Clone)]
pub(crate) struct LoginCounters {
    per_address: String,
    per_name: String,
}

fn digest(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, Store};

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    /// The start of a minute (a multiple of 60 seconds).
    const MINUTE_START: i64 = 30_000_000 * 60;

    /// `secs` seconds after the start of a fixed minute.
    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(MINUTE_START + secs).unwrap()
    }

    fn admitted(limiter: &IpRateLimiter, ip: IpAddr, now: OffsetDateTime, tries: usize) -> usize {
        (0..tries).filter(|_| limiter.check(ip, now).is_ok()).count()
    }

    async fn sqlite(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("limits.db").display());
        let store = SqliteStore::connect(&url, 2, Duration::from_secs(5)).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[test]
    fn an_address_is_admitted_up_to_the_limit_within_a_minute() {
        let limiter = IpRateLimiter::new(3);

        assert_eq!(admitted(&limiter, ip(1), at(10), 5), 3);
        let refused = limiter.check(ip(1), at(15));
        assert!(matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after == Duration::from_secs(45)), "{refused:?}");
        assert_eq!(admitted(&limiter, ip(2), at(15), 1), 1, "another address has its own budget");
    }

    #[test]
    fn a_new_minute_starts_over() {
        let limiter = IpRateLimiter::new(2);
        assert_eq!(admitted(&limiter, ip(1), at(59), 3), 2);

        assert_eq!(admitted(&limiter, ip(1), at(60), 3), 2);
    }

    #[test]
    fn a_limit_of_zero_turns_the_limiter_off() {
        let limiter = IpRateLimiter::new(0);

        assert_eq!(admitted(&limiter, ip(1), at(10), 1_000), 1_000);
        assert!(limiter.counters.lock().unwrap().is_empty(), "nothing is tracked");
    }

    #[test]
    fn peek_refuses_without_counting_and_record_counts_without_refusing() {
        let limiter = IpRateLimiter::new(2);
        for _ in 0..5 {
            assert!(limiter.peek(ip(1), at(10)).is_ok());
        }
        limiter.record(ip(1), at(10));
        limiter.record(ip(1), at(10));
        limiter.record(ip(1), at(10));

        assert!(limiter.peek(ip(1), at(10)).is_err());
        assert!(limiter.check(ip(1), at(10)).is_err());
        assert_eq!(limiter.counters.lock().unwrap()[&ip(1)].unflushed, 3);
    }

    #[test]
    fn past_the_tracked_bound_older_minutes_are_dropped_first() {
        let limiter = IpRateLimiter::new(5);
        {
            let mut counters = limiter.counters.lock().unwrap();
            let old = at(0).unix_timestamp().div_euclid(60) - 1;
            for n in 0..MAX_TRACKED - 1 {
                let v6 = IpAddr::from(u128::try_from(n).unwrap().to_be_bytes());
                counters.insert(v6, Counter { minute: old, unflushed: 1, shared: 0 });
            }
        }
        assert!(limiter.check(ip(1), at(10)).is_ok(), "still under the bound");
        assert_eq!(limiter.counters.lock().unwrap().len(), MAX_TRACKED);

        assert!(limiter.check(ip(2), at(10)).is_ok());

        let counters = limiter.counters.lock().unwrap();
        assert_eq!(counters.len(), 2, "only this minute's addresses are kept");
        assert!(counters.contains_key(&ip(1)) && counters.contains_key(&ip(2)));
    }

    #[test]
    fn at_the_tracked_bound_a_known_address_is_counted_without_dropping_others() {
        let limiter = IpRateLimiter::new(5);
        {
            let mut counters = limiter.counters.lock().unwrap();
            let old = at(0).unix_timestamp().div_euclid(60) - 1;
            for n in 0..MAX_TRACKED {
                let v6 = IpAddr::from(u128::try_from(n).unwrap().to_be_bytes());
                counters.insert(v6, Counter { minute: old, unflushed: 1, shared: 0 });
            }
        }

        assert!(limiter.check(IpAddr::from(0u128.to_be_bytes()), at(10)).is_ok());

        assert_eq!(limiter.counters.lock().unwrap().len(), MAX_TRACKED);
    }

    #[tokio::test]
    async fn reconcile_merges_the_totals_of_every_instance() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir).await;
        let (a, b) = (IpRateLimiter::new(10), IpRateLimiter::new(10));
        assert_eq!(admitted(&a, ip(1), at(10), 6), 6);
        a.reconcile(&store, at(11)).await.unwrap();
        assert_eq!(admitted(&b, ip(1), at(12), 1), 1);

        b.reconcile(&store, at(13)).await.unwrap();

        assert_eq!(b.counters.lock().unwrap()[&ip(1)].shared, 7, "B learned what A counted");
        assert_eq!(admitted(&b, ip(1), at(14), 10), 3, "B admits only what is left of the shared limit");
        assert_eq!(store.add_rate_hits(at(0).unix_timestamp().div_euclid(60), &[("192.0.2.1".into(), 0)]).await.unwrap()[0].1, 7);
    }

    #[tokio::test]
    async fn reconcile_flushes_each_hit_once_and_forgets_past_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir).await;
        let limiter = IpRateLimiter::new(10);
        let minute = at(0).unix_timestamp().div_euclid(60);
        assert_eq!(admitted(&limiter, ip(1), at(10), 2), 2);
        limiter.reconcile(&store, at(11)).await.unwrap();
        limiter.reconcile(&store, at(12)).await.unwrap();
        assert_eq!(store.add_rate_hits(minute, &[("192.0.2.1".into(), 0)]).await.unwrap()[0].1, 2);

        limiter.reconcile(&store, at(61)).await.unwrap();

        assert!(limiter.counters.lock().unwrap().is_empty(), "last minute's counters are dropped");
    }
}
