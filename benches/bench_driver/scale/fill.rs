//! Filler rows for the scale run (docs/performance.md, "Scale run"): grows a humint database to
//! a number of sources and contacts in large transactions, directly in SQL, instead of through
//! the API (about 20 minutes for 1,000,000 contacts on the benchmark machine).
//!
//! Every filler row is a copy, with new ids, of a row humint itself wrote for one *template*
//! source: the source, its identity, its data key, assignments, authorisations, reviews and
//! status changes, and the audit events naming it; one of its contacts with that contact's
//! intelligence items, amendments and events; and the user who registered it, with that user's
//! sessions, refresh tokens and events. So filler rows have the shape and the byte sizes of real
//! ones. What differs, on purpose:
//!
//! - ids, URNs (from the unit's counter, which is advanced), pseudonyms and usernames are new
//!   and unique; blind indexes are random; refresh-token hashes are random;
//! - each filler source gets a filler handler of its own unit, who holds as many filler sources
//!   as the template's registrant holds real ones; other people named by the template rows
//!   (controllers, co-handlers) are replaced by a user of the filler unit with the same roles
//!   where one exists;
//! - ciphertexts are the template's bytes with the key id in their header set to the filler
//!   source's data key: well-formed, but they do not decrypt (they were sealed for another row
//!   and key), and the wrapped data keys are the template's bytes. Nothing the scale run
//!   measures reads a filler row;
//! - the audit events are chained here, under the sequencer's lock, with humint's own
//!   [`ChainTip`], exactly as the sequencer would chain them; no checkpoint is written for them
//!   (humint signs one over them after it verifies them, at its next sequencer pass).
//!
//! Shared by the benchmark driver (`benches/bench_driver/scale.rs`) and the query-plan test
//! (`tests/api/plans.rs`), which includes this file with `#[path]`.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use humint::assignments::model::AssignmentRow;
use humint::audit::store::EventRow;
use humint::audit::{ChainTip, format_at};
use humint::authorisations::model::AuthorisationRow;
use humint::contacts::model::{AmendmentRow, ContactRow, ItemRow};
use humint::db::DbConnection;
use humint::db::schema::{
    assignments, audit_events, authorisations, contact_amendments, contacts, data_keys, intelligence_items,
    refresh_tokens, reviews, sessions, source_identities, source_status_changes, sources, urn_counters, users,
};
use humint::reviews::model::ReviewRow;
use humint::sources::model::SourceRow;
use humint::users::model::UserRow;
use uuid::Uuid;

/// The sequencer's PostgreSQL advisory lock key (`src/audit/sequencer.rs`): filler events are
/// chained under it, so no sequencer chains at the same time. On SQLite the write transaction
/// (`BEGIN IMMEDIATE`) excludes it.
const SEQUENCER_LOCK_KEY: i64 = 0x6875_6d69_6e74_2d73;
/// Rows per INSERT statement (SQLite allows 32,766 bound values per statement).
const ROWS_PER_STATEMENT: usize = 500;

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = source_identities)]
struct IdentityFill {
    source_id: String,
    legal_name: Vec<u8>,
    aliases: Vec<u8>,
    date_of_birth: Vec<u8>,
    nationality: Vec<u8>,
    phone: Vec<u8>,
    address: Vec<u8>,
    notes: Vec<u8>,
    updated_at: NaiveDateTime,
    updated_by: String,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = data_keys)]
struct KeyFill {
    id: String,
    owner: String,
    kek_version: i32,
    wrapped: Option<Vec<u8>>,
    created_at: NaiveDateTime,
    rewrapped_at: Option<NaiveDateTime>,
    destroyed_at: Option<NaiveDateTime>,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = source_status_changes)]
