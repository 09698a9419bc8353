//! When to sign the next checkpoint: at least every 1000 events or 60 seconds, and only when
//! there are new events (DESIGN.md).

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub max_events: i64,
    pub max_interval: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy { max_events: 1000, max_interval: Duration::seconds(60) }
    }
}

impl CheckpointPolicy {
    /// `last` is the seq of the latest checkpoint and when it was signed; `head_seq` the
    /// current chain head.
    pub fn is_due(&self, last: Option<(i64, DateTime<Utc>)>, head_seq: i64, now: DateTime<Utc>) -> bool {
        match last {
            None => head_seq > 0,
            Some((last_seq, _)) if head_seq <= last_seq => false,
            Some((last_seq, signed_at)) => {
                head_seq - last_seq >= self.max_events || now - signed_at >= self.max_interval
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_1000_events_or_60_seconds_with_new_events_only() {
        let p = CheckpointPolicy::default();
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let later = |s| t0 + Duration::seconds(s);
        assert!(!p.is_due(None, 0, t0));
        assert!(p.is_due(None, 1, t0));
        assert!(!p.is_due(Some((10, t0)), 10, later(3600)));
        assert!(!p.is_due(Some((10, t0)), 1009, later(59)));
        assert!(p.is_due(Some((10, t0)), 1010, later(1)));
        assert!(p.is_due(Some((10, t0)), 11, later(60)));
    }
}
