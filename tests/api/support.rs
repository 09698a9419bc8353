//! `spawn_app()`: the real server on a random port against a fresh database — a temporary SQLite
//! file, or, when `HUMINT_TEST_DATABASE_URL` names a PostgreSQL server, a fresh database there.

use std::collections::HashMap;
use std::net::TcpListener;

use actix_web::dev::ServerHandle;
use actix_web::web;
use diesel::{Connection, RunQueryDsl};
use humint::app::{self, Running};
use humint::audit::sequencer::Sequencer;
use humint::clock::Clock;
use humint::config::Config;
use humint::state::AppState;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    pub clock: Clock,
    pub dir: TempDir,
    handle: ServerHandle,
    sequencer: Option<Sequencer>,
    postgres: Option<(String, String)>,
    admin: tokio::sync::Mutex<Option<(String, chrono::DateTime<chrono::Utc>)>>,
}

#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub password: String,
    pub token: String,
    pub refresh: String,
}

/// Which backend the suite runs on (printed once per test for the CI log).
pub fn test_database_url() -> Option<String> {
    std::env::var("HUMINT_TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty())
}

/// The URL of database `name` on the server of `server_url`, keeping its query (e.g.
/// `?sslmode=disable`).
pub fn database_url_for(server_url: &str, name: &str) -> String {
    let (path, query) = match server_url.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (server_url, String::new()),
    };
    let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
    format!("{base}/{name}{query}")
}

pub fn fresh_postgres_database(server_url: &str) -> (String, String) {
    let name = format!("humint_test_{}", Uuid::new_v4().simple());
    let mut conn = diesel::PgConnection::establish(server_url).expect("HUMINT_TEST_DATABASE_URL must reach PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).expect("create test database");
    (database_url_for(server_url, &name), name)
}

pub struct Options {
    pub env: Vec<(&'static str, String)>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options { env: vec![] }).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let (database_url, postgres) = match test_database_url() {
        Some(server) => {
            let (url, name) = fresh_postgres_database(&server);
            (url, Some((server, name)))
        }
        None => (format!("sqlite://{}", dir.path().join("humint.db").display()), None),
    };
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("HUMINT_DATABASE_URL".into(), database_url.clone());
    env.insert("HUMINT_DATA_DIR".into(), dir.path().display().to_string());
    if postgres.is_some() {
        // PostgreSQL requires a provisioned keyring: provision one as an operator would.
        let keyring = dir.path().join("keyring.json");
        humint::crypto::Keyring::generate().unwrap().save_new(&keyring).unwrap();
        env.insert("HUMINT_KEYRING".into(), keyring.display().to_string());
    }
    for (k, v) in options.env {
        env.insert(k.to_string(), v);
    }
    let config = Config::load_with_env(None, |k| env.get(k).cloned()).expect("test config");
    start(config, dir, postgres).await
}

async fn start(config: Config, dir: TempDir, postgres: Option<(String, String)>) -> TestApp {
    let clock = Clock::adjustable();
    let state = app::build_state(config, clock.clone()).expect("build state");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let Running { state, server, sequencer } = app::start(state, listener).expect("start");
    let handle = server.handle();
    tokio::spawn(server);
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        state,
        clock,
        dir,
        handle,
        sequencer: Some(sequencer),
        postgres,
        admin: tokio::sync::Mutex::new(None),
    }
}

