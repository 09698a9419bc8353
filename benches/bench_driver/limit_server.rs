//! The stack's limit (issue 7): the same actix-web + diesel + r2d2 stack — humint's own pool and
//! connection type (`humint::db`: SQLite with WAL + `synchronous=FULL`, or PostgreSQL) and its
//! `write_tx` — the same schema shape and row sizes, the same writes per request with the same
//! durability (each request committed on its own: the domain row(s) and one plain event row), and
//! nothing else: no token check, no access decision, no encryption, no hashing, no chain.
//! It answers with the same data: a source read returns the source with its active assignments
//! (and their holders' display names), the authorisation in force and the latest review, as
//! humint's view does; a contact is logged knowing whether an authorisation is in force.
//! Started by the driver as `bench_driver limit-server --bind ADDR --db URL ...`.

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use diesel::prelude::*;
use humint::audit::format_at;
use humint::db::{self, Backend, DbConnection, DbPool, write_tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// Bytes a humint field ciphertext adds to its plaintext: version, key id, nonce, tag.
const ENVELOPE: usize = 1 + 16 + 12 + 16;

diesel::table! {
    sources (id) {
        id -> Text, urn -> Text, pseudonym -> Text, unit -> Text, status -> Text, risk_level -> Text,
        juvenile -> Bool, registered_at -> Timestamp, registered_by -> Text, blind_index -> Nullable<BigInt>,
        duplicate_suspected -> Bool, status_drift -> Bool, reactivated -> Bool, updated_at -> Timestamp,
    }
}
diesel::table! {
    contacts (id) {
        id -> Text, source_id -> Text, occurred_at -> Timestamp, effective_occurred_at -> Timestamp,
        duration_minutes -> Nullable<Integer>, contact_type -> Text, location -> Binary, summary -> Binary,
        tasking -> Binary, welfare_concerns -> Binary, recorded_by -> Text, recorded_at -> Timestamp,
        status_drift -> Bool,
    }
}
diesel::table! {
    intelligence_items (id) {
        id -> Text, contact_id -> Text, source_id -> Text, position -> Integer, content -> Binary, scheme -> Text,
        source_grade -> Text, information_grade -> Text, handling -> Nullable<Text>,
        handling_conditions -> Nullable<Binary>,
    }
}
diesel::table! {
    audit_events (id) {
        id -> Text, seq -> Nullable<BigInt>, at -> Text, actor_id -> Nullable<Text>, actor_username -> Nullable<Text>,
        action -> Text, resource_type -> Nullable<Text>, resource_id -> Nullable<Text>, source_id -> Nullable<Text>,
        purpose -> Nullable<Text>, outcome -> Text, reason -> Nullable<Text>, request_id -> Nullable<Text>,
        client_ip -> Nullable<Text>, prev_hash -> Nullable<Binary>, hash -> Nullable<Binary>, created_at -> Timestamp,
    }
}
diesel::table! {
    users (id) { id -> Text, username -> Text, display_name -> Text, password_hash -> Text, }
}
diesel::table! {
    assignments (id) {
        id -> Text, source_id -> Text, user_id -> Text, role -> Text, started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>, assigned_by -> Text, ended_by -> Nullable<Text>,
    }
}
diesel::table! {
    authorisations (id) {
        id -> Text, source_id -> Text, purpose -> Binary, valid_from -> Timestamp, valid_until -> Timestamp,
        granted_by -> Text, granted_at -> Timestamp, cancelled_at -> Nullable<Timestamp>,
        cancelled_by -> Nullable<Text>, cancel_reason -> Nullable<Binary>,
    }
}
diesel::table! {
    reviews (id) {
        id -> Text, source_id -> Text, scheme -> Text, grade -> Text, rationale -> Binary, reviewed_by -> Text,
        reviewed_at -> Timestamp, next_review_due -> Timestamp,
    }
}
diesel::table! {
    sessions (id) { id -> Text, user_id -> Text, created_at -> Timestamp, last_seen_at -> Timestamp, }
}
diesel::allow_tables_to_appear_in_same_query!(
    sources,
    contacts,
    intelligence_items,
    audit_events,
    users,
    sessions,
    assignments,
    authorisations,
    reviews
);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY NOT NULL, username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL, password_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL, last_seen_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS audit_events (id TEXT PRIMARY KEY NOT NULL, seq BIGINT UNIQUE, at TEXT NOT NULL,
    actor_id TEXT, actor_username TEXT, action TEXT NOT NULL, resource_type TEXT, resource_id TEXT, source_id TEXT,
    purpose TEXT, outcome TEXT NOT NULL, reason TEXT, request_id TEXT, client_ip TEXT, prev_hash BLOB, hash BLOB,
    created_at TIMESTAMP NOT NULL);
CREATE INDEX IF NOT EXISTS audit_events_unchained ON audit_events (created_at, id) WHERE seq IS NULL;
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX IF NOT EXISTS audit_events_source ON audit_events (source_id, seq);
CREATE INDEX IF NOT EXISTS audit_events_action ON audit_events (action, seq);
CREATE TABLE IF NOT EXISTS sources (id TEXT PRIMARY KEY NOT NULL, urn TEXT NOT NULL UNIQUE,
    pseudonym TEXT NOT NULL UNIQUE, unit TEXT NOT NULL, status TEXT NOT NULL, risk_level TEXT NOT NULL,
    juvenile BOOLEAN NOT NULL, registered_at TIMESTAMP NOT NULL, registered_by TEXT NOT NULL REFERENCES users (id),
    blind_index BIGINT, duplicate_suspected BOOLEAN NOT NULL DEFAULT 0, status_drift BOOLEAN NOT NULL DEFAULT 0,
    reactivated BOOLEAN NOT NULL DEFAULT 0, updated_at TIMESTAMP NOT NULL);
CREATE INDEX IF NOT EXISTS sources_unit ON sources (unit, registered_at);
CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY NOT NULL, source_id TEXT NOT NULL REFERENCES sources (id),
    occurred_at TIMESTAMP NOT NULL, effective_occurred_at TIMESTAMP NOT NULL, duration_minutes INTEGER,
    contact_type TEXT NOT NULL, location BLOB NOT NULL, summary BLOB NOT NULL, tasking BLOB NOT NULL,
    welfare_concerns BLOB NOT NULL, recorded_by TEXT NOT NULL REFERENCES users (id), recorded_at TIMESTAMP NOT NULL,
    status_drift BOOLEAN NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS contacts_source_time ON contacts (source_id, effective_occurred_at, id);
CREATE TABLE IF NOT EXISTS intelligence_items (id TEXT PRIMARY KEY NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts (id), source_id TEXT NOT NULL REFERENCES sources (id),
    position INTEGER NOT NULL, content BLOB NOT NULL, scheme TEXT NOT NULL, source_grade TEXT NOT NULL,
    information_grade TEXT NOT NULL, handling TEXT, handling_conditions BLOB);
CREATE INDEX IF NOT EXISTS intelligence_items_contact ON intelligence_items (contact_id, position);
CREATE INDEX IF NOT EXISTS intelligence_items_source ON intelligence_items (source_id);
CREATE TABLE IF NOT EXISTS assignments (id TEXT PRIMARY KEY NOT NULL, source_id TEXT NOT NULL REFERENCES sources (id),
    user_id TEXT NOT NULL REFERENCES users (id), role TEXT NOT NULL, started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP, assigned_by TEXT NOT NULL, ended_by TEXT);
CREATE INDEX IF NOT EXISTS assignments_source ON assignments (source_id, ended_at);
CREATE TABLE IF NOT EXISTS authorisations (id TEXT PRIMARY KEY NOT NULL,
    source_id TEXT NOT NULL REFERENCES sources (id), purpose BLOB NOT NULL, valid_from TIMESTAMP NOT NULL,
    valid_until TIMESTAMP NOT NULL, granted_by TEXT NOT NULL, granted_at TIMESTAMP NOT NULL,
    cancelled_at TIMESTAMP, cancelled_by TEXT, cancel_reason BLOB);
CREATE INDEX IF NOT EXISTS authorisations_source ON authorisations (source_id, valid_until);
CREATE TABLE IF NOT EXISTS reviews (id TEXT PRIMARY KEY NOT NULL, source_id TEXT NOT NULL REFERENCES sources (id),
    scheme TEXT NOT NULL, grade TEXT NOT NULL, rationale BLOB NOT NULL, reviewed_by TEXT NOT NULL,
    reviewed_at TIMESTAMP NOT NULL, next_review_due TIMESTAMP NOT NULL);
CREATE INDEX IF NOT EXISTS reviews_source ON reviews (source_id, reviewed_at);
";

#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = contacts)]
struct ContactRow {
    id: String,
    source_id: String,
    occurred_at: chrono::NaiveDateTime,
    effective_occurred_at: chrono::NaiveDateTime,
    duration_minutes: Option<i32>,
    contact_type: String,
    location: Vec<u8>,
    summary: Vec<u8>,
    tasking: Vec<u8>,
    welfare_concerns: Vec<u8>,
    recorded_by: String,
    recorded_at: chrono::NaiveDateTime,
    status_drift: bool,
}

#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = intelligence_items)]
struct ItemRow {
    id: String,
    contact_id: String,
    source_id: String,
    position: i32,
    content: Vec<u8>,
    scheme: String,
    source_grade: String,
    information_grade: String,
    handling: Option<String>,
    handling_conditions: Option<Vec<u8>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sources)]
