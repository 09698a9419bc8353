//! Reading the chained events back for verification: every chained row in seq order, in
//! one streamed query, cheaply.
//!
//! Reading, not hashing, limited `humint audit verify` (docs/performance.md): loading pages of
//! the 17-column `EventRow` and copying it into a `ChainedEvent` cost ~2.4 µs of CPU per event
//! against ~0.5 µs to encode and hash it. So:
//! - only the checked columns are selected (seq, the 12 text fields, prev_hash, hash): `id` and
//!   `created_at` play no part, and decoding `created_at` (text on SQLite) alone cost ~5 %;
//! - each row's text fields are copied into **one** buffer, straight from the database's own
//!   row: one allocation per row instead of one per field, plus a second copy per field into
//!   the record; the verifier borrows the fields as a `RecordRef`;
//! - one statement, read as it arrives (see [`read_trail`]), instead of pages of 10,000.
//!
//! The reading of a row is the same as `EventRow::chained` (the export and the sequencer's
//! path): a row whose chain columns are missing or not 32 bytes, or whose outcome the service
//! cannot have written, is unreadable at its seq; text is decoded as diesel decodes a `String`
//! on each backend. `tests/api/audit_trail_reader.rs` holds the two readings side by side.

use diesel::connection::DefaultLoadingMode;
use diesel::deserialize::{self, FromSqlRow};
use diesel::pg::{Pg, PgRowByRowLoadingMode};
use diesel::prelude::*;
use diesel::row::{Field, Row};
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::sqlite::Sqlite;

use super::record::{EventRef, HASH_LEN, Outcome, RecordRef, hash_from_slice};
use crate::db::DbConnection;
use crate::db::schema::audit_events;
use crate::error::AppResult;

/// The text columns, in the order they are selected (and hashed).
const TEXT_COLUMNS: usize = 12;

/// SQL types of the selected columns: seq, 12 text columns, prev_hash, hash.
type TrailColumns = (
    Nullable<BigInt>,
    Text,
    Nullable<Text>,
    Nullable<Text>,
    Text,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Text>,
    Text,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Binary>,
    Nullable<Binary>,
);

/// One stored row as read for verification: seq, the 12 text fields in one buffer, and the
/// chain columns (`None` when NULL or not exactly 32 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    seq: Option<i64>,
    text: String,
    /// End of each text field in `text`; a field starts where the previous one ends.
    ends: [u32; TEXT_COLUMNS],
    /// Bit `i` set: text field `i` is NULL.
    nulls: u16,
    prev_hash: Option<[u8; HASH_LEN]>,
    hash: Option<[u8; HASH_LEN]>,
}

/// A stored row as the verifier takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(clippy::large_enum_variant, reason = "made and matched at once, per row; boxing would allocate per row")]
pub enum TrailEntry<'a> {
    Event(EventRef<'a>),
    /// A row at this seq that cannot be what the service wrote: `ChainVerifier::push_unreadable`.
    /// Never padded or cut to size, which could let a tampered value pass.
    Unreadable(i64),
}

impl StoredRow {
    /// The row as the verifier takes it. `after` is the seq reported for a row without one
    /// (the query only returns rows with a seq).
    pub fn entry(&self, after: i64) -> TrailEntry<'_> {
        let Some(seq) = self.seq else {
            return TrailEntry::Unreadable(after);
        };
        let (Some(prev_hash), Some(hash)) = (self.prev_hash, self.hash) else {
            return TrailEntry::Unreadable(seq);
        };
        let [
            at,
            actor_id,
            actor_username,
            action,
            resource_type,
            resource_id,
            source_id,
            purpose,
            outcome,
            reason,
            request_id,
            client_ip,
        ] = std::array::from_fn(|i| self.field(i));
        let outcome = match outcome {
            Some("allowed") => Outcome::Allowed,
            Some("denied") => Outcome::Denied,
            _ => return TrailEntry::Unreadable(seq),
        };
        // `at` and `action` are NOT NULL columns; reading them enforces that (see `Builder`).
        let (Some(at), Some(action)) = (at, action) else {
            return TrailEntry::Unreadable(seq);
        };
        let record = RecordRef {
            seq,
            at,
            actor_id,
            actor_username,
            action,
            resource_type,
            resource_id,
            source_id,
            purpose,
            outcome,
            reason,
            request_id,
            client_ip,
        };
        TrailEntry::Event(EventRef { record, prev_hash, hash })
    }

    fn field(&self, i: usize) -> Option<&str> {
        if self.nulls & (1 << i) != 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }
}

