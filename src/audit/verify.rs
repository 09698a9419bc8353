//! Streaming chain verification: events are pushed in seq order (page by page from the
//! database, or from an export), each is recomputed and linked, and the checkpoints are
//! matched as their seq goes by. Memory stays constant in the number of events.

use std::borrow::Borrow;

use super::chain::ChainHasher;
use super::checkpoint::{Checkpoint, CheckpointVerifier, VerifiedCheckpoint};
use super::note::parse_note;
use super::record::{ChainedEvent, EventRef, GENESIS_PREV_HASH, HASH_LEN};

pub use super::report::{FailureKind, VerificationReport, VerifiedChain};

/// Verifies a whole chain from seq 1. See [`ChainVerifier`] for the rules.
pub fn verify_chain<I>(events: I, checkpoints: &[Checkpoint], verifier: &CheckpointVerifier) -> VerificationReport
where
    I: IntoIterator,
    I::Item: Borrow<ChainedEvent>,
{
    let mut v = ChainVerifier::new(checkpoints, verifier);
    for event in events {
        v.push(event.borrow());
    }
    v.finish()
}

/// A checkpoint whose signature verified, kept sorted by seq for matching.
#[derive(Debug)]
struct PendingCheckpoint {
    seq: i64,
    hash: [u8; HASH_LEN],
    /// Index into `ChainVerifier::checkpoints`.
    index: usize,
}

/// Incremental verifier: `push` every event in seq order, then `finish`.
///
/// Checkpoints are given up front because a streaming verifier must know which hashes to
/// compare as events go by; it also fixes the right read order for a live database: read the
/// checkpoints first, then the events, so a checkpoint signed meanwhile cannot look like a
/// truncation.
///
/// Rules, applied to each event until the first failure (later events are only counted):
/// 1. its seq must be the expected one (1, then previous + 1), else `SeqGap` at the expected
///    seq;
/// 2. SHA-256(stored prev_hash || canonical(fields)) must equal the stored hash, else
///    `HashMismatch` at its seq;
/// 3. its stored prev_hash must equal the previous event's hash (32 zero bytes for seq 1),
///    else `BrokenLink` at its seq;
/// 4. every checkpoint at its seq must carry its hash, else `CheckpointMismatch` at its seq.
///
/// Checkpoints whose signature fails count as `CheckpointSignature` at their seq; a validly
/// signed checkpoint beyond the last event means `Truncated` at last seq + 1 (the first
/// missing seq). The report names the lowest failing seq; at equal seq, the kind declared
/// first in [`FailureKind`].
#[derive(Debug)]
pub struct ChainVerifier {
    hasher: ChainHasher,
    base: (i64, [u8; HASH_LEN]),
    expected_seq: i64,
    prev_hash: [u8; HASH_LEN],
    checked: u64,
    /// Last event read: its seq and stored hash (`None` when the hash was unreadable).
    last: Option<(i64, Option<[u8; HASH_LEN]>)>,
    event_failure: Option<(i64, FailureKind)>,
    checkpoint_failure: Option<(i64, FailureKind)>,
    checkpoints: Vec<Checkpoint>,
    pending: Vec<PendingCheckpoint>,
    cursor: usize,
    latest_matched: Option<usize>,
}

impl ChainVerifier {
    /// Verifies from the first event (seq 1), checking every given checkpoint.
    pub fn new(checkpoints: &[Checkpoint], verifier: &CheckpointVerifier) -> Self {
        let mut pending = Vec::with_capacity(checkpoints.len());
        let mut checkpoint_failure = None;
        for (index, cp) in checkpoints.iter().enumerate() {
            match verifier.verify(cp) {
                Ok(v) => pending.push(PendingCheckpoint { seq: v.seq(), hash: *v.hash(), index }),
                Err(e) => {
                    let kind = if e.is_signature_failure() {
                        FailureKind::CheckpointSignature
                    } else {
                        FailureKind::CheckpointMismatch
                    };
                    lower(&mut checkpoint_failure, (claimed_seq(cp), kind));
                }
            }
        }
        pending.sort_by_key(|p| (p.seq, p.index));
        ChainVerifier {
            checkpoints: checkpoints.to_vec(),
            pending,
            checkpoint_failure,
            ..Self::starting_at(0, GENESIS_PREV_HASH)
        }
    }

    /// Verifies only the events after an already verified checkpoint (the signer checks the
    /// stretch since its last checkpoint before signing the next one). The first event pushed
    /// must be `anchor.seq() + 1` with `prev_hash = anchor.hash()`.
    pub fn resume_after(anchor: &VerifiedCheckpoint) -> Self {
        Self::starting_at(anchor.seq(), *anchor.hash())
    }

