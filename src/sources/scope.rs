//! Entering a source-scoped request: load the source and the caller's place on it, ask
//! `access`, and record a refusal. Every source-scoped route starts here, so a hidden source
//! and a missing one cost the same work (one lookup, one audit event) and answer the same 404.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::model::SourceRow;
use crate::access::{self, Decision, SourceAction, SourceFacts};
use crate::assignments::model::{AssignmentRole, AssignmentRow};
use crate::assignments::queries as assignment_queries;
use crate::audit::{self, Event, Outcome};
use crate::auth::actor::Actor;
use crate::db::DbConnection;
use crate::db::schema::sources;
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;

/// A source the caller may act on, with the rule that allowed it.
pub struct SourceScope {
    pub source: SourceRow,
    pub rule: &'static str,
    /// The caller's active assignments on the source.
    pub my_assignments: Vec<AssignmentRole>,
    /// Every active assignment on the source, with the assignee's display name (the source's
    /// view shows them; loaded once for the decision and the view).
    pub active: Vec<(AssignmentRow, String)>,
}

impl SourceScope {
    pub fn facts(&self) -> SourceFacts<'_> {
        SourceFacts { unit: &self.source.unit, assignments: &self.my_assignments }
    }

    /// Records a read, whether or not it could be decrypted: the attempt is what matters. A
    /// read that failed (a destroyed key, an integrity failure) is recorded as denied.
    pub fn record_read<T>(
        &self,
        conn: &mut DbConnection,
        ctx: &RequestContext,
        actor: &Actor,
        action: &'static str,
        result: &AppResult<T>,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let mut event = self.event(actor, action);
        if let Err(e) = result {
            event.outcome = Outcome::Denied;
            event = event.reason(if matches!(e, AppError::Gone) { "key_destroyed" } else { "unreadable" });
        }
        audit::append_alone(conn, ctx, event, now)
    }

    /// The allowed event for this request, naming the source and the rule.
    pub fn event(&self, actor: &Actor, action: &'static str) -> Event {
        Event::by(actor, action, Outcome::Allowed)
            .resource("source", Some(self.source.id.clone()))
            .source(&self.source.id)
            .reason(self.rule)
    }
}

/// Path ids that are not UUIDs name no source; they are recorded cut short and printable.
fn recordable(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(64).collect()
}

pub fn load(conn: &mut DbConnection, id: &str) -> AppResult<Option<SourceRow>> {
    Ok(sources::table.find(id).select(SourceRow::as_select()).first(conn).optional()?)
}

/// Decides `action` on the source named by `raw_id`. Denied (hidden or missing): the event is
/// committed on its own and the answer is 404.
pub fn enter(
    conn: &mut DbConnection,
    ctx: &RequestContext,
    actor: &Actor,
    raw_id: &str,
    action: SourceAction,
    audit_action: &'static str,
    now: DateTime<Utc>,
) -> AppResult<SourceScope> {
    let source = match uuid::Uuid::parse_str(raw_id) {
        Ok(id) => load(conn, &id.to_string())?,
        Err(_) => None,
    };
    let id = recordable(raw_id);
    decide(conn, ctx, actor, source, ("source", id), action, audit_action, now)
}

/// The same for a record hanging off a source (a contact): the record's source decides, and
/// a missing record is a missing source. `source_of` finds the source id of the record.
#[expect(clippy::too_many_arguments, reason = "the request's story, passed through unchanged")]
pub fn enter_via(
    conn: &mut DbConnection,
    ctx: &RequestContext,
    actor: &Actor,
    resource_type: &'static str,
    raw_id: &str,
    source_of: impl FnOnce(&mut DbConnection, &str) -> AppResult<Option<String>>,
    action: SourceAction,
    audit_action: &'static str,
    now: DateTime<Utc>,
) -> AppResult<SourceScope> {
    let source_id = match uuid::Uuid::parse_str(raw_id) {
        Ok(id) => source_of(conn, &id.to_string())?,
        Err(_) => None,
    };
    let source = match source_id {
        Some(id) => load(conn, &id)?,
        None => None,
    };
    let scope = decide(conn, ctx, actor, source, (resource_type, recordable(raw_id)), action, audit_action, now)?;
    Ok(scope)
}

#[expect(clippy::too_many_arguments, reason = "the request's story, passed through unchanged")]
fn decide(
    conn: &mut DbConnection,
    ctx: &RequestContext,
    actor: &Actor,
    source: Option<SourceRow>,
    (resource_type, resource_id): (&'static str, String),
    action: SourceAction,
    audit_action: &'static str,
    now: DateTime<Utc>,
) -> AppResult<SourceScope> {
    let active = match &source {
        Some(s) => assignment_queries::active_for(conn, std::slice::from_ref(&s.id))?,
        None => Vec::new(),
    };
    let me = actor.user_id.to_string();
    let my_assignments: Vec<AssignmentRole> =
        active.iter().filter(|(a, _)| a.user_id == me).filter_map(|(a, _)| a.role.parse().ok()).collect();
    let facts = source.as_ref().map(|s| SourceFacts { unit: &s.unit, assignments: &my_assignments });
    match access::decide_source(actor, action, facts.as_ref()) {
        Decision::Allow(rule) => match source {
            Some(source) => Ok(SourceScope { source, rule, my_assignments, active }),
            None => Err(AppError::internal("access allowed a missing source")),
        },
        Decision::Deny(reason) => {
            let source_id = match (&source, resource_type) {
                (Some(s), _) => s.id.clone(),
                (None, "source") => resource_id.clone(),
                (None, _) => String::new(),
            };
            let mut event = Event::by(actor, audit_action, Outcome::Denied)
                .resource(resource_type, Some(resource_id))
                .reason(reason);
            if !source_id.is_empty() {
                event = event.source(source_id);
            }
            audit::append_alone(conn, ctx, event, now)?;
            Err(AppError::NotFound)
        }
    }
}

/// Runs a change inside one write transaction that also records `event` (built by `work` from
/// what it did). If the work fails, it rolls back and the refusal is recorded on its own, so
/// every source-scoped request leaves exactly one event.
pub fn audited_change<T>(
    conn: &mut DbConnection,
    ctx: &RequestContext,
    refused: Event,
    now: DateTime<Utc>,
    work: impl FnOnce(&mut DbConnection) -> AppResult<(T, Event)>,
) -> AppResult<T> {
    let result = crate::db::write_tx(conn, |conn| {
        let (value, event) = work(conn)?;
        audit::append(conn, ctx, event, now)?;
        Ok(value)
    });
    if let Err(e) = &result {
        let reason = match e {
            AppError::Validation(_) => "invalid_input",
            AppError::Conflict(_) => "conflict",
            AppError::Gone => "key_destroyed",
            AppError::Unavailable(_) => return result,
            _ => "failed",
        };
        let mut event = refused;
        event.outcome = Outcome::Denied;
        audit::append_alone(conn, ctx, event.reason(reason), now)?;
    }
    result
}
