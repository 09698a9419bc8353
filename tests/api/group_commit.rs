//! Group commit of audit events (src/audit/group.rs), driven from many threads against the real
//! database: events waiting while a commit runs are committed together, chained in that
//! transaction; nobody is answered before their event is committed; a failed commit fails every
//! request in it and leaves the group working.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::RunQueryDsl;
use humint::audit::{self, Event, GroupCommit, Outcome};
use humint::db::write_tx;
use humint::error::AppResult;
use humint::http::context::RequestContext;

use crate::support::*;

fn context(group: &Arc<GroupCommit>, n: usize) -> RequestContext {
    RequestContext {
        request_id: format!("group-commit-test-{n}"),
        client_ip: None,
        purpose: None,
        commits: Some(group.clone()),
    }
}

/// Appends one event per thread through `group`, each on its own pooled connection.
fn appenders(app: &TestApp, group: &Arc<GroupCommit>, n: usize) -> Vec<std::thread::JoinHandle<AppResult<()>>> {
    (0..n)
        .map(|i| {
            let (pool, ctx) = (app.state.pool.clone(), context(group, i));
            std::thread::spawn(move || {
                let mut conn = pool.get().expect("db connection");
                let event = Event::new("test.group_commit", Outcome::Allowed).reason("group_commit_test");
                audit::append_alone(&mut conn, &ctx, event, Utc::now())
            })
        })
        .collect()
}

/// Waits (not a timing assertion: it only bounds a hang) until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count_events(app: &TestApp, action: &str) -> (i64, i64) {
    use diesel::prelude::*;
    use humint::db::schema::audit_events::dsl;
    let mut conn = app.db();
    let all: i64 = dsl::audit_events.filter(dsl::action.eq(action)).count().get_result(&mut *conn).unwrap();
    let chained: i64 = dsl::audit_events
        .filter(dsl::action.eq(action))
        .filter(dsl::seq.is_not_null())
        .count()
        .get_result(&mut *conn)
        .unwrap();
    (all, chained)
}

#[tokio::test(flavor = "multi_thread")]
async fn events_waiting_during_a_commit_are_committed_together_and_chained() {
    let app = spawn_app().await;
    let group = Arc::new(GroupCommit::new());
    // Hold the chain lock (on SQLite: the write lock) so that the first leader blocks inside its
    // commit while the others queue behind it.
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let pool = app.state.pool.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = pool.get().expect("db connection");
        write_tx(&mut conn, |conn| {
            audit::sequencer::hold_chain_lock(conn)?;
            held_tx.send(()).ok();
            release_rx.recv().ok();
            Ok::<_, humint::error::AppError>(())
        })
    });
    held_rx.recv().unwrap();
    let first = appenders(&app, &group, 1);
    wait_until("the first leader takes its batch", || group.waiting() == 0 && first.iter().all(|t| !t.is_finished()));
    let rest = appenders(&app, &group, 11);
    wait_until("eleven events queue behind the running commit", || group.waiting() == 11);
    assert_eq!(group.stats().transactions, 0, "nothing may commit while the chain lock is held");
    assert_eq!(count_events(&app, "test.group_commit").0, 0, "nobody is answered before the commit");
    release_tx.send(()).unwrap();
    holder.join().unwrap().unwrap();
    for t in first.into_iter().chain(rest) {
        t.join().unwrap().expect("append");
    }
    let stats = group.stats();
    assert_eq!((stats.transactions, stats.events), (2, 12), "one commit for the first, one for the eleven");
    assert_eq!(count_events(&app, "test.group_commit"), (12, 12), "every event committed and chained in it");
    let compliance = app.user(&["compliance"], "AUDIT").await;
    let report = body(app.get("/api/v1/audit/verify", &compliance.token).await).await;
    assert_eq!(report["valid"], true, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_group_commit_fails_every_request_in_it_and_the_group_recovers() {
    let app = spawn_app().await;
    let group = Arc::new(GroupCommit::new());
    let exec = |statement: &str| {
        let mut conn = app.db();
        diesel::sql_query(statement).execute(&mut *conn).unwrap_or_else(|e| panic!("{statement}: {e}"));
    };
    exec("ALTER TABLE audit_events RENAME TO audit_events_gone");
    for t in appenders(&app, &group, 8) {
        let result = t.join().unwrap();
        assert!(
            matches!(result, Err(humint::error::AppError::Unavailable(_))),
            "an event that cannot be committed fails its request (503): {result:?}"
        );
    }
    assert_eq!(group.stats().events, 0);
    exec("ALTER TABLE audit_events_gone RENAME TO audit_events");
    for t in appenders(&app, &group, 8) {
        t.join().unwrap().expect("the group works again once the table is back");
    }
    assert_eq!(group.stats().events, 8);
    assert_eq!(group.waiting(), 0);
    assert_eq!(count_events(&app, "test.group_commit"), (8, 8));
}
