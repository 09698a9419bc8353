//! HTTP load driver: the real humint app, started in-process on a fresh database, driven over
//! loopback by N concurrent keep-alive clients for a fixed time per scenario.
//!
//! `cargo bench --bench http_load` (SQLite in a temporary directory), or with
//! `HUMINT_BENCH_DATABASE_URL=postgres://USER@HOST:PORT/DB` a fresh database is created on that
//! server for the run and dropped at the end.
//!
//! Scenarios (each answers 200; anything else counts as an error):
//! - `me`: `GET /api/v1/me` — token verified, session row checked, no audit append.
//! - `user_read`: `GET /api/v1/users/{id}` — the same authentication, one select, and one audit
//!   event appended in its own write transaction, committed before the response leaves: an
//!   audited request. The difference between `me` and `user_read` is the cost of that append
//!   (plus one indexed select and the role guard), which is what it is here to show.
//! - `login`: `POST /api/v1/auth/login` — Argon2id on the bounded hashing pool. Each client logs in
//!   as its own user, so the lockout counter (counted before the hash check) never trips.
//!
//! Environment: `HUMINT_LOAD_SECONDS` (measured seconds per scenario, default 5),
//! `HUMINT_LOAD_WARMUP_SECONDS` (default 1), `HUMINT_LOAD_CONCURRENCY` (clients, default 16),
//! `HUMINT_LOAD_CLIENT_THREADS` (threads driving the clients, default 1),
//! `HUMINT_LOAD_SCENARIOS` (comma list, default `me,user_read,login`).
//! `HUMINT_LOAD_SEQUENCER=off` is a diagnostic, not a configuration humint runs in: the audit
//! sequencer is not started, so events stay unchained, and the run shows how much of an audited
//! request's cost is the request's own append and how much the chaining after it.
//!
//! It is a closed loop: a client sends its next request only when the previous one has been
//! answered, so latency under overload is under-reported (coordinated omission). The figures
//! are throughput at saturation and the latency that goes with it, not latency at a fixed rate.
//! Clients and server share the machine's cores.

#![expect(clippy::expect_used, reason = "benchmark setup: a panic aborts the run with its message")]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use hdrhistogram::Histogram;
use humint::app::{self, Running};
use humint::clock::Clock;
use humint::config::Config;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "load driver passphrase";
/// Highest latency the histograms hold, µs; slower requests are clamped to it.
const MAX_LATENCY_US: u64 = 60_000_000;

struct Settings {
    seconds: u64,
    warmup_seconds: u64,
    concurrency: usize,
    client_threads: usize,
    scenarios: Vec<String>,
    postgres_server: Option<String>,
    sequencer: bool,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Self {
        let scenarios = std::env::var("HUMINT_LOAD_SCENARIOS").unwrap_or_else(|_| "me,user_read,login".into());
        Self {
            seconds: env_number("HUMINT_LOAD_SECONDS", 5).max(1),
            warmup_seconds: env_number("HUMINT_LOAD_WARMUP_SECONDS", 1),
            concurrency: usize::try_from(env_number("HUMINT_LOAD_CONCURRENCY", 16).max(1)).unwrap_or(16),
            client_threads: usize::try_from(env_number("HUMINT_LOAD_CLIENT_THREADS", 1).max(1)).unwrap_or(1),
            scenarios: scenarios.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            postgres_server: std::env::var("HUMINT_BENCH_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()),
            sequencer: std::env::var("HUMINT_LOAD_SEQUENCER").map_or(true, |v| v.trim() != "off"),
        }
    }
}

/// A fresh database for the run, dropped (PostgreSQL) or deleted with its directory (SQLite).
struct Database {
    url: String,
    postgres: Option<(String, String)>,
}

impl Database {
    fn fresh(settings: &Settings, dir: &std::path::Path) -> Self {
        let Some(server) = settings.postgres_server.clone() else {
            return Self { url: format!("sqlite://{}", dir.join("humint.db").display()), postgres: None };
        };
        let name = format!("humint_bench_{}", Uuid::new_v4().simple());
        let mut conn =
            diesel::PgConnection::establish(&server).expect("HUMINT_BENCH_DATABASE_URL must reach PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).expect("create bench database");
        let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
        Self { url: format!("{base}/{name}"), postgres: Some((server.clone(), name)) }
    }

    fn backend(&self) -> &'static str {
        if self.postgres.is_some() { "postgres" } else { "sqlite" }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.take()
            && let Ok(mut conn) = diesel::PgConnection::establish(&server)
        {
            // FORCE: the app's pool may still hold connections while the runtime winds down.
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn);
        }
    }
}

