//! What a verification found: the report (for people and the API) and `VerifiedChain`, the
//! proof that only a successful verification produces.

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::record::{GENESIS_PREV_HASH, HASH_LEN};

/// Why a chain failed, for the lowest failing seq.
///
/// The declaration order is the tie-break when two failures share a seq: a fault in the event
/// rows themselves is named before a checkpoint disagreeing with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The row at this position has the wrong seq: one is missing (deleted), duplicated or out
    /// of order. Reported at the seq that should have come next.
    SeqGap,
    /// The stored hash is not SHA-256(stored prev_hash || canonical(fields)): a field, the seq
    /// or the prev_hash of this row was changed.
    HashMismatch,
    /// The row is self-consistent but its prev_hash is not the previous row's hash: this row or
    /// the one before it was rewritten together with its hash.
    BrokenLink,
    /// A checkpoint's signature does not verify under a trusted key (or names an unknown key).
    CheckpointSignature,
    /// A validly signed checkpoint disagrees with the chain at its seq (or with its own
    /// columns, or its note is malformed): the chain was rewritten from there on.
    CheckpointMismatch,
    /// A validly signed checkpoint lies beyond the last event: the tail was deleted.
    Truncated,
}

/// Result of verifying the chain.
///
/// `first_invalid_seq` is the lowest seq at which a hash, a link, a gap or a checkpoint fails
/// (`None` when valid). `head` is the last event read (seq and stored hash; the hash is empty
/// if that row's stored hash could not be read). `latest_checkpoint` is the highest checkpoint
/// that verified and matched the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationReport {
    pub valid: bool,
    pub checked: u64,
    pub head: Option<(i64, String)>,
    pub first_invalid_seq: Option<i64>,
    pub failure: Option<FailureKind>,
    pub latest_checkpoint: Option<Checkpoint>,
    // Private, so a report (and with it a proof) can only come from the verifier.
    verified: Option<VerifiedChain>,
}

impl VerificationReport {
    pub(crate) fn new(
        checked: u64,
        head: Option<(i64, String)>,
        failure: Option<(i64, FailureKind)>,
        latest_checkpoint: Option<Checkpoint>,
        verified: Option<VerifiedChain>,
    ) -> Self {
        VerificationReport {
            valid: failure.is_none() && verified.is_some(),
            checked,
            head,
            first_invalid_seq: failure.map(|(seq, _)| seq),
            failure: failure.map(|(_, kind)| kind),
            latest_checkpoint,
            verified,
        }
    }

    /// The proof, when the chain verified.
    pub fn verified(&self) -> Option<&VerifiedChain> {
        self.verified.as_ref()
    }

    pub fn into_verified(self) -> Option<VerifiedChain> {
        self.verified
    }

    /// The body of `GET /api/v1/audit/verify`: `{valid, checked, head: {seq, hash} | null,
    /// first_invalid_seq, checkpoint | null, failure}` (`failure` is an added optional field).
    pub fn api_view(&self) -> VerifyResponse<'_> {
        VerifyResponse {
            valid: self.valid,
            checked: self.checked,
            head: self.head.as_ref().map(|(seq, hash)| HeadView { seq: *seq, hash: hash.as_str() }),
            first_invalid_seq: self.first_invalid_seq,
            checkpoint: self.latest_checkpoint.as_ref(),
            failure: self.failure,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VerifyResponse<'a> {
    pub valid: bool,
    pub checked: u64,
    pub head: Option<HeadView<'a>>,
    pub first_invalid_seq: Option<i64>,
    pub checkpoint: Option<&'a Checkpoint>,
    pub failure: Option<FailureKind>,
}

#[derive(Debug, Serialize)]
pub struct HeadView<'a> {
    pub seq: i64,
    pub hash: &'a str,
}

/// Proof that a run of the chain verified: every event from the base to the head was
/// recomputed and linked, seq was gap-free, and every checkpoint given verified and matched.
/// Code that trusts the chain head (the checkpoint signer) takes this, so skipping
/// verification does not compile.
///
/// INVARIANT: built only by `ChainVerifier::finish` on success. `base` is (0, zeros) for a
/// verification from the first event, or the checkpoint it resumed after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    head_seq: i64,
    head_hash: [u8; HASH_LEN],
    base_seq: i64,
    base_hash: [u8; HASH_LEN],
    latest_matched: Option<(i64, [u8; HASH_LEN])>,
}

impl VerifiedChain {
    pub(crate) fn new(
        head: (i64, [u8; HASH_LEN]),
        base: (i64, [u8; HASH_LEN]),
        latest_matched: Option<(i64, [u8; HASH_LEN])>,
    ) -> Self {
        VerifiedChain { head_seq: head.0, head_hash: head.1, base_seq: base.0, base_hash: base.1, latest_matched }
    }

    /// Seq of the last verified event; 0 for an empty chain.
    pub fn head_seq(&self) -> i64 {
        self.head_seq
    }

    /// Hash of the last verified event; 32 zero bytes for an empty chain (the next event's
    /// `prev_hash` either way).
    pub fn head_hash(&self) -> &[u8; HASH_LEN] {
        &self.head_hash
    }

    /// Whether the verified chain starts at the first event (not resumed from a checkpoint).
    pub fn from_genesis(&self) -> bool {
        self.base_seq == 0 && self.base_hash == GENESIS_PREV_HASH
    }

    /// Whether this verification established that the chain is at `hash` at `seq`.
    pub(crate) fn passes_through(&self, seq: i64, hash: &[u8; HASH_LEN]) -> bool {
        (self.base_seq == seq && self.base_hash == *hash)
            || (self.head_seq == seq && self.head_hash == *hash)
            || self.latest_matched == Some((seq, *hash))
    }
}
