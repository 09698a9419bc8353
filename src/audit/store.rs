//! Appending events and reading them back.
//!
//! [`append`] records an event inside the caller's transaction, so the event is durable exactly
//! when the work it records is; [`append_alone`] commits one on its own (reads, refusals),
//! through the instance's group commit. Events are chained in the inserting transaction where
//! that costs no concurrency (SQLite, whose writers are serialised anyway; group commits, one
//! per instance at a time); otherwise (PostgreSQL write transactions) the sequencer chains them
//! shortly after commit. A failed append fails the request with 503 (no unaudited access).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::event::Event;
use super::record::RecordRef;
use super::{AuditRecord, ChainTip, ChainedEvent, Outcome, format_at, hash_from_slice};
use crate::db::schema::audit_events;
use crate::db::{DbConnection, write_tx};
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::time::to_db;

/// An event as it is inserted: owned, so that a batch of them can wait for a group commit.
/// `seq`, `prev_hash` and `hash` are set when it is chained in the inserting transaction and
/// left empty when the sequencer chains it after commit.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewEventRow {
    id: String,
    seq: Option<i64>,
    at: String,
    actor_id: Option<String>,
    actor_username: Option<String>,
    action: &'static str,
    resource_type: Option<&'static str>,
    resource_id: Option<String>,
    source_id: Option<String>,
    purpose: Option<String>,
    outcome: &'static str,
    reason: Option<String>,
    request_id: Option<String>,
    client_ip: Option<String>,
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
    created_at: chrono::NaiveDateTime,
}

impl NewEventRow {
    pub fn new(ctx: &RequestContext, event: Event, now: DateTime<Utc>) -> Self {
        NewEventRow {
            id: Uuid::new_v4().to_string(),
            seq: None,
            at: format_at(&now),
            actor_id: event.actor_id,
            actor_username: event.actor_username,
            action: event.action,
            resource_type: event.resource_type,
            resource_id: event.resource_id,
            source_id: event.source_id,
            purpose: ctx.purpose.clone(),
            outcome: event.outcome.as_str(),
            reason: event.reason,
            request_id: Some(ctx.request_id.clone()),
            client_ip: ctx.client_ip.map(|ip| ip.to_string()),
            prev_hash: None,
            hash: None,
            created_at: to_db(now),
        }
    }

    /// Gives the event the next place after `tip`.
    fn chain(&mut self, tip: &mut ChainTip) -> AppResult<()> {
        let outcome = match self.outcome {
            "denied" => Outcome::Denied,
            _ => Outcome::Allowed,
        };
        let record = RecordRef {
            seq: 0,
            at: &self.at,
            actor_id: self.actor_id.as_deref(),
            actor_username: self.actor_username.as_deref(),
            action: self.action,
            resource_type: self.resource_type,
            resource_id: self.resource_id.as_deref(),
            source_id: self.source_id.as_deref(),
            purpose: self.purpose.as_deref(),
            outcome,
            reason: self.reason.as_deref(),
            request_id: self.request_id.as_deref(),
            client_ip: self.client_ip.as_deref(),
        };
        let (seq, prev_hash, hash) = tip.place(record).map_err(|e| AppError::Integrity(format!("audit chain: {e}")))?;
        self.seq = Some(seq);
        self.prev_hash = Some(prev_hash.to_vec());
        self.hash = Some(hash.to_vec());
        Ok(())
    }
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct EventRow {
    pub id: String,
    pub seq: Option<i64>,
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub source_id: Option<String>,
    pub purpose: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
    pub created_at: chrono::NaiveDateTime,
}

impl EventRow {
    /// The hashed fields, with `seq` as given (the sequencer assigns it; verification reads it).
    /// `None` when the stored outcome is not one the service writes (an edited row).
    pub fn record(&self, seq: i64) -> Option<AuditRecord> {
        let outcome = match self.outcome.as_str() {
            "allowed" => Outcome::Allowed,
            "denied" => Outcome::Denied,
            _ => return None,
        };
        Some(AuditRecord {
            seq,
            at: self.at.clone(),
            actor_id: self.actor_id.clone(),
            actor_username: self.actor_username.clone(),
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            source_id: self.source_id.clone(),
            purpose: self.purpose.clone(),
            outcome,
            reason: self.reason.clone(),
            request_id: self.request_id.clone(),
            client_ip: self.client_ip.clone(),
        })
    }

