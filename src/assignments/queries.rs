//! Queries on assignments. History is never overwritten: ending an assignment sets `ended_at`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::model::{AssignmentRole, AssignmentRow};
use crate::db::DbConnection;
use crate::db::schema::{assignments, users};
use crate::error::{AppError, AppResult};
use crate::time::to_db;
use crate::users::model::UserRow;

/// Full history of one source, newest first, with the assignees' display names.
pub fn history(conn: &mut DbConnection, source_id: &str) -> AppResult<Vec<(AssignmentRow, String)>> {
    Ok(assignments::table
        .inner_join(users::table.on(users::id.eq(assignments::user_id)))
        .filter(assignments::source_id.eq(source_id))
        .order((assignments::started_at.desc(), assignments::id.desc()))
        .select((AssignmentRow::as_select(), users::display_name))
        .load(conn)?)
}

/// Active assignments of several sources in one query (for source views and lists).
pub fn active_for(conn: &mut DbConnection, source_ids: &[String]) -> AppResult<Vec<(AssignmentRow, String)>> {
    let active = assignments::table
        .inner_join(users::table.on(users::id.eq(assignments::user_id)))
        .filter(assignments::ended_at.is_null())
        .order((assignments::started_at.asc(), assignments::id.asc()))
        .select((AssignmentRow::as_select(), users::display_name));
    Ok(match source_ids {
        [] => Vec::new(),
        // One source (every source-scoped request): a statement SQLite keeps prepared, where an
        // `IN (...)` list is parsed and planned again on every call.
        [one] => active.filter(assignments::source_id.eq(one)).load(conn)?,
        many => active.filter(assignments::source_id.eq_any(many)).load(conn)?,
    })
}

pub fn create(
    conn: &mut DbConnection,
    source_id: &str,
    user_id: &str,
    role: AssignmentRole,
    by: Uuid,
    now: DateTime<Utc>,
) -> AppResult<AssignmentRow> {
    let duplicate: i64 = assignments::table
        .filter(assignments::source_id.eq(source_id))
        .filter(assignments::user_id.eq(user_id))
        .filter(assignments::role.eq(role.as_str()))
        .filter(assignments::ended_at.is_null())
        .count()
        .get_result(conn)?;
    if duplicate > 0 {
        return Err(AppError::Conflict("the user already holds this assignment".into()));
    }
    let row = AssignmentRow {
        id: Uuid::new_v4().to_string(),
        source_id: source_id.to_string(),
        user_id: user_id.to_string(),
        role: role.as_str().to_string(),
        started_at: to_db(now),
        ended_at: None,
        assigned_by: by.to_string(),
        ended_by: None,
    };
    diesel::insert_into(assignments::table).values(&row).execute(conn)?;
    Ok(row)
}

pub fn find(conn: &mut DbConnection, source_id: &str, id: &str) -> AppResult<Option<AssignmentRow>> {
    Ok(assignments::table
        .filter(assignments::id.eq(id))
        .filter(assignments::source_id.eq(source_id))
        .select(AssignmentRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn end(conn: &mut DbConnection, id: &str, by: Uuid, now: DateTime<Utc>) -> AppResult<bool> {
    let n = diesel::update(assignments::table.filter(assignments::id.eq(id)).filter(assignments::ended_at.is_null()))
        .set((assignments::ended_at.eq(to_db(now)), assignments::ended_by.eq(by.to_string())))
        .execute(conn)?;
    Ok(n == 1)
}

/// Ends, in the caller's transaction, every active assignment of `user` that no longer fits:
/// a disabled user, a role the user no longer holds, or a source outside the user's unit.
/// Returns the ended rows (the caller audits them).
pub fn end_unfit(
    conn: &mut DbConnection,
    user: &UserRow,
    by: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Vec<AssignmentRow>> {
    use crate::db::schema::sources;
    let active: Vec<(AssignmentRow, String)> = assignments::table
        .inner_join(sources::table)
        .filter(assignments::user_id.eq(&user.id))
        .filter(assignments::ended_at.is_null())
        .select((AssignmentRow::as_select(), sources::unit))
        .load(conn)?;
    let roles = user.roles();
    let mut ended = Vec::new();
    for (row, unit) in active {
        let fits = !user.disabled
            && unit == user.unit
            && row.role.parse::<AssignmentRole>().is_ok_and(|r| roles.contains(r.required_user_role()));
        if !fits && end(conn, &row.id, by, now)? {
            ended.push(row);
        }
    }
    Ok(ended)
}
