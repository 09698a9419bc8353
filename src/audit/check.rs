//! Verifying the stored trail: every hash, link and seq, and every checkpoint signature.
//! Used by `GET /api/v1/audit/verify` and `humint audit verify`.
//!
//! The events are read on a second thread, in one streamed query handed over in pages, while
//! this thread checks them (`pipeline`); each row's fields are decoded into one buffer
//! (`trail_reader`). Reading, not hashing, is the cost: docs/performance.md, "Audit
//! verification over 1,000,000 events". The rules themselves are `ChainVerifier`'s, unchanged.

use chrono::{DateTime, TimeDelta, Utc};

use super::pipeline::{Feed, PipelineError, pipeline};
use super::sequencer::checkpoints;
use super::store::unchained_before;
use super::trail_reader::{StoredRow, TrailEntry, read_trail};
use super::{ChainVerifier, CheckpointVerifier, VerificationReport};
use crate::crypto::Keyring;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};

/// Events still unchained after this long mean the sequencer is not running (or a row was
/// slipped in that it cannot chain): verification reports them.
pub const UNCHAINED_GRACE: TimeDelta = TimeDelta::seconds(5);

/// Rows handed from the reader to the checker at a time. Pages of 200, 1,000 and 10,000 rows
/// verified 1,000,000 events equally fast; 1,000 (~0.6 MB of real events) kept the peak RSS of
/// `humint audit verify` at ~22 MB against 31-47 MB with 10,000.
const PAGE: usize = 1_000;

/// Pages waiting between the reader and the checker: a few, to ride out an uneven page, and
/// a bound on memory whatever the length of the trail.
const PAGES_IN_FLIGHT: usize = 4;

pub struct TrailVerification {
    pub report: VerificationReport,
    /// Committed events left unchained for longer than [`UNCHAINED_GRACE`].
    pub unchained_stale: i64,
}

pub fn verify_trail(conn: &mut DbConnection, keyring: &Keyring, now: DateTime<Utc>) -> AppResult<TrailVerification> {
    let public = CheckpointVerifier::from_public_key(keyring.audit_key().public_key()).map_err(AppError::internal)?;
    let stored: Vec<_> = checkpoints(conn)?.iter().map(|row| row.checkpoint()).collect();
    let mut verifier = ChainVerifier::new(&stored, &public);
    // Read on the pipeline's thread, checked here, in seq order.
    let read = |feed: &mut Feed<Vec<StoredRow>, AppError>| read_trail(conn, PAGE, |rows| feed.send(rows));
    let mut after = 0;
    let check = |rows: Vec<StoredRow>| {
        for row in &rows {
            after = match row.entry(after) {
                TrailEntry::Event(event) => {
                    verifier.push_ref(event);
                    event.record.seq
                }
                TrailEntry::Unreadable(seq) => {
                    verifier.push_unreadable(seq);
                    seq
                }
            };
        }
    };
    pipeline(PAGES_IN_FLIGHT, read, check).map_err(|e| match e {
        PipelineError::Producer(e) => e,
        PipelineError::ProducerLost => AppError::internal("audit trail reader stopped"),
    })?;
    let unchained_stale = unchained_before(conn, now - UNCHAINED_GRACE)?;
    Ok(TrailVerification { report: verifier.finish(), unchained_stale })
}