struct StatusFill {
    id: String,
    source_id: String,
    from_status: String,
    to_status: String,
    reason: Vec<u8>,
    changed_by: String,
    changed_at: NaiveDateTime,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
struct SessionFill {
    id: String,
    user_id: String,
    created_at: NaiveDateTime,
    last_seen_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
    revoked_reason: Option<String>,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshFill {
    id: String,
    session_id: String,
    token_hash: Vec<u8>,
    issued_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    spent_at: Option<NaiveDateTime>,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
struct EventFill {
    id: String,
    seq: Option<i64>,
    at: String,
    actor_id: Option<String>,
    actor_username: Option<String>,
    action: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
    source_id: Option<String>,
    purpose: Option<String>,
    outcome: String,
    reason: Option<String>,
    request_id: Option<String>,
    client_ip: Option<String>,
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
    created_at: NaiveDateTime,
}

/// A failure of the fill; also what a failed statement becomes inside the write transaction.
#[derive(Debug)]
struct FillError(String);

impl From<diesel::result::Error> for FillError {
    fn from(e: diesel::result::Error) -> Self {
        FillError(e.to_string())
    }
}

type Fill<T> = Result<T, FillError>;

fn fail<T>(what: impl Into<String>) -> Fill<T> {
    Err(FillError(what.into()))
}

/// What [`grow`] added.
pub struct Grown {
    pub sources: usize,
    pub contacts: usize,
    pub users: usize,
    pub events: usize,
    /// Rows inserted over all tables.
    pub rows: usize,
    pub secs: f64,
}

impl Grown {
    pub fn summary(&self) -> String {
        format!(
            "{} sources, {} contacts, {} users, {} audit events ({} rows in all) in {:.1}s",
            self.sources, self.contacts, self.users, self.events, self.rows, self.secs
        )
    }
}

/// The rows a filler source, contact and user are copied from.
struct Template {
    source: SourceRow,
    identity: Option<IdentityFill>,
    key: Option<KeyFill>,
    assignments: Vec<AssignmentRow>,
    authorisations: Vec<AuthorisationRow>,
    reviews: Vec<ReviewRow>,
    status_changes: Vec<StatusFill>,
    /// Events naming the source, other than those of its contacts.
    source_events: Vec<EventFill>,
    contact: Option<ContactRow>,
    items: Vec<ItemRow>,
    amendments: Vec<AmendmentRow>,
    contact_events: Vec<EventFill>,
    user: UserRow,
    sessions: Vec<SessionFill>,
    refresh_tokens: Vec<RefreshFill>,
    user_events: Vec<EventFill>,
    /// Sources the registrant registered: each filler handler registers as many.
    per_user: usize,
    /// The year in the template's URN (`{UNIT}-{YEAR}-{NNNNN}`).
    urn_year: i32,
}

fn load_template(conn: &mut DbConnection, source_id: &str) -> Fill<Template> {
    let source: SourceRow = sources::table.find(source_id).select(SourceRow::as_select()).first(conn)?;
    let identity = source_identities::table.find(source_id).select(IdentityFill::as_select()).first(conn).optional()?;
    let key =
        data_keys::table.filter(data_keys::owner.eq(source_id)).select(KeyFill::as_select()).first(conn).optional()?;
    let assignments = assignments::table
        .filter(assignments::source_id.eq(source_id))
        .order((assignments::started_at.asc(), assignments::id.asc()))
        .select(AssignmentRow::as_select())
        .load(conn)?;
    let authorisations = authorisations::table
        .filter(authorisations::source_id.eq(source_id))
        .order((authorisations::granted_at.asc(), authorisations::id.asc()))
        .select(AuthorisationRow::as_select())
        .load(conn)?;
    let reviews = reviews::table
        .filter(reviews::source_id.eq(source_id))
        .order((reviews::reviewed_at.asc(), reviews::id.asc()))
        .select(ReviewRow::as_select())
        .load(conn)?;
    let status_changes = source_status_changes::table
        .filter(source_status_changes::source_id.eq(source_id))
        .order((source_status_changes::changed_at.asc(), source_status_changes::id.asc()))
        .select(StatusFill::as_select())
        .load(conn)?;
    let source_events = audit_events::table
        .filter(audit_events::source_id.eq(source_id))
        .filter(audit_events::resource_type.is_null().or(audit_events::resource_type.ne("contact")))
        .order((audit_events::seq.asc(), audit_events::created_at.asc()))
        .select(EventFill::as_select())
        .load(conn)?;
    let contact: Option<ContactRow> = contacts::table
        .filter(contacts::source_id.eq(source_id))
        .order((contacts::recorded_at.asc(), contacts::id.asc()))
        .select(ContactRow::as_select())
        .first(conn)
        .optional()?;
    let (items, amendments, contact_events) = match &contact {
        Some(c) => (
            intelligence_items::table
                .filter(intelligence_items::contact_id.eq(&c.id))
                .order(intelligence_items::position.asc())
                .select(ItemRow::as_select())
                .load(conn)?,
            contact_amendments::table
                .filter(contact_amendments::contact_id.eq(&c.id))
                .order((contact_amendments::amended_at.asc(), contact_amendments::id.asc()))
                .select(AmendmentRow::as_select())
                .load(conn)?,
            audit_events::table
                .filter(audit_events::resource_type.eq("contact"))
                .filter(audit_events::resource_id.eq(&c.id))
                .order((audit_events::seq.asc(), audit_events::created_at.asc()))
                .select(EventFill::as_select())
                .load(conn)?,
        ),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let user: UserRow = users::table.find(&source.registered_by).select(UserRow::as_select()).first(conn)?;
    let sessions: Vec<SessionFill> = sessions::table
        .filter(sessions::user_id.eq(&user.id))
        .order((sessions::created_at.asc(), sessions::id.asc()))
        .select(SessionFill::as_select())
        .load(conn)?;
    let session_ids: Vec<String> = sessions.iter().map(|s| s.id.clone()).collect();
    let refresh_tokens = if session_ids.is_empty() {
        Vec::new()
    } else {
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq_any(&session_ids))
            .order((refresh_tokens::issued_at.asc(), refresh_tokens::id.asc()))
            .select(RefreshFill::as_select())
            .load(conn)?
    };
    let user_events = audit_events::table
        .filter(audit_events::resource_type.eq("user"))
        .filter(audit_events::resource_id.eq(&user.id))
        .order((audit_events::seq.asc(), audit_events::created_at.asc()))
        .select(EventFill::as_select())
        .load(conn)?;
    let per_user: i64 = sources::table.filter(sources::registered_by.eq(&user.id)).count().get_result(conn)?;
    let urn_year = source
        .urn
        .strip_prefix(&format!("{}-", source.unit))
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(year, _)| year.parse().ok());
    let Some(urn_year) = urn_year else { return fail(format!("template URN {} is not UNIT-YEAR-N", source.urn)) };
    Ok(Template {
        source,
        identity,
        key,
        assignments,
        authorisations,
        reviews,
        status_changes,
        source_events,
        contact,
        items,
        amendments,
        contact_events,
        user,
        sessions,
        refresh_tokens,
        user_events,
        per_user: usize::try_from(per_user).unwrap_or(1).max(1),
        urn_year,
    })
}

fn new_id() -> String {
    Uuid::new_v4().to_string()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

/// The template's ciphertext with the filler source's data key id in its header (when it has
/// humint's field header); the rest unchanged, so it keeps its size and does not open.
fn rekey(blob: &[u8], key_id: &Uuid) -> Vec<u8> {
    let mut out = blob.to_vec();
    if humint::crypto::key_id_of(blob).is_ok() {
        out[1..1 + humint::crypto::KEY_ID_LEN].copy_from_slice(key_id.as_bytes());
    }
    out
}

/// Old id to new id, for one filler copy; ids it does not know stay as they are.
#[derive(Clone, Default)]
struct Ids(HashMap<String, String>);

impl Ids {
    fn map(&self, id: &str) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| id.to_string())
    }