struct SourceRow {
    id: String,
    urn: String,
    pseudonym: String,
    unit: String,
    status: String,
    risk_level: String,
    juvenile: bool,
    registered_at: chrono::NaiveDateTime,
    registered_by: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = assignments)]
struct AssignmentRow {
    id: String,
    user_id: String,
    role: String,
    started_at: chrono::NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = authorisations)]
struct AuthorisationRow {
    id: String,
    purpose: Vec<u8>,
    valid_from: chrono::NaiveDateTime,
    valid_until: chrono::NaiveDateTime,
    granted_by: String,
    granted_at: chrono::NaiveDateTime,
    cancelled_at: Option<chrono::NaiveDateTime>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = reviews)]
struct ReviewRow {
    id: String,
    scheme: String,
    grade: String,
    rationale: Vec<u8>,
    reviewed_by: String,
    reviewed_at: chrono::NaiveDateTime,
    next_review_due: chrono::NaiveDateTime,
}

#[derive(Deserialize)]
pub struct NewGrading {
    scheme: String,
    source: String,
    information: String,
    handling: Option<String>,
    handling_conditions: Option<String>,
}

#[derive(Deserialize)]
pub struct NewItem {
    content: String,
    grading: NewGrading,
}

#[derive(Deserialize)]
pub struct NewContact {
    occurred_at: chrono::DateTime<chrono::Utc>,
    duration_minutes: Option<i32>,
    contact_type: String,
    location: Option<String>,
    summary: String,
    tasking: Option<String>,
    welfare_concerns: Option<String>,
    intelligence: Vec<NewItem>,
}