/// The configuration a fresh deployment would have, pointed at the bench's database and data
/// directory. The caller's own `HUMINT_*` variables are deliberately not read: a bench run must
/// not pick up a real deployment's database.
fn config(db: &Database, dir: &std::path::Path) -> Config {
    let mut env: HashMap<&str, String> = HashMap::new();
    env.insert("HUMINT_DATABASE_URL", db.url.clone());
    env.insert("HUMINT_DATA_DIR", dir.display().to_string());
    if db.postgres.is_some() {
        // PostgreSQL refuses to start without a provisioned keyring: provision one.
        let keyring = dir.join("keyring.json");
        humint::crypto::Keyring::generate().expect("keyring").save_new(&keyring).expect("save keyring");
        env.insert("HUMINT_KEYRING", keyring.display().to_string());
    }
    Config::load_with_env(None, |k| env.get(k).cloned()).expect("bench config")
}

fn client() -> Client {
    // One client (one pool) per simulated user, so each keeps exactly one keep-alive connection.
    Client::builder().no_proxy().pool_max_idle_per_host(1).build().expect("http client")
}

async fn call(req: RequestBuilder, want: StatusCode, what: &str) -> Value {
    let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, want, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn field(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap_or_else(|| panic!("`{name}` missing in {v}")).to_string()
}

/// What the scenarios need: an admin token, a user to read, and one login user per client.
struct Fixture {
    base: String,
    admin_token: String,
    target_id: String,
    login_users: Vec<String>,
}

async fn prepare(base: &str, dir: &std::path::Path, logins: usize) -> Fixture {
    let http = client();
    let login = |username: &str, password: &str| {
        http.post(format!("{base}/api/v1/auth/login")).json(&json!({"username": username, "password": password}))
    };
    let first = std::fs::read_to_string(dir.join("initial-admin-password")).expect("bootstrap password file");
    let first = first.trim();
    let pair = call(login("admin", first), StatusCode::OK, "bootstrap admin login").await;
    let changed = http
        .post(format!("{base}/api/v1/me/password"))
        .bearer_auth(field(&pair, "access_token"))
        .json(&json!({"current_password": first, "new_password": PASSWORD}));
    call(changed, StatusCode::NO_CONTENT, "admin password change").await;
    let admin_token = field(&call(login("admin", PASSWORD), StatusCode::OK, "admin login").await, "access_token");
    let create = |username: String| {
        http.post(format!("{base}/api/v1/users")).bearer_auth(&admin_token).json(&json!({
            "username": username, "display_name": username, "password": PASSWORD,
            "roles": ["handler"], "unit": "DSU-NORTH"
        }))
    };
    let target = call(create("target.user".into()), StatusCode::CREATED, "create target user").await;
    let mut login_users = Vec::with_capacity(logins);
    for i in 0..logins {
        let username = format!("login.user.{i}");
        call(create(username.clone()), StatusCode::CREATED, "create login user").await;
        login_users.push(username);
    }
    Fixture { base: base.to_string(), admin_token, target_id: field(&target, "id"), login_users }
}

/// Builds client `i`'s next request.
type MakeRequest = Arc<dyn Fn(&Client, usize) -> RequestBuilder + Send + Sync>;

fn scenario(name: &str, f: &Fixture) -> (&'static str, MakeRequest) {
    let base = f.base.clone();
    let token = f.admin_token.clone();
    match name {
        "me" => ("GET /api/v1/me (no audit append)", {
            let url = format!("{base}/api/v1/me");
            Arc::new(move |c: &Client, _| c.get(&url).bearer_auth(&token))
        }),
        "user_read" => ("GET /api/v1/users/{id} (one audit append)", {
            let url = format!("{base}/api/v1/users/{}", f.target_id);
            Arc::new(move |c: &Client, _| c.get(&url).bearer_auth(&token))
        }),
        "login" => ("POST /api/v1/auth/login (Argon2id)", {
            let url = format!("{base}/api/v1/auth/login");
            let bodies: Vec<Value> =
                f.login_users.iter().map(|u| json!({"username": u, "password": PASSWORD})).collect();
            Arc::new(move |c: &Client, i| c.post(&url).json(&bodies[i % bodies.len()]))
        }),
        other => panic!("unknown scenario {other:?} (known: me, user_read, login)"),
    }
}

struct ClientResult {
    latencies_us: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
    done: Instant,
}

/// One closed-loop client: send, read the whole body (so the connection is reused), repeat.
/// Only requests started inside the measured window count.
async fn run_client(make: MakeRequest, i: usize, measure_from: Instant, until: Instant) -> ClientResult {
    let http = client();
    let mut latencies_us = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("histogram bounds");
    let (mut errors, mut first_error) = (0, None);
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let outcome = match make(&http, i).send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(_) if status == StatusCode::OK => Ok(()),
                    Ok(_) => Err(format!("HTTP {status}")),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        if started < measure_from {
            continue;
        }
        match outcome {
            Ok(()) => {
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(MAX_LATENCY_US);
                latencies_us.saturating_record(us.clamp(1, MAX_LATENCY_US));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    ClientResult { latencies_us, errors, first_error, done: Instant::now() }
}

/// Name of the threads that drive the clients, so their CPU time can be told from the server's.
const CLIENT_THREAD: &str = "load-client";

/// CPU time (user + system) of this process, and of the part of it spent by the clients (their
/// runtime's threads and the main thread), when the platform says. The server's share is the
/// difference: it also includes the server's threads that ended during the window, which the
/// process total keeps counting. /proc counts in clock ticks of 1/100 s on Linux.
#[derive(Clone, Copy)]
struct CpuSample {
    process: Duration,
    clients: Duration,
}

fn stat_ticks(stat: &str) -> Option<(String, u64)> {
    // The name (field 2) is in parentheses and may contain spaces; fields after it do not.
    let (head, after) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some((name, fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?))
}

fn cpu_sample() -> Option<CpuSample> {
    let ticks = |t: u64| Duration::from_millis(t * 10);
    let (_, process) = stat_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let main = std::process::id().to_string();
    let mut clients = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        if let Some((name, t)) = stat_ticks(&stat)
            && (name == CLIENT_THREAD || task.file_name().to_str() == Some(main.as_str()))
        {
            clients += t;
        }
    }
    Some(CpuSample { process: ticks(process), clients: ticks(clients) })
}

struct Row {
    name: String,
    what: &'static str,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Server and client CPU µs per request.
    cpu_us_per_req: Option<(f64, f64)>,
}

async fn measure(name: &str, fixture: &Fixture, settings: &Settings) -> Row {
    let (what, make) = scenario(name, fixture);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(settings.warmup_seconds);
    let until = measure_from + Duration::from_secs(settings.seconds);
    let tasks: Vec<_> =
        (0..settings.concurrency).map(|i| tokio::spawn(run_client(make.clone(), i, measure_from, until))).collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = cpu_sample();
    let mut all = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).expect("histogram bounds");
    let (mut errors, mut first_error, mut last) = (0, None, measure_from);
    for task in tasks {
        let r = task.await.expect("client task");
        all.add(&r.latencies_us).expect("histograms of equal bounds");
        errors += r.errors;
        first_error = first_error.or(r.first_error);
        last = last.max(r.done);
    }
    let cpu = cpu_sample().zip(cpu_before).map(|(after, before)| {
        let clients = after.clients.saturating_sub(before.clients);
        (after.process.saturating_sub(before.process).saturating_sub(clients), clients)
    });
    let requests = all.len() + errors;
    let elapsed = last.duration_since(measure_from).as_secs_f64();
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    Row {
        name: name.to_string(),
        what,
        requests,
        errors,
        first_error,
        rps: requests as f64 / elapsed,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        max_ms: all.max() as f64 / 1000.0,
        cpu_us_per_req: cpu.filter(|_| requests > 0).map(|(server, clients)| {
            let per = |d: Duration| d.as_secs_f64() * 1e6 / requests as f64;
            (per(server), per(clients))
        }),
    }
}

fn print_report(backend: &str, settings: &Settings, rows: &[Row]) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "http_load: backend={backend} clients={} measured={}s warmup={}s client_threads={} cores={cores}{}",
        settings.concurrency,
        settings.seconds,
        settings.warmup_seconds,
        settings.client_threads,
        if settings.sequencer { "" } else { " sequencer=off (diagnostic: events left unchained)" }
    );
    println!();
    println!(
        "| backend | scenario | requests | req/s | p50 ms | p99 ms | max ms | server CPU µs/req | client CPU µs/req | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let (server, clients) = match r.cpu_us_per_req {
            Some((s, c)) => (format!("{s:.0}"), format!("{c:.0}")),
            None => ("n/a".into(), "n/a".into()),
        };
        println!(
            "| {backend} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {server} | {clients} | {} |",
            r.what, r.requests, r.rps, r.p50_ms, r.p99_ms, r.max_ms, r.errors
        );
    }
    for r in rows.iter().filter(|r| r.errors > 0) {
        println!("{}: {} errors, first: {}", r.name, r.errors, r.first_error.as_deref().unwrap_or("?"));
    }
    let find = |n: &str| rows.iter().find(|r| r.name == n && r.rps > 0.0);
    if let (Some(me), Some(read)) = (find("me"), find("user_read")) {
        // At saturation the server is the bottleneck, so 1/throughput is the machine time one
        // request costs; the difference is what the audited read adds.
        let added_us = (1.0 / read.rps - 1.0 / me.rps) * 1e6;
        println!();
        println!(
            "audited vs unaudited: user_read/me throughput = {:.2}; added machine time per audited request ≈ {added_us:.0} µs; p50 {:.2} → {:.2} ms",
            read.rps / me.rps,
            me.p50_ms,
            read.p50_ms
        );
    }
}

