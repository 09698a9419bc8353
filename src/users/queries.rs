//! Queries on users.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::model::{Roles, UserRow};
use crate::auth::sessions::{self, RevokeReason};
use crate::db::schema::users;
use crate::db::{DbConnection, is_unique_violation};
use crate::error::{AppError, AppResult};
use crate::http::pagination::{CursorKey, Page};
use crate::time::to_db;

pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Roles,
    pub unit: String,
}

/// Creates a user who must change the password at first login (API.md).
pub fn insert(conn: &mut DbConnection, new: NewUser, now: DateTime<Utc>) -> AppResult<UserRow> {
    let row = UserRow {
        id: Uuid::new_v4().to_string(),
        username: new.username,
        display_name: new.display_name,
        password_hash: new.password_hash,
        roles: new.roles.to_column(),
        unit: new.unit,
        disabled: false,
        password_change_required: true,
        created_at: to_db(now),
        updated_at: to_db(now),
    };
    match diesel::insert_into(users::table).values(&row).execute(conn) {
        Ok(_) => Ok(row),
        Err(e) if is_unique_violation(&e) => Err(AppError::Conflict("username already exists".into())),
        Err(e) => Err(e.into()),
    }
}

pub fn find(conn: &mut DbConnection, id: Uuid) -> AppResult<Option<UserRow>> {
    Ok(users::table.find(id.to_string()).select(UserRow::as_select()).first(conn).optional()?)
}

pub fn count(conn: &mut DbConnection) -> AppResult<i64> {
    Ok(users::table.count().get_result(conn)?)
}

/// Newest first; keyset on (created_at, id).
pub fn list(conn: &mut DbConnection, page: &Page) -> AppResult<Vec<UserRow>> {
    let mut query = users::table.select(UserRow::as_select()).into_boxed();
    if let Some(after) = &page.after {
        let at = DateTime::from_timestamp_micros(after.k)
            .ok_or_else(|| AppError::field("cursor", "is not a valid cursor"))?;
        let at = to_db(at);
        query = query.filter(users::created_at.lt(at).or(users::created_at.eq(at).and(users::id.lt(after.id.clone()))));
    }
    Ok(query.order((users::created_at.desc(), users::id.desc())).limit(page.limit + 1).load(conn)?)
}

pub fn cursor_key(u: &UserRow) -> CursorKey {
    CursorKey { k: u.created_at.and_utc().timestamp_micros(), id: u.id.clone() }
}

#[derive(Default)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub roles: Option<Roles>,
    pub unit: Option<String>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

impl UserChanges {
    /// Which fields changed, for the audit event (names and non-secret values only).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.display_name.is_some() {
            parts.push("display_name".to_string());
        }
        if let Some(r) = &self.roles {
            parts.push(format!("roles={r}"));
        }
        if let Some(u) = &self.unit {
            parts.push(format!("unit={u}"));
        }
        if let Some(d) = self.disabled {
            parts.push(format!("disabled={d}"));
        }
        if self.password_hash.is_some() {
            parts.push("password_reset".to_string());
        }
        parts.join(";")
    }
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct UserChangeset {
    display_name: Option<String>,
    roles: Option<String>,
    unit: Option<String>,
    disabled: Option<bool>,
    password_hash: Option<String>,
    password_change_required: Option<bool>,
    updated_at: chrono::NaiveDateTime,
}

/// Applies `changes`; disabling or resetting the password ends the user's sessions in the same
/// transaction, so the next request with any of their tokens gets 401.
pub fn update(
    conn: &mut DbConnection,
    id: Uuid,
    changes: UserChanges,
    now: DateTime<Utc>,
) -> AppResult<Option<UserRow>> {
    let ends_sessions = changes.disabled == Some(true) || changes.password_hash.is_some();
    let reset = changes.password_hash.is_some();
    let set = UserChangeset {
        display_name: changes.display_name,
        roles: changes.roles.map(|r| r.to_column()),
        unit: changes.unit,
        disabled: changes.disabled,
        password_hash: changes.password_hash,
        password_change_required: reset.then_some(true),
        updated_at: to_db(now),
    };
    let n = diesel::update(users::table.find(id.to_string())).set(&set).execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    if ends_sessions {
        sessions::revoke_all_for_user(conn, id, None, RevokeReason::UserDisabled, now)?;
    }
    find(conn, id)
}

/// For operator-created users whose password the operator chose and handed over in person.
pub fn clear_password_change(conn: &mut DbConnection, id: &str) -> AppResult<UserRow> {
    diesel::update(users::table.find(id)).set(users::password_change_required.eq(false)).execute(conn)?;
    Ok(users::table.find(id).select(UserRow::as_select()).first(conn)?)
}
