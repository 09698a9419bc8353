//! Operating properties: health, outage and recovery, migrations, keyring provisioning, OpenAPI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Method, StatusCode};

use crate::support::*;

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let r = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["status"], "ok");
    assert_eq!(app.request(Method::GET, "/readyz", None, None).await.status(), StatusCode::OK);
}

/// A TCP forwarder to PostgreSQL that the test can cut and restore.
struct Switch {
    up: Arc<AtomicBool>,
    port: u16,
}

async fn pg_switch(target: String) -> Switch {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let up = Arc::new(AtomicBool::new(true));
    let flag = up.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else { return };
            if !flag.load(Ordering::SeqCst) {
                continue; // dropped: the client sees the connection refused/reset
            }
            let target = target.clone();
            let flag = flag.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                tokio::pin!(copy);
                loop {
                    tokio::select! {
                        _ = &mut copy => return,
                        _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                            if !flag.load(Ordering::SeqCst) { return; }
                        }
                    }
                }
            });
        }
    });
    Switch { up, port }
}

async fn wait_for(app: &TestApp, want: StatusCode, username: &str, password: &str) -> bool {
    for _ in 0..60 {
        let ready = app.request(Method::GET, "/readyz", None, None).await.status();
        let login = app.login(username, password).await.status();
        assert!(
            !login.is_server_error() || login == StatusCode::SERVICE_UNAVAILABLE,
            "only 503 while down, got {login}"
        );
        if ready == want && (login == want || (want == StatusCode::OK && login == StatusCode::OK)) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

// Multi-threaded: the switch's proxy task must run while start-up blocks on its first connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_503_and_the_service_recovers_by_itself() {
    let fast = ("HUMINT_DB_CONNECT_TIMEOUT_MS", "500".to_string());
    match test_database_url() {
        Some(_) => {
            // Route the service's connections through a switch in front of its PostgreSQL.
            let server = test_database_url().unwrap();
            let (url, name) = fresh_postgres_database(&server);
            let (user_part, after_at) = url.split_once('@').unwrap();
            let (host_port, db) = after_at.split_once('/').unwrap();
            let switch = pg_switch(host_port.to_string()).await;
            let via = format!("{user_part}@127.0.0.1:{}/{db}", switch.port);
            let app = spawn_app_with(Options { env: vec![("HUMINT_DATABASE_URL", via), fast] }).await;
            let user = app.user(&["handler"], "DSU-NORTH").await;
            assert_eq!(app.get("/api/v1/me", &user.token).await.status(), StatusCode::OK);
            switch.up.store(false, Ordering::SeqCst);
            assert!(
                wait_for(&app, StatusCode::SERVICE_UNAVAILABLE, &user.username, &user.password).await,
                "503 while down"
            );
            assert_eq!(
                app.request(Method::GET, "/healthz", None, None).await.status(),
                StatusCode::OK,
                "the process stays up"
            );
            switch.up.store(true, Ordering::SeqCst);
            assert!(wait_for(&app, StatusCode::OK, &user.username, &user.password).await, "recovers by itself");
            connections_the_database_ends_are_replaced(&app, &user.token, &server, &name).await;
            drop(app);
            drop_postgres_database(&server, &name);
        }
        None => {
            // SQLite: the database cannot be opened at start-up (a directory stands where the
            // file should be). The service starts anyway, answers 503, and migrates, bootstraps
            // and serves as soon as the file can be opened.
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("blocked.db");
            std::fs::create_dir(&db).unwrap();
            let app = spawn_app_with(Options {
                env: vec![("HUMINT_DATABASE_URL", format!("sqlite://{}", db.display())), fast],
            })
            .await;
            assert!(
                wait_for(&app, StatusCode::SERVICE_UNAVAILABLE, "admin", "whatever password").await,
                "503 while down"
            );
            assert_eq!(
                app.request(Method::GET, "/healthz", None, None).await.status(),
                StatusCode::OK,
                "the process stays up"
            );
            std::fs::remove_dir(&db).unwrap();
            let mut recovered = false;
            for _ in 0..60 {
                if app.request(Method::GET, "/readyz", None, None).await.status() == StatusCode::OK {
                    recovered = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(recovered, "recovers by itself");
            assert_eq!(
                app.login("admin", &app.bootstrap_password()).await.status(),
                StatusCode::OK,
                "bootstrapped after recovery"
            );
        }
    }
}

/// PostgreSQL ends every connection of the service (as a restart or an administrator would).
fn end_connections(server: &str, database: &str) {
    let mut admin = <diesel::PgConnection as diesel::Connection>::establish(server).unwrap();
    let ended = diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )),
        &mut admin,
    )
    .unwrap();
    assert!(ended > 0, "the service holds connections");
}

