//! The benchmark harness of issue 7 (see docs/performance.md). Not part of the `humint` binary:
//! a bench target without the libtest harness.
//!
//! `cargo bench --bench bench_driver -- [--smoke] [--postgres] [--rounds N] [--secs S] ...`
//!
//! `cargo bench` builds `humint` in release mode (the bench profile inherits `release`) together
//! with this target; the driver then starts `target/release/humint serve` as a separate process
//! on a fresh temporary database and data dir, seeds a data set through the API, then drives the
//! scenarios against humint and against the stack's limit (`limit_server.rs`, the same binary
//! started with `limit-server`), alternately, A B A B, pinned to another core than the load
//! generator. Load: closed loop for the saturation rate, open loop at a fixed rate for the
//! latencies, measured from each request's scheduled send time (no coordinated omission).

mod limit_server;
mod scale;
mod trail;

/// The same allocator as the `humint` binary (src/main.rs), so that the limit server's figures
/// and humint's differ by what humint does, not by malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const PURPOSE: &str = "OP-BENCH: benchmark load, no real data";
const ADMIN_PASSWORD: &str = "bench admin passphrase, long enough";
const USER_PASSWORD: &str = "bench user passphrase, long enough";
/// Upper bound of any single phase, whatever the arguments say.
const MAX_PHASE: Duration = Duration::from_secs(600);
/// Upper bound of requests in one phase.
const MAX_REQUESTS: u64 = 5_000_000;
/// Connections in flight at most in the open-loop phase.
const MAX_IN_FLIGHT: usize = 64;

#[derive(Parser, Debug)]
#[command(about = "humint benchmark harness (issue 7)")]
struct Args {
    /// Tiny data set and short phases: a check that the harness works (CI).
    #[arg(long)]
    smoke: bool,
    /// Run humint and the limit server on PostgreSQL (HUMINT_BENCH_DATABASE_URL, default
    /// postgres://postgres@127.0.0.1:5432/postgres); each gets a database created and dropped here.
    #[arg(long)]
    postgres: bool,
    /// A B rounds (default 3; smoke 1).
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds per phase; each scenario has a saturation and a fixed-rate phase (default 5; smoke 1).
    #[arg(long)]
    secs: Option<f64>,
    #[arg(long)]
    sources: Option<usize>,
    #[arg(long)]
    handlers: Option<usize>,
    #[arg(long)]
    units: Option<usize>,
    #[arg(long)]
    contacts: Option<usize>,
    /// Connections of the closed-loop (saturation) phase.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Fixed rate = this fraction of humint's saturation rate in round 1 (same rate for the limit).
    #[arg(long, default_value_t = 0.5)]
    rate_fraction: f64,
    /// Scenarios to drive, comma-separated: read,write,list,login.
    #[arg(long, default_value = "read,write,list,login")]
    scenarios: String,
    /// The humint binary to drive (default: the release build cargo made alongside this bench).
    #[arg(long)]
    humint_bin: Option<PathBuf>,
    /// Do not run the limit server (humint only, no ratios).
    #[arg(long)]
    no_limit: bool,
    /// Do not run `humint audit verify` at the end.
    #[arg(long)]
    no_verify: bool,
    /// Scale mode (humint only): read, write and list on the seeded data set, then again after
    /// growing the database with filler rows to --scale-sources and --scale-contacts (default
    /// 100,000 and 1,000,000). --smoke runs it after its rounds with the data set doubled.
    #[arg(long)]
    scale: bool,
    #[arg(long)]
    scale_sources: Option<usize>,
    #[arg(long)]
    scale_contacts: Option<usize>,
    #[command(flatten)]
    trail: trail::TrailArgs,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Plan {
    rounds: usize,
    secs: f64,
    sources: usize,
    handlers: usize,
    units: usize,
    contacts: usize,
}

impl Plan {
    fn from(a: &Args) -> Plan {
        let (rounds, secs, sources, handlers, units, contacts) =
            if a.smoke { (1, 1.0, 40, 4, 4, 2_400) } else { (3, 5.0, 1_000, 20, 4, 50_000) };
        let p = Plan {
            rounds: a.rounds.unwrap_or(rounds).clamp(1, 50),
            secs: a.secs.unwrap_or(secs).clamp(0.2, MAX_PHASE.as_secs_f64()),
            sources: a.sources.unwrap_or(sources).max(1),
            handlers: a.handlers.unwrap_or(handlers).max(1),
            units: a.units.unwrap_or(units).max(1),
            contacts: a.contacts.unwrap_or(contacts),
        };
        Plan { handlers: p.handlers.min(p.sources), ..p }
    }
}

/// The contact of scenario (2): three text fields and two graded items.
pub fn contact_body(occurred_at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "occurred_at": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "duration_minutes": 45, "contact_type": "meeting",
        "location": "Safe house B, back room, north entrance",
        "summary": "Discussed convoy timings on the northern route; the source named two drivers and a depot \
                    near the river crossing, and described the loading routine observed over three nights.",
        "tasking": "Confirm the departure day and the number of vehicles; report any change of route.",
        "welfare_concerns": null,
        "intelligence": [
            {"content": "Convoy leaves on Thursdays before dawn, usually four vehicles.",
             "grading": {"scheme": "4x4", "source": "B", "information": "2", "handling": "H3",
                         "handling_conditions": "Not to the prosecutor without consent"}},
            {"content": "The depot near the crossing is guarded by two men at night.",
             "grading": {"scheme": "admiralty", "source": "C", "information": "3", "handling": null,
                         "handling_conditions": null}}
        ]
    })
}

