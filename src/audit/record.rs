//! The audit event as it is hashed (`AuditRecord`) and as it is stored and exported once it
//! has its place in the chain (`ChainedEvent`). The field list and order are fixed by
//! docs/audit.md: independent verifiers rebuild the canonical bytes from these fields.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a SHA-256 chain hash.
pub const HASH_LEN: usize = 32;

/// `prev_hash` of the first event (seq 1): 32 zero bytes.
pub const GENESIS_PREV_HASH: [u8; HASH_LEN] = [0u8; HASH_LEN];

/// Whether the access was granted. Serialised `"allowed"` / `"denied"` (fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Denied,
}

impl Outcome {
    /// The exact string that is hashed and returned by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
        }
    }
}

/// The 13 hashed fields of an audit event, in canonical order.
///
/// Holds identifiers and field names only, never a decrypted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, 1 for the first event. Gap-free and strictly increasing.
    pub seq: i64,
    /// Exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ` (see [`format_at`]); the stored string is what is
    /// hashed, so it is never re-parsed or re-formatted after the event is written.
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    /// Dotted stable name, e.g. `source.identity.read`, `auth.login.failed`.
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub source_id: Option<String>,
    /// The `X-Access-Purpose` header, verbatim.
    pub purpose: Option<String>,
    pub outcome: Outcome,
    /// The access rule that allowed, or the reason that denied.
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
}

/// The 13 hashed fields, borrowed: what the canonical encoder and the verifier read. A record
/// held in memory lends one with `From<&AuditRecord>`; the database reader lends one straight
/// from the row it read, so verification need not build an `AuditRecord` (13 allocations) per
/// event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub seq: i64,
    pub at: &'a str,
    pub actor_id: Option<&'a str>,
    pub actor_username: Option<&'a str>,
    pub action: &'a str,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub source_id: Option<&'a str>,
    pub purpose: Option<&'a str>,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub client_ip: Option<&'a str>,
}

impl<'a> From<&'a AuditRecord> for RecordRef<'a> {
    fn from(r: &'a AuditRecord) -> Self {
        RecordRef {
            seq: r.seq,
            at: &r.at,
            actor_id: r.actor_id.as_deref(),
            actor_username: r.actor_username.as_deref(),
            action: &r.action,
            resource_type: r.resource_type.as_deref(),
            resource_id: r.resource_id.as_deref(),
            source_id: r.source_id.as_deref(),
            purpose: r.purpose.as_deref(),
            outcome: r.outcome,
            reason: r.reason.as_deref(),
            request_id: r.request_id.as_deref(),
            client_ip: r.client_ip.as_deref(),
        }
    }
}

/// A chained event, borrowed: its fields and its stored chain columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub record: RecordRef<'a>,
    pub prev_hash: [u8; HASH_LEN],
    pub hash: [u8; HASH_LEN],
}

impl<'a> From<&'a ChainedEvent> for EventRef<'a> {
    fn from(e: &'a ChainedEvent) -> Self {
        EventRef { record: RecordRef::from(&e.record), prev_hash: e.prev_hash, hash: e.hash }
    }
}

/// An event with its place in the chain: `hash = SHA-256(prev_hash || canonical(record))`.
///
/// The hashes are the values as stored; verification recomputes and compares them. JSON form
/// (the export line): the 13 record fields followed by `prev_hash` and `hash` in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEvent {
    pub record: AuditRecord,
    pub prev_hash: [u8; HASH_LEN],
    pub hash: [u8; HASH_LEN],
}

/// Formats an event time the one way it is hashed: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC,
/// microseconds (sub-microsecond digits are truncated, not rounded, so formatting never
/// carries into the next second).
pub fn format_at(at: &DateTime<Utc>) -> String {
    // Years outside 0000..=9999 would print with a sign; clock readings never get there.
    // The same text as `format("%Y-%m-%dT%H:%M:%S%.6fZ")` (a test holds them together),
    // without parsing a format string for every event.
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Borrowed mirror of the export line, so serialising an event copies no strings.
#[derive(Serialize)]
struct EventOut<'a> {
    seq: i64,
    at: &'a str,
    actor_id: Option<&'a str>,
    actor_username: Option<&'a str>,
    action: &'a str,
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    source_id: Option<&'a str>,
    purpose: Option<&'a str>,
    outcome: Outcome,
    reason: Option<&'a str>,
    request_id: Option<&'a str>,
    client_ip: Option<&'a str>,
    prev_hash: String,
    hash: String,
}