/// Collects one row's text fields into the single buffer.
struct Builder {
    text: String,
    ends: [u32; TEXT_COLUMNS],
    nulls: u16,
    next: usize,
}

impl Builder {
    fn new() -> Self {
        // Most rows of a real trail fit (~300 bytes: four UUIDs, a time, a username, an action, a
        // purpose, a rule, an address), so the buffer is not grown field by field.
        Builder { text: String::with_capacity(512), ends: [0; TEXT_COLUMNS], nulls: 0, next: 0 }
    }

    /// Appends the next text field; `None` is NULL, refused for a NOT NULL column as diesel
    /// refuses it when it decodes a `String`.
    fn push(&mut self, value: Option<&str>, nullable: bool) -> deserialize::Result<()> {
        match value {
            Some(s) => self.text.push_str(s),
            None if nullable => self.nulls |= 1 << self.next,
            None => return Err(Box::new(diesel::result::UnexpectedNullError)),
        }
        self.ends[self.next] = u32::try_from(self.text.len()).map_err(|_| "audit row too large")?;
        self.next += 1;
        Ok(())
    }

    /// The chain columns are kept only when exactly 32 bytes long.
    fn finish(self, seq: Option<i64>, prev_hash: Option<&[u8]>, hash: Option<&[u8]>) -> StoredRow {
        StoredRow {
            seq,
            text: self.text,
            ends: self.ends,
            nulls: self.nulls,
            prev_hash: prev_hash.and_then(hash_from_slice),
            hash: hash.and_then(hash_from_slice),
        }
    }
}

/// Which text columns may be NULL, in select order (the `TrailColumns` types).
const NULLABLE: [bool; TEXT_COLUMNS] = [false, true, true, false, true, true, true, true, false, true, true, true];

impl FromSqlRow<TrailColumns, Sqlite> for StoredRow {
    fn build_from_row<'a>(row: &impl Row<'a, Sqlite>) -> deserialize::Result<Self> {
        let seq = row.get_value::<Nullable<BigInt>, Option<i64>, _>(0)?;
        let mut b = Builder::new();
        for (i, nullable) in NULLABLE.into_iter().enumerate() {
            let field = row.get(i + 1).ok_or(diesel::result::UnexpectedEndOfRow)?;
            match field.value() {
                Some(mut v) => b.push(Some(v.read_text()), nullable)?,
                None => b.push(None, nullable)?,
            }
        }
        // `read_text` (diesel's only borrowed text access) replaces invalid UTF-8 with U+FFFD,
        // where diesel's `String` decoding refuses the row. Refuse it here too, or bytes that
        // were edited into invalid UTF-8 could read back as a stored U+FFFD and still verify. A
        // U+FFFD is rare in a real trail, so only then are the raw bytes checked.
        if b.text.contains(char::REPLACEMENT_CHARACTER) {
            for i in 1..=TEXT_COLUMNS {
                let field = row.get(i).ok_or(diesel::result::UnexpectedEndOfRow)?;
                if let Some(mut v) = field.value() {
                    std::str::from_utf8(v.read_blob())?;
                }
            }
        }
        // `read_blob` is what diesel's `Vec<u8>` decoding uses on SQLite.
        let prev_hash = row.get(13).ok_or(diesel::result::UnexpectedEndOfRow)?;
        let hash = row.get(14).ok_or(diesel::result::UnexpectedEndOfRow)?;
        let (mut prev_hash, mut hash) = (prev_hash.value(), hash.value());
        Ok(b.finish(seq, prev_hash.as_mut().map(|v| v.read_blob()), hash.as_mut().map(|v| v.read_blob())))
    }
}

