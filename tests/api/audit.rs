//! The audit trail as an attacker and an auditor would try it: tampering in the database is
//! found at the right seq, appends fail closed, concurrent writers leave a gap-free chain, every
//! denial is recorded, and the exported chain recomputes with the documented rule alone.

use diesel::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::audit_chain_independent::independent_chain;
use crate::support::*;

fn sql(app: &TestApp, statement: &str) {
    let mut conn = app.db();
    diesel::sql_query(statement).execute(&mut *conn).unwrap_or_else(|e| panic!("{statement}: {e}"));
}

async fn verify(app: &TestApp, compliance: &TestUser) -> Value {
    let r = app.get("/api/v1/audit/verify", &compliance.token).await;
    assert_eq!(r.status(), StatusCode::OK);
    body(r).await
}

/// An app with some history: logins, failures, reads; everything chained.
async fn app_with_history() -> (TestApp, TestUser) {
    let app = spawn_app().await;
    let compliance = app.user(&["compliance"], "AUDIT").await;
    for _ in 0..3 {
        app.login("nobody.known", "wrong password here").await;
    }
    let admin = app.admin_token().await;
    app.get("/api/v1/users", &admin).await;
    app.settle_audit(false);
    let v = verify(&app, &compliance).await;
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["checked"].as_u64().unwrap() >= 10);
    (app, compliance)
}

#[tokio::test]
async fn an_edited_field_is_found_at_its_seq() {
    let (app, compliance) = app_with_history().await;
    sql(&app, "UPDATE audit_events SET purpose = 'innocent lookup' WHERE seq = 4");
    let v = verify(&app, &compliance).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["first_invalid_seq"], 4);
    assert_eq!(v["failure"], "hash_mismatch");
}

#[tokio::test]
async fn an_edited_outcome_is_found_even_as_an_unknown_value() {
    let (app, compliance) = app_with_history().await;
    sql(&app, "UPDATE audit_events SET outcome = 'allowed ' WHERE seq = 6");
    let v = verify(&app, &compliance).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["first_invalid_seq"], 6);
}

#[tokio::test]
async fn a_deleted_event_is_found_where_the_gap_opens() {
    let (app, compliance) = app_with_history().await;
    sql(&app, "DELETE FROM audit_events WHERE seq = 5");
    let v = verify(&app, &compliance).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["first_invalid_seq"], 5);
    assert_eq!(v["failure"], "seq_gap");
}

#[tokio::test]
async fn two_swapped_events_are_found_at_the_lower_seq() {
    let (app, compliance) = app_with_history().await;
    sql(&app, "UPDATE audit_events SET seq = -1 WHERE seq = 3");
    sql(&app, "UPDATE audit_events SET seq = 3 WHERE seq = 7");
    sql(&app, "UPDATE audit_events SET seq = 7 WHERE seq = -1");
    let v = verify(&app, &compliance).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["first_invalid_seq"], 3);
}

#[tokio::test]
async fn a_truncated_tail_is_caught_by_the_checkpoint() {
    let (app, compliance) = app_with_history().await;
    app.settle_audit(true);
    let head = latest_checkpoint_seq(&app);
    assert!(head >= 10);
    // The attacker deletes the tail; the stored checkpoint still names the old head.
    sql(&app, &format!("DELETE FROM audit_events WHERE seq >= {}", head - 1));
    let v = verify(&app, &compliance).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["failure"], "truncated");
    assert_eq!(v["first_invalid_seq"], head - 1);
    // New events written over the cut do not hide it: the chain no longer passes through the
    // checkpoint.
    app.settle_audit(false);
    let again = verify(&app, &compliance).await;
    assert_eq!(again["valid"], false, "{again}");
}

fn latest_checkpoint_seq(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Seq {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq: i64,
    }
    let mut conn = app.db();
    let row: Seq = diesel::sql_query("SELECT MAX(seq) AS seq FROM audit_checkpoints").get_result(&mut *conn).unwrap();
    row.seq
}