type Res<T> = Result<T, String>;

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

// ---------------------------------------------------------------- processes

/// Decided once, before this process pins itself (which changes what the OS reports).
static TWO_CORES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn two_cores() -> bool {
    *TWO_CORES.get_or_init(detect_two_cores)
}

fn detect_two_cores() -> bool {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    n >= 2 && Command::new("taskset").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// `taskset -c CORE program` where two cores exist, else `program`.
fn pinned(program: &Path, core: Option<usize>) -> Command {
    match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(err("bind"))?;
    Ok(l.local_addr().map_err(err("addr"))?.port())
}

struct Server {
    name: &'static str,
    child: Child,
    /// The server's own pid (taskset execs it, so the child's pid is the server's).
    pid: u32,
    base: String,
}

impl Server {
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        let get = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        get(14) + get(15)
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    fn threads(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_ready(client: &reqwest::Client, server: &mut Server, limit: Duration) -> Res<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("{} exited during start-up: {status}", server.name));
        }
        if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{} not ready after {limit:?}", server.name))
}

/// A PostgreSQL database of the harness's own, dropped at the end.
struct PgDatabase {
    server_url: String,
    name: String,
}

impl PgDatabase {
    fn create(server_url: &str) -> Res<(PgDatabase, String)> {
        use diesel::{Connection, RunQueryDsl};
        let name = format!("humint_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = diesel::PgConnection::establish(server_url).map_err(err("connect to PostgreSQL"))?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).map_err(err("create database"))?;
        let base = server_url.rsplit_once('/').map_or(server_url, |(b, _)| b);
        let url = format!("{base}/{name}");
        Ok((PgDatabase { server_url: server_url.to_string(), name }, url))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        use diesel::{Connection, RunQueryDsl};
        if let Ok(mut conn) = diesel::PgConnection::establish(&self.server_url) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn);
        }
    }
}

/// Environment of every humint process of this run (serve, audit verify).
struct HumintEnv {
    vars: Vec<(&'static str, String)>,
}

impl HumintEnv {
    fn command(&self, bin: &Path, core: Option<usize>) -> Command {
        let mut cmd = pinned(bin, core);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }
}

// ---------------------------------------------------------------- HTTP

#[derive(Clone)]
struct Req {
    method: Method,
    url: String,
    token: Option<String>,
    body: Option<String>,
    expect: u16,
}

/// The first failure of the current phase, shown with its figures (then cleared).
static FIRST_ERROR: Mutex<Option<String>> = Mutex::new(None);

fn note_error(what: String) {
    if let Ok(mut first) = FIRST_ERROR.lock()
        && first.is_none()
    {
        *first = Some(what);
    }
}

fn take_error() -> Option<String> {
    FIRST_ERROR.lock().ok().and_then(|mut f| f.take())
}

async fn send(client: &reqwest::Client, r: &Req) -> bool {
    let mut b = client.request(r.method.clone(), &r.url).header("X-Access-Purpose", PURPOSE);
    if let Some(t) = &r.token {
        b = b.bearer_auth(t);
    }
    if let Some(body) = &r.body {
        b = b.header("Content-Type", "application/json").body(body.clone());
    }
    match b.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(_) if status == r.expect => true,
                Ok(b) => {
                    note_error(format!("{} {}: {status} {}", r.method, r.url, String::from_utf8_lossy(&b)));
                    false
                }
                Err(e) => {
                    note_error(format!("{} {}: {e}", r.method, r.url));
                    false
                }
            }
        }
        Err(e) => {
            note_error(format!("{} {}: {e}", r.method, r.url));
            false
        }
    }
}

