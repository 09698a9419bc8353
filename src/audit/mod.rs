//! The tamper-evident audit trail, database-free part: the fixed chain format (canonical
//! bytes, chain hash), signed checkpoints, and streaming verification. docs/audit.md is the
//! specification an independent verifier is written from; this module implements it.
//!
//! - `record`: the 13 hashed fields, the chained event and its export JSON, `format_at`.
//! - `canonical`: RFC 8785 (JCS) bytes of a record.
//! - `chain`: `hash = SHA-256(prev_hash || canonical)`, and `ChainTip` for the sequencer.
//! - `note` / `checkpoint`: the signed checkpoint note, signer, verifier, consistency rule.
//! - `policy`: when a checkpoint is due.
//! - `verify` / `report`: `ChainVerifier`, `verify_chain`, the report and `VerifiedChain`.
//!
//! With the database:
//! - `event` / `store`: building events and the one way to append them (`append`).
//! - `group`: group commit of the events that commit on their own (`append_alone`).
//! - `sequencer`: chains committed events in batches and signs checkpoints.
//! - `pipeline`: a producer thread feeding the calling thread over a bounded channel.
//! - `trail_reader`: reads the chained events back for verification, checked columns only.
//! - `check`: verifies the stored trail (reading on a second thread); `routes`: the compliance
//!   API.

pub mod canonical;
pub mod chain;
pub mod check;
pub mod checkpoint;
pub mod event;
pub mod group;
pub mod note;
pub mod pipeline;
pub mod policy;
pub mod record;
mod report;
pub mod routes;
pub mod sequencer;
pub mod store;
pub mod trail_reader;
pub mod verify;

#[cfg(test)]
mod tamper_tests;

pub use canonical::{canonical_bytes, write_canonical};
pub use chain::{ChainError, ChainHasher, ChainTip, chain_hash};
pub use checkpoint::{
    AuditSigner, Checkpoint, CheckpointError, CheckpointTarget, CheckpointVerifier, ConsistencyError,
    VerifiedCheckpoint, next_checkpoint,
};
pub use event::Event;
pub use group::{GroupCommit, GroupStats};
pub use policy::CheckpointPolicy;
pub use record::{
    AuditRecord, ChainedEvent, EventRef, GENESIS_PREV_HASH, HASH_LEN, Outcome, RecordRef, format_at, hash_from_slice,
    parse_hash_hex,
};
pub use report::{HeadView, VerifyResponse};
pub use store::{append, append_alone};
pub use verify::{ChainVerifier, FailureKind, VerificationReport, VerifiedChain, verify_chain};
