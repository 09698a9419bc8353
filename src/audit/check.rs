//! Verifying the stored trail: every hash, link and seq, and every checkpoint signature.
//! Used by `GET /api/v1/audit/verify` and `humint audit verify`.

use chrono::{DateTime, TimeDelta, Utc};

use super::sequencer::checkpoints;
use super::store::{chained_after, unchained_before};
use super::{ChainVerifier, CheckpointVerifier, VerificationReport};
use crate::crypto::Keyring;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};

/// Events still unchained after this long mean the sequencer is not running (or a row was
/// slipped in that it cannot chain): verification reports them.
pub const UNCHAINED_GRACE: TimeDelta = TimeDelta::seconds(5);

const PAGE: i64 = 10_000;

pub struct TrailVerification {
    pub report: VerificationReport,
    /// Committed events left unchained for longer than [`UNCHAINED_GRACE`].
    pub unchained_stale: i64,
}

pub fn verify_trail(conn: &mut DbConnection, keyring: &Keyring, now: DateTime<Utc>) -> AppResult<TrailVerification> {
    let public = CheckpointVerifier::from_public_key(keyring.audit_key().public_key()).map_err(AppError::internal)?;
    let stored: Vec<_> = checkpoints(conn)?.iter().map(|row| row.checkpoint()).collect();
    let mut verifier = ChainVerifier::new(&stored, &public);
    let mut after = 0;
    loop {
        let rows = chained_after(conn, after, PAGE)?;
        for row in &rows {
            match row.chained() {
                Some(event) => verifier.push(&event),
                None => verifier.push_unreadable(row.seq.unwrap_or(after)),
            }
            after = row.seq.unwrap_or(after);
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    let unchained_stale = unchained_before(conn, now - UNCHAINED_GRACE)?;
    Ok(TrailVerification { report: verifier.finish(), unchained_stale })
}