    fn starting_at(seq: i64, hash: [u8; HASH_LEN]) -> Self {
        ChainVerifier {
            hasher: ChainHasher::new(),
            base: (seq, hash),
            expected_seq: seq.saturating_add(1),
            prev_hash: hash,
            checked: 0,
            last: None,
            event_failure: None,
            checkpoint_failure: None,
            checkpoints: Vec::new(),
            pending: Vec::new(),
            cursor: 0,
            latest_matched: None,
        }
    }

    /// Whether an event has already failed; the caller may stop reading pages.
    pub fn has_failed(&self) -> bool {
        self.event_failure.is_some()
    }

    /// Checks the next event in seq order.
    pub fn push(&mut self, event: &ChainedEvent) {
        self.push_ref(EventRef::from(event));
    }

    /// Checks the next event in seq order, borrowed (the database reader's form). Every event
    /// is checked here, whichever way it came: the rules live in one place.
    pub fn push_ref(&mut self, event: EventRef<'_>) {
        let seq = event.record.seq;
        self.checked += 1;
        self.last = Some((seq, Some(event.hash)));
        if self.event_failure.is_some() {
            return;
        }
        if seq != self.expected_seq {
            self.event_failure = Some((self.expected_seq, FailureKind::SeqGap));
            return;
        }
        if self.hasher.hash(&event.prev_hash, event.record) != event.hash {
            self.event_failure = Some((seq, FailureKind::HashMismatch));
            return;
        }
        if event.prev_hash != self.prev_hash {
            self.event_failure = Some((seq, FailureKind::BrokenLink));
            return;
        }
        while let Some(cp) = self.pending.get(self.cursor) {
            if cp.seq > seq {
                break;
            }
            // Events arrive gap-free from the base, so a checkpoint at or below the current
            // seq is exactly at it (those at or below a resume base are never given).
            if cp.hash != event.hash {
                self.event_failure = Some((seq, FailureKind::CheckpointMismatch));
                return;
            }
            self.latest_matched = Some(self.cursor);
            self.cursor += 1;
        }
        self.prev_hash = event.hash;
        self.expected_seq = seq.saturating_add(1);
    }

    /// Records a row at `seq` that could not be turned into a `ChainedEvent` (a hash column
    /// of the wrong length, a chain column NULL below the head): it fails as `HashMismatch`
    /// at its seq, or as `SeqGap` if its seq is not the expected one.
    pub fn push_unreadable(&mut self, seq: i64) {
        self.checked += 1;
        self.last = Some((seq, None));
        if self.event_failure.is_none() {
            self.event_failure = Some(if seq == self.expected_seq {
                (seq, FailureKind::HashMismatch)
            } else {
                (self.expected_seq, FailureKind::SeqGap)
            });
        }
    }

    /// Ends verification: adds truncation (a verified checkpoint beyond the last event) and
    /// picks the lowest failure.
    pub fn finish(self) -> VerificationReport {
        let mut failure = self.event_failure;
        if let Some(cp) = self.checkpoint_failure {
            lower(&mut failure, cp);
        }
        let head_seq = self.last.map_or(self.base.0, |(seq, _)| seq);
        if self.event_failure.is_none() && self.cursor < self.pending.len() {
            lower(&mut failure, (head_seq.saturating_add(1), FailureKind::Truncated));
        }
        let head = match self.last {
            Some((seq, hash)) => Some((seq, hash.map(hex::encode).unwrap_or_default())),
            None if self.base.0 > 0 => Some((self.base.0, hex::encode(self.base.1))),
            None => None,
        };
        let matched = self.latest_matched.and_then(|i| self.pending.get(i));
        let latest_checkpoint = matched.and_then(|p| self.checkpoints.get(p.index).cloned());
        let verified = match failure {
            Some(_) => None,
            None => Some(VerifiedChain::new((head_seq, self.prev_hash), self.base, matched.map(|p| (p.seq, p.hash)))),
        };
        VerificationReport::new(self.checked, head, failure, latest_checkpoint, verified)
    }
}

/// The seq a failed checkpoint is reported at: the lowest it claims (column or note), at
/// least 1.
fn claimed_seq(cp: &Checkpoint) -> i64 {
    let note_seq = parse_note(&cp.note).map(|(seq, _)| seq);
    note_seq.map_or(cp.seq, |n| n.min(cp.seq)).max(1)
}

fn lower(slot: &mut Option<(i64, FailureKind)>, candidate: (i64, FailureKind)) {
    if slot.is_none_or(|current| candidate < current) {
        *slot = Some(candidate);
    }
}
