//! Time as an argument: the verifier asks a [`Clock`] for "now" so tests can pin it to check
//! `exp` and `nbf` (jsonwebtoken's own time checks read the system clock, so they are off).

use std::fmt::Debug;

/// The source of "now", in NumericDate seconds (the unit of `exp`, `nbf` and `iat`).
pub trait Clock: Send + Sync + Debug + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
    }
}

/// A clock that reads a fixed instant (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}
