//! Time as an argument: services ask a [`Clock`] instead of the system, so tests can pin
//! and move time to check expiry, grace windows and rotation without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// The source of "now" for everything that expires.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The system clock shifted by an offset that tests move forward (cheap to clone; clones share the offset).
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    offset_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock that starts at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves every clone of this clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}
