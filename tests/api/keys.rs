//! Data keys in the database and the KEK lifecycle, while the server runs: rotate, rewrap and
//! retire keep every value readable; crypto-shredding answers Gone here and on a second
//! instance within 5 seconds; tampered key rows fail as integrity errors; and no plaintext of a
//! sealed canary reaches the database files or rows.

use std::process::Output;
use std::time::{Duration, Instant};

use actix_web::ResponseError;
use diesel::prelude::*;
use humint::crypto::{FieldContext, Keyring, Owner, key_id_of};
use humint::db::{DbConnection, write_tx};
use humint::error::{AppError, AppResult};
use humint::http::context::RequestContext;
use humint::keys::Keys;
use uuid::Uuid;

use crate::support::*;

// A table of this test only, standing in for the encrypted columns that sources will have.
diesel::table! {
    kt_fields (id) {
        id -> Text,
        owner -> Text,
        value -> Binary,
    }
}

const TABLE: &str = "kt_fields";
const COLUMN: &str = "value";

fn create_field_table(app: &TestApp) {
    let blob = if test_database_url().is_some() { "BYTEA" } else { "BLOB" };
    let mut conn = app.db();
    diesel::sql_query(format!(
        "CREATE TABLE kt_fields (id TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, value {blob} NOT NULL)"
    ))
    .execute(&mut *conn)
    .unwrap();
}

fn sql(app: &TestApp, statement: &str) {
    let mut conn = app.db();
    diesel::sql_query(statement).execute(&mut *conn).unwrap_or_else(|e| panic!("{statement}: {e}"));
}

fn tx<T>(app: &TestApp, work: impl FnOnce(&mut DbConnection) -> AppResult<T>) -> AppResult<T> {
    let mut conn = app.db();
    write_tx(&mut conn, work)
}

/// A second `Keys` over the same keyring file with an empty cache: what another instance (or
/// this one after a restart) would do.
fn fresh_keys(app: &TestApp) -> Keys {
    let path = app.state.config.keyring_path();
    Keys::new(&path, Keyring::load(&path).unwrap(), &app.state.config).unwrap()
}

fn new_source(app: &TestApp) -> Uuid {
    let id = Uuid::new_v4();
    tx(app, |c| app.state.keys.create_source_key(c, id, app.clock.now())).unwrap();
    id
}

fn ctx(row: Uuid, source: Uuid) -> FieldContext {
    FieldContext::new(TABLE, COLUMN, row, Owner::Source(source))
}

/// Seals `text` for a new row of `source` and stores it; returns the row id.
fn store_value(app: &TestApp, source: Uuid, text: &str) -> Uuid {
    let row = Uuid::new_v4();
    tx(app, |c| {
        let blob = app.state.keys.seal_field(c, &ctx(row, source), text.as_bytes())?;
        diesel::insert_into(kt_fields::table)
            .values((
                kt_fields::id.eq(row.to_string()),
                kt_fields::owner.eq(source.to_string()),
                kt_fields::value.eq(blob),
            ))
            .execute(c)?;
        Ok(())
    })
    .unwrap();
    row
}

fn read_value(app: &TestApp, keys: &Keys, source: Uuid, row: Uuid) -> AppResult<String> {
    let mut conn = app.db();
    let blob: Vec<u8> = kt_fields::table.find(row.to_string()).select(kt_fields::value).first(&mut *conn).unwrap();
    let plain = keys.open_field(&mut conn, &ctx(row, source), &blob)?;
    Ok(String::from_utf8(plain.to_vec()).unwrap())
}