    fn map_opt(&self, id: &Option<String>) -> Option<String> {
        id.as_deref().map(|i| self.map(i))
    }

    fn fresh(&mut self, old: &str) -> String {
        let new = new_id();
        self.0.insert(old.to_string(), new.clone());
        new
    }
}

/// The people of the database: who stands in for whom in another unit.
struct People {
    usernames: HashMap<String, String>,
    /// For each unit, the template's people of the template's unit (other than the registrant)
    /// mapped to a user of that unit with the same roles.
    peers: HashMap<String, Ids>,
}

fn people(conn: &mut DbConnection, t: &Template, units: &[String]) -> Fill<People> {
    let all: Vec<UserRow> = users::table.order(users::id.asc()).select(UserRow::as_select()).load(conn)?;
    let usernames = all.iter().map(|u| (u.id.clone(), u.username.clone())).collect();
    let mut named: BTreeSet<&str> = BTreeSet::new();
    for e in t.source_events.iter().chain(&t.contact_events) {
        named.extend(e.actor_id.as_deref());
    }
    for a in &t.assignments {
        named.extend([a.user_id.as_str(), a.assigned_by.as_str()]);
        named.extend(a.ended_by.as_deref());
    }
    for a in &t.authorisations {
        named.insert(&a.granted_by);
        named.extend(a.cancelled_by.as_deref());
    }
    named.extend(t.reviews.iter().map(|r| r.reviewed_by.as_str()));
    named.extend(t.status_changes.iter().map(|s| s.changed_by.as_str()));
    named.extend(t.amendments.iter().map(|a| a.amended_by.as_str()));
    named.remove(t.user.id.as_str());
    let mut peers = HashMap::new();
    for unit in units {
        let mut ids = Ids::default();
        for id in &named {
            let Some(person) = all.iter().find(|u| u.id == *id) else { continue };
            if person.unit != t.source.unit || person.unit == *unit {
                continue;
            }
            let stand_in = all.iter().find(|u| u.unit == *unit && u.roles == person.roles && !u.disabled);
            if let Some(stand_in) = stand_in {
                ids.0.insert(person.id.clone(), stand_in.id.clone());
            }
        }
        peers.insert(unit.clone(), ids);
    }
    Ok(People { usernames, peers })
}

/// The rows of one transaction.
#[derive(Default)]
struct Batch {
    users: Vec<UserRow>,
    sessions: Vec<SessionFill>,
    refresh_tokens: Vec<RefreshFill>,
    sources: Vec<SourceRow>,
    identities: Vec<IdentityFill>,
    keys: Vec<KeyFill>,
    assignments: Vec<AssignmentRow>,
    authorisations: Vec<AuthorisationRow>,
    reviews: Vec<ReviewRow>,
    status_changes: Vec<StatusFill>,
    contacts: Vec<ContactRow>,
    items: Vec<ItemRow>,
    amendments: Vec<AmendmentRow>,
    events: Vec<EventFill>,
}

impl Batch {
    fn rows(&self) -> usize {
        self.users.len()
            + self.sessions.len()
            + self.refresh_tokens.len()
            + self.sources.len()
            + self.identities.len()
            + self.keys.len()
            + self.assignments.len()
            + self.authorisations.len()
            + self.reviews.len()
            + self.status_changes.len()
            + self.contacts.len()
            + self.items.len()
            + self.amendments.len()
            + self.events.len()
    }
}

/// Where the fill stands across transactions.
struct Cursor {
    /// Filler sources made so far.
    made: usize,
    /// Sources in the database before the fill (filler ordinals continue from it).
    sources_before: usize,
    users_before: usize,
    /// The filler handler of the current run of `per_user` sources.
    user: Option<(String, String, String)>,
    /// Strictly increasing time of filler events.
    clock: DateTime<Utc>,
}

impl Cursor {
    fn tick(&mut self) -> DateTime<Utc> {
        self.clock += TimeDelta::microseconds(1);
        self.clock
    }
}

fn copy_event(t: &EventFill, ids: &Ids, people: &People, at: DateTime<Utc>) -> EventFill {
    let actor_id = ids.map_opt(&t.actor_id);
    let actor_username = match &actor_id {
        Some(a) if Some(a) != t.actor_id.as_ref() => people.usernames.get(a).cloned().or(t.actor_username.clone()),
        _ => t.actor_username.clone(),
    };
    EventFill {
        id: new_id(),
        seq: None,
        at: format_at(&at),
        actor_id,
        actor_username,
        action: t.action.clone(),
        resource_type: t.resource_type.clone(),
        resource_id: ids.map_opt(&t.resource_id),
        source_id: ids.map_opt(&t.source_id),
        purpose: t.purpose.clone(),
        outcome: t.outcome.clone(),
        reason: t.reason.clone(),
        request_id: t.request_id.as_ref().map(|_| new_id()),
        client_ip: t.client_ip.clone(),
        prev_hash: None,
        hash: None,
        created_at: humint::time::to_db(at),
    }
}

/// Adds the filler user who registers the next `per_user` filler sources.
fn add_user(t: &Template, units: &[String], people: &mut People, cur: &mut Cursor, b: &mut Batch) {
    let j = cur.made / t.per_user;
    let unit = units[j % units.len()].clone();
    let mut ids = Ids::default();
    let id = ids.fresh(&t.user.id);
    let username = format!("{}.f{}", t.user.username, cur.users_before + j);
    let display_name =
        if t.user.display_name == t.user.username { username.clone() } else { format!("{} {j}", t.user.display_name) };
    b.users.push(UserRow {
        id: id.clone(),
        username: username.clone(),
        display_name,
        unit: unit.clone(),
        ..t.user.clone()
    });
    people.usernames.insert(id.clone(), username.clone());
    for s in &t.sessions {
        let sid = ids.fresh(&s.id);
        b.sessions.push(SessionFill { id: sid, user_id: id.clone(), ..s.clone() });
    }
    for r in &t.refresh_tokens {
        b.refresh_tokens.push(RefreshFill {
            id: new_id(),
            session_id: ids.map(&r.session_id),
            token_hash: random_bytes(r.token_hash.len()),
            ..r.clone()
        });
    }
    for e in &t.user_events {
        let at = cur.tick();
        b.events.push(copy_event(e, &ids, people, at));
    }
    cur.user = Some((t.user.id.clone(), id, unit));
}

/// One filler source with `contacts` contacts.
fn add_source(
    t: &Template,
    people: &People,
    counters: &mut HashMap<(String, i32), i64>,
    cur: &mut Cursor,
    contacts: usize,
    b: &mut Batch,
) -> Fill<()> {
    let Some((old_user, user, unit)) = cur.user.clone() else { return fail("no filler user") };
    let mut ids = people.peers.get(&unit).cloned().unwrap_or_default();
    ids.0.insert(old_user, user.clone());
    let s = &t.source;
    let id = ids.fresh(&s.id);
    let key_id = Uuid::new_v4();
    let counter = counters.entry((unit.clone(), t.urn_year)).or_insert(0);
    *counter += 1;
    let ordinal = cur.sources_before + cur.made + 1;
    b.sources.push(SourceRow {
        id: id.clone(),
        urn: format!("{unit}-{}-{:05}", t.urn_year, *counter),
        pseudonym: format!("{} {ordinal}", s.pseudonym),
        unit: unit.clone(),
        registered_by: user.clone(),
        blind_index: s.blind_index.map(|_| {
            let r = random_bytes(4);
            i64::from(u32::from_be_bytes([r[0], r[1], r[2], r[3]]))
        }),
        duplicate_suspected: false,
        ..s.clone()
    });
    if let Some(i) = &t.identity {
        let k = |blob: &Vec<u8>| rekey(blob, &key_id);
        b.identities.push(IdentityFill {
            source_id: id.clone(),
            legal_name: k(&i.legal_name),
            aliases: k(&i.aliases),
            date_of_birth: k(&i.date_of_birth),
            nationality: k(&i.nationality),
            phone: k(&i.phone),
            address: k(&i.address),
            notes: k(&i.notes),
            updated_at: i.updated_at,
            updated_by: ids.map(&i.updated_by),
        });
    }
    if let Some(k) = &t.key {
        ids.0.insert(k.id.clone(), key_id.to_string());
        b.keys.push(KeyFill { id: key_id.to_string(), owner: id.clone(), ..k.clone() });
    }
    for a in &t.assignments {
        let new = ids.fresh(&a.id);
        b.assignments.push(AssignmentRow {
            id: new,
            source_id: id.clone(),
            user_id: ids.map(&a.user_id),
            assigned_by: ids.map(&a.assigned_by),
            ended_by: ids.map_opt(&a.ended_by),
            ..a.clone()
        });
    }
    for a in &t.authorisations {
        let new = ids.fresh(&a.id);
        b.authorisations.push(AuthorisationRow {
            id: new,
            source_id: id.clone(),
            purpose: rekey(&a.purpose, &key_id),
            granted_by: ids.map(&a.granted_by),
            cancelled_by: ids.map_opt(&a.cancelled_by),
            cancel_reason: a.cancel_reason.as_deref().map(|r| rekey(r, &key_id)),
            ..a.clone()
        });
    }
    for r in &t.reviews {
        let new = ids.fresh(&r.id);
        b.reviews.push(ReviewRow {
            id: new,
            source_id: id.clone(),
            rationale: rekey(&r.rationale, &key_id),
            reviewed_by: ids.map(&r.reviewed_by),
            ..r.clone()
        });
    }
    for c in &t.status_changes {
        let new = ids.fresh(&c.id);
        b.status_changes.push(StatusFill {
            id: new,
            source_id: id.clone(),
            reason: rekey(&c.reason, &key_id),
            changed_by: ids.map(&c.changed_by),
            ..c.clone()
        });
    }
    for e in &t.source_events {
        let at = cur.tick();
        b.events.push(copy_event(e, &ids, people, at));
    }
    let Some(c) = &t.contact else {
        return if contacts == 0 { Ok(()) } else { fail("the template source has no contact to copy") };
    };
    for _ in 0..contacts {
        let mut ids = ids.clone();
        let cid = ids.fresh(&c.id);
        b.contacts.push(ContactRow {
            id: cid.clone(),
            source_id: id.clone(),
            location: rekey(&c.location, &key_id),
            summary: rekey(&c.summary, &key_id),
            tasking: rekey(&c.tasking, &key_id),
            welfare_concerns: rekey(&c.welfare_concerns, &key_id),
            recorded_by: ids.map(&c.recorded_by),
            ..c.clone()
        });
        for i in &t.items {
            let new = ids.fresh(&i.id);
            b.items.push(ItemRow {
                id: new,
                contact_id: cid.clone(),
                source_id: id.clone(),
                content: rekey(&i.content, &key_id),
                handling_conditions: i.handling_conditions.as_deref().map(|h| rekey(h, &key_id)),
                ..i.clone()
            });
        }
        for a in &t.amendments {
            let new = ids.fresh(&a.id);
            b.amendments.push(AmendmentRow {
                id: new,
                contact_id: cid.clone(),
                previous_value: rekey(&a.previous_value, &key_id),
                new_value: rekey(&a.new_value, &key_id),
                reason: rekey(&a.reason, &key_id),
                amended_by: ids.map(&a.amended_by),
                ..a.clone()
            });
        }
        for e in &t.contact_events {
            let at = cur.tick();
            b.events.push(copy_event(e, &ids, people, at));
        }
    }
    cur.made += 1;
    if cur.made.is_multiple_of(t.per_user) {
        cur.user = None;
    }
    Ok(())
}

/// The same statement on whichever backend `conn` is (the multi-backend connection has no
/// batch insert).
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            DbConnection::Sqlite($c) => $body,
            DbConnection::Postgres($c) => $body,
        }
    };
}

macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        for part in $rows.chunks(ROWS_PER_STATEMENT) {
            on_backend!($conn, c => diesel::insert_into($table).values(part).execute(c))?;
        }
    };
}

fn head(conn: &mut DbConnection) -> Fill<ChainTip> {
    let head: Option<(Option<i64>, Option<Vec<u8>>)> = audit_events::table
        .filter(audit_events::seq.is_not_null())
        .order(audit_events::seq.desc())
        .select((audit_events::seq, audit_events::hash))
        .first(conn)
        .optional()?;
    let tip = match head {
        None => Ok(ChainTip::genesis()),
        Some((Some(seq), Some(hash))) => match <[u8; 32]>::try_from(hash.as_slice()) {
            Ok(hash) => ChainTip::from_head(seq, hash).map_err(|e| FillError(format!("audit head: {e}"))),
            Err(_) => fail("audit head: malformed hash"),
        },
        Some(_) => fail("audit head without hash"),
    }?;
    Ok(tip)
}

/// Gives the batch's events their place in the chain after the head, as the sequencer would.
fn chain(conn: &mut DbConnection, events: &mut [EventFill]) -> Fill<()> {
    let mut tip = head(conn)?;
    for e in events {
        let row = EventRow {
            id: e.id.clone(),
            seq: None,
            at: e.at.clone(),
            actor_id: e.actor_id.clone(),
            actor_username: e.actor_username.clone(),
            action: e.action.clone(),
            resource_type: e.resource_type.clone(),
            resource_id: e.resource_id.clone(),
            source_id: e.source_id.clone(),
            purpose: e.purpose.clone(),
            outcome: e.outcome.clone(),
            reason: e.reason.clone(),
            request_id: e.request_id.clone(),
            client_ip: e.client_ip.clone(),
            prev_hash: None,
            hash: None,
            created_at: e.created_at,
        };
        let Some(record) = row.record(0) else { return fail(format!("template event {} is unchainable", e.id)) };
        let chained = tip.append(record).map_err(|err| FillError(format!("audit chain: {err}")))?;
        e.seq = Some(chained.record.seq);
        e.prev_hash = Some(chained.prev_hash.to_vec());
        e.hash = Some(chained.hash.to_vec());
    }
    Ok(())
}

