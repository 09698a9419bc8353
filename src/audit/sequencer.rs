//! The sequencer: gives committed events their place in the chain, in batches, and signs
//! checkpoints.
//!
//! Requests insert events unchained inside their own transactions, so the chain head never
//! serialises them. One sequencer at a time (a PostgreSQL transaction-level advisory lock; on
//! SQLite the write lock of `BEGIN IMMEDIATE`) reads the head, chains every committed unchained
//! event in (created_at, id) order and writes seq, prev_hash and hash. Each instance runs a
//! sequencer thread; whichever gets the lock does the work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::store::{self, EventRow};
use super::{AuditSigner, ChainTip, ChainVerifier, Checkpoint, CheckpointPolicy, CheckpointVerifier, next_checkpoint};
use crate::db::schema::{audit_checkpoints, audit_events};
use crate::db::{DbConnection, is_unique_violation, write_tx};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::time::to_db;

/// Advisory lock key of the sequencer ("humint-s").
const SEQUENCER_LOCK_KEY: i64 = 0x6875_6d69_6e74_2d73;
/// Events chained per transaction.
const BATCH: i64 = 2000;
/// How long the thread sleeps when nobody calls [`notify`].
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// After a wake-up, events are gathered this long before a pass, so that a burst of requests is
/// chained in one transaction instead of one each (chaining stays well within the seconds
/// verification allows).
const COALESCE: Duration = Duration::from_millis(20);

static WAKE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Wakes sequencer threads: an event was appended.
pub fn notify() {
    if let Ok(mut pending) = WAKE.0.lock() {
        *pending = true;
        WAKE.1.notify_all();
    }
}

fn wait_for_work() {
    let Ok(guard) = WAKE.0.lock() else { return };
    if let Ok((mut pending, _)) = WAKE.1.wait_timeout_while(guard, IDLE_WAIT, |pending| !*pending) {
        *pending = false;
    }
}