#[tokio::test]
async fn an_altered_checkpoint_signature_is_found() {
    let (app, compliance) = app_with_history().await;
    app.settle_audit(true);
    let cps = body(app.get("/api/v1/audit/checkpoints", &compliance.token).await).await;
    let cp = &cps["items"][0];
    let seq = cp["seq"].as_i64().unwrap();
    let mut sig = cp["signature"].as_str().unwrap().to_string();
    // Change one base64 character in the middle of the signature.
    let mid = sig.len() / 2;
    let replacement = if &sig[mid..=mid] == "A" { "B" } else { "A" };
    sig.replace_range(mid..=mid, replacement);
    sql(&app, &format!("UPDATE audit_checkpoints SET signature = '{sig}' WHERE seq = {seq}"));
    let v = verify(&app, &compliance).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["failure"], "checkpoint_signature");
    assert_eq!(v["first_invalid_seq"], seq);
}

#[tokio::test]
async fn the_cli_verifier_agrees_and_uses_its_exit_codes() {
    let (app, _) = app_with_history().await;
    let bin = env!("CARGO_BIN_EXE_humint");
    let keyring = app.state.config.keyring_path();
    let run = || {
        std::process::Command::new(bin)
            .args(["audit", "verify"])
            .env("HUMINT_DATABASE_URL", app.state.config.database_url.expose())
            .env("HUMINT_DATA_DIR", app.dir.path())
            .env("HUMINT_KEYRING", &keyring)
            .output()
            .unwrap()
    };
    let ok = run();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));
    sql(&app, "UPDATE audit_events SET action = 'user.list' WHERE seq = 2");
    let bad = run();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("first bad seq 2"));
    let broken = std::process::Command::new(bin)
        .args(["audit", "verify"])
        .env("HUMINT_DATABASE_URL", "sqlite:///nonexistent/dir/x.db")
        .env("HUMINT_KEYRING", app.dir.path().join("no-such-keyring.json"))
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(2));
}

#[tokio::test]
async fn requests_fail_closed_when_the_audit_append_fails() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let target = app.user(&["handler"], "DSU-NORTH").await;
    let path = format!("/api/v1/users/{}", target.id);
    sql(&app, "ALTER TABLE audit_events RENAME TO audit_events_gone");
    let read = app.get(&path, &admin).await;
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = read.text().await.unwrap();
    assert!(!text.contains(&target.username), "no data may leave unaudited: {text}");
    let change = app.patch(&path, &admin, json!({"display_name": "Changed while blind"})).await;
    assert_eq!(change.status(), StatusCode::SERVICE_UNAVAILABLE);
    let list = app.get("/api/v1/users", &admin).await;
    assert_eq!(list.status(), StatusCode::SERVICE_UNAVAILABLE);
    sql(&app, "ALTER TABLE audit_events_gone RENAME TO audit_events");
    let user = body(app.get(&path, &admin).await).await;
    assert_eq!(user["display_name"], target.username.as_str(), "the change must have rolled back");
}