async fn call(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Res<(u16, Value)> {
    let mut b = client.request(method, &url).header("X-Access-Purpose", PURPOSE);
    if let Some(t) = token {
        b = b.bearer_auth(t);
    }
    if let Some(body) = body {
        b = b.json(&body);
    }
    let resp = b.send().await.map_err(err(&url))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(err(&url))?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

async fn expect(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
    want: u16,
) -> Res<Value> {
    let (status, v) = call(client, method, url.clone(), token, body).await?;
    if status == want { Ok(v) } else { Err(format!("{url}: {status} (wanted {want}): {v}")) }
}

async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> Res<String> {
    let v = expect(
        client,
        Method::POST,
        format!("{base}/api/v1/auth/login"),
        None,
        Some(json!({"username": username, "password": password})),
        200,
    )
    .await?;
    v["access_token"].as_str().map(str::to_string).ok_or_else(|| format!("login {username}: no token"))
}

/// Runs `f` over `items` with at most `n` at a time; the first error wins.
async fn bounded<T, F, Fut, R>(n: usize, items: Vec<T>, f: F) -> Res<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Res<R>> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if set.len() >= n
            && let Some(done) = set.join_next().await
        {
            out.push(done.map_err(err("task"))??);
        }
        set.spawn(f(item));
    }
    while let Some(done) = set.join_next().await {
        out.push(done.map_err(err("task"))??);
    }
    Ok(out)
}

// ---------------------------------------------------------------- seeding humint

struct Handler {
    username: String,
    sources: Vec<String>,
}

async fn make_user(
    client: reqwest::Client,
    base: String,
    admin: String,
    username: String,
    role: &'static str,
    unit: String,
) -> Res<String> {
    let initial = format!("initial passphrase of {username}");
    expect(
        &client,
        Method::POST,
        format!("{base}/api/v1/users"),
        Some(&admin),
        Some(
            json!({"username": username, "display_name": username, "password": initial, "roles": [role], "unit": unit}),
        ),
        201,
    )
    .await?;
    let first = login(&client, &base, &username, &initial).await?;
    expect(
        &client,
        Method::POST,
        format!("{base}/api/v1/me/password"),
        Some(&first),
        Some(json!({"current_password": initial, "new_password": USER_PASSWORD})),
        204,
    )
    .await?;
    login(&client, &base, &username, USER_PASSWORD).await
}

