//! Queries on sources: registration pieces, views (batched: no query per row), lists filtered
//! by the same need-to-know rule as single reads, deconfliction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::model::{AssignmentSummary, AuthorisationSummary, SourceRow, SourceStatus, SourceView};
use crate::access::{ListScope, may_see_deconfliction};
use crate::assignments::model::AssignmentRow;
use crate::assignments::queries as assignment_queries;
use crate::audit::{self, Event, Outcome};
use crate::auth::actor::Actor;
use crate::authorisations::queries as authorisation_queries;
use crate::db::DbConnection;
use crate::db::schema::{assignments, sources};
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::http::pagination::{CursorKey, Page};
use crate::time::to_db;

/// How much a view may show.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The registration response: never the deconfliction flag, whoever registers.
    Registrant,
    /// Any later read: the deconfliction flag for controllers of the unit only.
    Reader,
}

/// Views of `rows` for `actor`, with active assignments and the authorisation in force loaded
/// in two queries for all rows together.
pub fn views(
    conn: &mut DbConnection,
    actor: &Actor,
    rows: Vec<SourceRow>,
    now: DateTime<Utc>,
    audience: Audience,
) -> AppResult<Vec<SourceView>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let assignments = assignment_queries::active_for(conn, &ids)?;
    views_with(conn, actor, rows, assignments, now, audience)
}

/// The view of the source a scope entered, with the assignments the scope already loaded.
pub fn scope_view(
    conn: &mut DbConnection,
    actor: &Actor,
    scope: super::scope::SourceScope,
    now: DateTime<Utc>,
) -> AppResult<SourceView> {
    let mut views = views_with(conn, actor, vec![scope.source], scope.active, now, Audience::Reader)?;
    views.pop().ok_or_else(|| AppError::internal("source view vanished"))
}

/// [`views`] given the active assignments (with display names) of `rows`.
fn views_with(
    conn: &mut DbConnection,
    actor: &Actor,
    rows: Vec<SourceRow>,
    assignments: Vec<(AssignmentRow, String)>,
    now: DateTime<Utc>,
    audience: Audience,
) -> AppResult<Vec<SourceView>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut active: HashMap<String, Vec<AssignmentSummary>> = HashMap::new();
    for (row, display_name) in assignments {
        let view = crate::assignments::model::AssignmentView::from_row(&row, display_name);
        active.entry(row.source_id.clone()).or_default().push(AssignmentSummary {
            id: view.id,
            user_id: view.user_id,
            display_name: view.display_name,
            role: view.role,
            started_at: view.started_at,
        });
    }
    let mut in_force: HashMap<String, AuthorisationSummary> = HashMap::new();
    for a in authorisation_queries::current_for(conn, &ids, now)? {
        if !a.in_force_at(now) {
            continue;
        }
        let candidate = AuthorisationSummary { id: a.uuid(), valid_until: a.valid_until.and_utc() };
        let keep = in_force.get(&a.source_id).is_none_or(|b| b.valid_until < candidate.valid_until);
        if keep {
            in_force.insert(a.source_id.clone(), candidate);
        }
    }
    let mut latest_reviews = crate::reviews::queries::latest_for(conn, &ids)?;
    rows.into_iter()
        .map(|row| {
            let status =
                row.status().ok_or_else(|| AppError::Integrity(format!("source {} has an unknown status", row.id)))?;
            let authorisation = in_force.remove(&row.id);
            let mut flags = Vec::new();
            if row.duplicate_suspected && audience == Audience::Reader && may_see_deconfliction(actor, &row.unit) {
                flags.push("duplicate_suspected");
            }
            if row.status_drift {
                flags.push("status_drift");
            }
            if row.reactivated {
                flags.push("reactivated");
            }
            let review = latest_reviews.remove(&row.id);
            if review.as_ref().is_some_and(|r| r.next_review_due.and_utc() < now) {
                flags.push("review_overdue");
            }
            if status == SourceStatus::Active && authorisation.is_none() {
                flags.push("authorisation_expired");
            }
            Ok(SourceView {
                id: row.uuid(),
                assignments: active.remove(&row.id).unwrap_or_default(),
                authorisation,
                reliability: review.map(|r| super::model::ReliabilitySummary {
                    scheme: r.scheme,
                    grade: r.grade,
                    reviewed_at: r.reviewed_at.and_utc(),
                }),
                urn: row.urn,
                pseudonym: row.pseudonym,
                unit: row.unit,
                status,
                risk_level: row.risk_level,
                juvenile: row.juvenile,
                registered_at: row.registered_at.and_utc(),
                registered_by: Uuid::parse_str(&row.registered_by).unwrap_or(Uuid::nil()),
                flags,
            })
        })
        .collect()
}