/// Pooled connections are checked before use only when they may have gone stale (db::pool):
/// a connection ended while it idled past the trust window never fails a request, and one
/// ended just after use fails at most the request that finds it dead (503, never 500), after
/// which it is checked and replaced.
async fn connections_the_database_ends_are_replaced(app: &TestApp, token: &str, server: &str, database: &str) {
    let pool_size = app.state.config.db_pool_size as usize;
    // Concurrent requests fill the pool with connections (more than the audit sequencer, which
    // also takes connections while they idle, could come across and replace by itself).
    let all_at_once = || futures_util::future::join_all((0..pool_size).map(|_| app.get("/api/v1/me", token)));
    all_at_once().await;
    end_connections(server, database);
    tokio::time::sleep(humint::db::TRUSTED_FOR + std::time::Duration::from_millis(300)).await;
    let statuses: Vec<StatusCode> = all_at_once().await.iter().map(|r| r.status()).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "idle connections are checked: {statuses:?}");
    end_connections(server, database);
    let mut statuses = Vec::new();
    for _ in 0..pool_size + 10 {
        statuses.push(app.get("/api/v1/me", token).await.status());
    }
    let failed = statuses.iter().filter(|s| **s != StatusCode::OK).count();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "only 503 for a connection found dead: {statuses:?}"
    );
    assert!(failed <= pool_size, "each dead connection fails one request at most: {statuses:?}");
    assert!(statuses[pool_size..].iter().all(|s| *s == StatusCode::OK), "replaced: {statuses:?}");
}

#[test]
fn migrations_go_up_down_and_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let (url, cleanup) = match test_database_url() {
        Some(server) => {
            let name = format!("humint_mig_{}", uuid::Uuid::new_v4().simple());
            let mut admin = <diesel::PgConnection as diesel::Connection>::establish(&server).unwrap();
            diesel::RunQueryDsl::execute(diesel::sql_query(format!("CREATE DATABASE {name}")), &mut admin).unwrap();
            (database_url_for(&server, &name), Some((server, name)))
        }
        None => (format!("sqlite://{}", dir.path().join("m.db").display()), None),
    };
    let backend = humint::db::Backend::from_url(&url).unwrap();
    let pool = humint::db::build_pool(&backend, 1, std::time::Duration::from_secs(5)).unwrap();
    let mut conn = pool.get().unwrap();
    let up = humint::db::migrations::run_pending(&mut conn).unwrap();
    assert!(up >= 2);
    let down = humint::db::migrations::revert_all(&mut conn).unwrap();
    assert_eq!(up, down);
    assert_eq!(humint::db::migrations::run_pending(&mut conn).unwrap(), up);
    drop(conn);
    drop(pool);
    if let Some((server, name)) = cleanup {
        let mut admin = <diesel::PgConnection as diesel::Connection>::establish(&server).unwrap();
        let _ =
            diesel::RunQueryDsl::execute(diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)")), &mut admin);
    }
}

#[test]
fn postgres_refuses_to_start_without_a_provisioned_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let env = std::collections::HashMap::from([
        ("HUMINT_DATABASE_URL".to_string(), "postgres://postgres@127.0.0.1:1/none".to_string()),
        ("HUMINT_DATA_DIR".to_string(), dir.path().display().to_string()),
    ]);
    let config = humint::config::Config::load_with_env(None, |k| env.get(k).cloned()).unwrap();
    let err = match humint::app::build_state(config, humint::clock::Clock::system()) {
        Ok(_) => panic!("must refuse"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("keyring"), "{err}");
    assert!(!dir.path().join("keyring.json").exists(), "no keyring may be generated for PostgreSQL");
}

