//! The verifier's own reader of the stored trail (`audit::trail_reader`, one buffer per row,
//! one streamed query) against the reading that the export and the sequencer use
//! (`store::chained_after` + `EventRow::chained`): the same events, the same unreadable rows, in
//! the same order, on real rows and on rows the service would never write. And a reader that
//! fails makes the verification fail, never pass.

use diesel::prelude::*;
use humint::audit::check::verify_trail;
use humint::audit::store::chained_after;
use humint::audit::trail_reader::{StoredRow, TrailEntry, read_trail};
use humint::audit::{AuditRecord, ChainedEvent, EventRef};
use humint::db::DbConnection;
use humint::db::schema::audit_events;

use crate::support::*;

/// What the verifier is handed for one row, owned so that two readings can be compared.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Event(Box<ChainedEvent>),
    Unreadable(i64),
}

fn owned(e: EventRef<'_>) -> ChainedEvent {
    let r = e.record;
    let s = |v: Option<&str>| v.map(str::to_string);
    ChainedEvent {
        record: AuditRecord {
            seq: r.seq,
            at: r.at.to_string(),
            actor_id: s(r.actor_id),
            actor_username: s(r.actor_username),
            action: r.action.to_string(),
            resource_type: s(r.resource_type),
            resource_id: s(r.resource_id),
            source_id: s(r.source_id),
            purpose: s(r.purpose),
            outcome: r.outcome,
            reason: s(r.reason),
            request_id: s(r.request_id),
            client_ip: s(r.client_ip),
        },
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

/// The trail through the verifier's reader, in batches of `page`; also the batch sizes.
fn by_trail_reader(conn: &mut DbConnection, page: usize) -> (Vec<Seen>, Vec<usize>) {
    let mut batches: Vec<Vec<StoredRow>> = Vec::new();
    read_trail(conn, page, |rows| {
        batches.push(rows);
        true
    })
    .unwrap();
    let sizes = batches.iter().map(Vec::len).collect();
    let mut after = 0;
    let mut seen = Vec::new();
    for row in batches.iter().flatten() {
        let entry = match row.entry(after) {
            TrailEntry::Event(e) => Seen::Event(Box::new(owned(e))),
            TrailEntry::Unreadable(seq) => Seen::Unreadable(seq),
        };
        after = match &entry {
            Seen::Event(e) => e.record.seq,
            Seen::Unreadable(seq) => *seq,
        };
        seen.push(entry);
    }
    (seen, sizes)
}

/// The trail as the export pages it and reads each row (`EventRow::chained`).
fn by_event_rows(conn: &mut DbConnection) -> Vec<Seen> {
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let rows = chained_after(conn, after, 7).unwrap();
        for row in &rows {
            seen.push(match row.chained() {
                Some(e) => Seen::Event(Box::new(e)),
                None => Seen::Unreadable(row.seq.unwrap_or(after)),
            });
            after = row.seq.unwrap_or(after);
        }
        if rows.len() < 7 {
            return seen;
        }
    }
}

/// Inserts a chained row as it stands, whatever it holds.
fn insert_row(
    conn: &mut DbConnection,
    seq: Option<i64>,
    text: [Option<&str>; 12],
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
) {
    let [
        at,
        actor_id,
        actor_username,
        action,
        resource_type,
        resource_id,
        source_id,
        purpose,
        outcome,
        reason,
        request_id,
        client_ip,
    ] = text;
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::id.eq(uuid::Uuid::new_v4().to_string()),
            audit_events::seq.eq(seq),
            audit_events::at.eq(at.unwrap()),
            audit_events::actor_id.eq(actor_id),
            audit_events::actor_username.eq(actor_username),
            audit_events::action.eq(action.unwrap()),
            audit_events::resource_type.eq(resource_type),
            audit_events::resource_id.eq(resource_id),
            audit_events::source_id.eq(source_id),
            audit_events::purpose.eq(purpose),
            audit_events::outcome.eq(outcome.unwrap()),
            audit_events::reason.eq(reason),
            audit_events::request_id.eq(request_id),
            audit_events::client_ip.eq(client_ip),
            audit_events::prev_hash.eq(prev_hash),
            audit_events::hash.eq(hash),
            audit_events::created_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(conn)
        .unwrap();
}

/// The fields of an ordinary event at `at`, in column order.
fn full(at: &str) -> [Option<&str>; 12] {
    [
        Some(at),
        Some("3f2b8c1d-9e4a-4b7c-8d6e-1a2b3c4d5e6f"),
        Some("h.martin"),
        Some("source.identity.read"),
        Some("source"),
        Some("0b8e4d2c-7a61-4f3e-8c5d-9e0f1a2b3c4d"),
        Some("0b8e4d2c-7a61-4f3e-8c5d-9e0f1a2b3c4d"),
        Some("OP-TEST"),
        Some("allowed"),
        Some("rule:handler_assignment"),
        Some("e4d3c2b1-a098-4f7e-8d6c-5b4a39281706"),
        Some("198.51.100.23"),
    ]
}

fn head_seq(conn: &mut DbConnection) -> i64 {
    audit_events::table.select(diesel::dsl::max(audit_events::seq)).first::<Option<i64>>(conn).unwrap().unwrap_or(0)
}

#[tokio::test]
async fn the_verifier_reads_every_row_as_the_export_does() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.login("nobody.known", "wrong password here").await;
    }
    let admin = app.admin_token().await;
    app.get("/api/v1/users", &admin).await;
    app.settle_audit(false);
    let mut conn = app.db();
    let conn: &mut DbConnection = &mut conn;
    let real = head_seq(conn);
    assert!(real >= 5);

    // After the real events, rows the service would never write, one per case.
    let long = "x".repeat(10_000);
    // (No U+0000: PostgreSQL text cannot hold it.)
    let awkward = "Opération \"SAHEL-7\" \\ — \u{1}\u{1f}\t\n\u{7f}\u{2028}\u{fffd}😀";
    let h = |b: u8| Some(vec![b; 32]);
    let mut seq = real;
    let mut next = || {
        seq += 1;
        Some(seq)
    };
    // Every nullable field NULL, and empty strings.
    let mut nulls = [None; 12];
    nulls[0] = Some("2026-11-28T10:00:00.000000Z");
    nulls[3] = Some("");
    nulls[8] = Some("denied");
    insert_row(conn, next(), nulls, h(1), h(2));
    // Escapes, non-ASCII, and a field far longer than the row buffer starts with.
    let mut text = full("2026-11-28T10:00:01.000000Z");
    text[7] = Some(awkward);
    text[9] = Some(&long);
    insert_row(conn, next(), text, h(3), h(4));
    // Chain columns missing or of the wrong length; an outcome the service never writes.
    insert_row(conn, next(), full("2026-11-28T10:00:02.000000Z"), Some(vec![5; 31]), h(6));
    insert_row(conn, next(), full("2026-11-28T10:00:03.000000Z"), h(7), Some(vec![8; 33]));
    insert_row(conn, next(), full("2026-11-28T10:00:04.000000Z"), None, h(9));
    insert_row(conn, next(), full("2026-11-28T10:00:05.000000Z"), h(10), None);
    let mut text = full("2026-11-28T10:00:06.000000Z");
    text[8] = Some("allowed ");
    insert_row(conn, next(), text, h(11), h(12));
    // A gap, then rows neither reading returns: unchained, and moved below 1.
    next();
    insert_row(conn, next(), full("2026-11-28T10:00:07.000000Z"), h(13), h(14));
    insert_row(conn, None, full("2026-11-28T10:00:08.000000Z"), None, None);
    insert_row(conn, Some(-1), full("2026-11-28T10:00:09.000000Z"), h(15), h(16));
    insert_row(conn, Some(0), full("2026-11-28T10:00:10.000000Z"), h(17), h(18));

    let expected = by_event_rows(conn);
    assert_eq!(expected.len() as i64, real + 8, "the crafted rows are all read back");
    assert_eq!(expected.iter().filter(|s| matches!(s, Seen::Unreadable(_))).count(), 5);
    for page in [1, 3, 10_000] {
        let (seen, sizes) = by_trail_reader(conn, page);
        assert_eq!(seen, expected, "page {page}");
        let (last, full_pages) = sizes.split_last().unwrap();
        assert!(full_pages.iter().all(|&n| n == page) && (1..=page).contains(last), "page {page}: {sizes:?}");
    }
}