/// The password is in the body but never looked at: no hashing here.
#[derive(Deserialize)]
pub struct Login {
    username: String,
}

#[derive(Deserialize)]
pub struct Page {
    limit: Option<i64>,
}

#[derive(Serialize)]
struct ItemView {
    id: String,
    content: String,
    grading: serde_json::Value,
}

#[derive(Serialize)]
struct ContactView {
    id: String,
    source_id: String,
    occurred_at: String,
    duration_minutes: Option<i32>,
    contact_type: String,
    location: Option<String>,
    summary: String,
    tasking: Option<String>,
    welfare_concerns: Option<String>,
    recorded_by: String,
    recorded_at: String,
    flags: Vec<&'static str>,
    intelligence: Vec<ItemView>,
    amendments: Vec<serde_json::Value>,
}

/// A value stored at the size humint's ciphertext of it would have (plaintext + envelope).
fn pad(s: &str) -> Vec<u8> {
    let mut v = vec![0u8; ENVELOPE];
    v.extend_from_slice(s.as_bytes());
    v
}

fn unpad(b: &[u8]) -> String {
    String::from_utf8_lossy(b.get(ENVELOPE..).unwrap_or_default()).into_owned()
}

fn opt(s: &Option<String>) -> Vec<u8> {
    pad(s.as_deref().unwrap_or(""))
}

fn unopt(b: &[u8]) -> Option<String> {
    let s = unpad(b);
    (!s.is_empty()).then_some(s)
}