pub fn drop_postgres_database(server_url: &str, name: &str) {
    if let Ok(mut conn) = diesel::PgConnection::establish(server_url) {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Best effort: stop accepting, then drop the PostgreSQL database.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            drop(rt.spawn(async move { handle.stop(false).await }));
        }
        if let Some(seq) = self.sequencer.take() {
            seq.stop();
        }
        if let Some((server, name)) = self.postgres.take() {
            drop_postgres_database(&server, &name);
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post("/api/v1/auth/login", None, json!({"username": username, "password": password})).await
    }

    pub fn bootstrap_password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("initial-admin-password"))
            .expect("bootstrap password file")
            .trim()
            .to_string()
    }

    /// An admin token, after the bootstrap admin has changed its password.
    pub async fn admin_token(&self) -> String {
        let mut cached = self.admin.lock().await;
        match cached.as_ref() {
            // Fresh enough for the test clock (tests move it forward by hours or days).
            Some((t, at)) if self.clock.now() - *at < chrono::TimeDelta::minutes(10) => return t.clone(),
            Some(_) => {
                let pair: Value = self.login("admin", PASSWORD).await.json().await.unwrap();
                let token = pair["access_token"].as_str().expect("admin login").to_string();
                *cached = Some((token.clone(), self.clock.now()));
                return token;
            }
            None => {}
        }
        let first = self.bootstrap_password();
        let pair: Value = self.login("admin", &first).await.json().await.unwrap();
        let token = pair["access_token"].as_str().expect("admin login").to_string();
        let changed = self
            .post("/api/v1/me/password", Some(&token), json!({"current_password": first, "new_password": PASSWORD}))
            .await;
        assert_eq!(changed.status(), StatusCode::NO_CONTENT);
        let pair: Value = self.login("admin", PASSWORD).await.json().await.unwrap();
        let token = pair["access_token"].as_str().unwrap().to_string();
        *cached = Some((token.clone(), self.clock.now()));
        token
    }

    /// Creates a user through the admin API and logs them in, password already changed.
    pub async fn user(&self, roles: &[&str], unit: &str) -> TestUser {
        let admin = self.admin_token().await;
        let username = format!("u{}", &Uuid::new_v4().simple().to_string()[..12]);
        let initial = format!("initial-{username}");
        let created = self
            .post(
                "/api/v1/users",
                Some(&admin),
                json!({"username": username, "display_name": username, "password": initial, "roles": roles, "unit": unit}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED, "{:?}", created.text().await);
        let created: Value = created.json().await.unwrap();
        let pair: Value = self.login(&username, &initial).await.json().await.unwrap();
        let token = pair["access_token"].as_str().unwrap().to_string();
        let changed = self
            .post("/api/v1/me/password", Some(&token), json!({"current_password": initial, "new_password": PASSWORD}))
            .await;
        assert_eq!(changed.status(), StatusCode::NO_CONTENT);
        let pair: Value = self.login(&username, PASSWORD).await.json().await.unwrap();
        TestUser {
            id: created["id"].as_str().unwrap().to_string(),
            username,
            password: PASSWORD.to_string(),
            token: pair["access_token"].as_str().unwrap().to_string(),
            refresh: pair["refresh_token"].as_str().unwrap().to_string(),
        }
    }

    /// A raw connection to the test database, for assertions and for tampering.
    pub fn db(&self) -> humint::db::PooledDb {
        self.state.pool.get().expect("db connection")
    }

    /// Chains every committed audit event now (and checkpoints the head when `checkpoint`).
    pub fn settle_audit(&self, checkpoint: bool) {
        humint::audit::sequencer::run_once(&self.state, checkpoint).expect("sequencer pass");
    }
}

pub async fn body(resp: Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT with any header and claims, signed with Ed25519 key `pkcs8` (or unsigned when `None`).
pub fn forge_jwt(header: &Value, claims: &Value, pkcs8: Option<&[u8]>) -> String {
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = match pkcs8 {
        Some(key) => {
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(key).expect("pkcs8");
            b64(pair.sign(signing_input.as_bytes()).as_ref())
        }
        None => String::new(),
    };
    format!("{signing_input}.{signature}")
}

/// The claims of a valid token for `user_id` in `session_id`, as the service would mint them.
pub fn claims_for(user_id: &str, session_id: &str, iat: i64) -> Value {
    json!({"iss": "humint", "aud": "humint-api", "sub": user_id, "sid": session_id,
           "jti": Uuid::new_v4().to_string(), "iat": iat, "exp": iat + 600})
}

/// Decodes a token's claims without verifying (to learn its session id in tests).
pub fn peek_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