/// The background thread of one instance.
pub struct Sequencer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sequencer {
    pub fn start(state: Arc<AppState>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("audit-sequencer".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    wait_for_work();
                    std::thread::sleep(COALESCE);
                    if flag.load(Ordering::Acquire) || !state.migrated.load(Ordering::Acquire) {
                        continue;
                    }
                    if let Err(e) = background_pass(&state) {
                        tracing::warn!(error = %e, "audit sequencer pass failed; retrying");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            })
            .ok();
        Self { stop, thread }
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The background thread's pass: chain what no other instance is chaining, checkpoint if due.
fn background_pass(state: &AppState) -> AppResult<()> {
    state.pool.get()?.failing_distrusted(|conn| {
        while chain_batch(conn, Lock::Try)? == BATCH {}
        let signer = audit_signer(state)?;
        maybe_checkpoint(conn, &signer, CheckpointPolicy::default(), state.clock.now(), false)
    })
}

/// Chains everything committed so far, then signs a checkpoint if one is due — or, with
/// `force`, of the head now if it is beyond the last checkpoint (tests and operators use this).
pub fn run_once(state: &AppState, force: bool) -> AppResult<()> {
    state.pool.get()?.failing_distrusted(|conn| {
        chain_pending(conn)?;
        let signer = audit_signer(state)?;
        maybe_checkpoint(conn, &signer, CheckpointPolicy::default(), state.clock.now(), force)
    })
}

/// Chains pending events only (no checkpoint): `GET /audit/verify` calls this so that a verify
/// right after a burst of requests sees them all.
/// It waits for a sequencer running elsewhere to finish rather than skipping.
pub fn chain_pending(conn: &mut DbConnection) -> AppResult<()> {
    while chain_batch(conn, Lock::Wait)? == BATCH {}
    Ok(())
}

/// Whether a pass waits for another sequencer or leaves the work to it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// The background thread: another instance is already chaining, nothing to do.
    Try,
    /// Someone needs everything committed so far chained before going on (verification).
    Wait,
}

pub fn audit_signer(state: &AppState) -> AppResult<AuditSigner> {
    let keyring = state.keys.keyring();
    let key = keyring.audit_key();
    AuditSigner::from_pkcs8(key.pkcs8_der(), key.key_id().to_string()).map_err(AppError::internal)
}

/// Takes the sequencer lock for the current transaction. On SQLite the transaction's
/// `BEGIN IMMEDIATE` already excludes every other writer.
fn lock(conn: &mut DbConnection, mode: Lock) -> AppResult<bool> {
    match conn {
        DbConnection::Sqlite(_) => Ok(true),
        DbConnection::Postgres(_) if mode == Lock::Wait => {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({SEQUENCER_LOCK_KEY})")).execute(conn)?;
            Ok(true)
        }
        DbConnection::Postgres(_) => {
            #[derive(QueryableByName)]
            struct Locked {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                locked: bool,
            }
            let row: Locked =
                diesel::sql_query(format!("SELECT pg_try_advisory_xact_lock({SEQUENCER_LOCK_KEY}) AS locked"))
                    .get_result(conn)?;
            Ok(row.locked)
        }
    }
}

pub(super) fn head(conn: &mut DbConnection) -> AppResult<ChainTip> {
    let head: Option<(Option<i64>, Option<Vec<u8>>)> = audit_events::table
        .filter(audit_events::seq.is_not_null())
        .order(audit_events::seq.desc())
        .select((audit_events::seq, audit_events::hash))
        .first(conn)
        .optional()?;
    match head {
        None => Ok(ChainTip::genesis()),
        Some((Some(seq), Some(hash))) => {
            let hash: [u8; 32] = hash
                .as_slice()
                .try_into()
                .map_err(|_| AppError::Integrity(format!("audit head {seq}: malformed hash")))?;
            ChainTip::from_head(seq, hash).map_err(|e| AppError::Integrity(format!("audit head: {e}")))
        }
        Some(_) => Err(AppError::Integrity("audit head without hash".into())),
    }
}

/// One transaction: chain up to [`BATCH`] committed events. Returns how many were chained
/// (0 also when another instance holds the lock).
fn chain_batch(conn: &mut DbConnection, mode: Lock) -> AppResult<i64> {
    write_tx(conn, |conn| {
        if !lock(conn, mode)? {
            return Ok(0);
        }
        let mut tip = head(conn)?;
        chain_pending_rows(conn, &mut tip)
    })
}

/// For a transaction that appends chained events itself (a group commit, a write transaction on
/// SQLite): takes the sequencer's lock, waiting for it, chains what is pending (up to [`BATCH`]
/// rows) and returns the tip to append to.
pub(super) fn lock_and_chain_pending(conn: &mut DbConnection) -> AppResult<ChainTip> {
    lock(conn, Lock::Wait)?;
    let mut tip = head(conn)?;
    chain_pending_rows(conn, &mut tip)?;
    Ok(tip)
}

/// Takes the chain lock for the current write transaction and waits for it: while it is held,
/// no event is chained (nor group-committed) by this or any instance. For tests and operators'
/// tools that need the chain to stand still; on SQLite the write transaction itself is the lock.
pub fn hold_chain_lock(conn: &mut DbConnection) -> AppResult<()> {
    lock(conn, Lock::Wait).map(|_| ())
}

/// Chains up to [`BATCH`] committed unchained events after `tip`, in (created_at, id) order.
/// The caller holds the lock.
fn chain_pending_rows(conn: &mut DbConnection, tip: &mut ChainTip) -> AppResult<i64> {
    // Rows the service cannot have written (an unknown outcome) are never picked up: they stay
    // unchained, where verification reports them, and cannot stall the rows behind them.
    let pending: Vec<EventRow> = audit_events::table
        .filter(audit_events::seq.is_null())
        // Spelled out rather than `IN (...)`, which SQLite cannot keep prepared: this runs in
        // every group commit.
        .filter(audit_events::outcome.eq("allowed").or(audit_events::outcome.eq("denied")))
        .order((audit_events::created_at.asc(), audit_events::id.asc()))
        .limit(BATCH)
        .select(EventRow::as_select())
        .load(conn)?;
    let mut places = ChainPlaces::default();
    for row in &pending {
        // A row whose outcome the service cannot have written stays unchained; verification
        // reports it as left unchained.
        let Some(record) = row.record(0) else {
            tracing::error!(event = %row.id, "unchainable audit row left unchained");
            continue;
        };
        let event = tip.append(record).map_err(|e| AppError::Integrity(format!("audit chain: {e}")))?;
        places.ids.push(row.id.clone());
        places.seqs.push(event.record.seq);
        places.prev_hashes.push(event.prev_hash.to_vec());
        places.hashes.push(event.hash.to_vec());
    }
    places.write(conn)
}

/// The places given to a run of pending events, written back row by row in seq order: the
/// hardened PostgreSQL trigger of docs/audit.md checks that each update extends the head by one,
/// and a single `UPDATE ... FROM` would not promise that order.
#[derive(Default)]
struct ChainPlaces {
    ids: Vec<String>,
    seqs: Vec<i64>,
    prev_hashes: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

impl ChainPlaces {
    /// Returns how many events were chained.
    fn write(self, conn: &mut DbConnection) -> AppResult<i64> {
        let chained = self.ids.len();
        let mut updated = 0;
        for (((id, seq), prev_hash), hash) in self.ids.iter().zip(self.seqs).zip(self.prev_hashes).zip(self.hashes) {
            updated += diesel::update(audit_events::table.find(id).filter(audit_events::seq.is_null()))
                .set((audit_events::seq.eq(seq), audit_events::prev_hash.eq(prev_hash), audit_events::hash.eq(hash)))
                .execute(conn)?;
        }
        // Under the lock nobody else chains; a row that vanished or was chained meanwhile would
        // leave a gap: roll back rather than write it.
        if updated != chained {
            return Err(AppError::Integrity(format!("{chained} audit events to chain, {updated} updated")));
        }
        Ok(chained as i64)
    }
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_checkpoints)]
pub struct CheckpointRow {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub note: String,
    pub signature: String,
    pub key_id: String,
    pub created_at: chrono::NaiveDateTime,
}

impl CheckpointRow {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            seq: self.seq,
            hash_hex: hex::encode(&self.hash),
            note: self.note.clone(),
            signature_b64: self.signature.clone(),
            key_id: self.key_id.clone(),
        }
    }
}

