//! Appending events and reading them back.
//!
//! [`append`] is the one way to record an event: it inserts the event, unchained, inside the
//! caller's transaction, so the event is durable exactly when the work it records is. The
//! sequencer gives it its place in the chain shortly after commit. A failed append fails the
//! request with 503 (no unaudited access).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::event::Event;
use super::{AuditRecord, ChainedEvent, Outcome, format_at, hash_from_slice};
use crate::db::schema::audit_events;
use crate::db::{DbConnection, write_tx};
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::time::to_db;

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
struct NewEventRow<'a> {
    id: String,
    at: String,
    actor_id: Option<&'a str>,
    actor_username: Option<&'a str>,
    action: &'a str,
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    source_id: Option<&'a str>,
    purpose: Option<&'a str>,
    outcome: &'a str,
    reason: Option<&'a str>,
    request_id: Option<&'a str>,
    client_ip: Option<String>,
    created_at: chrono::NaiveDateTime,
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
pub fn append(conn: &mut DbConnection, ctx: &RequestContext, event: Event, now: DateTime<Utc>) -> AppResult<()> {
    let row = NewEventRow {
        id: Uuid::new_v4().to_string(),
        at: format_at(&now),
        actor_id: event.actor_id.as_deref(),
        actor_username: event.actor_username.as_deref(),
        action: event.action,
        resource_type: event.resource_type,
        resource_id: event.resource_id.as_deref(),
        source_id: event.source_id.as_deref(),
        purpose: ctx.purpose.as_deref(),
        outcome: event.outcome.as_str(),
        reason: event.reason.as_deref(),
        request_id: Some(ctx.request_id.as_str()),
        client_ip: ctx.client_ip.map(|ip| ip.to_string()),
        created_at: to_db(now),
    };
    diesel::insert_into(audit_events::table).values(&row).execute(conn).map_err(|e| {
        // Fail closed: whatever the cause, the request must not succeed unaudited.
        AppError::Unavailable(format!("audit append failed: {e}"))
    })?;
    super::sequencer::notify();
    Ok(())
}

/// Records `event` in a transaction of its own: for reads, denials, and requests whose work
/// rolled back. It is committed before this returns, so before any response leaves.
pub fn append_alone(conn: &mut DbConnection, ctx: &RequestContext, event: Event, now: DateTime<Utc>) -> AppResult<()> {
    write_tx(conn, |conn| append(conn, ctx, event, now))
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

/// Events committed but not chained, older than `before`.
pub fn unchained_before(conn: &mut DbConnection, before: DateTime<Utc>) -> AppResult<i64> {
    Ok(audit_events::table
        .filter(audit_events::seq.is_null())
        .filter(audit_events::created_at.lt(to_db(before)))
        .count()
        .get_result(conn)?)
}
