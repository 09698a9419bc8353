//! Scale mode (docs/performance.md, "Scale run"): the issue's target "at 1,000,000 contacts and
//! 100,000 sources, the three request scenarios stay within 1.5× of their latency on the seeded
//! data set".
//!
//! The humint the driver has seeded through the API is stopped and its database copied (the
//! SQLite file, or a PostgreSQL database made from it as a template) with its data directory.
//! The copy is grown with filler rows (`fill.rs`). Then two humint processes run, one on each
//! database (the *base*, as seeded, and the *scaled* one), both freshly started with the same
//! keyring, and are driven in turn, A B A B like the rest of the harness, with the same requests
//! (the same (handler, source) pairs, seeded rows only) at the same fixed rates (from the base's
//! first round): a disturbance of the shared machine hits both sides alike. `--smoke` runs a
//! tiny variant (the data set doubled) after its normal rounds, so that this path cannot rot.

mod fill;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use humint::db::{Backend, DbConnection, DbManager};

use super::*;

/// The scenarios of the target.
const SCENARIOS: [Scenario; 3] = [Scenario::Read, Scenario::Write, Scenario::List];
/// Filler sources per write transaction (about 10 contacts each at full scale).
const SOURCES_PER_TX: usize = 1_000;
/// The target: latency on the grown data set within this factor of the base's.
const TARGET: f64 = 1.5;

enum Target {
    Counts {
        sources: usize,
        contacts: usize,
    },
    /// Twice the sources and contacts the database holds when the fill starts (smoke).
    Double,
}

pub struct ScalePlan {
    target: Target,
    /// Scale mode proper: no limit server, no normal rounds. `false` in smoke mode, where the
    /// scale step follows the normal rounds.
    pub only: bool,
}

impl ScalePlan {
    pub fn from(a: &Args) -> Option<ScalePlan> {
        let asked = a.scale || a.scale_sources.is_some() || a.scale_contacts.is_some();
        let target = match (a.scale_sources, a.scale_contacts) {
            (None, None) if a.smoke => Target::Double,
            (s, c) => Target::Counts { sources: s.unwrap_or(100_000), contacts: c.unwrap_or(1_000_000) },
        };
        (asked || a.smoke).then_some(ScalePlan { target, only: !a.smoke })
    }
}

/// How this run starts humint processes.
pub struct HumintRun<'a> {
    /// The seeded humint's environment.
    pub env: &'a HumintEnv,
    pub bin: &'a Path,
    pub core: Option<usize>,
    /// The run's temporary directory.
    pub dir: &'a Path,
    /// The PostgreSQL server the run creates its databases on.
    pub pg_server: Option<&'a str>,
}

fn var<'e>(env: &'e HumintEnv, name: &str) -> Res<&'e str> {
    env.vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str()).ok_or_else(|| format!("{name} not set"))
}

fn with_var(env: &HumintEnv, name: &'static str, value: String) -> HumintEnv {
    let mut vars: Vec<_> = env.vars.iter().filter(|(k, _)| *k != name).cloned().collect();
    vars.push((name, value));
    HumintEnv { vars }
}

fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    std::fs::create_dir_all(to).map_err(err("create data dir"))?;
    for entry in std::fs::read_dir(from).map_err(err("read data dir"))? {
        let entry = entry.map_err(err("read data dir"))?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(err("data dir"))?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target).map_err(err("copy data dir"))?;
        }
    }
    Ok(())
}

fn connect(env: &HumintEnv) -> Res<DbConnection> {
    let url = var(env, "HUMINT_DATABASE_URL")?;
    let backend = Backend::from_url(url).map_err(err("database URL"))?;
    DbManager::new(backend).open().map_err(err("connect to humint's database"))
}

