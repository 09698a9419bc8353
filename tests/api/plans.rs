//! No full scans on the hot paths. The SQL that humint sends for the three request scenarios of
//! the benchmark (read a source, log a contact, list 50 contacts), for their authentication, and
//! for the audit sequencer, is recorded as the server sends it and planned by the database on a
//! grown database: thousands of filler sources, contacts, users and events, made by the same
//! filler as the benchmark's scale run (`benches/bench_driver/scale/fill.rs`).
//!
//! - SQLite: `EXPLAIN QUERY PLAN` of each statement. humint never runs `ANALYZE`, so SQLite plans
//!   without statistics, as it does in production; any `SCAN` of a table that grows fails.
//! - PostgreSQL: after `ANALYZE` (autovacuum's job in production), the *generic* plan of each
//!   statement — `PREPARE`, then `EXPLAIN EXECUTE` under `plan_cache_mode = force_generic_plan`:
//!   the plan that does not depend on the parameters' values, which PostgreSQL uses for diesel's
//!   cached prepared statements once it prefers it. Any `Seq Scan` on a table that grows fails.
//!   (`enable_seqscan = off` would prove nothing: it only makes a scan look expensive.)

use std::collections::BTreeSet;
use std::sync::{Mutex, Once};

use chrono::TimeDelta;
use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection, set_default_instrumentation};
use diesel::{Connection, RunQueryDsl};
use humint::db::Backend;
use reqwest::StatusCode;
use serde_json::json;

use crate::contacts::{contact, item};
use crate::support::*;
use crate::world::*;

#[path = "../../benches/bench_driver/scale/fill.rs"]
mod fill;

/// Tables that grow with sources, contacts or time: a full scan of any of them fails. Not
/// `users`: the service's staff, hundreds to a few thousand rows, which PostgreSQL may rightly
/// hash-join in full (it does for the assignments of several sources when the number of sources
/// is unknown, as in a generic plan); its lookups by id are checked through `sessions`.
const GROWING: [&str; 12] = [
    "sources",
    "source_identities",
    "data_keys",
    "contacts",
    "intelligence_items",
    "contact_amendments",
    "assignments",
    "authorisations",
    "reviews",
    "audit_events",
    "sessions",
    "refresh_tokens",
];

/// Tables the recorded requests must have queried (so that the test cannot pass on nothing).
const MUST_SEE: [&str; 10] = [
    "sessions",
    "users",
    "sources",
    "assignments",
    "authorisations",
    "reviews",
    "contacts",
    "intelligence_items",
    "contact_amendments",
    "audit_events",
];

/// Connections (by the URL or path they were opened with) whose statements are recorded.
static WATCHED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static RECORDED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// diesel's instrumentation of every connection this test process opens: it remembers which
/// database the connection is for, and records its statements while that database is watched.
struct Recorder {
    url: Option<String>,
}

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => self.url = Some(url.to_string()),
            InstrumentationEvent::StartQuery { query, .. } => {
                let Some(url) = &self.url else { return };
                if WATCHED.lock().is_ok_and(|w| w.contains(url))
                    && let Ok(mut recorded) = RECORDED.lock()
                {
                    recorded.push((url.clone(), query.to_string()));
                }
            }
            _ => {}
        }
    }
}

/// Installs the recorder for connections opened from now on (once per process; other tests'
/// databases are never watched).
fn record_statements() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        set_default_instrumentation(|| Some(Box::new(Recorder { url: None }))).expect("default instrumentation");
    });
}

fn mentions(sql: &str, table: &str) -> bool {
    sql.contains(&format!("`{table}`")) || sql.contains(&format!("\"{table}\""))
}