async fn seed_humint(client: &reqwest::Client, base: &str, data_dir: &Path, plan: &Plan) -> Res<Vec<Handler>> {
    let started = Instant::now();
    let first = std::fs::read_to_string(data_dir.join("initial-admin-password")).map_err(err("bootstrap password"))?;
    let first = first.trim();
    let token = login(client, base, "admin", first).await?;
    expect(
        client,
        Method::POST,
        format!("{base}/api/v1/me/password"),
        Some(&token),
        Some(json!({"current_password": first, "new_password": ADMIN_PASSWORD})),
        204,
    )
    .await?;
    let admin = login(client, base, "admin", ADMIN_PASSWORD).await?;

    let unit = |i: usize| format!("BENCH-U{}", i % plan.units);
    let mut people: Vec<(usize, String, &'static str, String)> =
        (0..plan.handlers).map(|i| (i, format!("bench.h{i}"), "handler", unit(i))).collect();
    people.extend((0..plan.units).map(|u| (plan.handlers + u, format!("bench.c{u}"), "controller", unit(u))));
    let (c, b, a) = (client.clone(), base.to_string(), admin.clone());
    let made = bounded(4, people, move |(i, name, role, unit)| {
        let made = make_user(c.clone(), b.clone(), a.clone(), name, role, unit);
        async move { made.await.map(|token| (i, token)) }
    })
    .await?;
    let mut tokens = vec![String::new(); made.len()];
    for (i, token) in made {
        tokens[i] = token;
    }
    let (handler_tokens, controller_tokens) = tokens.split_at(plan.handlers);
    eprintln!("  {} users in {:.1}s", plan.handlers + plan.units, started.elapsed().as_secs_f64());

    // Sources: handler i registers every handlers-th one (and holds the handler assignment).
    let jobs: Vec<(usize, String)> =
        (0..plan.sources).map(|s| (s, handler_tokens[s % plan.handlers].clone())).collect();
    let (c, b) = (client.clone(), base.to_string());
    let ids = bounded(16, jobs, move |(s, token)| {
        let (c, b) = (c.clone(), b.clone());
        async move {
            let identity = json!({"legal_name": format!("Bench Person {s}"), "aliases": ["Le Vieux"],
                "date_of_birth": "1980-04-12", "nationality": "ML", "phone": "+223 70 00 00 00",
                "address": "Quartier du Fleuve, Gao", "notes": "Met through a cousin."});
            let v = expect(
                &c,
                Method::POST,
                format!("{b}/api/v1/sources"),
                Some(&token),
                Some(json!({"risk_level": "medium", "juvenile": false, "identity": identity})),
                201,
            )
            .await?;
            let id = v["id"].as_str().ok_or("no source id")?.to_string();
            Ok((s, id))
        }
    })
    .await?;
    let mut source_ids = vec![String::new(); plan.sources];
    for (s, id) in ids {
        source_ids[s] = id;
    }
    eprintln!("  {} sources in {:.1}s", plan.sources, started.elapsed().as_secs_f64());

    // An authorisation in force on every source, so contacts do not drift (no extra writes).
    let valid_from =
        (chrono::Utc::now() - chrono::TimeDelta::hours(48)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let jobs: Vec<(String, String)> = source_ids
        .iter()
        .enumerate()
        .map(|(s, id)| (id.clone(), controller_tokens[(s % plan.handlers) % plan.units].clone()))
        .collect();
    let (c, b) = (client.clone(), base.to_string());
    bounded(16, jobs, move |(id, token)| {
        let (c, b, valid_from) = (c.clone(), b.clone(), valid_from.clone());
        async move {
            expect(
                &c,
                Method::POST,
                format!("{b}/api/v1/sources/{id}/authorisations"),
                Some(&token),
                Some(json!({"purpose": "Benchmark authorisation", "valid_from": valid_from})),
                201,
            )
            .await
            .map(|_| ())
        }
    })
    .await?;
    eprintln!("  {} authorisations in {:.1}s", plan.sources, started.elapsed().as_secs_f64());

    let body = contact_body(chrono::Utc::now() - chrono::TimeDelta::hours(2)).to_string();
    let jobs: Vec<(String, String)> = (0..plan.contacts)
        .map(|n| {
            let s = n % plan.sources;
            (source_ids[s].clone(), handler_tokens[s % plan.handlers].clone())
        })
        .collect();
    let (c, b) = (client.clone(), base.to_string());
    let failures = Arc::new(AtomicU64::new(0));
    let f2 = failures.clone();
    bounded(32, jobs, move |(id, token)| {
        let (c, b, body, f) = (c.clone(), b.clone(), body.clone(), f2.clone());
        async move {
            let r = Req {
                method: Method::POST,
                url: format!("{b}/api/v1/sources/{id}/contacts"),
                token: Some(token),
                body: Some(body),
                expect: 201,
            };
            if !send(&c, &r).await {
                f.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    })
    .await?;
    let failed = failures.load(Ordering::Relaxed);
    eprintln!("  {} contacts in {:.1}s ({failed} failed)", plan.contacts, started.elapsed().as_secs_f64());
    if failed > 0 {
        let first = take_error().unwrap_or_default();
        return Err(format!("{failed} contacts could not be seeded; first failure: {first}"));
    }
    Ok((0..plan.handlers)
        .map(|h| Handler {
            username: format!("bench.h{h}"),
            sources: source_ids.iter().skip(h).step_by(plan.handlers).cloned().collect(),
        })
        .collect())
}

// ---------------------------------------------------------------- load

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Read,
    Write,
    List,
    Login,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Read => "read GET /sources/{id}",
            Scenario::Write => "write POST /sources/{id}/contacts",
            Scenario::List => "list GET /sources/{id}/contacts?limit=50",
            Scenario::Login => "login POST /auth/login",
        }
    }

    fn parse(list: &str) -> Res<Vec<Scenario>> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| match s.trim() {
                "read" => Ok(Scenario::Read),
                "write" => Ok(Scenario::Write),
                "list" => Ok(Scenario::List),
                "login" => Ok(Scenario::Login),
                other => Err(format!("unknown scenario {other}")),
            })
            .collect()
    }
}