impl HumintRun<'_> {
    fn start(&self, env: &HumintEnv, name: &'static str) -> Res<Server> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("humint-{name}.log")))
            .map_err(err("log"))?;
        let log2 = log.try_clone().map_err(err("log"))?;
        let child = env
            .command(self.bin, self.core)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(err("humint serve"))?;
        let base = format!("http://{}", var(env, "HUMINT_BIND")?);
        Ok(Server { name, pid: child.id(), child, base })
    }

    /// A copy of the seeded humint's database (stopped and [`settle`]d: the SQLite file holds
    /// everything) and data directory, on a port of its own; the PostgreSQL database is dropped
    /// with the guard.
    fn copy(&self) -> Res<(HumintEnv, Option<PgDatabase>)> {
        let url = var(self.env, "HUMINT_DATABASE_URL")?;
        let data = PathBuf::from(var(self.env, "HUMINT_DATA_DIR")?);
        let copy_data = self.dir.join("data-scaled");
        copy_dir(&data, &copy_data)?;
        let (copy_url, guard) = match (Backend::from_url(url).map_err(err("database URL"))?, self.pg_server) {
            (Backend::Sqlite(path), _) => {
                let copy = self.dir.join("humint-scaled.db");
                std::fs::copy(&path, &copy).map_err(err("copy the SQLite database"))?;
                (format!("sqlite://{}", copy.display()), None)
            }
            (Backend::Postgres(url), Some(server)) => {
                use diesel::Connection;
                let seeded = url.rsplit_once('/').map_or(url.as_str(), |(_, n)| n);
                let seeded = seeded.split('?').next().unwrap_or(seeded);
                let name = format!("humint_bench_{}", uuid::Uuid::new_v4().simple());
                let mut conn = diesel::PgConnection::establish(server).map_err(err("connect to PostgreSQL"))?;
                // The seeded database's last connections may take a moment to go away.
                let mut tries = 0;
                loop {
                    let made =
                        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {seeded}")).execute(&mut conn);
                    match made {
                        Ok(_) => break,
                        Err(e) if tries >= 50 => return Err(format!("copy the PostgreSQL database: {e}")),
                        Err(_) => {
                            tries += 1;
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
                let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
                let guard = PgDatabase { server_url: server.to_string(), name: name.clone() };
                (format!("{base}/{name}"), Some(guard))
            }
            (Backend::Postgres(_), None) => return Err("no PostgreSQL server to copy the database on".into()),
        };
        let env = with_var(self.env, "HUMINT_DATABASE_URL", copy_url);
        let env = with_var(&env, "HUMINT_DATA_DIR", copy_data.display().to_string());
        let env = with_var(&env, "HUMINT_BIND", format!("127.0.0.1:{}", free_port()?));
        Ok((env, guard))
    }
}

/// A server's I/O counters (`/proc/PID/io`): read and write calls (files; sockets are not
/// counted there), bytes it sent to storage.
#[derive(Clone, Copy, Default)]
struct Io {
    syscr: f64,
    syscw: f64,
    kib_written: f64,
}

impl Io {
    fn of(server: &Server) -> Io {
        let text = std::fs::read_to_string(format!("/proc/{}/io", server.pid)).unwrap_or_default();
        let get = |key: &str| {
            text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0)
        };
        Io { syscr: get("syscr:"), syscw: get("syscw:"), kib_written: get("write_bytes:") / 1024.0 }
    }

    /// Per request of one scenario's two phases (saturation and fixed rate), counted from the
    /// rates: an estimate, the same on both sides.
    fn per_request(self, before: Io, m: &Measure, secs: f64) -> Io {
        let n = ((m.sat_rps + m.rate) * secs).max(1.0);
        Io {
            syscr: (self.syscr - before.syscr) / n,
            syscw: (self.syscw - before.syscw) / n,
            kib_written: (self.kib_written - before.kib_written) / n,
        }
    }
}

/// Stops humint once the sequencer has had time to chain the last events.
async fn stop_settled(humint: &mut Server) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    humint.stop();
}

