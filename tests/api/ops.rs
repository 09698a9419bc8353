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