/// One request per (handler, source) pair, used round robin.
fn requests(base: &str, scenario: Scenario, pairs: &[(String, String, String)]) -> Vec<Req> {
    let body = contact_body(chrono::Utc::now() - chrono::TimeDelta::hours(1)).to_string();
    pairs
        .iter()
        .map(|(username, token, source)| match scenario {
            Scenario::Read => Req {
                method: Method::GET,
                url: format!("{base}/api/v1/sources/{source}"),
                token: Some(token.clone()),
                body: None,
                expect: 200,
            },
            Scenario::Write => Req {
                method: Method::POST,
                url: format!("{base}/api/v1/sources/{source}/contacts"),
                token: Some(token.clone()),
                body: Some(body.clone()),
                expect: 201,
            },
            Scenario::List => Req {
                method: Method::GET,
                url: format!("{base}/api/v1/sources/{source}/contacts?limit=50"),
                token: Some(token.clone()),
                body: None,
                expect: 200,
            },
            Scenario::Login => Req {
                method: Method::POST,
                url: format!("{base}/api/v1/auth/login"),
                token: None,
                body: Some(json!({"username": username, "password": USER_PASSWORD}).to_string()),
                expect: 200,
            },
        })
        .collect()
}

struct Closed {
    ok: u64,
    errors: u64,
    secs: f64,
}

