//! Canary: distinctive plaintext written through every encrypted field must appear nowhere in
//! the database files (SQLite file and WAL), in PostgreSQL's rows, or in the server's log — in
//! UTF-8, UTF-16, base64 or hex.

use std::io::Write;
use std::sync::{Mutex, Once};

use base64::Engine;
use diesel::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;
use crate::world::*;

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INIT: Once = Once::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = LOG.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line of this test process at debug level (the server runs in-process).
fn capture_logs() {
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

fn forms(canary: &str) -> Vec<(String, Vec<u8>)> {
    let utf16: Vec<u8> = canary.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    vec![
        ("utf-8".into(), canary.as_bytes().to_vec()),
        ("utf-16le".into(), utf16),
        ("base64".into(), base64::engine::general_purpose::STANDARD.encode(canary).into_bytes()),
        ("hex".into(), hex::encode(canary).into_bytes()),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Everything the database holds, as bytes: the SQLite file and its WAL, or every row of every
/// PostgreSQL table as text (bytea shows as hex there, which the hex form catches).
fn database_bytes(app: &TestApp) -> Vec<u8> {
    match test_database_url() {
        None => {
            let mut bytes = Vec::new();
            for name in ["humint.db", "humint.db-wal"] {
                if let Ok(b) = std::fs::read(app.dir.path().join(name)) {
                    bytes.extend(b);
                }
            }
            assert!(bytes.len() > 4096, "the database files were read");
            bytes
        }
        Some(_) => {
            #[derive(diesel::QueryableByName)]
            struct Name {
                #[diesel(sql_type = diesel::sql_types::Text)]
                tablename: String,
            }
            #[derive(diesel::QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                line: String,
            }
            let mut conn = app.db();
            let tables: Vec<Name> = diesel::sql_query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                .load(&mut *conn)
                .unwrap();
            let mut bytes = Vec::new();
            for t in tables {
                let rows: Vec<Row> = diesel::sql_query(format!("SELECT t::text AS line FROM \"{}\" t", t.tablename))
                    .load(&mut *conn)
                    .unwrap();
                for r in rows {
                    bytes.extend(r.line.into_bytes());
                }
            }
            assert!(bytes.len() > 1000);
            bytes
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_never_appear_in_plaintext_in_storage_or_logs() {
    capture_logs();
    let app = spawn_app().await;
    let handler = app.user(&["handler"], UNIT).await;
    let controller = app.user(&["controller"], UNIT).await;
    let canaries = [
        "CanaryName Zebulon Okonkwo-7731",
        "CanaryAlias Kestrel-4490",
        "CanaryPhone +223-7731-0042",
        "CanaryAddress Rue Quarante-Deux 7731",
        "CanaryNotes Meets at the Baobab-7731",
        "CanaryReason Tasking paused-7731",
        "CanaryPurpose Disrupt route-7731",
        "CanaryCancel Relocated-7731",
        "CanaryRename Zebulon Okonkwo II-7731",
        "CanaryLocation Garage of the Tanner-7731",
        "CanarySummary Convoy counted at dawn-7731",
        "CanaryTasking Photograph the plates-7731",
        "CanaryWelfare Brother threatened-7731",
        "CanaryItem Shipment arrives Friday-7731",
        "CanaryConditions Judge only-7731",
        "CanaryAmended Convoy counted at dusk-7731",
        "CanaryAmendReason Misheard the hour-7731",
        "CanaryRationale Proved right twice-7731",
    ];
    let ident = json!({"legal_name": canaries[0], "aliases": [canaries[1]], "date_of_birth": "1979-03-14",
                       "nationality": "NE", "phone": canaries[2], "address": canaries[3], "notes": canaries[4]});
    let s = app.register(&handler.token, ident, false).await;
    let id = s["id"].as_str().unwrap();
    let c = controller.token.as_str();
    let from = rfc3339(app.clock.now());
    let auth = app
        .post(
            &format!("/api/v1/sources/{id}/authorisations"),
            Some(c),
            json!({"purpose": canaries[6], "valid_from": from}),
        )
        .await;
    assert_eq!(auth.status(), StatusCode::CREATED);
    let aid = body(auth).await["id"].as_str().unwrap().to_string();
    let r = app
        .post(&format!("/api/v1/sources/{id}/status"), Some(c), json!({"status": "active", "reason": canaries[5]}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(&format!("/api/v1/sources/{id}/authorisations/{aid}/cancel"), Some(c), json!({"reason": canaries[7]}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let renamed = json!({"legal_name": canaries[8], "aliases": [canaries[1]], "notes": canaries[4]});
    let r =
        app.with_purpose(Method::PUT, &format!("/api/v1/sources/{id}/identity"), &handler.token, Some(renamed)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let at = rfc3339(app.clock.now());
    let logged = app
        .post(
            &format!("/api/v1/sources/{id}/contacts"),
            Some(&handler.token),
            json!({"occurred_at": at, "contact_type": "meeting", "location": canaries[9], "summary": canaries[10],
                   "tasking": canaries[11], "welfare_concerns": canaries[12],
                   "intelligence": [{"content": canaries[13], "grading": {"source": "B", "information": "2", "handling": "H3", "handling_conditions": canaries[14]}}]}),
        )
        .await;
    assert_eq!(logged.status(), StatusCode::CREATED);
    let contact_id = body(logged).await["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/api/v1/contacts/{contact_id}/amendments"),
            Some(&handler.token),
            json!({"field": "summary", "new_value": canaries[15], "reason": canaries[16]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let due = rfc3339(app.clock.now() + chrono::TimeDelta::days(30));
    let r = app
        .post(
            &format!("/api/v1/sources/{id}/reviews"),
            Some(c),
            json!({"grade": "B", "rationale": canaries[17], "next_review_due": due}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let contacts = app.get(&format!("/api/v1/sources/{id}/contacts"), c).await.text().await.unwrap();
    assert!(contacts.contains(canaries[15]) && contacts.contains(canaries[16]) && contacts.contains(canaries[13]));
    // Reads that decrypt: the values come back to the client and nowhere else.
    let read = app.with_purpose(Method::GET, &format!("/api/v1/sources/{id}/identity"), &handler.token, None).await;
    assert!(read.text().await.unwrap().contains(canaries[8]));
    let list = app.get(&format!("/api/v1/sources/{id}/authorisations"), c).await.text().await.unwrap();
    assert!(list.contains(canaries[6]) && list.contains(canaries[7]));
    // Credentials are secrets too: a wrong password, the right one, and the tokens a login and a
    // refresh hand out must not reach the log, and the database keeps only their hashes.
    let wrong_password = "CanaryWrongPassword-7731";
    assert_eq!(app.login(&handler.username, wrong_password).await.status(), StatusCode::UNAUTHORIZED);
    let pair = body(app.login(&handler.username, &handler.password).await).await;
    let refreshed =
        body(app.post("/api/v1/auth/refresh", None, json!({"refresh_token": pair["refresh_token"]})).await).await;
    let credentials = [
        wrong_password.to_string(),
        handler.password.clone(),
        pair["access_token"].as_str().unwrap().to_string(),
        pair["refresh_token"].as_str().unwrap().to_string(),
        refreshed["refresh_token"].as_str().unwrap().to_string(),
    ];
    app.settle_audit(true);

    let stored = database_bytes(&app);
    let log_now = LOG.lock().unwrap().clone();
    for secret in &credentials {
        assert!(!contains(&log_now, secret.as_bytes()), "a credential reached the log");
        assert!(!contains(&stored, secret.as_bytes()), "a credential is stored in clear");
    }
    let log = LOG.lock().unwrap().clone();
    assert!(!log.is_empty(), "the server's log was captured");
    for canary in canaries {
        for (form, bytes) in forms(canary) {
            assert!(!contains(&stored, &bytes), "{canary:?} found in the database as {form}");
            assert!(!contains(&log, &bytes), "{canary:?} found in the log as {form}");
        }
    }
}