#[tokio::test]
async fn every_login_failure_and_denial_is_recorded_as_denied() {
    let app = spawn_app().await;
    let compliance = app.user(&["compliance"], "AUDIT").await;
    let handler = app.user(&["handler"], "DSU-NORTH").await;
    let admin = app.admin_token().await;
    app.login(&handler.username, "wrong password here").await;
    app.login("ghost.user", "wrong password here").await;
    for _ in 0..5 {
        app.login("locked.user", "wrong password here").await;
    }
    app.login("locked.user", "wrong password here").await; // 423
    assert_eq!(app.get("/api/v1/users", &handler.token).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/audit/events", &admin).await.status(), StatusCode::FORBIDDEN);
    app.get(&format!("/api/v1/users/{}", uuid::Uuid::new_v4()), &admin).await; // 404
    let created = app
        .post("/api/v1/users", Some(&admin), json!({"username": "must.change", "display_name": "M", "password": "temporary password 1", "roles": ["controller"], "unit": "DSU-NORTH"}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let first = body(app.login("must.change", "temporary password 1").await).await;
    let gated = app.get("/api/v1/users", first["access_token"].as_str().unwrap()).await;
    assert_eq!(gated.status(), StatusCode::FORBIDDEN);
    let fresh = body(app.login("admin", "wrong password here").await).await;
    assert!(fresh.get("access_token").is_none());
    app.settle_audit(false);

    let denied = body(app.get("/api/v1/audit/events?outcome=denied&limit=200", &compliance.token).await).await;
    let events = denied["items"].as_array().unwrap();
    let count = |action: &str, username: Option<&str>| {
        events
            .iter()
            .filter(|e| e["action"] == action && username.is_none_or(|u| e["actor_username"] == u))
            .inspect(|e| assert_eq!(e["outcome"], "denied"))
            .count()
    };
    assert_eq!(count("auth.login.failed", Some(&handler.username)), 1);
    assert_eq!(count("auth.login.failed", Some("ghost.user")), 1);
    assert_eq!(count("auth.login.failed", Some("locked.user")), 5);
    assert_eq!(count("auth.login.locked", Some("locked.user")), 1);
    assert_eq!(count("access.denied", Some(&handler.username)), 1);
    assert_eq!(count("access.denied", Some("admin")), 1);
    assert_eq!(count("access.denied", Some("must.change")), 1);
    assert!(events.iter().any(|e| e["actor_username"] == "must.change" && e["reason"] == "password_change_required"));
    assert_eq!(count("user.read", Some("admin")), 1);
    assert!(count("auth.login.failed", Some("admin")) >= 1);
    for e in events {
        let text = e.to_string();
        assert!(!text.contains("wrong password here"), "no password in the trail: {text}");
    }
}

#[tokio::test]
async fn the_exported_chain_recomputes_with_the_documented_rule_alone() {
    let (app, compliance) = app_with_history().await;
    let admin = app.admin_token().await;
    app.client
        .get(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .header("X-Access-Purpose", "Opération \"SAHEL-7\" — vérification")
        .send()
        .await
        .unwrap();
    app.settle_audit(false);
    let r = app.get("/api/v1/audit/export", &compliance.token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().any(|e| e["purpose"] == "Opération \"SAHEL-7\" — vérification"));
    let recomputed = independent_chain(&events);
    for (e, h) in events.iter().zip(&recomputed) {
        assert_eq!(e["hash"].as_str(), Some(h.as_str()), "seq {}", e["seq"]);
    }
    // The export is itself an audited read.
    app.settle_audit(false);
    let last = body(app.get("/api/v1/audit/events?action=audit.export", &compliance.token).await).await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn audit_events_filter_and_page_and_only_compliance_may_read_them() {
    let (app, compliance) = app_with_history().await;
    let admin = app.admin_token().await;
    for path in ["/api/v1/audit/events", "/api/v1/audit/verify", "/api/v1/audit/checkpoints", "/api/v1/audit/export"] {
        assert_eq!(app.get(path, &admin).await.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit/events?action=auth.login.failed&limit=2&cursor={c}"),
            None => "/api/v1/audit/events?action=auth.login.failed&limit=2".to_string(),
        };
        let page = body(app.get(&path, &compliance.token).await).await;
        for e in page["items"].as_array().unwrap() {
            assert_eq!(e["action"], "auth.login.failed");
            seqs.push(e["seq"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "seq descending: {seqs:?}");
    for bad in ["?outcome=maybe", "?from=yesterday", "?limit=0", "?actor_id=%00", "?unknown=1"] {
        let r = app.request(Method::GET, &format!("/api/v1/audit/events{bad}"), Some(&compliance.token), None).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let window = body(
        app.get("/api/v1/audit/events?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z&limit=200", &compliance.token)
            .await,
    )
    .await;
    assert!(!window["items"].as_array().unwrap().is_empty());
    let none = body(app.get("/api/v1/audit/events?to=2000-01-01T00:00:00Z", &compliance.token).await).await;
    assert!(none["items"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_leave_a_valid_gap_free_chain_with_an_exact_count() {
    let app = spawn_app().await;
    let compliance = app.user(&["compliance"], "AUDIT").await;
    let admin = app.admin_token().await;
    let target = app.user(&["handler"], "DSU-NORTH").await;
    // On PostgreSQL a second instance shares the database (and the keyring).
    let second = match test_database_url() {
        Some(_) => Some(
            spawn_app_with(Options {
                env: vec![
                    ("HUMINT_DATABASE_URL", app.state.config.database_url.expose().to_string()),
                    ("HUMINT_KEYRING", app.state.config.keyring_path().display().to_string()),
                ],
            })
            .await,
        ),
        None => None,
    };
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 200;
    let path = format!("/api/v1/users/{}", target.id);
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let base = match (&second, client % 2) {
            (Some(s), 1) => s.address.clone(),
            _ => app.address.clone(),
        };
        let (http, url, token) = (app.client.clone(), format!("{base}{path}"), admin.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..REQUESTS {
                let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = verify(&app, &compliance).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["unchained_events"], 0);
    let mut conn = app.db();
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        reads: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        max_seq: i64,
    }
    let c: Counts = diesel::sql_query(
        "SELECT (SELECT COUNT(*) FROM audit_events WHERE action = 'user.read') AS reads, \
                (SELECT COUNT(*) FROM audit_events WHERE seq IS NOT NULL) AS total, \
                (SELECT COALESCE(MAX(seq), 0) FROM audit_events) AS max_seq",
    )
    .get_result(&mut *conn)
    .unwrap();
    assert_eq!(c.reads, (CLIENTS * REQUESTS) as i64, "exactly one event per request");
    assert_eq!(c.total, c.max_seq, "seq is gap-free");
    assert!(v["checked"].as_i64().unwrap() >= c.total - 1);
    drop(second);
}

/// 5,000 rows squeezed between the last checkpoint's seq A and A + 1 as fractions. SQLite keeps a
/// fraction written into an integer column as written, sorts it among the integers and reads it
/// back as A: a reader that pages by "the last seq I saw" would fetch the same rows for ever,
/// holding the chain lock (checkpoint) or streaming without end (export). Both must stop.
/// PostgreSQL rounds the fractions into `bigint` and its UNIQUE index refuses the edit.
#[tokio::test]
async fn fractional_seqs_stop_the_checkpoint_and_the_export_instead_of_looping_them() {
    let (app, compliance) = app_with_history().await;
    app.settle_audit(true);
    let anchor = latest_checkpoint_seq(&app);
    let admin = app.admin_token().await;
    app.get("/api/v1/users", &admin).await;
    app.settle_audit(false);
    let fractions = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
         INSERT INTO audit_events (id, seq, at, action, outcome, prev_hash, hash, created_at) \
         SELECT 'fraction-' || i, {anchor} + i / 10000.0, e.at, e.action, e.outcome, e.prev_hash, e.hash, e.created_at \
         FROM n, audit_events e WHERE e.seq = 1"
    );
    let edited = diesel::sql_query(&fractions).execute(&mut *app.db());
    let sqlite = test_database_url().is_none();
    match &edited {
        Ok(rows) => assert!(sqlite && *rows == 5000, "{rows} rows"),
        Err(e) => assert!(!sqlite, "SQLite refused the edit: {e}"),
    }
    let rows_now: i64 = {
        use diesel::prelude::*;
        use humint::db::schema::audit_events;
        audit_events::table.filter(audit_events::seq.is_not_null()).count().get_result(&mut *app.db()).unwrap()
    };

    let state = app.state.clone();
    let pass = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || humint::audit::sequencer::run_once(&state, true)),
    )
    .await
    .expect("the checkpoint pass ends")
    .unwrap();
    assert_eq!(pass.is_err(), sqlite, "{pass:?}");
    assert_eq!(latest_checkpoint_seq(&app) > anchor, !sqlite, "a checkpoint signed over the edit");

    let r = app.get("/api/v1/audit/export", &compliance.token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = tokio::time::timeout(std::time::Duration::from_secs(60), r.text()).await.expect("the export ends");
    match text {
        // The export's own event is the one line more.
        Ok(text) => {
            assert!(!sqlite, "the export of an edited trail ended as if complete");
            assert_eq!(text.lines().count() as i64, rows_now + 1);
        }
        Err(e) => assert!(sqlite, "{e}"),
    }
    assert_eq!(verify(&app, &compliance).await["valid"], !sqlite);
}