/// Closed loop: `conc` connections, each sending its next request when the last one returned.
async fn closed_loop(client: &reqwest::Client, reqs: Arc<Vec<Req>>, conc: usize, dur: Duration) -> Closed {
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + dur.min(MAX_PHASE);
    let mut set = JoinSet::new();
    for _ in 0..conc.max(1) {
        let (client, reqs, ok, errors, next) = (client.clone(), reqs.clone(), ok.clone(), errors.clone(), next.clone());
        set.spawn(async move {
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= MAX_REQUESTS {
                    break;
                }
                let r = &reqs[i as usize % reqs.len()];
                let counter = if send(&client, r).await { &ok } else { &errors };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let _ =
        tokio::time::timeout(dur + Duration::from_secs(60), async { while set.join_next().await.is_some() {} }).await;
    Closed {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        secs: start.elapsed().as_secs_f64(),
    }
}

struct Open {
    hist: Histogram<u64>,
    errors: u64,
    sent: u64,
}

/// Open loop: request i is due at start + i/rate whatever happened before; its latency runs from
/// that due time (so time spent waiting for a free connection counts, as a user would see it).
async fn open_loop(client: &reqwest::Client, reqs: Arc<Vec<Req>>, rate: f64, dur: Duration) -> Res<Open> {
    let dur = dur.min(MAX_PHASE);
    let n = ((rate * dur.as_secs_f64()).ceil() as u64).clamp(1, MAX_REQUESTS);
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).map_err(err("histogram"))?));
    let errors = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut set = JoinSet::new();
    for i in 0..n {
        let due = start + interval * (i as u32);
        tokio::time::sleep_until(due).await;
        while set.try_join_next().is_some() {}
        let (client, reqs, hist, errors, slots) =
            (client.clone(), reqs.clone(), hist.clone(), errors.clone(), slots.clone());
        set.spawn(async move {
            let Ok(_slot) = slots.acquire().await else { return };
            let ok = send(&client, &reqs[i as usize % reqs.len()]).await;
            let micros = due.elapsed().as_micros().clamp(1, 120_000_000) as u64;
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut h) = hist.lock() {
                let _ = h.record(micros);
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(120), async { while set.join_next().await.is_some() {} }).await;
    let hist = hist.lock().map_err(err("histogram"))?.clone();
    Ok(Open { hist, errors: errors.load(Ordering::Relaxed), sent: n })
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

#[derive(Clone, Debug)]
struct Measure {
    server: &'static str,
    scenario: Scenario,
    round: usize,
    sat_rps: f64,
    rate: f64,
    p50: u64,
    p99: u64,
    p999: u64,
    cpu_us: f64,
    errors: u64,
    rss_kib: u64,
}

/// How one scenario is driven in one round.
struct Phase {
    round: usize,
    conc: usize,
    secs: f64,
    /// The fixed rate; `None`: `rate_fraction` of this run's saturation rate.
    rate: Option<f64>,
    rate_fraction: f64,
}

async fn measure(
    client: &reqwest::Client,
    server: &Server,
    scenario: Scenario,
    reqs: Vec<Req>,
    phase: Phase,
) -> Res<Measure> {
    let Phase { round, conc, secs, rate, rate_fraction } = phase;
    let reqs = Arc::new(reqs);
    let dur = Duration::from_secs_f64(secs);
    let tck = clk_tck();
    let cpu0 = server.cpu_ticks();
    let closed = closed_loop(client, reqs.clone(), conc, dur).await;
    let cpu1 = server.cpu_ticks();
    let done = (closed.ok + closed.errors).max(1) as f64;
    let cpu_us = (cpu1.saturating_sub(cpu0)) as f64 * 1e6 / tck / done;
    let sat_rps = closed.ok as f64 / closed.secs.max(1e-9);
    let rate = rate.unwrap_or((sat_rps * rate_fraction).max(1.0));
    // Let the queue of the saturation phase drain before the latency phase.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = open_loop(client, reqs, rate, dur).await?;
    let m = Measure {
        server: server.name,
        scenario,
        round,
        sat_rps,
        rate,
        p50: open.hist.value_at_quantile(0.5),
        p99: open.hist.value_at_quantile(0.99),
        p999: open.hist.value_at_quantile(0.999),
        cpu_us,
        errors: closed.errors + open.errors + open.sent.saturating_sub(open.hist.len()),
        rss_kib: server.peak_rss_kib(),
    };
    eprintln!(
        "  round {round} {:<6} {:<42} sat {:>8.0}/s  @{:.0}/s p50 {} p99 {} p99.9 {} µs  cpu {:.0} µs/req  err {}",
        m.server,
        scenario.name(),
        m.sat_rps,
        m.rate,
        m.p50,
        m.p99,
        m.p999,
        m.cpu_us,
        m.errors
    );
    eprintln!("    server threads now: {}", server.threads());
    if let Some(e) = take_error() {
        eprintln!("    first error: {}", e.chars().take(300).collect::<String>());
    }
    Ok(m)
}

// ---------------------------------------------------------------- report

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn report(all: &[Measure], scenarios: &[Scenario], verify: Option<(u64, f64)>, plan: &Plan, backend: &str) {
    println!();
    println!(
        "humint bench: backend {backend}, {} sources / {} units / {} handlers / {} contacts, {} round(s), {}s per phase",
        plan.sources, plan.units, plan.handlers, plan.contacts, plan.rounds, plan.secs
    );
    println!("(medians over rounds; latencies at the fixed rate, open loop, corrected for coordinated omission)");
    println!();
    println!(
        "| server | scenario | req/s at saturation | fixed rate | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | errors | peak RSS MiB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for server in ["humint", "limit"] {
        for &s in scenarios {
            let ms: Vec<&Measure> = all.iter().filter(|m| m.server == server && m.scenario == s).collect();
            if ms.is_empty() {
                continue;
            }
            let med = |f: &dyn Fn(&Measure) -> f64| median(ms.iter().map(|m| f(m)).collect());
            println!(
                "| {server} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.1} |",
                s.name(),
                med(&|m| m.sat_rps),
                med(&|m| m.rate),
                med(&|m| m.p50 as f64),
                med(&|m| m.p99 as f64),
                med(&|m| m.p999 as f64),
                med(&|m| m.cpu_us),
                ms.iter().map(|m| m.errors).sum::<u64>(),
                ms.iter().map(|m| m.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            );
        }
    }
    if let Some((events, rate)) = verify {
        println!(
            "| humint | audit verify (`humint audit verify`) | {rate:.0} events/s over {events} events | | | | | | | |"
        );
    }
    let ratios: Vec<(Scenario, Vec<f64>, Vec<f64>)> = scenarios
        .iter()
        .map(|&s| {
            let (mut thr, mut cpu) = (vec![], vec![]);
            for r in 1..=plan.rounds {
                let h = all.iter().find(|m| m.server == "humint" && m.scenario == s && m.round == r);
                let l = all.iter().find(|m| m.server == "limit" && m.scenario == s && m.round == r);
                if let (Some(h), Some(l)) = (h, l) {
                    thr.push(h.sat_rps / l.sat_rps.max(1e-9));
                    cpu.push(l.cpu_us / h.cpu_us.max(1e-9));
                }
            }
            (s, thr, cpu)
        })
        .filter(|(_, t, _)| !t.is_empty())
        .collect();
    if ratios.is_empty() {
        return;
    }
    println!();
    println!(
        "| scenario | humint/limit req/s at saturation: median (min–max) | limit/humint CPU per request: median (min–max) | rounds |"
    );
    println!("|---|---:|---:|---:|");
    for (s, thr, cpu) in ratios {
        let mm = |v: &[f64]| {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:.3} ({:.3}–{:.3})", median(v.to_vec()), min, max)
        };
        println!("| {} | {} | {} | {} |", s.name(), mm(&thr), mm(&cpu), thr.len());
    }
}

// ---------------------------------------------------------------- main

fn pin_self(core: usize) {
    let pid = std::process::id().to_string();
    let _ = Command::new("taskset").args(["-a", "-cp", &core.to_string(), &pid]).stdout(Stdio::null()).status();
}

async fn run(args: Args) -> Res<()> {
    let plan = Plan::from(&args);
    let scenarios = Scenario::parse(&args.scenarios)?;
    // `cargo bench` builds the package's binaries, with the release-derived bench profile,
    // before it builds a bench target; this is that build of `humint`.
    let bin = args.humint_bin.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_humint")));
    if !bin.exists() {
        return Err(format!("{} not found (run through `cargo bench --bench bench_driver`)", bin.display()));
    }
    let pin = two_cores();
    let (server_core, _driver_core) = if pin { (Some(0), Some(1)) } else { (None, None) };
    let dir = tempfile::Builder::new().prefix("humint-bench-").tempdir().map_err(err("tempdir"))?;
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).map_err(err("data dir"))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(err("client"))?;

    // humint on a fresh database.
    let pg_server = std::env::var("HUMINT_BENCH_DATABASE_URL").ok().filter(|u| !u.trim().is_empty());
    let pg_server =
        pg_server.or_else(|| args.postgres.then(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string()));
    let mut _pg_guard = None;
    let port = free_port()?;
    let mut vars = vec![
        ("HUMINT_BIND", format!("127.0.0.1:{port}")),
        ("HUMINT_DATA_DIR", data_dir.display().to_string()),
        ("HUMINT_LOG_FORMAT", "json".to_string()),
    ];
    let backend = match &pg_server {
        Some(server) => {
            let (guard, url) = PgDatabase::create(server)?;
            _pg_guard = Some(guard);
            let keyring = dir.path().join("keyring.json");
            let st = Command::new(&bin)
                .args(["keys", "init", "--out"])
                .arg(&keyring)
                .stdout(Stdio::null())
                .status()
                .map_err(err("humint keys init"))?;
            if !st.success() {
                return Err("humint keys init failed".into());
            }
            vars.push(("HUMINT_DATABASE_URL", url));
            vars.push(("HUMINT_KEYRING", keyring.display().to_string()));
            "postgresql"
        }
        None => {
            vars.push(("HUMINT_DATABASE_URL", format!("sqlite://{}", dir.path().join("humint.db").display())));
            "sqlite"
        }
    };
    let env = HumintEnv { vars };
    let log = std::fs::File::create(dir.path().join("humint.log")).map_err(err("log"))?;
    let log2 = log.try_clone().map_err(err("log"))?;
    eprintln!("== humint serve on 127.0.0.1:{port} ({backend})");
    let child = env
        .command(&bin, server_core)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(err("humint serve"))?;
    let mut humint = Server { name: "humint", pid: child.id(), child, base: format!("http://127.0.0.1:{port}") };
    wait_ready(&client, &mut humint, Duration::from_secs(60)).await?;
    eprintln!("  humint peak RSS after start-up: {:.1} MiB", humint.peak_rss_kib() as f64 / 1024.0);
    eprintln!("== seeding humint through the API");
    let handlers = seed_humint(&client, &humint.base, &data_dir, &plan).await?;
    eprintln!(
        "  humint peak RSS after seeding: {:.1} MiB, {} threads",
        humint.peak_rss_kib() as f64 / 1024.0,
        humint.threads()
    );

    let scale_plan = scale::ScalePlan::from(&args);
    let scale_only = scale_plan.as_ref().is_some_and(|s| s.only);

    // The limit server, seeded with the same shape in bulk.
    let mut limit = None;
    let mut _limit_pg_guard = None;
    if !args.no_limit && !scale_only {
        let db_url = match &pg_server {
            Some(server) => {
                let (guard, url) = PgDatabase::create(server)?;
                _limit_pg_guard = Some(guard);
                url
            }
            None => format!("sqlite://{}", dir.path().join("limit.db").display()),
        };
        let lport = free_port()?;
        let exe = std::env::current_exe().map_err(err("current exe"))?;
        eprintln!("== limit server on 127.0.0.1:{lport} (seeding in bulk)");
        let llog = std::fs::File::create(dir.path().join("limit.log")).map_err(err("log"))?;
        let llog2 = llog.try_clone().map_err(err("log"))?;
        let child = pinned(&exe, server_core)
            .arg("limit-server")
            .args(["--bind", &format!("127.0.0.1:{lport}")])
            .args(["--db", &db_url])
            .args(["--sources", &plan.sources.to_string(), "--handlers", &plan.handlers.to_string()])
            .args(["--units", &plan.units.to_string(), "--contacts", &plan.contacts.to_string(), "--seed"])
            .stdin(Stdio::null())
            .stdout(llog)
            .stderr(llog2)
            .spawn()
            .map_err(err("limit server"))?;
        let mut l = Server { name: "limit", pid: child.id(), child, base: format!("http://127.0.0.1:{lport}") };
        wait_ready(&client, &mut l, Duration::from_secs(300)).await?;
        limit = Some(l);
    }

    let mut all = Vec::new();
    let mut rates: Vec<Option<f64>> = vec![None; scenarios.len()];
    for round in 1..=if scale_only { 0 } else { plan.rounds } {
        // Fresh tokens each round (access tokens live at most 15 minutes).
        let mut pairs = Vec::new();
        for h in &handlers {
            let token = login(&client, &humint.base, &h.username, USER_PASSWORD).await?;
            pairs.push((h.username.clone(), token, h.sources.first().cloned().unwrap_or_default()));
        }
        for (k, &s) in scenarios.iter().enumerate() {
            // At most one login in flight per user: humint counts a failure before it checks the
            // password, so five concurrent correct logins of one user lock it (423); see
            // docs/performance.md.
            let conc = if s == Scenario::Login { args.concurrency.min(pairs.len()) } else { args.concurrency };
            let phase = Phase { round, conc, secs: plan.secs, rate: rates[k], rate_fraction: args.rate_fraction };
            let m = measure(&client, &humint, s, requests(&humint.base, s, &pairs), phase).await?;
            rates[k] = Some(m.rate);
            all.push(m);
            if let Some(l) = &limit {
                // Same users, same header sizes; the limit ignores the token.
                let lpairs: Vec<_> = pairs
                    .iter()
                    .enumerate()
                    .map(|(i, (u, t, _))| (u.clone(), t.clone(), limit_server::limit_source_id(i)))
                    .collect();
                let phase =
                    Phase { round, conc: args.concurrency, secs: plan.secs, rate: rates[k], rate_fraction: 0.0 };
                all.push(measure(&client, l, s, requests(&l.base, s, &lpairs), phase).await?);
            }
        }
    }

    let scaled = match &scale_plan {
        Some(sp) => {
            let pg_server = pg_server.as_deref();
            let hr = scale::HumintRun { env: &env, bin: &bin, core: server_core, dir: dir.path(), pg_server };
            Some(scale::run(sp, &plan, &args, &client, &mut humint, &hr, &handlers).await?)
        }
        None => None,
    };
    let verify = if args.no_verify || scale_only {
        None
    } else {
        eprintln!("== humint audit verify");
        // Let the sequencer chain the last events.
        tokio::time::sleep(Duration::from_secs(3)).await;
        humint.stop();
        Some(trail::verify_scenario(&args.trail, args.smoke, &env, &bin)?)
    };
    humint.stop();
    if let Some(mut l) = limit.take() {
        l.stop();
    }
    if !scale_only {
        report(&all, &scenarios, verify, &plan, backend);
    }
    if let Some(scaled) = &scaled {
        scale::report(scaled, &plan, backend);
    }
    if !pin {
        println!("\nnote: fewer than two cores or no taskset: server and load generator were not pinned");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("limit-server") {
        let largs = <limit_server::LimitArgs as Parser>::parse_from(
            std::iter::once(argv[0].clone()).chain(argv.iter().skip(2).cloned()),
        );
        return match limit_server::run(largs) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("limit-server: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let args = Args::parse();
    if two_cores() {
        // The load generator on core 1; servers go to core 0.
        pin_self(1);
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_driver: runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_driver: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