/// Waits until the server has been idle (≤ 3 % of a core) for a second: after a start, humint's
/// sequencer verifies the stretch of the chain since the last checkpoint before it signs a new
/// one, which after a fill is the whole filler trail.
async fn wait_quiet(server: &Server) -> f64 {
    let started = Instant::now();
    let tck = clk_tck();
    let mut last = server.cpu_ticks();
    while started.elapsed() < MAX_PHASE {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = server.cpu_ticks();
        if (now.saturating_sub(last) as f64) / tck <= 0.03 {
            break;
        }
        last = now;
    }
    started.elapsed().as_secs_f64()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut DbConnection, sql: &str) -> Res<u64> {
    let c: Count = diesel::sql_query(sql).get_result(conn).map_err(err(sql))?;
    Ok(u64::try_from(c.n).unwrap_or(0))
}

/// What a database holds, and its size on disk (the SQLite file and its WAL, or PostgreSQL's
/// own figure).
#[derive(Clone, Copy)]
pub struct Shape {
    sources: u64,
    contacts: u64,
    events: u64,
    bytes: u64,
}

fn shape(env: &HumintEnv) -> Res<Shape> {
    let mut conn = connect(env)?;
    let bytes = match Backend::from_url(var(env, "HUMINT_DATABASE_URL")?).map_err(err("database URL"))? {
        Backend::Postgres(_) => count(&mut conn, "SELECT pg_database_size(current_database()) AS n")?,
        Backend::Sqlite(path) => {
            let len = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
            len(path.clone()) + len(PathBuf::from(format!("{}-wal", path.display())))
        }
    };
    Ok(Shape {
        sources: count(&mut conn, "SELECT COUNT(*) AS n FROM sources")?,
        contacts: count(&mut conn, "SELECT COUNT(*) AS n FROM contacts")?,
        events: count(&mut conn, "SELECT COUNT(*) AS n FROM audit_events")?,
        bytes,
    })
}

impl Shape {
    fn describe(&self) -> String {
        format!(
            "{} sources, {} contacts, {} audit events, {:.0} MiB",
            self.sources,
            self.contacts,
            self.events,
            self.bytes as f64 / (1024.0 * 1024.0)
        )
    }
}

/// Grows the copy: the filler, then what the backend would do by itself afterwards.
fn grow(env: &HumintEnv, sp: &ScalePlan, before: &Shape, template: &str) -> Res<(String, Option<f64>)> {
    let (sources, contacts) = match sp.target {
        Target::Counts { sources, contacts } => (sources, contacts),
        Target::Double => (2 * before.sources as usize, 2 * before.contacts as usize),
    };
    eprintln!("== scale: growing the copy of {} to {sources} sources, {contacts} contacts", before.describe());
    let mut conn = connect(env)?;
    if matches!(conn, DbConnection::Sqlite(_)) {
        // This connection's page cache only (256 MiB), for the fill's index inserts.
        conn.batch_execute("PRAGMA cache_size = -262144").map_err(err("cache_size"))?;
    }
    let grown = fill::grow(&mut conn, template, sources, contacts, SOURCES_PER_TX)?;
    eprintln!("  filler: {}", grown.summary());
    drop(conn);
    Ok((grown.summary(), settle(env)?))
}

/// Leaves a stopped humint's database as the backend keeps it by itself: the SQLite WAL
/// checkpointed into the file; on PostgreSQL, `VACUUM (ANALYZE)`, autovacuum's work, done now
/// rather than during the measurement — and done at all: autovacuum may be disabled (it is on
/// the benchmark machine's server), and without statistics PostgreSQL plans humint's queries
/// blind. Run on both databases, the same way. Returns the seconds VACUUM took.
fn settle(env: &HumintEnv) -> Res<Option<f64>> {
    let mut conn = connect(env)?;
    match conn {
        DbConnection::Sqlite(_) => {
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)").map_err(err("wal checkpoint"))?;
            Ok(None)
        }
        DbConnection::Postgres(_) => {
            let started = Instant::now();
            conn.batch_execute("VACUUM (ANALYZE)").map_err(err("vacuum"))?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!("  VACUUM (ANALYZE) in {secs:.1}s");
            Ok(Some(secs))
        }
    }
}

