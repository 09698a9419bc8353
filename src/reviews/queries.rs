//! Queries on reviews.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::model::{NewReview, ReviewRow, ReviewView};
use crate::crypto::DataKey;
use crate::db::DbConnection;
use crate::db::schema::reviews;
use crate::error::AppResult;
use crate::sealed::{self, Place};
use crate::time::to_db;

pub fn insert(
    conn: &mut DbConnection,
    key: &DataKey,
    source_id: Uuid,
    input: &NewReview,
    by: Uuid,
    now: DateTime<Utc>,
) -> AppResult<ReviewRow> {
    let id = Uuid::new_v4();
    let row = ReviewRow {
        id: id.to_string(),
        source_id: source_id.to_string(),
        scheme: input.scheme.as_str().to_string(),
        grade: input.grade.clone(),
        rationale: sealed::seal(key, Place::new("reviews", "rationale", id), &input.rationale)?,
        reviewed_by: by.to_string(),
        reviewed_at: to_db(now),
        next_review_due: to_db(input.next_review_due),
    };
    diesel::insert_into(reviews::table).values(&row).execute(conn)?;
    Ok(row)
}

/// Newest first.
pub fn history(conn: &mut DbConnection, source_id: &str) -> AppResult<Vec<ReviewRow>> {
    Ok(reviews::table
        .filter(reviews::source_id.eq(source_id))
        .order((reviews::reviewed_at.desc(), reviews::id.desc()))
        .select(ReviewRow::as_select())
        .load(conn)?)
}

/// The latest review of each of `source_ids` (for views, lists and due dates), in one query.
pub fn latest_for(conn: &mut DbConnection, source_ids: &[String]) -> AppResult<HashMap<String, ReviewRow>> {
    let mut latest: HashMap<String, ReviewRow> = HashMap::new();
    let all = reviews::table.order((reviews::reviewed_at.asc(), reviews::id.asc())).select(ReviewRow::as_select());
    let rows: Vec<ReviewRow> = match source_ids {
        [] => return Ok(latest),
        // One source: a statement SQLite keeps prepared (see `assignments::queries::active_for`).
        [one] => all.filter(reviews::source_id.eq(one)).load(conn)?,
        many => all.filter(reviews::source_id.eq_any(many)).load(conn)?,
    };
    for row in rows {
        latest.insert(row.source_id.clone(), row);
    }
    Ok(latest)
}

pub fn view(key: &DataKey, row: &ReviewRow) -> AppResult<ReviewView> {
    let id = Uuid::parse_str(&row.id).unwrap_or(Uuid::nil());
    Ok(ReviewView {
        id,
        scheme: row.scheme.clone(),
        grade: row.grade.clone(),
        rationale: sealed::open(key, Place::new("reviews", "rationale", id), &row.rationale)?,
        reviewed_by: Uuid::parse_str(&row.reviewed_by).unwrap_or(Uuid::nil()),
        reviewed_at: row.reviewed_at.and_utc(),
        next_review_due: row.next_review_due.and_utc(),
    })
}