fn cli(app: &TestApp, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_humint"))
        .args(args)
        .env("HUMINT_DATABASE_URL", app.state.config.database_url.expose())
        .env("HUMINT_DATA_DIR", app.dir.path())
        .env("HUMINT_KEYRING", app.state.config.keyring_path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn status(app: &TestApp) -> serde_json::Value {
    let out = cli(app, &["keys", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kek_version_of(app: &TestApp, source: Uuid) -> i32 {
    use humint::db::schema::data_keys;
    let mut conn = app.db();
    data_keys::table
        .filter(data_keys::owner.eq(source.to_string()))
        .select(data_keys::kek_version)
        .first(&mut *conn)
        .unwrap()
}

fn audit_count(app: &TestApp, action: &str, outcome: &str) -> i64 {
    use humint::db::schema::audit_events;
    let mut conn = app.db();
    audit_events::table
        .filter(audit_events::action.eq(action))
        .filter(audit_events::outcome.eq(outcome))
        .count()
        .get_result(&mut *conn)
        .unwrap()
}

#[tokio::test]
async fn rotate_rewrap_and_retire_keep_every_value_readable_while_the_server_runs() {
    let app = spawn_app().await;
    create_field_table(&app);
    let keyring_path = app.state.config.keyring_path();
    let mut values = Vec::new();
    for i in 0..3 {
        let source = new_source(&app);
        values.push((source, store_value(&app, source, &format!("before rotation {i} — ünïcode"))));
    }
    let before = status(&app);
    assert_eq!(before["database"]["active_kek_version"], 1);
    assert_eq!(before["database"]["data_keys_by_kek_version"][0]["data_keys"], 4, "three sources and the system");

    let rotated = cli(&app, &["keys", "rotate"]);
    assert_eq!(rotated.status.code(), Some(0), "{}", stderr(&rotated));
    assert_eq!(Keyring::load(&keyring_path).unwrap().latest_kek_version(), 2);
    // The running server has only version 1 in memory: it must re-read the keyring by itself.
    assert!(app.state.keys.keyring().kek(2).is_none());
    for i in 0..2 {
        let source = new_source(&app);
        assert_eq!(kek_version_of(&app, source), 2, "new keys use the new active version");
        values.push((source, store_value(&app, source, &format!("after rotation {i}"))));
    }
    assert_eq!(kek_version_of(&app, values[0].0), 1, "old keys stay until rewrap");
    for (source, row) in &values {
        read_value(&app, &app.state.keys, *source, *row).unwrap();
        read_value(&app, &fresh_keys(&app), *source, *row).unwrap();
    }

    let refused = cli(&app, &["keys", "retire", "1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("still wraps 4 data key(s)"), "{}", stderr(&refused));

    let rewrapped = cli(&app, &["keys", "rewrap"]);
    assert_eq!(rewrapped.status.code(), Some(0), "{}", stderr(&rewrapped));
    assert!(stdout(&rewrapped).contains("4/4 data keys re-wrapped under KEK version 2"), "{}", stdout(&rewrapped));
    let again = cli(&app, &["keys", "rewrap"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).contains("0 re-wrapped, 0 failed"), "idempotent: {}", stdout(&again));
    let after = status(&app);
    assert_eq!(after["database"]["active_kek_version"], 2);
    assert_eq!(after["database"]["data_keys_by_kek_version"], serde_json::json!([{"kek_version": 2, "data_keys": 6}]));

    let active = cli(&app, &["keys", "retire", "2"]);
    assert_eq!(active.status.code(), Some(1));
    assert!(stderr(&active).contains("active version"), "{}", stderr(&active));
    let retired = cli(&app, &["keys", "retire", "1"]);
    assert_eq!(retired.status.code(), Some(0), "{}", stderr(&retired));
    let keyring = Keyring::load(&keyring_path).unwrap();
    assert!(keyring.kek(1).is_none(), "the retired version is gone from the keyring file");
    assert!(keyring.kek(2).is_some());
    for (source, row) in &values {
        assert!(read_value(&app, &app.state.keys, *source, *row).unwrap().contains("rotation"));
        assert!(read_value(&app, &fresh_keys(&app), *source, *row).unwrap().contains("rotation"));
    }

    // A version still in use after the next rotation is refused, and stays in the keyring.
    assert_eq!(cli(&app, &["keys", "rotate"]).status.code(), Some(0));
    let in_use = cli(&app, &["keys", "retire", "2"]);
    assert_eq!(in_use.status.code(), Some(1));
    assert!(stderr(&in_use).contains("rewrap"), "{}", stderr(&in_use));
    assert!(Keyring::load(&keyring_path).unwrap().kek(2).is_some());
    assert_eq!(cli(&app, &["keys", "retire", "9"]).status.code(), Some(1), "unknown version");

    assert_eq!(audit_count(&app, "key.rotate", "allowed"), 2);
    assert!(audit_count(&app, "key.rewrap", "allowed") >= 2);
    assert_eq!(audit_count(&app, "key.retire", "allowed"), 1);
    assert_eq!(audit_count(&app, "key.retire", "denied"), 4);
}

#[tokio::test]
async fn a_rotation_with_a_stale_keyring_is_refused() {
    let app = spawn_app().await;
    let keyring_path = app.state.config.keyring_path();
    let stale = app.dir.path().join("stale-keyring.json");
    std::fs::copy(&keyring_path, &stale).unwrap();
    assert_eq!(cli(&app, &["keys", "rotate"]).status.code(), Some(0));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_humint"))
        .args(["keys", "rotate"])
        .env("HUMINT_DATABASE_URL", app.state.config.database_url.expose())
        .env("HUMINT_DATA_DIR", app.dir.path())
        .env("HUMINT_KEYRING", &stale)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not the deployment's current keyring"), "{}", stderr(&out));
    assert_eq!(Keyring::load(&stale).unwrap().latest_kek_version(), 1, "the stale file is left alone");
    assert_eq!(audit_count(&app, "key.rotate", "allowed"), 1);
    assert_eq!(audit_count(&app, "key.rotate", "denied"), 1);
}

#[tokio::test]
async fn shredding_answers_gone_here_at_once_and_on_a_second_instance_within_5_seconds() {
    let app = spawn_app().await;
    create_field_table(&app);
    let second = spawn_app_with(Options {
        env: vec![
            ("HUMINT_DATABASE_URL", app.state.config.database_url.expose().to_string()),
            ("HUMINT_KEYRING", app.state.config.keyring_path().display().to_string()),
        ],
    })
    .await;
    let doomed = new_source(&app);
    let kept = new_source(&app);
    let doomed_row = store_value(&app, doomed, "to be disposed of");
    let kept_row = store_value(&app, kept, "still needed");
    // The second instance has both keys cached.
    assert_eq!(read_value(&second, &second.state.keys, doomed, doomed_row).unwrap(), "to be disposed of");
    assert_eq!(read_value(&second, &second.state.keys, kept, kept_row).unwrap(), "still needed");

    tx(&app, |c| app.state.keys.shred_source_key(c, &RequestContext::system(), None, doomed, app.clock.now())).unwrap();
    let shredded_at = Instant::now();

    let err = read_value(&app, &app.state.keys, doomed, doomed_row).unwrap_err();
    assert!(matches!(err, AppError::Gone), "{err:?}");
    assert_eq!(err.status_code().as_u16(), 410);
    let mut conn = app.db();
    assert!(matches!(app.state.keys.source_key(&mut conn, doomed), Err(AppError::Gone)));
    drop(conn);
    assert_eq!(read_value(&app, &app.state.keys, kept, kept_row).unwrap(), "still needed");

    loop {
        match read_value(&second, &second.state.keys, doomed, doomed_row) {
            Err(AppError::Gone) => break,
            Ok(_) => assert!(shredded_at.elapsed() < Duration::from_secs(5), "second instance still serves the key"),
            Err(other) => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(shredded_at.elapsed() < Duration::from_secs(5));
    assert_eq!(read_value(&second, &second.state.keys, kept, kept_row).unwrap(), "still needed");

    // The row stays as a record, without key material; the destruction is audited and counted.
    use humint::db::schema::data_keys;
    let mut conn = app.db();
    let (wrapped, destroyed_at): (Option<Vec<u8>>, Option<chrono::NaiveDateTime>) = data_keys::table
        .filter(data_keys::owner.eq(doomed.to_string()))
        .select((data_keys::wrapped, data_keys::destroyed_at))
        .first(&mut *conn)
        .unwrap();
    assert!(wrapped.is_none() && destroyed_at.is_some());
    assert_eq!(audit_count(&app, "key.shred", "allowed"), 1);
    assert_eq!(status(&app)["database"]["destroyed_data_keys"], 1);
    // Shredding again is harmless, and a sealed write for the shredded source is refused too.
    tx(&app, |c| app.state.keys.shred_source_key(c, &RequestContext::system(), None, doomed, app.clock.now())).unwrap();
    let write = tx(&app, |c| app.state.keys.seal_field(c, &ctx(Uuid::new_v4(), doomed), b"x"));
    assert!(matches!(write, Err(AppError::Gone)), "{write:?}");
}

#[tokio::test]
async fn a_wrapped_key_moved_to_another_owner_fails_as_an_integrity_error() {
    let app = spawn_app().await;
    create_field_table(&app);
    let (a, b) = (new_source(&app), new_source(&app));
    let row = store_value(&app, a, "belongs to a");
    // Swap the two owners' wrapped keys in the database.
    sql(&app, &format!("UPDATE data_keys SET owner = 'moving' WHERE owner = '{a}'"));
    sql(&app, &format!("UPDATE data_keys SET owner = '{a}' WHERE owner = '{b}'"));
    sql(&app, &format!("UPDATE data_keys SET owner = '{b}' WHERE owner = 'moving'"));
    let keys = fresh_keys(&app);
    let mut conn = app.db();
    for source in [a, b] {
        let err = keys.source_key(&mut conn, source).unwrap_err();
        assert!(matches!(&err, AppError::Integrity(cause) if cause.contains("does not unwrap")), "{err:?}");
        assert_eq!(err.status_code().as_u16(), 500);
    }
    drop(conn);
    let err = read_value(&app, &keys, a, row).unwrap_err();
    assert!(matches!(err, AppError::Integrity(_)), "{err:?}");
}

#[tokio::test]
async fn a_data_key_id_that_does_not_exist_or_belongs_to_another_owner_fails() {
    let app = spawn_app().await;
    create_field_table(&app);
    let (a, b) = (new_source(&app), new_source(&app));
    let row = store_value(&app, a, "belongs to a");
    let keys = &app.state.keys;
    let mut conn = app.db();
    let blob: Vec<u8> = kt_fields::table.find(row.to_string()).select(kt_fields::value).first(&mut *conn).unwrap();
    let key_id = key_id_of(&blob).unwrap();
    assert_eq!(keys.key_by_id(&mut conn, key_id, Owner::Source(a)).unwrap().id(), key_id);
    for (id, owner) in [(Uuid::new_v4(), Owner::Source(a)), (key_id, Owner::Source(b)), (key_id, Owner::System)] {
        let err = keys.key_by_id(&mut conn, id, owner).unwrap_err();
        assert!(matches!(err, AppError::Integrity(_)), "{id} for {owner}: {err:?}");
    }
    // A blob whose header names a key that does not exist.
    let mut forged = blob.clone();
    forged[1..17].copy_from_slice(Uuid::new_v4().as_bytes());
    assert!(matches!(keys.open_field(&mut conn, &ctx(row, a), &forged), Err(AppError::Integrity(_))));
    // The value read as another source's row.
    assert!(matches!(keys.open_field(&mut conn, &ctx(row, b), &blob), Err(AppError::Integrity(_))));
    // A source without any data key.
    assert!(matches!(keys.source_key(&mut conn, Uuid::new_v4()), Err(AppError::Integrity(_))));
    drop(conn);
    // Creating a second key for a source is refused without harming the transaction.
    let twice = tx(&app, |c| keys.create_source_key(c, a, app.clock.now()));
    assert!(matches!(twice, Err(AppError::Conflict(_))), "{twice:?}");
    assert_eq!(read_value(&app, keys, a, row).unwrap(), "belongs to a");
}

#[tokio::test]
async fn an_active_version_missing_from_the_keyring_is_an_operator_error() {
    let app = spawn_app().await;
    sql(&app, "UPDATE key_state SET active_kek_version = 7");
    let err = tx(&app, |c| app.state.keys.create_source_key(c, Uuid::new_v4(), app.clock.now())).unwrap_err();
    assert!(matches!(&err, AppError::Internal(cause) if cause.contains("KEK version 7")), "{err:?}");
    use humint::db::schema::data_keys;
    let mut conn = app.db();
    let count: i64 = data_keys::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(count, 1, "only the system key; nothing was written");
}

/// Forms of `text` that must never appear in storage: UTF-8, UTF-16LE, lowercase hex (how
/// PostgreSQL prints BYTEA) and base64 at each of the three alignments it can take inside a
/// longer base64 string.
fn forbidden_forms(text: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let utf8 = text.as_bytes().to_vec();
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut forms =
        vec![utf8.clone(), utf16.clone(), hex::encode(&utf8).into_bytes(), hex::encode(&utf16).into_bytes()];
    for skip in 0..3 {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&utf8[skip..]);
        // The last group depends on what follows the value; the full groups before it do not.
        let stable = encoded.len() - 4;
        forms.push(encoded.as_bytes()[..stable].to_vec());
    }
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_plaintext_of_a_sealed_canary_reaches_the_database() {
    const CANARY: &str = "CANARY-Zebulon-Okonkwo-7731";
    let app = spawn_app().await;
    create_field_table(&app);
    let source = new_source(&app);
    let mut rows = Vec::new();
    for _ in 0..5 {
        rows.push(store_value(&app, source, &format!("{CANARY} met at the usual place")));
    }
    assert!(read_value(&app, &app.state.keys, source, rows[0]).unwrap().starts_with(CANARY));
    // A value stored in clear, to prove the scan reads the data it claims to read.
    let control = rows[0].to_string();

    let storage: Vec<u8> = match test_database_url() {
        None => {
            let db = match humint::db::Backend::from_url(app.state.config.database_url.expose()).unwrap() {
                humint::db::Backend::Sqlite(path) => path,
                humint::db::Backend::Postgres(_) => unreachable!(),
            };
            let mut bytes = std::fs::read(&db).unwrap();
            let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
            bytes.extend(std::fs::read(&wal).unwrap_or_default());
            bytes
        }
        Some(_) => postgres_rows_as_text(&app).into_bytes(),
    };
    assert!(contains(&storage, control.as_bytes()), "the scan must see the stored rows");
    for form in forbidden_forms(CANARY) {
        assert!(!contains(&storage, &form), "plaintext form {:?} found in storage", String::from_utf8_lossy(&form));
    }
}

/// Every row of every table of the test database, each printed as PostgreSQL's text form.
fn postgres_rows_as_text(app: &TestApp) -> String {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        tablename: String,
    }
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    let mut conn = app.db();
    let tables: Vec<Name> =
        diesel::sql_query("SELECT tablename::text AS tablename FROM pg_tables WHERE schemaname = 'public'")
            .load(&mut *conn)
            .unwrap();
    assert!(tables.iter().any(|t| t.tablename == "data_keys"));
    let mut all = String::new();
    for t in tables {
        let rows: Vec<Row> =
            diesel::sql_query(format!("SELECT t::text AS row FROM \"{}\" t", t.tablename)).load(&mut *conn).unwrap();
        for r in rows {
            all.push_str(&r.row);
            all.push('\n');
        }
    }
    all
}
