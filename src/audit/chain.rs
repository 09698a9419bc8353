//! The chain rule, `hash = SHA-256(prev_hash || canonical(record))`, and `ChainTip`, the
//! sequencer's handle on the head it appends to.

use ring::digest;

use super::canonical::write_canonical;
use super::record::{AuditRecord, ChainedEvent, GENESIS_PREV_HASH, HASH_LEN, RecordRef};

/// Chain hash of one record after `prev`. Allocates a canonical buffer; loops use
/// [`ChainHasher`] instead.
pub fn chain_hash(prev: &[u8; HASH_LEN], rec: &AuditRecord) -> [u8; HASH_LEN] {
    ChainHasher::new().hash(prev, rec)
}

/// Computes chain hashes while reusing one canonical-bytes buffer, so hashing a long run of
/// events allocates only when a record is larger than any seen before.
#[derive(Debug, Default)]
pub struct ChainHasher {
    buf: Vec<u8>,
}

impl ChainHasher {
    pub fn new() -> Self {
        ChainHasher { buf: Vec::with_capacity(512) }
    }

    /// `rec` is an `&AuditRecord` or a borrowed [`RecordRef`] (as the database reader lends).
    pub fn hash<'a>(&mut self, prev: &[u8; HASH_LEN], rec: impl Into<RecordRef<'a>>) -> [u8; HASH_LEN] {
        write_canonical(rec, &mut self.buf);
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(prev);
        ctx.update(&self.buf);
        let digest = ctx.finish();
        let mut out = [0u8; HASH_LEN];
        // SHA-256 output is always 32 bytes; the length is fixed by the algorithm, not data.
        out.copy_from_slice(digest.as_ref());
        out
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("chain head seq {0} is invalid (must be 0 for an empty chain, else positive)")]
    InvalidHead(i64),
    #[error("an empty chain's head hash must be 32 zero bytes")]
    NonZeroGenesis,
    #[error("seq space exhausted")]
    SeqExhausted,
}

/// The head of the chain as the sequencer sees it: the next event gets `seq + 1` and
/// `prev_hash = hash`.
///
/// INVARIANT: `seq >= 0`; `seq == 0` (empty chain) exactly when `hash` is all zeros by
/// construction through `genesis()`.
#[derive(Debug)]
pub struct ChainTip {
    seq: i64,
    hash: [u8; HASH_LEN],
    hasher: ChainHasher,
}

impl ChainTip {
    /// The tip of an empty chain.
    pub fn genesis() -> Self {
        ChainTip { seq: 0, hash: GENESIS_PREV_HASH, hasher: ChainHasher::new() }
    }

    /// The tip read from the highest chained row (the sequencer reads it under its lock).
    pub fn from_head(seq: i64, hash: [u8; HASH_LEN]) -> Result<Self, ChainError> {
        match seq {
            0 if hash == GENESIS_PREV_HASH => Ok(Self::genesis()),
            0 => Err(ChainError::NonZeroGenesis),
            s if s < 0 => Err(ChainError::InvalidHead(s)),
            _ => Ok(ChainTip { seq, hash, hasher: ChainHasher::new() }),
        }
    }

    pub fn seq(&self) -> i64 {
        self.seq
    }

    pub fn hash(&self) -> &[u8; HASH_LEN] {
        &self.hash
    }

    /// Gives `record` the next place in the chain. Whatever `record.seq` held (an unchained
    /// row has none) is overwritten with `tip.seq + 1`.
    pub fn append(&mut self, mut record: AuditRecord) -> Result<ChainedEvent, ChainError> {
        let (seq, prev_hash, hash) = self.place(RecordRef::from(&record))?;
        record.seq = seq;
        Ok(ChainedEvent { record, prev_hash, hash })
    }

    /// [`append`](Self::append) for a borrowed record (an event being inserted, without copying
    /// its fields): returns its `(seq, prev_hash, hash)`. `record.seq` is overwritten.
    pub fn place(&mut self, mut record: RecordRef<'_>) -> Result<(i64, [u8; HASH_LEN], [u8; HASH_LEN]), ChainError> {
        let seq = self.seq.checked_add(1).ok_or(ChainError::SeqExhausted)?;
        record.seq = seq;
        let prev_hash = self.hash;
        let hash = self.hasher.hash(&prev_hash, record);
        self.seq = seq;
        self.hash = hash;
        Ok((seq, prev_hash, hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::canonical::canonical_bytes;
    use crate::audit::record::Outcome;

    fn rec(action: &str) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at: "2026-11-28T10:00:00.000000Z".into(),
            actor_id: None,
            actor_username: Some("h.martin".into()),
            action: action.into(),
            resource_type: None,
            resource_id: None,
            source_id: None,
            purpose: None,
            outcome: Outcome::Allowed,
            reason: None,
            request_id: None,
            client_ip: None,
        }
    }

    #[test]
    fn chain_hash_is_sha256_of_prev_then_canonical() {
        let mut r = rec("auth.login.succeeded");
        r.seq = 1;
        let mut input = GENESIS_PREV_HASH.to_vec();
        input.extend_from_slice(&canonical_bytes(&r));
        let want = digest::digest(&digest::SHA256, &input);
        assert_eq!(chain_hash(&GENESIS_PREV_HASH, &r).as_slice(), want.as_ref());
    }

    #[test]
    fn chain_hash_depends_on_prev() {
        let mut r = rec("x.y");
        r.seq = 2;
        assert_ne!(chain_hash(&[0; 32], &r), chain_hash(&[1; 32], &r));
    }

    #[test]
    fn tip_appends_consecutive_linked_events() {
        let mut tip = ChainTip::genesis();
        let a = tip.append(rec("a.b")).ok();
        let b = tip.append(rec("c.d")).ok();
        let (Some(a), Some(b)) = (a, b) else {
            panic!("append failed");
        };
        assert_eq!((a.record.seq, b.record.seq), (1, 2));
        assert_eq!(a.prev_hash, GENESIS_PREV_HASH);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(a.hash, chain_hash(&GENESIS_PREV_HASH, &a.record));
        assert_eq!(b.hash, chain_hash(&a.hash, &b.record));
        assert_eq!((tip.seq(), *tip.hash()), (2, b.hash));
    }

    #[test]
    fn tip_from_head_checks_its_invariant() {
        assert!(ChainTip::from_head(0, [0; 32]).is_ok());
        assert_eq!(ChainTip::from_head(0, [1; 32]).err(), Some(ChainError::NonZeroGenesis));
        assert_eq!(ChainTip::from_head(-1, [1; 32]).err(), Some(ChainError::InvalidHead(-1)));
        let mut tip = ChainTip::from_head(i64::MAX, [1; 32]).ok();
        let appended = tip.as_mut().map(|t| t.append(rec("a.b")).err());
        assert_eq!(appended, Some(Some(ChainError::SeqExhausted)));
    }
}
