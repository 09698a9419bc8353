//! Group commit of the events that commit on their own (reads, refusals).
//!
//! Every audited read must have its event durable before the response leaves. Committed one
//! by one, that is one write transaction — and with SQLite's `synchronous=FULL` one fsync —
//! per read, and the write lock passes from request to request. Instead, a request hands its
//! event to the instance's [`GroupCommit`] and waits: if no commit is running, it becomes the
//! leader and commits, on its own connection, every event waiting at that moment in one
//! transaction (chained in that same transaction); the others wait for that commit's result.
//! Events that arrive while a commit runs form the next batch. Nobody is answered before the
//! transaction holding their event has committed, and a failed commit fails every request in
//! it (each event is then retried alone, so that one bad row cannot fail its neighbours).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::store::{NewEventRow, insert_chained};
use crate::db::{DbConnection, write_tx};
use crate::error::{AppError, AppResult};

/// Events per transaction at most; later arrivals wait for the next one.
const MAX_BATCH: usize = 256;

/// One per instance (per database): the queue of events waiting to be committed.
#[derive(Default)]
pub struct GroupCommit {
    queue: Mutex<Queue>,
    committed: Condvar,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<(u64, NewEventRow)>,
    /// A leader is committing a batch now.
    leading: bool,
    next_ticket: u64,
    /// Results of finished commits, until their requests pick them up.
    finished: HashMap<u64, AppResult<()>>,
    stats: GroupStats,
}

/// What the group has committed so far (for operators and tests: events / transactions is the
/// batching achieved).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Batch transactions committed.
    pub transactions: u64,
    /// Events committed in them.
    pub events: u64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl GroupCommit {
    pub fn new() -> Self {
        Self::default()
    }

    /// Commits `row` durably, possibly together with other requests' events; returns when the
    /// transaction holding it has committed (or failed). `conn` must not be inside a
    /// transaction: it may be used to commit the batch.
    pub(super) fn commit(&self, conn: &mut DbConnection, row: NewEventRow) -> AppResult<()> {
        let mut queue = self.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push((ticket, row));
        loop {
            if let Some(result) = queue.finished.remove(&ticket) {
                return result;
            }
            if queue.leading {
                queue = self.committed.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            queue.leading = true;
            let take = queue.waiting.len().min(MAX_BATCH);
            let batch: Vec<(u64, NewEventRow)> = queue.waiting.drain(..take).collect();
            drop(queue);
            let leader = Leader { group: self, tickets: batch.iter().map(|(t, _)| *t).collect() };
            let (results, transactions) = commit_batch(conn, batch);
            leader.finish(results, transactions);
            queue = self.lock();
        }
    }

    pub fn stats(&self) -> GroupStats {
        self.lock().stats
    }

    /// Events handed in and not yet taken by a leader.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing is ever left half-updated under this lock (no code that can panic runs while
        // it is held), so a poisoned lock's contents are still sound.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The leader's duty to hand over: publish the results and let the next leader go, even if the
/// commit panicked (then every event of the batch is reported as not recorded).
struct Leader<'a> {
    group: &'a GroupCommit,
    tickets: Vec<u64>,
}

impl Leader<'_> {
    fn finish(mut self, results: Vec<(u64, AppResult<()>)>, transactions: u64) {
        self.tickets.clear();
        self.publish(results, transactions);
    }

    fn publish(&self, results: Vec<(u64, AppResult<()>)>, transactions: u64) {
        let mut queue = self.group.lock();
        queue.leading = false;
        queue.stats.transactions += transactions;
        queue.stats.events += results.iter().filter(|(_, r)| r.is_ok()).count() as u64;
        queue.finished.extend(results);
        self.group.committed.notify_all();
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.tickets.is_empty() {
            let failed = self.tickets.iter().map(|t| (*t, Err(not_recorded("the commit panicked")))).collect();
            self.publish(failed, 0);
        }
    }
}

fn not_recorded(why: &str) -> AppError {
    AppError::Unavailable(format!("audit append failed: {why}"))
}

/// One transaction for the whole batch; if it fails, each event alone, so that the result of
/// each request is its own event's. Returns the results and the transactions committed.
fn commit_batch(conn: &mut DbConnection, batch: Vec<(u64, NewEventRow)>) -> (Vec<(u64, AppResult<()>)>, u64) {
    let (tickets, mut rows): (Vec<u64>, Vec<NewEventRow>) = batch.into_iter().unzip();
    match write_tx(conn, |conn| insert_chained(conn, &mut rows)) {
        Ok(()) => (tickets.into_iter().map(|t| (t, Ok(()))).collect(), 1),
        Err(e) if rows.len() == 1 => (vec![(tickets[0], Err(e))], 0),
        Err(e) => {
            tracing::warn!(error = %e, events = rows.len(), "audit group commit failed; committing its events one by one");
            let results: Vec<(u64, AppResult<()>)> = tickets
                .into_iter()
                .zip(rows.iter_mut())
                .map(|(t, row)| (t, write_tx(conn, |conn| insert_chained(conn, std::slice::from_mut(row)))))
                .collect();
            let transactions = results.iter().filter(|(_, r)| r.is_ok()).count() as u64;
            (results, transactions)
        }
    }
}