impl FromSqlRow<TrailColumns, Pg> for StoredRow {
    fn build_from_row<'a>(row: &impl Row<'a, Pg>) -> deserialize::Result<Self> {
        let seq = row.get_value::<Nullable<BigInt>, Option<i64>, _>(0)?;
        let mut b = Builder::new();
        for (i, nullable) in NULLABLE.into_iter().enumerate() {
            let field = row.get(i + 1).ok_or(diesel::result::UnexpectedEndOfRow)?;
            // Binary protocol: a text value is its UTF-8 bytes, checked as diesel checks a
            // `String` (an error, never a lossy copy).
            match field.value() {
                Some(v) => b.push(Some(std::str::from_utf8(v.as_bytes())?), nullable)?,
                None => b.push(None, nullable)?,
            }
        }
        let prev_hash = row.get(13).ok_or(diesel::result::UnexpectedEndOfRow)?;
        let hash = row.get(14).ok_or(diesel::result::UnexpectedEndOfRow)?;
        let (prev_hash, hash) = (prev_hash.value(), hash.value());
        Ok(b.finish(seq, prev_hash.as_ref().map(|v| v.as_bytes()), hash.as_ref().map(|v| v.as_bytes())))
    }
}

/// Streams every chained row (`seq > 0`), ascending by seq, to `send` in batches of `page`
/// rows; `send` returns `false` to stop early.
///
/// One query, read as it arrives: on PostgreSQL in libpq's row-by-row mode, so that the server
/// produces rows while this side decodes them (pages make the two take turns, and a whole
/// result is buffered before the first row is seen); on SQLite the statement is stepped as it
/// goes. One statement also means one snapshot of the trail, where pages each saw their own —
/// a verification of a live trail is of the trail as it stood when the read began (on SQLite
/// in WAL mode this holds back the WAL checkpoint for the few seconds of the read).
pub fn read_trail(conn: &mut DbConnection, page: usize, mut send: impl FnMut(Vec<StoredRow>) -> bool) -> AppResult<()> {
    // Spelled out per backend: the row decoding above is per backend, below diesel's
    // two-backend connection.
    macro_rules! all_chained {
        () => {
            audit_events::table
                .select((
                    audit_events::seq,
                    audit_events::at,
                    audit_events::actor_id,
                    audit_events::actor_username,
                    audit_events::action,
                    audit_events::resource_type,
                    audit_events::resource_id,
                    audit_events::source_id,
                    audit_events::purpose,
                    audit_events::outcome,
                    audit_events::reason,
                    audit_events::request_id,
                    audit_events::client_ip,
                    audit_events::prev_hash,
                    audit_events::hash,
                ))
                // As the paged reader before it, which started at `seq > 0`: a row moved below 1
                // is missing from its place (a gap there), not an event ahead of the first.
                .filter(audit_events::seq.gt(0_i64))
                .order(audit_events::seq.asc())
        };
    }
    let page = page.max(1);
    let mut forward = |rows: &mut dyn Iterator<Item = QueryResult<StoredRow>>| -> AppResult<()> {
        let mut batch = Vec::with_capacity(page);
        for row in rows {
            batch.push(row?);
            if batch.len() == page && !send(std::mem::replace(&mut batch, Vec::with_capacity(page))) {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            send(batch);
        }
        Ok(())
    };
    match conn {
        DbConnection::Sqlite(c) => forward(&mut all_chained!().load_iter::<StoredRow, DefaultLoadingMode>(c)?),
        DbConnection::Postgres(c) => forward(&mut all_chained!().load_iter::<StoredRow, PgRowByRowLoadingMode>(c)?),
    }
}