/// Times as humint writes them (its own formatter, so neither side parses a format string).
fn ts(t: chrono::NaiveDateTime) -> String {
    format_at(&t.and_utc())
}

/// One plain event row: the same columns humint fills, no seq, no hash.
fn event(conn: &mut DbConnection, action: &str, source: Option<&str>, resource: Option<&str>) -> QueryResult<()> {
    let now = chrono::Utc::now();
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::id.eq(Uuid::new_v4().to_string()),
            audit_events::at.eq(format_at(&now)),
            audit_events::actor_id.eq(Some(Uuid::nil().to_string())),
            audit_events::actor_username.eq(Some("bench.handler")),
            audit_events::action.eq(action),
            audit_events::resource_type.eq(Some("source")),
            audit_events::resource_id.eq(resource),
            audit_events::source_id.eq(source),
            audit_events::purpose.eq(Some("OP-BENCH: benchmark load")),
            audit_events::outcome.eq("allowed"),
            audit_events::reason.eq(Some("rule:handler_assignment")),
            audit_events::request_id.eq(Some(Uuid::new_v4().to_string())),
            audit_events::client_ip.eq(Some("127.0.0.1")),
            audit_events::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
}

fn views(conn: &mut DbConnection, rows: Vec<ContactRow>) -> QueryResult<Vec<ContactView>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let items: Vec<ItemRow> = intelligence_items::table
        .filter(intelligence_items::contact_id.eq_any(&ids))
        .order((intelligence_items::contact_id, intelligence_items::position))
        .select(ItemRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| ContactView {
            intelligence: items
                .iter()
                .filter(|i| i.contact_id == r.id)
                .map(|i| ItemView {
                    id: i.id.clone(),
                    content: unpad(&i.content),
                    grading: json!({"scheme": i.scheme, "source": i.source_grade, "information": i.information_grade,
                        "handling": i.handling, "handling_conditions": i.handling_conditions.as_deref().map(unpad)}),
                })
                .collect(),
            id: r.id,
            source_id: r.source_id,
            occurred_at: ts(r.occurred_at),
            duration_minutes: r.duration_minutes,
            contact_type: r.contact_type,
            location: unopt(&r.location),
            summary: unpad(&r.summary),
            tasking: unopt(&r.tasking),
            welfare_concerns: unopt(&r.welfare_concerns),
            recorded_by: r.recorded_by,
            recorded_at: ts(r.recorded_at),
            flags: vec![],
            amendments: vec![],
        })
        .collect())
}

/// One insert per item, as humint does (no multi-row insert through the two-backend connection).
fn insert_items(conn: &mut DbConnection, items: &[ItemRow]) -> QueryResult<()> {
    for item in items {
        diesel::insert_into(intelligence_items::table).values(item).execute(conn)?;
    }
    Ok(())
}

fn contact_rows(source_id: &str, input: &NewContact, by: &str) -> (ContactRow, Vec<ItemRow>) {
    let id = Uuid::new_v4().to_string();
    let now = chrono::Utc::now().naive_utc();
    let row = ContactRow {
        id: id.clone(),
        source_id: source_id.to_string(),
        occurred_at: input.occurred_at.naive_utc(),
        effective_occurred_at: input.occurred_at.naive_utc(),
        duration_minutes: input.duration_minutes,
        contact_type: input.contact_type.clone(),
        location: opt(&input.location),
        summary: pad(&input.summary),
        tasking: opt(&input.tasking),
        welfare_concerns: opt(&input.welfare_concerns),
        recorded_by: by.to_string(),
        recorded_at: now,
        status_drift: false,
    };
    let items = input
        .intelligence
        .iter()
        .enumerate()
        .map(|(i, it)| ItemRow {
            id: Uuid::new_v4().to_string(),
            contact_id: id.clone(),
            source_id: source_id.to_string(),
            position: i as i32,
            content: pad(&it.content),
            scheme: it.grading.scheme.clone(),
            source_grade: it.grading.source.clone(),
            information_grade: it.grading.information.clone(),
            handling: it.grading.handling.clone(),
            handling_conditions: it.grading.handling_conditions.as_deref().map(pad),
        })
        .collect();
    (row, items)
}