pub struct ScaleOutcome {
    base: Vec<(Measure, Io)>,
    scaled: Vec<(Measure, Io)>,
    before: Shape,
    after: Shape,
    fill: String,
    vacuum_secs: Option<f64>,
    verify: Option<(u64, f64)>,
}

async fn tokens(client: &reqwest::Client, server: &Server, handlers: &[Handler]) -> Res<Vec<(String, String, String)>> {
    let mut pairs = Vec::new();
    for h in handlers {
        let token = login(client, &server.base, &h.username, USER_PASSWORD).await?;
        pairs.push((h.username.clone(), token, h.sources.first().cloned().unwrap_or_default()));
    }
    Ok(pairs)
}

/// The scale step. `humint` (seeded, running) is stopped, and replaced by the base process.
pub async fn run(
    sp: &ScalePlan,
    plan: &Plan,
    args: &Args,
    client: &reqwest::Client,
    humint: &mut Server,
    hr: &HumintRun<'_>,
    handlers: &[Handler],
) -> Res<ScaleOutcome> {
    stop_settled(humint).await;
    settle(hr.env)?;
    let before = shape(hr.env)?;
    let (scaled_env, _scaled_db) = hr.copy()?;
    // A source that none of the scenarios reads or writes: the last handler's last source.
    let template = handlers.last().and_then(|h| h.sources.last()).ok_or("no seeded source to copy")?.clone();
    let (fill, vacuum_secs) = grow(&scaled_env, sp, &before, &template)?;
    let after = shape(&scaled_env)?;
    eprintln!("  the copy now holds {}", after.describe());

    eprintln!("== scale: base and scaled humint started; the same requests at the same rates, in turn");
    *humint = hr.start(hr.env, "base")?;
    let mut scaled = hr.start(&scaled_env, "scaled")?;
    wait_ready(client, humint, Duration::from_secs(300)).await?;
    wait_ready(client, &mut scaled, Duration::from_secs(300)).await?;
    let (quiet_base, quiet_scaled) = (wait_quiet(humint).await, wait_quiet(&scaled).await);
    eprintln!(
        "  idle after {quiet_base:.1}s (base), {quiet_scaled:.1}s (scaled; its sequencer verifies the filler trail \
         before it signs a checkpoint)"
    );
    let (mut base_ms, mut scaled_ms) = (Vec::new(), Vec::new());
    let mut rates = [None; SCENARIOS.len()];
    for round in 1..=plan.rounds {
        let base_pairs = tokens(client, humint, handlers).await?;
        let scaled_pairs = tokens(client, &scaled, handlers).await?;
        for (k, &s) in SCENARIOS.iter().enumerate() {
            // A B in odd rounds, B A in even ones; the base goes first in round 1, which fixes
            // the rates.
            let order = if round % 2 == 1 { [false, true] } else { [true, false] };
            for is_scaled in order {
                let (server, pairs) = if is_scaled { (&scaled, &scaled_pairs) } else { (&*humint, &base_pairs) };
                let phase = Phase {
                    round,
                    conc: args.concurrency,
                    secs: plan.secs,
                    rate: rates[k],
                    rate_fraction: args.rate_fraction,
                };
                let io0 = Io::of(server);
                let m = measure(client, server, s, requests(&server.base, s, pairs), phase).await?;
                let io = Io::of(server).per_request(io0, &m, plan.secs);
                eprintln!(
                    "    file I/O per request: {:.1} reads, {:.1} writes, {:.1} KiB written",
                    io.syscr, io.syscw, io.kib_written
                );
                rates[k] = Some(m.rate);
                if is_scaled { scaled_ms.push((m, io)) } else { base_ms.push((m, io)) }
            }
        }
    }
    let verify = if args.no_verify {
        None
    } else {
        eprintln!("== humint audit verify (the scaled trail)");
        tokio::time::sleep(Duration::from_secs(3)).await;
        Some(crate::trail::verify_scenario(&crate::trail::TrailArgs::as_is(), false, &scaled_env, hr.bin)?)
    };
    scaled.stop();
    Ok(ScaleOutcome { base: base_ms, scaled: scaled_ms, before, after, fill, vacuum_secs, verify })
}