#[derive(diesel::QueryableByName)]
struct SqlitePlan {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

#[derive(diesel::QueryableByName)]
struct PgPlan {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan of `sql` as lines, and the growing tables it scans in full.
fn plan_sqlite(conn: &mut diesel::SqliteConnection, sql: &str) -> (Vec<String>, Vec<String>) {
    let rows: Vec<SqlitePlan> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load(conn)
        .unwrap_or_else(|e| panic!("EXPLAIN QUERY PLAN {sql}: {e}"));
    let lines: Vec<String> = rows.into_iter().map(|r| r.detail).collect();
    let scans = lines
        .iter()
        .filter_map(|l| l.strip_prefix("SCAN "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|t| GROWING.contains(t))
        .map(str::to_string)
        .collect();
    (lines, scans)
}

fn plan_postgres(conn: &mut diesel::PgConnection, n: usize, sql: &str) -> (Vec<String>, Vec<String>) {
    let params = (1..=64).rev().find(|k| sql.contains(&format!("${k}"))).unwrap_or(0);
    conn.batch_execute(&format!("PREPARE humint_plan_{n} AS {sql}")).unwrap_or_else(|e| panic!("PREPARE {sql}: {e}"));
    let args = vec!["NULL"; params].join(", ");
    let execute = if params == 0 { format!("humint_plan_{n}") } else { format!("humint_plan_{n}({args})") };
    let rows: Vec<PgPlan> = diesel::sql_query(format!("EXPLAIN EXECUTE {execute}"))
        .load(conn)
        .unwrap_or_else(|e| panic!("EXPLAIN EXECUTE {sql}: {e}"));
    conn.batch_execute(&format!("DEALLOCATE humint_plan_{n}")).unwrap();
    let lines: Vec<String> = rows.into_iter().map(|r| r.line).collect();
    let scans = lines
        .iter()
        .filter_map(|l| l.split_once("Seq Scan on ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|t| t.trim_matches('"'))
        .filter(|t| GROWING.contains(t))
        .map(str::to_string)
        .collect();
    (lines, scans)
}

#[tokio::test]
async fn the_hot_queries_use_indexes_on_a_grown_database() {
    record_statements();
    let app = spawn_app().await;
    let w = world(&app).await;
    let h = w.handler.token.as_str();

    // The template of the filler: world's source, with a contact (two graded items, amended once)
    // and a reliability review.
    let at = rfc3339(app.clock.now() - TimeDelta::hours(2));
    let items = vec![
        item("4x4", "B", "2", Some("H3"), Some("Not to the prosecutor without consent")),
        item("admiralty", "C", "3", None, None),
    ];
    let r = app.log_contact(h, &w.s, contact(&at, items.clone())).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let logged = body(r).await;
    let amend = format!("/api/v1/contacts/{}/amendments", logged["id"].as_str().unwrap());
    let r = app
        .post(&amend, Some(h), json!({"field": "tasking", "new_value": "Count the vehicles.", "reason": "clearer"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let due = rfc3339(app.clock.now() + TimeDelta::days(90));
    let review = json!({"grade": "B", "rationale": "Reliable in 9 of 10 reports", "next_review_due": due});
    let r = app.post(&format!("/api/v1/sources/{}/reviews", w.s), Some(&w.controller_unit.token), review).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    app.settle_audit(false);

    let (url, postgres) = match &app.state.backend {
        Backend::Sqlite(path) => (path.to_str().expect("UTF-8 path").to_string(), false),
        Backend::Postgres(url) => (url.clone(), true),
    };
    // Off the runtime, which also serves the app.
    let (pool, template) = (app.state.pool.clone(), w.s.clone());
    let grown = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("db connection");
        let grown = fill::grow(&mut conn, &template, 1_500, 12_000, 400).expect("fill");
        if postgres {
            conn.batch_execute("ANALYZE").expect("analyze");
        }
        grown
    })
    .await
    .unwrap();
    println!("filler: {}", grown.summary());
    assert_eq!(grown.sources, 1_498, "world has two sources");

    // The scenarios, as the benchmark drives them, after the session's last-seen time went stale
    // (so that authentication also writes it).
    app.clock.advance(TimeDelta::minutes(1));
    WATCHED.lock().unwrap().push(url.clone());
    let r = app.get(&format!("/api/v1/sources/{}", w.s), h).await;
    assert_eq!(r.status(), StatusCode::OK);
    let at = rfc3339(app.clock.now() - TimeDelta::hours(1));
    assert_eq!(app.log_contact(h, &w.s, contact(&at, items)).await.status(), StatusCode::CREATED);
    let r = app.get(&format!("/api/v1/sources/{}/contacts?limit=50", w.s), h).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.settle_audit(true);
    WATCHED.lock().unwrap().retain(|u| *u != url);

    let statements: BTreeSet<String> = RECORDED
        .lock()
        .unwrap()
        .iter()
        .filter(|(u, _)| *u == url)
        .map(|(_, q)| q.split(" -- binds: ").next().unwrap_or(q).trim().to_string())
        .filter(|q| {
            let head = q.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].contains(&head.as_str())
        })
        .collect();
    for table in MUST_SEE {
        assert!(
            statements.iter().any(|q| mentions(q, table) && !q.starts_with("INSERT")),
            "no query of {table} was recorded: {statements:#?}"
        );
    }

    let mut failures = Vec::new();
    let mut sqlite = (!postgres).then(|| diesel::SqliteConnection::establish(&url).expect("sqlite"));
    let mut pg = postgres.then(|| diesel::PgConnection::establish(&url).expect("postgres"));
    if let Some(pg) = &mut pg {
        pg.batch_execute("SET plan_cache_mode = force_generic_plan").unwrap();
    }
    for (n, sql) in statements.iter().enumerate() {
        let (lines, scans) = match (&mut sqlite, &mut pg) {
            (Some(c), _) => plan_sqlite(c, sql),
            (_, Some(c)) => plan_postgres(c, n, sql),
            _ => unreachable!(),
        };
        println!("{sql}\n    {}\n", lines.join("\n    "));
        if !scans.is_empty() {
            failures.push(format!("{sql}\n  scans {scans:?}:\n    {}", lines.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "full scans on the hot paths:\n{}", failures.join("\n"));

    // The filler's events are chained as the sequencer chains: the trail still verifies.
    let v = body(app.get("/api/v1/audit/verify", &w.compliance.token).await).await;
    assert_eq!(v["valid"], true, "{v}");
}