fn insert(conn: &mut DbConnection, b: &Batch) -> Fill<()> {
    insert_rows!(conn, users::table, b.users);
    insert_rows!(conn, sessions::table, b.sessions);
    insert_rows!(conn, refresh_tokens::table, b.refresh_tokens);
    insert_rows!(conn, sources::table, b.sources);
    insert_rows!(conn, source_identities::table, b.identities);
    insert_rows!(conn, data_keys::table, b.keys);
    insert_rows!(conn, assignments::table, b.assignments);
    insert_rows!(conn, authorisations::table, b.authorisations);
    insert_rows!(conn, reviews::table, b.reviews);
    insert_rows!(conn, source_status_changes::table, b.status_changes);
    insert_rows!(conn, contacts::table, b.contacts);
    insert_rows!(conn, intelligence_items::table, b.items);
    insert_rows!(conn, contact_amendments::table, b.amendments);
    insert_rows!(conn, audit_events::table, b.events);
    Ok(())
}

fn count(conn: &mut DbConnection, what: &str) -> Fill<usize> {
    let n: i64 = match what {
        "sources" => sources::table.count().get_result(conn)?,
        "contacts" => contacts::table.count().get_result(conn)?,
        _ => users::table.count().get_result(conn)?,
    };
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Grows the database to `sources` sources and `contacts` contacts (no-op for a count already
/// reached), copying the rows of `template_source` (see the module comment), `per_tx` filler
/// sources per write transaction. Filler sources are spread over the units sources already
/// have, round robin by filler handler; filler contacts evenly over the filler sources.
pub fn grow(
    conn: &mut DbConnection,
    template_source: &str,
    sources: usize,
    contacts: usize,
    per_tx: usize,
) -> Result<Grown, String> {
    grow_inner(conn, template_source, sources, contacts, per_tx.max(1)).map_err(|e| e.0)
}

fn grow_inner(
    conn: &mut DbConnection,
    template_source: &str,
    sources_wanted: usize,
    contacts_wanted: usize,
    per_tx: usize,
) -> Fill<Grown> {
    let started = Instant::now();
    let t = load_template(conn, template_source)?;
    let units: Vec<String> = sources::table.select(sources::unit).distinct().order(sources::unit.asc()).load(conn)?;
    let mut people = people(conn, &t, &units)?;
    let sources_before = count(conn, "sources")?;
    let add_sources = sources_wanted.saturating_sub(sources_before);
    let add_contacts = contacts_wanted.saturating_sub(count(conn, "contacts")?);
    if add_sources == 0 && add_contacts > 0 {
        return fail("filler contacts go to filler sources: ask for more sources too");
    }
    let mut cur =
        Cursor { made: 0, sources_before, users_before: count(conn, "users")?, user: None, clock: Utc::now() };
    let mut grown = Grown { sources: 0, contacts: 0, users: 0, events: 0, rows: 0, secs: 0.0 };
    while cur.made < add_sources {
        let end = (cur.made + per_tx).min(add_sources);
        humint::db::write_tx(conn, |conn| -> Fill<()> {
            if matches!(conn, DbConnection::Postgres(_)) {
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({SEQUENCER_LOCK_KEY})")).execute(conn)?;
            }
            let mut counters: HashMap<(String, i32), i64> = urn_counters::table
                .select((urn_counters::unit, urn_counters::year, urn_counters::last_value))
                .load::<(String, i32, i64)>(conn)?
                .into_iter()
                .map(|(u, y, v)| ((u, y), v))
                .collect();
            let before = counters.clone();
            cur.clock = cur.clock.max(Utc::now());
            let mut b = Batch::default();
            while cur.made < end {
                if cur.user.is_none() {
                    add_user(&t, &units, &mut people, &mut cur, &mut b);
                }
                let k = cur.made;
                let n = add_contacts / add_sources + usize::from(k < add_contacts % add_sources);
                add_source(&t, &people, &mut counters, &mut cur, n, &mut b)?;
            }
            chain(conn, &mut b.events)?;
            insert(conn, &b)?;
            for ((unit, year), value) in &counters {
                match before.get(&(unit.clone(), *year)) {
                    Some(old) if old == value => {}
                    Some(_) => {
                        diesel::update(urn_counters::table.find((unit, year)))
                            .set(urn_counters::last_value.eq(value))
                            .execute(conn)?;
                    }
                    None => {
                        diesel::insert_into(urn_counters::table)
                            .values((
                                urn_counters::unit.eq(unit),
                                urn_counters::year.eq(year),
                                urn_counters::last_value.eq(value),
                            ))
                            .execute(conn)?;
                    }
                }
            }
            grown.sources += b.sources.len();
            grown.contacts += b.contacts.len();
            grown.users += b.users.len();
            grown.events += b.events.len();
            grown.rows += b.rows();
            Ok(())
        })?;
    }
    grown.secs = started.elapsed().as_secs_f64();
    Ok(grown)
}