#[tokio::test]
async fn an_empty_trail_is_read_as_no_batch_at_all() {
    let app = spawn_app().await;
    let mut conn = app.db();
    let conn: &mut DbConnection = &mut conn;
    diesel::sql_query("UPDATE audit_events SET seq = NULL, prev_hash = NULL, hash = NULL").execute(conn).unwrap();
    let (seen, sizes) = by_trail_reader(conn, 3);
    assert!(seen.is_empty() && sizes.is_empty(), "{sizes:?}");
}

#[tokio::test]
async fn a_failing_reader_fails_the_verification_instead_of_passing_it() {
    let app = spawn_app().await;
    app.login("nobody.known", "wrong password here").await;
    app.settle_audit(true);
    let keyring = app.state.keys.keyring();
    let mut conn = app.db();
    let conn: &mut DbConnection = &mut conn;
    let now = app.clock.now();
    assert!(verify_trail(conn, &keyring, now).unwrap().report.valid);
    // The checkpoints can still be read; the events cannot.
    diesel::sql_query("ALTER TABLE audit_events RENAME TO audit_events_elsewhere").execute(conn).unwrap();
    assert!(verify_trail(conn, &keyring, now).is_err());
}

#[tokio::test]
async fn text_that_is_not_utf8_is_refused_as_the_export_refuses_it() {
    let app = spawn_app().await;
    app.login("nobody.known", "wrong password here").await;
    app.settle_audit(false);
    let keyring = app.state.keys.keyring();
    let mut conn = app.db();
    let conn: &mut DbConnection = &mut conn;
    if !matches!(conn, DbConnection::Sqlite(_)) {
        // PostgreSQL refuses to store such text in the first place.
        return;
    }
    // An edit that leaves bytes which are not UTF-8: read leniently they would come back as the
    // U+FFFD that a lenient reader puts in their place.
    diesel::sql_query("UPDATE audit_events SET purpose = CAST(x'4f50ff' AS TEXT) WHERE seq = 1").execute(conn).unwrap();
    assert!(chained_after(conn, 0, 100).is_err());
    assert!(read_trail(conn, 3, |_| true).is_err());
    assert!(verify_trail(conn, &keyring, app.clock.now()).is_err());
}