fn pick(all: &[(Measure, Io)], s: Scenario) -> Vec<&Measure> {
    all.iter().map(|(m, _)| m).filter(|m| m.scenario == s).collect()
}

fn pick_io(all: &[(Measure, Io)], s: Scenario) -> Vec<Io> {
    all.iter().filter(|(m, _)| m.scenario == s).map(|(_, io)| *io).collect()
}

fn med(ms: &[&Measure], f: impl Fn(&Measure) -> f64) -> f64 {
    median(ms.iter().map(|m| f(m)).collect())
}

/// Median (min–max) of the per-round ratios scaled / base of `f`.
fn ratios(base: &[&Measure], scaled: &[&Measure], f: impl Fn(&Measure) -> f64) -> (f64, String) {
    let r: Vec<f64> =
        base.iter().filter_map(|b| scaled.iter().find(|a| a.round == b.round).map(|a| f(a) / f(b).max(1e-9))).collect();
    let min = r.iter().copied().fold(f64::INFINITY, f64::min);
    let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = median(r);
    (m, format!("{m:.2} ({min:.2}–{max:.2})"))
}

pub fn report(o: &ScaleOutcome, plan: &Plan, backend: &str) {
    println!();
    println!("humint scale run: backend {backend}, {} A B / B A round(s), {}s per phase", plan.rounds, plan.secs);
    println!("  base:   {}", o.before.describe());
    println!("  scaled: {}", o.after.describe());
    println!("  filler: {}", o.fill);
    if let Some(secs) = o.vacuum_secs {
        println!("  VACUUM (ANALYZE) after the fill: {secs:.1}s");
    }
    println!("(medians over rounds; latencies at the same fixed rate, open loop, corrected for coordinated omission)");
    println!();
    println!(
        "| scenario | data set | req/s at saturation | fixed rate | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | file reads/req | file writes/req | KiB written/req | errors | peak RSS MiB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in SCENARIOS {
        for (label, all, shape) in [("base", &o.base, &o.before), ("scaled", &o.scaled, &o.after)] {
            let ms = pick(all, s);
            let io = pick_io(all, s);
            let io_med = |f: fn(&Io) -> f64| median(io.iter().map(f).collect());
            println!(
                "| {} | {label} ({} sources, {} contacts) | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
                s.name(),
                shape.sources,
                shape.contacts,
                med(&ms, |m| m.sat_rps),
                med(&ms, |m| m.rate),
                med(&ms, |m| m.p50 as f64),
                med(&ms, |m| m.p99 as f64),
                med(&ms, |m| m.p999 as f64),
                med(&ms, |m| m.cpu_us),
                io_med(|i| i.syscr),
                io_med(|i| i.syscw),
                io_med(|i| i.kib_written),
                ms.iter().map(|m| m.errors).sum::<u64>(),
                ms.iter().map(|m| m.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            );
        }
    }
    if let Some((events, rate)) = o.verify {
        println!(
            "| audit verify (`humint audit verify`) | scaled | {rate:.0} events/s over {events} events | | | | | | | | | | |"
        );
    }
    println!();
    println!(
        "| scenario | p50 scaled/base | p99 scaled/base | req/s at saturation scaled/base | CPU per request scaled/base | latency within {TARGET}× (medians) |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for s in SCENARIOS {
        let (b, a) = (pick(&o.base, s), pick(&o.scaled, s));
        let (p50, p50s) = ratios(&b, &a, |m| m.p50 as f64);
        let (p99, p99s) = ratios(&b, &a, |m| m.p99 as f64);
        println!(
            "| {} | {p50s} | {p99s} | {} | {} | {} |",
            s.name(),
            ratios(&b, &a, |m| m.sat_rps).1,
            ratios(&b, &a, |m| m.cpu_us).1,
            if p50 <= TARGET && p99 <= TARGET { "yes" } else { "no" }
        );
    }
}
