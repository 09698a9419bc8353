//! Storing and reading contacts. Every free-text value and every item's content is sealed under
//! the source's data key, bound to its table, column and row; a page of contacts is read in
//! three queries (contacts, their items, their amendments) and opened with one data key.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use super::model::{AmendmentRow, AmendmentView, ContactRow, ContactView, GradingView, ItemRow, ItemView, NewContact};
use crate::authorisations::queries as authorisation_queries;
use crate::crypto::DataKey;
use crate::db::DbConnection;
use crate::db::schema::{contact_amendments, contacts, intelligence_items, sources};
use crate::error::{AppError, AppResult};
use crate::http::pagination::{CursorKey, Page};
use crate::sealed::{self, Place};
use crate::time::to_db;

fn id_of(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or(Uuid::nil())
}

/// Was no authorisation of the source in force at `t`? (In force: `valid_from ≤ t <
/// min(valid_until, cancelled_at)`.)
pub fn is_status_drift(conn: &mut DbConnection, source_id: &str, t: DateTime<Utc>) -> AppResult<bool> {
    let all = authorisation_queries::list(conn, source_id)?;
    Ok(!all.iter().any(|a| a.in_force_at(t)))
}

/// The source keeps `status_drift` for good once any of its contacts drifted.
pub fn flag_source_drift(conn: &mut DbConnection, source_id: &str) -> AppResult<()> {
    diesel::update(sources::table.find(source_id)).set(sources::status_drift.eq(true)).execute(conn)?;
    Ok(())
}

pub fn insert(
    conn: &mut DbConnection,
    key: &DataKey,
    source_id: Uuid,
    input: &NewContact,
    by: Uuid,
    drift: bool,
    now: DateTime<Utc>,
) -> AppResult<(ContactRow, Vec<ItemRow>)> {
    let id = Uuid::new_v4();
    let place = |column| Place::new("contacts", column, id);
    let row = ContactRow {
        id: id.to_string(),
        source_id: source_id.to_string(),
        occurred_at: to_db(input.occurred_at),
        effective_occurred_at: to_db(input.occurred_at),
        duration_minutes: input.duration_minutes,
        contact_type: input.contact_type.as_str().to_string(),
        location: sealed::seal(key, place("location"), &input.location)?,
        summary: sealed::seal(key, place("summary"), &input.summary)?,
        tasking: sealed::seal(key, place("tasking"), &input.tasking)?,
        welfare_concerns: sealed::seal(key, place("welfare_concerns"), &input.welfare_concerns)?,
        recorded_by: by.to_string(),
        recorded_at: to_db(now),
        status_drift: drift,
    };
    diesel::insert_into(contacts::table).values(&row).execute(conn)?;
    let mut items = Vec::with_capacity(input.intelligence.len());
    for (position, item) in input.intelligence.iter().enumerate() {
        let item_id = Uuid::new_v4();
        let g = &item.grading;
        let conditions = match &g.handling_conditions {
            Some(c) => Some(sealed::seal(key, Place::new("intelligence_items", "handling_conditions", item_id), c)?),
            None => None,
        };
        items.push(ItemRow {
            id: item_id.to_string(),
            contact_id: row.id.clone(),
            source_id: row.source_id.clone(),
            position: i32::try_from(position).unwrap_or(i32::MAX),
            content: sealed::seal(key, Place::new("intelligence_items", "content", item_id), &item.content)?,
            scheme: g.scheme.as_str().to_string(),
            source_grade: g.source.clone(),
            information_grade: g.information.clone(),
            handling: g.handling.clone(),
            handling_conditions: conditions,
        });
    }
    // One statement per item: the multi-backend connection has no batch insert.
    for item in &items {
        diesel::insert_into(intelligence_items::table).values(item).execute(conn)?;
    }
    Ok((row, items))
}

/// The view of a contact just inserted, from the rows written (no amendments yet): opening
/// them also proves they were sealed where they are stored.
pub fn new_view(key: &DataKey, row: &ContactRow, items: &[ItemRow]) -> AppResult<ContactView> {
    view(key, row, items, &[])
}

pub fn find(conn: &mut DbConnection, id: &str) -> AppResult<Option<ContactRow>> {
    Ok(contacts::table.find(id).select(ContactRow::as_select()).first(conn).optional()?)
}

pub fn source_of(conn: &mut DbConnection, contact_id: &str) -> AppResult<Option<String>> {
    Ok(contacts::table.find(contact_id).select(contacts::source_id).first(conn).optional()?)
}

