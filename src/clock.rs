//! The service's notion of "now", injectable so that tests can move time (lockout expiry,
//! session timeouts, token expiry) without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current time. Production uses [`Clock::system`]; tests use
/// [`Clock::adjustable`] and move it forward with [`Clock::advance`].
#[derive(Clone, Debug)]
pub struct Clock {
    // Offset in microseconds added to the system time; shared so every clone moves together.
    offset_us: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self { offset_us: Arc::new(AtomicI64::new(0)) }
    }

    /// A clock that starts at system time and can be moved forward.
    pub fn adjustable() -> Self {
        Self::system()
    }

    pub fn advance(&self, by: TimeDelta) {
        self.offset_us.fetch_add(by.num_microseconds().unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Now, truncated to microseconds: the precision both databases store and the API shows,
    /// so a value read back compares equal to the value written.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now() + TimeDelta::microseconds(self.offset_us.load(Ordering::SeqCst));
        crate::time::truncate_micros(now)
    }
}