#[test]
fn an_unknown_database_scheme_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let env = std::collections::HashMap::from([
        ("HUMINT_DATABASE_URL".to_string(), "postgress://typo@localhost/db".to_string()),
        ("HUMINT_DATA_DIR".to_string(), dir.path().display().to_string()),
    ]);
    let config = humint::config::Config::load_with_env(None, |k| env.get(k).cloned()).unwrap();
    assert!(humint::app::build_state(config, humint::clock::Clock::system()).is_err());
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(files.is_empty(), "nothing may be created: {files:?}");
}

#[tokio::test]
async fn the_evaluation_keyring_is_private_and_every_route_is_in_the_openapi_document() {
    let app = spawn_app().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.dir.path().join("keyring.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let doc = body(app.request(Method::GET, "/api/v1/openapi.json", None, None).await).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let table: std::collections::BTreeSet<(String, String)> =
        humint::server::ROUTE_TABLE.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(table, documented, "route table and OpenAPI document differ");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // And the server really routes each of them (a routing miss would be an empty 404/405).
    for (method, path) in humint::server::ROUTE_TABLE {
        let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        let r = app.request(Method::from_bytes(method.as_bytes()).unwrap(), &concrete, None, None).await;
        let status = r.status();
        let public = ["/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/auth/login", "/api/v1/auth/refresh"]
            .contains(path);
        if public {
            assert_ne!(status, StatusCode::NOT_FOUND, "{method} {path}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} must sit behind authentication");
        }
    }
}

/// Counts of what start-up creates, read back after several instances started together.
#[derive(diesel::QueryableByName)]
struct StartupCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    migrations: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    users: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    admins: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bootstrap_events: i64,
}

/// A deployment restarted all at once: four instances build their state at the same moment
/// against one fresh database with one provisioned keyring. Every one starts, the migrations and
/// the bootstrap admin happen once, and the one password file that was written logs in on every
/// instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_instances_starting_at_once_migrate_and_bootstrap_once() {
    const INSTANCES: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let (url, postgres, migrations_dir) = match test_database_url() {
        Some(server) => {
            let (url, name) = fresh_postgres_database(&server);
            (url, Some((server, name)), "postgres")
        }
        None => (format!("sqlite://{}", dir.path().join("shared.db").display()), None, "sqlite"),
    };
    // Provisioned once and shared, as DESIGN.md requires of every deployment with several
    // instances (without it, each SQLite instance would try to generate its own).
    let keyring = dir.path().join("keyring.json");
    humint::crypto::Keyring::generate().unwrap().save_new(&keyring).unwrap();
    let env = std::collections::HashMap::from([
        ("HUMINT_DATABASE_URL".to_string(), url),
        ("HUMINT_DATA_DIR".to_string(), dir.path().display().to_string()),
        ("HUMINT_KEYRING".to_string(), keyring.display().to_string()),
    ]);
    let config = humint::config::Config::load_with_env(None, |k| env.get(k).cloned()).unwrap();

    let barrier = std::sync::Barrier::new(INSTANCES);
    let states: Vec<_> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..INSTANCES)
            .map(|_| {
                let (config, barrier) = (config.clone(), &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    humint::app::build_state(config, humint::clock::Clock::system())
                })
            })
            .collect();
        starting.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let states: Vec<_> = states
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.unwrap_or_else(|e| panic!("instance {i} failed to start: {e}")))
        .collect();
    // Each one prepared the database at start-up, rather than taking a lost race for a database
    // outage and deferring the work to its first request.
    assert!(states.iter().all(|s| s.migrated.load(Ordering::Acquire)), "every instance ready at start-up");

    let shipped =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(migrations_dir))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count() as i64;
    let counts: StartupCounts = {
        let mut conn = states[0].pool.get().unwrap();
        diesel::RunQueryDsl::get_result(
            diesel::sql_query(
                "SELECT (SELECT COUNT(*) FROM __diesel_schema_migrations) AS migrations, \
                 (SELECT COUNT(*) FROM users) AS users, \
                 (SELECT COUNT(*) FROM users WHERE username = 'admin') AS admins, \
                 (SELECT COUNT(*) FROM audit_events WHERE action = 'user.bootstrap_admin') AS bootstrap_events",
            ),
            &mut *conn,
        )
        .unwrap()
    };
    assert_eq!(counts.migrations, shipped, "every migration recorded exactly once");
    assert_eq!((counts.users, counts.admins, counts.bootstrap_events), (1, 1, 1), "one bootstrap admin");

    let password = std::fs::read_to_string(dir.path().join("initial-admin-password")).unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut running = Vec::new();
    for state in states {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let humint::app::Running { server, sequencer, .. } = humint::app::start(state, listener).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        let login = client
            .post(format!("{address}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": password.trim()}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK, "the bootstrap password logs in on {address}");
        running.push((handle, sequencer));
    }
    for (handle, sequencer) in running {
        handle.stop(false).await;
        sequencer.stop();
    }
    if let Some((server, name)) = postgres {
        drop_postgres_database(&server, &name);
    }
}