/// Newest `occurred_at` first; ties broken by id so a keyset cursor visits each contact once.
pub fn page(conn: &mut DbConnection, source_id: &str, page: &Page) -> AppResult<Vec<ContactRow>> {
    let mut q = contacts::table
        .select(ContactRow::as_select())
        .filter(contacts::source_id.eq(source_id.to_string()))
        .into_boxed();
    if let Some(after) = &page.after {
        let at = DateTime::from_timestamp_micros(after.k)
            .ok_or_else(|| AppError::field("cursor", "is not a valid cursor"))?;
        let at = to_db(at);
        q = q.filter(
            contacts::effective_occurred_at
                .lt(at)
                .or(contacts::effective_occurred_at.eq(at).and(contacts::id.lt(after.id.clone()))),
        );
    }
    Ok(q.order((contacts::effective_occurred_at.desc(), contacts::id.desc())).limit(page.limit + 1).load(conn)?)
}

pub fn cursor_key(row: &ContactRow) -> CursorKey {
    CursorKey { k: row.effective_occurred_at.and_utc().timestamp_micros(), id: row.id.clone() }
}

/// Views of `rows`, with items and amendments loaded for all of them at once.
pub fn views(conn: &mut DbConnection, key: &DataKey, rows: &[ContactRow]) -> AppResult<Vec<ContactView>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut items: HashMap<String, Vec<ItemRow>> = HashMap::new();
    let mut amendments: HashMap<String, Vec<AmendmentRow>> = HashMap::new();
    if !ids.is_empty() {
        let loaded: Vec<ItemRow> = intelligence_items::table
            .filter(intelligence_items::contact_id.eq_any(&ids))
            .order((intelligence_items::contact_id.asc(), intelligence_items::position.asc()))
            .select(ItemRow::as_select())
            .load(conn)?;
        for item in loaded {
            items.entry(item.contact_id.clone()).or_default().push(item);
        }
        let loaded: Vec<AmendmentRow> = contact_amendments::table
            .filter(contact_amendments::contact_id.eq_any(&ids))
            .order((contact_amendments::amended_at.asc(), contact_amendments::id.asc()))
            .select(AmendmentRow::as_select())
            .load(conn)?;
        for amendment in loaded {
            amendments.entry(amendment.contact_id.clone()).or_default().push(amendment);
        }
    }
    rows.iter()
        .map(|row| {
            let items = items.remove(&row.id).unwrap_or_default();
            let amendments = amendments.remove(&row.id).unwrap_or_default();
            view(key, row, &items, &amendments)
        })
        .collect()
}

fn item_view(key: &DataKey, item: &ItemRow) -> AppResult<ItemView> {
    let id = id_of(&item.id);
    let conditions = match &item.handling_conditions {
        Some(blob) => Some(sealed::open(key, Place::new("intelligence_items", "handling_conditions", id), blob)?),
        None => None,
    };
    Ok(ItemView {
        id,
        content: sealed::open(key, Place::new("intelligence_items", "content", id), &item.content)?,
        grading: GradingView {
            scheme: item.scheme.clone(),
            source: item.source_grade.clone(),
            information: item.information_grade.clone(),
            handling: item.handling.clone(),
            handling_conditions: conditions,
        },
    })
}

pub fn amendment_view(key: &DataKey, a: &AmendmentRow) -> AppResult<AmendmentView> {
    let id = id_of(&a.id);
    let place = |column| Place::new("contact_amendments", column, id);
    Ok(AmendmentView {
        id,
        field: a.field.clone(),
        previous_value: sealed::open(key, place("previous_value"), &a.previous_value)?,
        new_value: sealed::open(key, place("new_value"), &a.new_value)?,
        reason: sealed::open(key, place("reason"), &a.reason)?,
        amended_by: id_of(&a.amended_by),
        amended_at: a.amended_at.and_utc(),
    })
}

