//! Queries on authorisations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::model::{AuthorisationRow, AuthorisationView};
use crate::crypto::DataKey;
use crate::db::DbConnection;
use crate::db::schema::authorisations;
use crate::error::AppResult;
use crate::sealed::{self, Place};
use crate::time::to_db;

const TABLE: &str = "authorisations";

pub struct NewAuthorisation<'a> {
    pub source_id: Uuid,
    pub purpose: &'a str,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub granted_by: Uuid,
}

pub fn create(
    conn: &mut DbConnection,
    key: &DataKey,
    new: NewAuthorisation,
    now: DateTime<Utc>,
) -> AppResult<AuthorisationRow> {
    let id = Uuid::new_v4();
    let row = AuthorisationRow {
        id: id.to_string(),
        source_id: new.source_id.to_string(),
        purpose: sealed::seal(key, Place::new(TABLE, "purpose", id), new.purpose)?,
        valid_from: to_db(new.valid_from),
        valid_until: to_db(new.valid_until),
        granted_by: new.granted_by.to_string(),
        granted_at: to_db(now),
        cancelled_at: None,
        cancelled_by: None,
        cancel_reason: None,
    };
    diesel::insert_into(authorisations::table).values(&row).execute(conn)?;
    Ok(row)
}

pub fn find(conn: &mut DbConnection, source_id: &str, id: &str) -> AppResult<Option<AuthorisationRow>> {
    Ok(authorisations::table
        .filter(authorisations::id.eq(id))
        .filter(authorisations::source_id.eq(source_id))
        .select(AuthorisationRow::as_select())
        .first(conn)
        .optional()?)
}

/// Newest `valid_from` first.
pub fn list(conn: &mut DbConnection, source_id: &str) -> AppResult<Vec<AuthorisationRow>> {
    Ok(authorisations::table
        .filter(authorisations::source_id.eq(source_id))
        .order((authorisations::valid_from.desc(), authorisations::id.desc()))
        .select(AuthorisationRow::as_select())
        .load(conn)?)
}

/// Cancels if not cancelled yet; returns whether it did.
pub fn cancel(
    conn: &mut DbConnection,
    key: &DataKey,
    id: Uuid,
    reason: &str,
    by: Uuid,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let sealed_reason = sealed::seal(key, Place::new(TABLE, "cancel_reason", id), reason)?;
    let n = diesel::update(
        authorisations::table
            .filter(authorisations::id.eq(id.to_string()))
            .filter(authorisations::cancelled_at.is_null()),
    )
    .set((
        authorisations::cancelled_at.eq(to_db(now)),
        authorisations::cancelled_by.eq(by.to_string()),
        authorisations::cancel_reason.eq(sealed_reason),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Authorisations of several sources that may be in force at `at` (for views and lists); the
/// caller applies [`AuthorisationRow::in_force_at`].
pub fn current_for(
    conn: &mut DbConnection,
    source_ids: &[String],
    at: DateTime<Utc>,
) -> AppResult<Vec<AuthorisationRow>> {
    let at = to_db(at);
    let current = authorisations::table
        .filter(authorisations::valid_from.le(at))
        .filter(authorisations::valid_until.gt(at))
        .select(AuthorisationRow::as_select());
    Ok(match source_ids {
        [] => Vec::new(),
        // One source: a statement SQLite keeps prepared (see `assignments::queries::active_for`).
        [one] => current.filter(authorisations::source_id.eq(one)).load(conn)?,
        many => current.filter(authorisations::source_id.eq_any(many)).load(conn)?,
    })
}

pub fn in_force(conn: &mut DbConnection, source_id: &str, at: DateTime<Utc>) -> AppResult<bool> {
    Ok(current_for(conn, &[source_id.to_string()], at)?.iter().any(|a| a.in_force_at(at)))
}

pub fn view(key: &DataKey, row: &AuthorisationRow) -> AppResult<AuthorisationView> {
    let id = row.uuid();
    let cancel_reason = match &row.cancel_reason {
        Some(blob) => Some(sealed::open(key, Place::new(TABLE, "cancel_reason", id), blob)?),
        None => None,
    };
    Ok(AuthorisationView {
        id,
        purpose: sealed::open(key, Place::new(TABLE, "purpose", id), &row.purpose)?,
        valid_from: row.valid_from.and_utc(),
        valid_until: row.valid_until.and_utc(),
        granted_by: Uuid::parse_str(&row.granted_by).unwrap_or(Uuid::nil()),
        cancelled_at: row.cancelled_at.map(|t| t.and_utc()),
        cancel_reason,
    })
}