/// Sources the caller may know, newest registration first; keyset on (registered_at, id).
pub fn list(
    conn: &mut DbConnection,
    scope: &ListScope,
    status: Option<SourceStatus>,
    page: &Page,
) -> AppResult<Vec<SourceRow>> {
    let mut q = sources::table.select(SourceRow::as_select()).filter(sources::unit.eq(scope.unit.clone())).into_boxed();
    if scope.only_assigned {
        let assigned = assignments::table
            .filter(assignments::user_id.eq(scope.user_id.to_string()))
            .filter(assignments::ended_at.is_null())
            .filter(assignments::role.eq_any(["handler", "co_handler"]))
            .select(assignments::source_id);
        q = q.filter(sources::id.eq_any(assigned));
    }
    if let Some(s) = status {
        q = q.filter(sources::status.eq(s.as_str()));
    }
    if let Some(after) = &page.after {
        let at = DateTime::from_timestamp_micros(after.k)
            .ok_or_else(|| AppError::field("cursor", "is not a valid cursor"))?;
        let at = to_db(at);
        q = q.filter(
            sources::registered_at.lt(at).or(sources::registered_at.eq(at).and(sources::id.lt(after.id.clone()))),
        );
    }
    Ok(q.order((sources::registered_at.desc(), sources::id.desc())).limit(page.limit + 1).load(conn)?)
}

pub fn cursor_key(row: &SourceRow) -> CursorKey {
    CursorKey { k: row.registered_at.and_utc().timestamp_micros(), id: row.id.clone() }
}

/// Stores the source's blind index and, if another source (any unit) has the same one, flags
/// both `duplicate_suspected` and records a `source.deconfliction.match` event naming both.
/// The flag is shown only to controllers of each unit, never in the registration response.
pub fn deconflict(
    conn: &mut DbConnection,
    ctx: &RequestContext,
    actor: &Actor,
    source_id: &str,
    index: Option<u32>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let index = index.map(i64::from);
    diesel::update(sources::table.find(source_id)).set(sources::blind_index.eq(index)).execute(conn)?;
    let Some(index) = index else { return Ok(()) };
    let others: Vec<String> = sources::table
        .filter(sources::blind_index.eq(index))
        .filter(sources::id.ne(source_id))
        .select(sources::id)
        .load(conn)?;
    if others.is_empty() {
        return Ok(());
    }
    let mut flagged = others.clone();
    flagged.push(source_id.to_string());
    diesel::update(sources::table.filter(sources::id.eq_any(&flagged)))
        .set(sources::duplicate_suspected.eq(true))
        .execute(conn)?;
    for other in others {
        let event = Event::by(actor, "source.deconfliction.match", Outcome::Allowed)
            .resource("source", Some(other))
            .source(source_id)
            .reason("blind_index_match");
        audit::append(conn, ctx, event, now)?;
    }
    Ok(())
}

pub fn set_status(
    conn: &mut DbConnection,
    source_id: &str,
    to: SourceStatus,
    reactivated: bool,
    now: DateTime<Utc>,
) -> AppResult<()> {
    diesel::update(sources::table.find(source_id))
        .set((sources::status.eq(to.as_str()), sources::updated_at.eq(to_db(now))))
        .execute(conn)?;
    if reactivated {
        diesel::update(sources::table.find(source_id)).set(sources::reactivated.eq(true)).execute(conn)?;
    }
    Ok(())
}

/// One recorded status change; the reason is sealed under the source's data key.
pub struct StatusChange<'a> {
    pub source_id: Uuid,
    pub from: SourceStatus,
    pub to: SourceStatus,
    pub reason: &'a str,
    pub by: Uuid,
}

pub fn record_status_change(
    conn: &mut DbConnection,
    key: &crate::crypto::DataKey,
    change: StatusChange,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let StatusChange { source_id, from, to, reason, by } = change;
    use crate::db::schema::source_status_changes as ssc;
    let id = Uuid::new_v4();
    let sealed_reason =
        crate::sealed::seal(key, crate::sealed::Place::new("source_status_changes", "reason", id), reason)?;
    diesel::insert_into(ssc::table)
        .values((
            ssc::id.eq(id.to_string()),
            ssc::source_id.eq(source_id.to_string()),
            ssc::from_status.eq(from.as_str()),
            ssc::to_status.eq(to.as_str()),
            ssc::reason.eq(sealed_reason),
            ssc::changed_by.eq(by.to_string()),
            ssc::changed_at.eq(to_db(now)),
        ))
        .execute(conn)?;
    Ok(())
}