    /// As stored, for verification. `None` for a row that is not chained or whose stored
    /// values cannot be what the service wrote (an unknown outcome, chain columns missing or not
    /// 32 bytes): the verifier records such a row as unreadable at its seq — never padded or
    /// cut to size, which could let a tampered value pass.
    pub fn chained(&self) -> Option<ChainedEvent> {
        let seq = self.seq?;
        let prev_hash = hash_from_slice(self.prev_hash.as_deref()?)?;
        let hash = hash_from_slice(self.hash.as_deref()?)?;
        Some(ChainedEvent { record: self.record(seq)?, prev_hash, hash })
    }
}

/// Records `event` inside the caller's transaction.
///
/// On SQLite the transaction (`BEGIN IMMEDIATE`) already excludes every other writer, so the
/// event is chained right here, at no cost in concurrency, and nothing is left for the
/// sequencer. On PostgreSQL chaining here would make every write transaction wait for the chain
/// head; the event is inserted unchained and the sequencer chains it shortly after commit.
pub fn append(conn: &mut DbConnection, ctx: &RequestContext, event: Event, now: DateTime<Utc>) -> AppResult<()> {
    let mut row = NewEventRow::new(ctx, event, now);
    if matches!(conn, DbConnection::Sqlite(_)) && in_transaction(conn)? {
        // Events left unchained (none are, on SQLite, but rows of an older version could be)
        // are the sequencer's; they get later places, which the chain allows.
        let mut tip = super::sequencer::head(conn).map_err(fail_closed)?;
        row.chain(&mut tip)?;
        return insert(conn, &row);
    }
    insert(conn, &row)?;
    super::sequencer::notify();
    Ok(())
}

/// Records `event` in a transaction of its own: for reads, denials, and requests whose work
/// rolled back. It is committed before this returns, so before any response leaves.
///
/// A request's events go through its context's [`GroupCommit`](super::group::GroupCommit), which
/// commits the events of concurrent requests together (one transaction, one fsync) and chains
/// them in that transaction. Inside a transaction already open, or without a group (operators'
/// commands), the event gets a transaction (or savepoint) of its own.
pub fn append_alone(conn: &mut DbConnection, ctx: &RequestContext, event: Event, now: DateTime<Utc>) -> AppResult<()> {
    let mut row = NewEventRow::new(ctx, event, now);
    match &ctx.commits {
        Some(group) if !in_transaction(conn)? => group.commit(conn, row),
        _ => write_tx(conn, |conn| insert_chained(conn, std::slice::from_mut(&mut row))),
    }
}

/// Inside a write transaction: takes the chain lock, chains what earlier appends left unchained
/// (PostgreSQL's write transactions), then chains and inserts `rows` in order.
pub(super) fn insert_chained(conn: &mut DbConnection, rows: &mut [NewEventRow]) -> AppResult<()> {
    let mut tip = super::sequencer::lock_and_chain_pending(conn).map_err(fail_closed)?;
    for row in rows.iter_mut() {
        row.chain(&mut tip)?;
    }
    match conn {
        // One statement for the batch: on PostgreSQL every statement is a round trip, and the
        // batch holds the chain lock while it runs.
        DbConnection::Postgres(pg) => {
            diesel::insert_into(audit_events::table).values(&*rows).execute(pg).map_err(|e| fail_closed(e.into()))?;
        }
        // The multi-backend connection has no batch insert for SQLite; in-process statements
        // cost no round trip there.
        DbConnection::Sqlite(_) => {
            for row in rows.iter() {
                insert(conn, row)?;
            }
        }
    }
    Ok(())
}

fn insert(conn: &mut DbConnection, row: &NewEventRow) -> AppResult<()> {
    diesel::insert_into(audit_events::table).values(row).execute(conn).map_err(|e| fail_closed(e.into()))?;
    Ok(())
}

/// Whatever the cause, the request must not succeed unaudited: 503.
fn fail_closed(e: AppError) -> AppError {
    AppError::Unavailable(format!("audit append failed: {e}"))
}

fn in_transaction(conn: &mut DbConnection) -> AppResult<bool> {
    use diesel::connection::{Connection, TransactionManager};
    let status = <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn);
    Ok(status.transaction_depth()?.is_some())
}

/// Filters of `GET /api/v1/audit/events`.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub actor_id: Option<String>,
    pub source_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Chained events matching `filter`, by `seq` descending, starting below `before_seq`.
pub fn query(
    conn: &mut DbConnection,
    filter: &EventFilter,
    before_seq: Option<i64>,
    limit: i64,
) -> AppResult<Vec<EventRow>> {
    let mut q = audit_events::table.select(EventRow::as_select()).filter(audit_events::seq.is_not_null()).into_boxed();
    if let Some(v) = &filter.actor_id {
        q = q.filter(audit_events::actor_id.eq(v.clone()));
    }
    if let Some(v) = &filter.source_id {
        q = q.filter(audit_events::source_id.eq(v.clone()));
    }
    if let Some(v) = &filter.action {
        q = q.filter(audit_events::action.eq(v.clone()));
    }
    if let Some(v) = filter.outcome {
        q = q.filter(audit_events::outcome.eq(v.as_str()));
    }
    // `at` is fixed-width UTC text, so text order is time order on both backends.
    if let Some(v) = &filter.from {
        q = q.filter(audit_events::at.ge(v.clone()));
    }
    if let Some(v) = &filter.to {
        q = q.filter(audit_events::at.lt(v.clone()));
    }
    if let Some(before) = before_seq {
        q = q.filter(audit_events::seq.lt(before));
    }
    Ok(q.order(audit_events::seq.desc()).limit(limit).load(conn)?)
}

/// Chained events with `seq > after`, ascending: the verifier and the export page through these.
pub fn chained_after(conn: &mut DbConnection, after: i64, limit: i64) -> AppResult<Vec<EventRow>> {
    Ok(audit_events::table
        .select(EventRow::as_select())
        .filter(audit_events::seq.gt(after))
        .order(audit_events::seq.asc())
        .limit(limit)
        .load(conn)?)
}

/// Where the page after `rows` starts: the last row's seq, which must lie beyond `after`. `None`
/// when it does not. On SQLite a seq edited into a fraction (or text) is kept as written, sorts
/// among the integers (or after them) and reads back truncated (or as 0); a page that ends on
/// such a row would make the reader start over from the same place for ever. Paging by a seq
/// that does not advance is an integrity failure, never a retry.
pub fn next_page_after(after: i64, rows: &[EventRow]) -> Option<i64> {
    rows.last()?.seq.filter(|&seq| seq > after)
}

/// Events committed but not chained, older than `before`.
pub fn unchained_before(conn: &mut DbConnection, before: DateTime<Utc>) -> AppResult<i64> {
    Ok(audit_events::table
        .filter(audit_events::seq.is_null())
        .filter(audit_events::created_at.lt(to_db(before)))
        .count()
        .get_result(conn)?)
}