fn main() {
    let settings = Settings::from_env();
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = Database::fresh(&settings, dir.path());
    let config = config(&db, dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rows = runtime.block_on(async {
        // Exactly what `humint serve` and the tests' spawn_app() run: build_state, then start.
        let state = app::build_state(config, Clock::system()).expect("build state");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let (server, sequencer) = if settings.sequencer {
            let Running { server, sequencer, .. } = app::start(state, listener).expect("start");
            (server, Some(sequencer))
        } else {
            (humint::server::run(state, listener).expect("start"), None)
        };
        let handle = server.handle();
        let server = tokio::spawn(server);
        let fixture = prepare(&base, dir.path(), settings.concurrency).await;
        let mut rows = Vec::new();
        for name in &settings.scenarios {
            let row = measure(name, &fixture, &settings).await;
            eprintln!("{name}: {:.0} req/s, {} errors", row.rps, row.errors);
            rows.push(row);
        }
        handle.stop(true).await;
        let _ = server.await;
        if let Some(sequencer) = sequencer {
            sequencer.stop();
        }
        rows
    });
    print_report(db.backend(), &settings, &rows);
    drop(runtime);
    drop(db);
    // Asserts no speed, only that every scenario worked: a smoke run in CI fails on this.
    if rows.iter().any(|r| r.errors > 0 || r.requests == 0) {
        eprintln!("http_load: a scenario had errors or completed no request");
        std::process::exit(1);
    }
}