/// A committed row the sequencer cannot chain (an outcome the service never writes, slipped in
/// directly a minute ago) stays unchained, and verification says so instead of ignoring it.
#[tokio::test]
async fn a_committed_event_the_sequencer_cannot_chain_is_reported_by_verify() {
    use diesel::{ExpressionMethods, RunQueryDsl};
    use humint::db::schema::audit_events as ae;

    let app = spawn_app().await;
    let compliance = app.user(&["compliance"], "AUDIT").await;
    let a_minute_ago = app.clock.now() - chrono::TimeDelta::minutes(1);
    // More of them than the sequencer takes in one batch: they must not stall the real events.
    let mut conn = app.db();
    humint::db::write_tx(&mut conn, |conn| {
        for _ in 0..2001 {
            diesel::insert_into(ae::table)
                .values((
                    ae::id.eq(uuid::Uuid::new_v4().to_string()),
                    ae::at.eq(humint::audit::format_at(&a_minute_ago)),
                    ae::action.eq("user.read"),
                    ae::outcome.eq("maybe"),
                    ae::created_at.eq(humint::time::to_db(a_minute_ago)),
                ))
                .execute(conn)?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    drop(conn);
    let admin = app.admin_token().await;
    assert_eq!(app.get("/api/v1/users", &admin).await.status(), StatusCode::OK);
    app.settle_audit(false);
    let r = app.get("/api/v1/audit/verify", &compliance.token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = body(r).await;
    assert_eq!(v["unchained_events"], 2001, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    let listed = body(app.get("/api/v1/audit/events?action=user.list", &compliance.token).await).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "the real event behind them was chained");
}

/// A login flood beyond the hashing pool's queue is refused with 429 and a Retry-After, never
/// with a 5xx, so memory stays bounded and clients know when to come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_password_hashing_queue_answers_429_with_retry_after() {
    let app = spawn_app_with(Options {
        env: vec![("HUMINT_PASSWORD_HASH_CONCURRENCY", "1".into()), ("HUMINT_PASSWORD_HASH_QUEUE", "1".into())],
    })
    .await;
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..30 {
        // Distinct unknown usernames: each attempt is hashed (against the dummy hash) and none
        // is stopped early by the lockout.
        let request = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": format!("flood.{i}"), "password": "not the password at all"}));
        flood.spawn(async move {
            let r = request.send().await.unwrap();
            (r.status(), r.headers().get(reqwest::header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string()))
        });
    }
    let results = flood.join_all().await;
    assert!(results.iter().all(|(s, _)| !s.is_server_error()), "no 5xx: {results:?}");
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(!refused.is_empty(), "at least one 429: {results:?}");
    for (_, retry_after) in &refused {
        let secs: u64 = retry_after.as_deref().expect("429 carries Retry-After").parse().unwrap();
        assert!(secs >= 1);
    }
    assert!(results.iter().any(|(s, _)| *s == StatusCode::UNAUTHORIZED), "the pool still answers: {results:?}");
}