/// Owned mirror of the export line; unknown fields are refused so a verifier never silently
/// ignores data it was handed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    seq: i64,
    at: String,
    actor_id: Option<String>,
    actor_username: Option<String>,
    action: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
    source_id: Option<String>,
    purpose: Option<String>,
    outcome: Outcome,
    reason: Option<String>,
    request_id: Option<String>,
    client_ip: Option<String>,
    prev_hash: String,
    hash: String,
}

impl Serialize for ChainedEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = &self.record;
        EventOut {
            seq: r.seq,
            at: &r.at,
            actor_id: r.actor_id.as_deref(),
            actor_username: r.actor_username.as_deref(),
            action: &r.action,
            resource_type: r.resource_type.as_deref(),
            resource_id: r.resource_id.as_deref(),
            source_id: r.source_id.as_deref(),
            purpose: r.purpose.as_deref(),
            outcome: r.outcome,
            reason: r.reason.as_deref(),
            request_id: r.request_id.as_deref(),
            client_ip: r.client_ip.as_deref(),
            prev_hash: hex::encode(self.prev_hash),
            hash: hex::encode(self.hash),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ChainedEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = EventIn::deserialize(deserializer)?;
        let prev_hash = parse_hash_hex(&w.prev_hash)
            .ok_or_else(|| serde::de::Error::custom("prev_hash is not 64 lowercase hex digits"))?;
        let hash =
            parse_hash_hex(&w.hash).ok_or_else(|| serde::de::Error::custom("hash is not 64 lowercase hex digits"))?;
        Ok(ChainedEvent {
            record: AuditRecord {
                seq: w.seq,
                at: w.at,
                actor_id: w.actor_id,
                actor_username: w.actor_username,
                action: w.action,
                resource_type: w.resource_type,
                resource_id: w.resource_id,
                source_id: w.source_id,
                purpose: w.purpose,
                outcome: w.outcome,
                reason: w.reason,
                request_id: w.request_id,
                client_ip: w.client_ip,
            },
            prev_hash,
            hash,
        })
    }
}

/// Parses a hash written the one way the API writes it: exactly 64 lowercase hex digits.
/// Uppercase is refused so that every hash has a single spelling.
pub fn parse_hash_hex(s: &str) -> Option<[u8; HASH_LEN]> {
    if s.len() != HASH_LEN * 2 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; HASH_LEN];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Turns a stored hash column (BLOB/BYTEA) into a hash; `None` when its length is wrong,
/// which the caller reports through `ChainVerifier::push_unreadable`.
pub fn hash_from_slice(bytes: &[u8]) -> Option<[u8; HASH_LEN]> {
    <[u8; HASH_LEN]>::try_from(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn format_at_pads_to_six_fraction_digits() {
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).single();
        let t = t.map(|t| format_at(&t));
        assert_eq!(t.as_deref(), Some("2026-11-28T10:00:00.000000Z"));
    }

    #[test]
    fn format_at_truncates_nanoseconds_instead_of_rounding() {
        let t = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .and_then(|t| t.checked_add_signed(chrono::Duration::nanoseconds(999_999_999)));
        let t = t.map(|t| format_at(&t));
        assert_eq!(t.as_deref(), Some("2026-12-31T23:59:59.999999Z"));
    }

    #[test]
    fn format_at_is_the_documented_strftime_text() {
        let start = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 58).single().unwrap_or_default();
        for nanos in [0i64, 1, 999, 1_000, 123_456_789, 999_999_999, 1_000_000_000, 86_400_123_456_789] {
            let t = start + chrono::Duration::nanoseconds(nanos);
            assert_eq!(format_at(&t), t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "{nanos} ns");
        }
    }

    #[test]
    fn outcome_strings_are_fixed() {
        assert_eq!(Outcome::Allowed.as_str(), "allowed");
        assert_eq!(Outcome::Denied.as_str(), "denied");
    }

    #[test]
    fn parse_hash_hex_refuses_uppercase_and_wrong_length() {
        let lower = "ab".repeat(32);
        assert_eq!(parse_hash_hex(&lower), Some([0xab; 32]));
        assert_eq!(parse_hash_hex(&"AB".repeat(32)), None);
        assert_eq!(parse_hash_hex(&"ab".repeat(31)), None);
        assert_eq!(parse_hash_hex(&format!("{lower}00")), None);
        assert_eq!(parse_hash_hex(&"zz".repeat(32)), None);
    }

    #[test]
    fn hash_from_slice_requires_32_bytes() {
        assert_eq!(hash_from_slice(&[7u8; 32]), Some([7u8; 32]));
        assert_eq!(hash_from_slice(&[7u8; 31]), None);
        assert_eq!(hash_from_slice(&[7u8; 33]), None);
    }
}
