//! Time formats of the API: RFC 3339 UTC with exactly six fractional digits.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serializer;

pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// `2026-11-28T10:00:00.123456Z`
pub fn format_api(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Database timestamps are naive UTC.
pub fn from_db(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    truncate_micros(t).naive_utc()
}

/// serde helper: `#[serde(serialize_with = "crate::time::serialize")]`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_api(t))
}

pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_api(t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_times_have_microseconds_and_z() {
        let t = DateTime::parse_from_rfc3339("2026-11-28T10:00:00.1234567Z").unwrap().with_timezone(&Utc);
        assert_eq!(format_api(&truncate_micros(t)), "2026-11-28T10:00:00.123456Z");
        let whole = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(format_api(&whole), "2026-11-28T10:00:00.000000Z");
    }
}