pub fn checkpoints(conn: &mut DbConnection) -> AppResult<Vec<CheckpointRow>> {
    Ok(audit_checkpoints::table.order(audit_checkpoints::seq.asc()).select(CheckpointRow::as_select()).load(conn)?)
}

/// Signs the head if a checkpoint is due (or `force`), after verifying the stretch since the
/// last checkpoint: a checkpoint is never signed over a chain that does not extend the last one.
fn maybe_checkpoint(
    conn: &mut DbConnection,
    signer: &AuditSigner,
    policy: CheckpointPolicy,
    now: DateTime<Utc>,
    force: bool,
) -> AppResult<()> {
    let tip = head(conn)?;
    let last: Option<CheckpointRow> = audit_checkpoints::table
        .order(audit_checkpoints::seq.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()?;
    let due = policy.is_due(last.as_ref().map(|c| (c.seq, c.created_at.and_utc())), tip.seq(), now);
    if !(due || force && last.as_ref().is_none_or(|c| c.seq < tip.seq())) {
        return Ok(());
    }
    let public = CheckpointVerifier::from_public_key(signer.public_key()).map_err(AppError::internal)?;
    let anchor = match &last {
        Some(row) => {
            Some(public.verify(&row.checkpoint()).map_err(|e| AppError::Integrity(format!("last checkpoint: {e}")))?)
        }
        None => None,
    };
    let mut verifier = match &anchor {
        Some(anchor) => ChainVerifier::resume_after(anchor),
        None => ChainVerifier::new(&[], &public),
    };
    let mut after = anchor.as_ref().map_or(0, |a| a.seq());
    loop {
        let rows = store::chained_after(conn, after, 5000)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            match row.chained() {
                Some(event) => verifier.push(&event),
                None => verifier.push_unreadable(row.seq.unwrap_or(after)),
            }
        }
        after = store::next_page_after(after, &rows).ok_or_else(|| {
            tracing::error!(after, "audit trail: seq does not advance past a page; not signing a checkpoint");
            AppError::Integrity(format!("audit trail: seq does not advance past {after}"))
        })?;
        if after >= tip.seq() {
            break;
        }
    }
    let report = verifier.finish();
    let Some(verified) = report.into_verified() else {
        tracing::error!("audit chain does not verify since the last checkpoint; not signing a new one");
        return Err(AppError::Integrity("audit chain failed verification before checkpoint".into()));
    };
    let Some(target) =
        next_checkpoint(anchor.as_ref(), &verified).map_err(|e| AppError::Integrity(format!("checkpoint: {e}")))?
    else {
        return Ok(());
    };
    let cp = signer.sign(&target);
    let inserted = diesel::insert_into(audit_checkpoints::table)
        .values((
            audit_checkpoints::seq.eq(cp.seq),
            audit_checkpoints::hash.eq(target.hash().to_vec()),
            audit_checkpoints::note.eq(&cp.note),
            audit_checkpoints::signature.eq(&cp.signature_b64),
            audit_checkpoints::key_id.eq(&cp.key_id),
            audit_checkpoints::created_at.eq(to_db(now)),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(()),
        // Another instance signed the same head a moment ago.
        Err(e) if is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