/// The original values, with each amendment applied in order on top.
fn view(key: &DataKey, row: &ContactRow, items: &[ItemRow], amendments: &[AmendmentRow]) -> AppResult<ContactView> {
    let id = row.uuid();
    let place = |column| Place::new("contacts", column, id);
    let mut view = ContactView {
        id,
        source_id: id_of(&row.source_id),
        occurred_at: row.occurred_at.and_utc(),
        duration_minutes: row.duration_minutes,
        contact_type: row.contact_type.clone(),
        location: sealed::open(key, place("location"), &row.location)?,
        summary: sealed::open(key, place("summary"), &row.summary)?,
        tasking: sealed::open(key, place("tasking"), &row.tasking)?,
        welfare_concerns: sealed::open(key, place("welfare_concerns"), &row.welfare_concerns)?,
        recorded_by: id_of(&row.recorded_by),
        recorded_at: row.recorded_at.and_utc(),
        flags: if row.status_drift { vec!["status_drift"] } else { Vec::new() },
        intelligence: items.iter().map(|i| item_view(key, i)).collect::<AppResult<_>>()?,
        amendments: amendments.iter().map(|a| amendment_view(key, a)).collect::<AppResult<_>>()?,
    };
    let changes: Vec<(String, Value)> =
        view.amendments.iter().map(|a| (a.field.clone(), a.new_value.clone())).collect();
    for (field, value) in changes {
        apply(&mut view, &field, value)?;
    }
    Ok(view)
}

/// The current value of an amendable field, as JSON.
pub fn current(view: &ContactView, field: &str) -> AppResult<Value> {
    let value = match field {
        "occurred_at" => Value::String(crate::time::format_api(&view.occurred_at)),
        "duration_minutes" => serde_json::to_value(view.duration_minutes).map_err(AppError::internal)?,
        "contact_type" => Value::String(view.contact_type.clone()),
        "location" => serde_json::to_value(&view.location).map_err(AppError::internal)?,
        "summary" => Value::String(view.summary.clone()),
        "tasking" => serde_json::to_value(&view.tasking).map_err(AppError::internal)?,
        "welfare_concerns" => serde_json::to_value(&view.welfare_concerns).map_err(AppError::internal)?,
        _ => return Err(AppError::Integrity(format!("amendment of unknown field {field}"))),
    };
    Ok(value)
}

fn apply(view: &mut ContactView, field: &str, value: Value) -> AppResult<()> {
    let bad = || AppError::Integrity(format!("amendment of {field} on contact {} holds an invalid value", view.id));
    match field {
        "occurred_at" => {
            let s = value.as_str().ok_or_else(bad)?;
            view.occurred_at = DateTime::parse_from_rfc3339(s).map_err(|_| bad())?.with_timezone(&Utc);
        }
        "duration_minutes" => view.duration_minutes = serde_json::from_value(value).map_err(|_| bad())?,
        "contact_type" => view.contact_type = value.as_str().ok_or_else(bad)?.to_string(),
        "location" => view.location = serde_json::from_value(value).map_err(|_| bad())?,
        "summary" => view.summary = value.as_str().ok_or_else(bad)?.to_string(),
        "tasking" => view.tasking = serde_json::from_value(value).map_err(|_| bad())?,
        "welfare_concerns" => view.welfare_concerns = serde_json::from_value(value).map_err(|_| bad())?,
        _ => return Err(bad()),
    }
    Ok(())
}

pub struct NewAmendment<'a> {
    pub contact: &'a ContactRow,
    pub field: &'a str,
    pub previous: &'a Value,
    pub new: &'a Value,
    pub reason: &'a str,
    pub by: Uuid,
}

pub fn insert_amendment(
    conn: &mut DbConnection,
    key: &DataKey,
    a: NewAmendment,
    now: DateTime<Utc>,
) -> AppResult<AmendmentRow> {
    let id = Uuid::new_v4();
    let place = |column| Place::new("contact_amendments", column, id);
    let row = AmendmentRow {
        id: id.to_string(),
        contact_id: a.contact.id.clone(),
        field: a.field.to_string(),
        previous_value: sealed::seal(key, place("previous_value"), a.previous)?,
        new_value: sealed::seal(key, place("new_value"), a.new)?,
        reason: sealed::seal(key, place("reason"), a.reason)?,
        amended_by: a.by.to_string(),
        amended_at: to_db(now),
    };
    diesel::insert_into(contact_amendments::table).values(&row).execute(conn)?;
    Ok(row)
}

/// After an amendment of `occurred_at`: the effective time (for ordering) and the contact's
/// drift flag follow the new value. The original columns are untouched.
pub fn set_effective_time(conn: &mut DbConnection, contact_id: &str, t: DateTime<Utc>, drift: bool) -> AppResult<()> {
    diesel::update(contacts::table.find(contact_id))
        .set((contacts::effective_occurred_at.eq(to_db(t)), contacts::status_drift.eq(drift)))
        .execute(conn)?;
    Ok(())
}