fn fail<E: std::fmt::Display>(e: E) -> actix_web::Error {
    actix_web::error::ErrorInternalServerError(e.to_string())
}

async fn db<T: Send + 'static>(
    pool: web::Data<DbPool>,
    work: impl FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
) -> actix_web::Result<T> {
    web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        work(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(fail)?
    .map_err(fail)
}

/// The source with what humint's view carries: active assignments with their holders' display
/// names, the authorisation in force, the latest review. The same queries humint runs for it.
fn source_view(conn: &mut DbConnection, s: SourceRow) -> QueryResult<serde_json::Value> {
    let now = chrono::Utc::now().naive_utc();
    let active: Vec<(AssignmentRow, String)> = assignments::table
        .inner_join(users::table.on(users::id.eq(assignments::user_id)))
        .filter(assignments::ended_at.is_null())
        .filter(assignments::source_id.eq(&s.id))
        .order((assignments::started_at.asc(), assignments::id.asc()))
        .select((AssignmentRow::as_select(), users::display_name))
        .load(conn)?;
    let authorisation: Option<AuthorisationRow> = current_authorisation(conn, &s.id, now)?;
    let review: Option<ReviewRow> = reviews::table
        .filter(reviews::source_id.eq(&s.id))
        .order((reviews::reviewed_at.asc(), reviews::id.asc()))
        .select(ReviewRow::as_select())
        .load(conn)?
        .pop();
    let assignments: Vec<serde_json::Value> = active
        .into_iter()
        .map(|(a, display_name)| {
            json!({"id": a.id, "user_id": a.user_id, "display_name": display_name, "role": a.role,
                "started_at": ts(a.started_at)})
        })
        .collect();
    Ok(json!({"id": s.id, "urn": s.urn, "pseudonym": s.pseudonym, "unit": s.unit,
        "status": s.status, "risk_level": s.risk_level, "juvenile": s.juvenile,
        "registered_at": ts(s.registered_at), "registered_by": s.registered_by, "flags": [],
        "assignments": assignments,
        "authorisation": authorisation.map(|a| json!({"id": a.id, "purpose": unpad(&a.purpose),
            "valid_from": ts(a.valid_from), "valid_until": ts(a.valid_until), "granted_by": a.granted_by,
            "granted_at": ts(a.granted_at), "cancelled_at": a.cancelled_at.map(ts)})),
        "reliability": review.map(|r| json!({"id": r.id, "scheme": r.scheme, "grade": r.grade,
            "rationale": unpad(&r.rationale), "reviewed_by": r.reviewed_by, "reviewed_at": ts(r.reviewed_at),
            "next_review_due": ts(r.next_review_due)}))}))
}

fn current_authorisation(
    conn: &mut DbConnection,
    source_id: &str,
    now: chrono::NaiveDateTime,
) -> QueryResult<Option<AuthorisationRow>> {
    let rows: Vec<AuthorisationRow> = authorisations::table
        .filter(authorisations::valid_from.le(now))
        .filter(authorisations::valid_until.gt(now))
        .filter(authorisations::source_id.eq(source_id))
        .select(AuthorisationRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().find(|a| a.cancelled_at.is_none()))
}

async fn get_source(pool: web::Data<DbPool>, id: web::Path<String>) -> actix_web::Result<HttpResponse> {
    let id = id.into_inner();
    let found = db(pool, move |conn| {
        write_tx(conn, |conn| {
            let row = sources::table.find(&id).select(SourceRow::as_select()).first(conn).optional()?;
            let view = row.map(|s| source_view(conn, s)).transpose()?;
            event(conn, "source.read", Some(&id), Some(&id))?;
            Ok(view)
        })
    })
    .await?;
    Ok(match found {
        Some(view) => HttpResponse::Ok().json(view),
        None => HttpResponse::NotFound().finish(),
    })
}

async fn create_contact(
    pool: web::Data<DbPool>,
    id: web::Path<String>,
    body: web::Json<NewContact>,
) -> actix_web::Result<HttpResponse> {
    let id = id.into_inner();
    let view = db(pool, move |conn| {
        write_tx(conn, |conn| {
            let source: Option<SourceRow> =
                sources::table.find(&id).select(SourceRow::as_select()).first(conn).optional()?;
            let Some(source) = source else { return Ok(None) };
            let in_force = current_authorisation(conn, &id, chrono::Utc::now().naive_utc())?.is_some();
            let (mut row, items) = contact_rows(&id, &body, &source.registered_by);
            row.status_drift = !in_force;
            diesel::insert_into(contacts::table).values(&row).execute(conn)?;
            insert_items(conn, &items)?;
            event(conn, "contact.create", Some(&id), Some(&row.id))?;
            Ok(views(conn, vec![row])?.pop())
        })
    })
    .await?;
    Ok(match view {
        Some(v) => HttpResponse::Created().json(v),
        None => HttpResponse::NotFound().finish(),
    })
}

async fn list_contacts(
    pool: web::Data<DbPool>,
    id: web::Path<String>,
    page: web::Query<Page>,
) -> actix_web::Result<HttpResponse> {
    let id = id.into_inner();
    let limit = page.limit.unwrap_or(50).clamp(1, 100);
    let list = db(pool, move |conn| {
        write_tx(conn, |conn| {
            let mut rows: Vec<ContactRow> = contacts::table
                .filter(contacts::source_id.eq(&id))
                .order((contacts::effective_occurred_at.desc(), contacts::id.desc()))
                .limit(limit + 1)
                .select(ContactRow::as_select())
                .load(conn)?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let next = if more { rows.last().map(|r| r.id.clone()) } else { None };
            let items = views(conn, rows)?;
            event(conn, "contact.list", Some(&id), Some(&id))?;
            Ok(json!({"items": items, "next_cursor": next}))
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn login(pool: web::Data<DbPool>, body: web::Json<Login>) -> actix_web::Result<HttpResponse> {
    let username = body.into_inner().username;
    let token = db(pool, move |conn| {
        write_tx(conn, |conn| {
            let user: Option<String> =
                users::table.filter(users::username.eq(&username)).select(users::id).first(conn).optional()?;
            let Some(user) = user else { return Ok(None) };
            let now = chrono::Utc::now().naive_utc();
            let sid = Uuid::new_v4().to_string();
            diesel::insert_into(sessions::table)
                .values((
                    sessions::id.eq(&sid),
                    sessions::user_id.eq(&user),
                    sessions::created_at.eq(now),
                    sessions::last_seen_at.eq(now),
                ))
                .execute(conn)?;
            event(conn, "auth.login", None, Some(&user))?;
            Ok(Some(sid))
        })
    })
    .await?;
    Ok(match token {
        Some(t) => HttpResponse::Ok().json(json!({"access_token": t, "refresh_token": Uuid::new_v4().to_string(),
            "token_type": "Bearer", "expires_in": 900})),
        None => HttpResponse::Unauthorized().finish(),
    })
}

/// Source `s` of the limit server's data set: deterministic, so the driver knows it.
pub fn limit_source_id(s: usize) -> String {
    format!("00000000-0000-4000-8000-{s:012}")
}

/// Seeds the same shape as the driver seeds humint through its API, in bulk.
fn seed(conn: &mut DbConnection, args: &LimitArgs) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    match conn {
        DbConnection::Sqlite(_) => conn.batch_execute(SCHEMA)?,
        DbConnection::Postgres(_) => {
            conn.batch_execute(&SCHEMA.replace("BLOB", "BYTEA").replace("DEFAULT 0", "DEFAULT false"))?
        }
    }
    let now = chrono::Utc::now().naive_utc();
    write_tx(conn, |conn| {
        let handlers: Vec<String> = (0..args.handlers).map(|_| Uuid::new_v4().to_string()).collect();
        for (i, h) in handlers.iter().enumerate() {
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(h),
                    users::username.eq(format!("bench.h{i}")),
                    users::display_name.eq(format!("Bench Handler {i}")),
                    users::password_hash.eq(""),
                ))
                .execute(conn)?;
        }
        let body = crate::contact_body(chrono::Utc::now() - chrono::TimeDelta::hours(2));
        let input: NewContact = serde_json::from_value(body)
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(std::io::Error::other(e.to_string()))))?;
        for s in 0..args.sources {
            let id = limit_source_id(s);
            let by = &handlers[s % handlers.len()];
            diesel::insert_into(sources::table)
                .values((
                    sources::id.eq(&id),
                    sources::urn.eq(format!("U{}-2026-{s:05}", s % args.units)),
                    sources::pseudonym.eq(format!("BENCH {s:06}")),
                    sources::unit.eq(format!("BENCH-U{}", s % args.units)),
                    sources::status.eq("pending"),
                    sources::risk_level.eq("medium"),
                    sources::juvenile.eq(false),
                    sources::registered_at.eq(now),
                    sources::registered_by.eq(by),
                    sources::updated_at.eq(now),
                ))
                .execute(conn)?;
            // As humint's seeding leaves it: the registering handler holds the handler
            // assignment, and an authorisation (granted by the unit's controller) is in force.
            diesel::insert_into(assignments::table)
                .values((
                    assignments::id.eq(Uuid::new_v4().to_string()),
                    assignments::source_id.eq(&id),
                    assignments::user_id.eq(by),
                    assignments::role.eq("handler"),
                    assignments::started_at.eq(now),
                    assignments::assigned_by.eq(by),
                ))
                .execute(conn)?;
            diesel::insert_into(authorisations::table)
                .values((
                    authorisations::id.eq(Uuid::new_v4().to_string()),
                    authorisations::source_id.eq(&id),
                    authorisations::purpose.eq(pad("Benchmark authorisation")),
                    authorisations::valid_from.eq(now - chrono::TimeDelta::days(1)),
                    authorisations::valid_until.eq(now + chrono::TimeDelta::days(120)),
                    authorisations::granted_by.eq(by),
                    authorisations::granted_at.eq(now),
                ))
                .execute(conn)?;
            let per = args.contacts / args.sources.max(1) + usize::from(s < args.contacts % args.sources.max(1));
            for _ in 0..per {
                let (row, items) = contact_rows(&id, &input, by);
                diesel::insert_into(contacts::table).values(&row).execute(conn)?;
                insert_items(conn, &items)?;
                event(conn, "contact.create", Some(&id), Some(&row.id))?;
            }
            event(conn, "source.register", Some(&id), Some(&id))?;
        }
        Ok(())
    })
}

#[derive(clap::Parser, Debug)]
pub struct LimitArgs {
    #[arg(long)]
    bind: String,
    /// `sqlite://PATH` or `postgres://...` (an empty database).
    #[arg(long)]
    db: String,
    #[arg(long, default_value_t = 1000)]
    sources: usize,
    #[arg(long, default_value_t = 20)]
    handlers: usize,
    #[arg(long, default_value_t = 4)]
    units: usize,
    #[arg(long, default_value_t = 50_000)]
    contacts: usize,
    /// Create the schema and seed before serving (once per database).
    #[arg(long)]
    seed: bool,
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
}

pub fn run(args: LimitArgs) -> Result<(), String> {
    let backend = Backend::from_url(&args.db).map_err(|e| e.to_string())?;
    let pool = db::build_pool(&backend, args.pool_size, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    if args.seed {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        seed(&mut conn, &args).map_err(|e| e.to_string())?;
        // Planner statistics, as autovacuum has gathered them for humint's tables during its
        // minute of seeding through the API; without them PostgreSQL plans the list badly.
        use diesel::connection::SimpleConnection;
        conn.batch_execute("ANALYZE").map_err(|e| e.to_string())?;
    }
    let pool = web::Data::new(pool);
    let pool_size = args.pool_size;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = actix_web::rt::System::new();
    rt.block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(pool.clone())
                .app_data(web::JsonConfig::default().limit(65536))
                .route("/readyz", web::get().to(HttpResponse::Ok))
                .route("/api/v1/auth/login", web::post().to(login))
                .route("/api/v1/sources/{id}", web::get().to(get_source))
                .route("/api/v1/sources/{id}/contacts", web::post().to(create_contact))
                .route("/api/v1/sources/{id}/contacts", web::get().to(list_contacts))
        })
        .workers(workers)
        // humint's setting (`server::blocking_threads_per_worker`), without hashing slots.
        .worker_max_blocking_threads(pool_size.div_ceil(workers as u32) as usize)
        .bind(&args.bind)
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())
    })
}
