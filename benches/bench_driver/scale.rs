//! Scale mode (docs/performance.md, "Scale run"): the issue's target "at 1,000,000 contacts and
//! 100,000 sources, the three request scenarios stay within 1.5× of their latency on the seeded
//! data set".
//!
//! On the humint the driver has seeded through the API: restart it, drive read, write and list
//! for the rounds (the *base*), stop it, grow its database with filler rows (`fill.rs`), start it
//! again on the same database and keyring, and drive the same requests — the same (handler,
//! source) pairs, the same fixed rates, fixed from the base's first round — again (the *scaled*
//! rounds). Both measurements follow a restart, so both start with cold caches in humint.
//! `--smoke` runs a tiny variant (the data set doubled) after its normal rounds, so that this
//! path cannot rot.

mod fill;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::r2d2::ManageConnection;
use humint::db::{Backend, DbConnection, DbManager};

use super::*;

/// The scenarios of the target.
const SCENARIOS: [Scenario; 3] = [Scenario::Read, Scenario::Write, Scenario::List];
/// Filler sources per write transaction (about 10 contacts each at full scale).
const SOURCES_PER_TX: usize = 1_000;

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

/// The humint processes of this run: how to start one again on the same database.
pub struct HumintRun<'a> {
    pub env: &'a HumintEnv,
    pub bin: &'a Path,
    pub core: Option<usize>,
    /// The run's temporary directory (humint's log is appended to there).
    pub dir: &'a Path,
}

impl HumintRun<'_> {
    fn var(&self, name: &str) -> Res<&str> {
        self.env.vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str()).ok_or_else(|| format!("{name} not set"))
    }

    fn start(&self) -> Res<Server> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("humint.log"))
            .map_err(err("log"))?;
        let log2 = log.try_clone().map_err(err("log"))?;
        let child = self
            .env
            .command(self.bin, self.core)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(err("humint serve"))?;
        let base = format!("http://{}", self.var("HUMINT_BIND")?);
        Ok(Server { name: "humint", pid: child.id(), child, base })
    }

    async fn restart(&self, client: &reqwest::Client, humint: &mut Server) -> Res<()> {
        stop_settled(humint).await;
        *humint = self.start()?;
        wait_ready(client, humint, Duration::from_secs(300)).await?;
        wait_quiet(humint).await;
        Ok(())
    }

    fn connect(&self) -> Res<DbConnection> {
        let url = self.var("HUMINT_DATABASE_URL")?;
        let backend = Backend::from_url(url).map_err(err("database URL"))?;
        let mut conn = DbManager::new(backend).connect().map_err(err("connect to humint's database"))?;
        if matches!(conn, DbConnection::Sqlite(_)) {
            // This connection's page cache only (256 MiB): the fill's index inserts.
            conn.batch_execute("PRAGMA cache_size = -262144").map_err(err("cache_size"))?;
        }
        Ok(conn)
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
async fn wait_quiet(server: &Server) {
    let tck = clk_tck();
    let deadline = Instant::now() + MAX_PHASE;
    let mut last = server.cpu_ticks();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = server.cpu_ticks();
        if (now.saturating_sub(last) as f64) / tck <= 0.03 {
            return;
        }
        last = now;
    }
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

/// The database's size on disk: the SQLite file and its WAL, or PostgreSQL's own figure.
fn db_size(run: &HumintRun, conn: &mut DbConnection) -> Res<u64> {
    match conn {
        DbConnection::Postgres(_) => count(conn, "SELECT pg_database_size(current_database()) AS n"),
        DbConnection::Sqlite(_) => {
            let url = run.var("HUMINT_DATABASE_URL")?;
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let len = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
            Ok(len(path.to_string()) + len(format!("{path}-wal")))
        }
    }
}

/// What the database held at one point.
#[derive(Clone, Copy)]
pub struct Shape {
    sources: u64,
    contacts: u64,
    events: u64,
    bytes: u64,
}

fn shape(run: &HumintRun, conn: &mut DbConnection) -> Res<Shape> {
    Ok(Shape {
        sources: count(conn, "SELECT COUNT(*) AS n FROM sources")?,
        contacts: count(conn, "SELECT COUNT(*) AS n FROM contacts")?,
        events: count(conn, "SELECT COUNT(*) AS n FROM audit_events")?,
        bytes: db_size(run, conn)?,
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

pub struct ScaleOutcome {
    base: Vec<Measure>,
    scaled: Vec<Measure>,
    before: Shape,
    after: Shape,
    fill: String,
    vacuum_secs: Option<f64>,
}

async fn rounds(
    client: &reqwest::Client,
    humint: &Server,
    handlers: &[Handler],
    plan: &Plan,
    args: &Args,
    rates: &mut [Option<f64>],
) -> Res<Vec<Measure>> {
    let mut all = Vec::new();
    for round in 1..=plan.rounds {
        let mut pairs = Vec::new();
        for h in handlers {
            let token = login(client, &humint.base, &h.username, USER_PASSWORD).await?;
            pairs.push((h.username.clone(), token, h.sources.first().cloned().unwrap_or_default()));
        }
        for (k, &s) in SCENARIOS.iter().enumerate() {
            let phase = Phase {
                round,
                conc: args.concurrency,
                secs: plan.secs,
                rate: rates[k],
                rate_fraction: args.rate_fraction,
            };
            let m = measure(client, humint, s, requests(&humint.base, s, &pairs), phase).await?;
            rates[k] = Some(m.rate);
            all.push(m);
        }
    }
    Ok(all)
}

/// The scale step; `humint` is running, seeded, and is replaced by the restarted process.
pub async fn run(
    sp: &ScalePlan,
    plan: &Plan,
    args: &Args,
    client: &reqwest::Client,
    humint: &mut Server,
    hr: &HumintRun<'_>,
    handlers: &[Handler],
) -> Res<ScaleOutcome> {
    eprintln!("== scale: humint restarted, base rounds on the seeded data set");
    hr.restart(client, humint).await?;
    let mut rates = vec![None; SCENARIOS.len()];
    let base = rounds(client, humint, handlers, plan, args, &mut rates).await?;

    stop_settled(humint).await;
    let mut conn = hr.connect()?;
    let before = shape(hr, &mut conn)?;
    let (sources, contacts) = match sp.target {
        Target::Counts { sources, contacts } => (sources, contacts),
        Target::Double => (2 * before.sources as usize, 2 * before.contacts as usize),
    };
    // A source that none of the scenarios reads or writes: the last handler's last source.
    let template = handlers.last().and_then(|h| h.sources.last()).ok_or("no seeded source to copy")?.clone();
    eprintln!("== scale: humint stopped; growing {} to {sources} sources, {contacts} contacts", before.describe());
    let grown = fill::grow(&mut conn, &template, sources, contacts, SOURCES_PER_TX)?;
    eprintln!("  filler: {}", grown.summary());
    let vacuum_secs = match conn {
        DbConnection::Sqlite(_) => {
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)").map_err(err("wal checkpoint"))?;
            None
        }
        DbConnection::Postgres(_) => {
            // What autovacuum would do on its own after such inserts, done now rather than
            // during the measurement.
            let started = Instant::now();
            conn.batch_execute("VACUUM (ANALYZE)").map_err(err("vacuum"))?;
            Some(started.elapsed().as_secs_f64())
        }
    };
    let after = shape(hr, &mut conn)?;
    drop(conn);
    eprintln!("  now {}", after.describe());
    if let Some(secs) = vacuum_secs {
        eprintln!("  VACUUM (ANALYZE) in {secs:.1}s");
    }

    eprintln!("== scale: humint started on the grown database, the same requests at the same rates");
    *humint = hr.start()?;
    wait_ready(client, humint, Duration::from_secs(300)).await?;
    let quiet = Instant::now();
    wait_quiet(humint).await;
    eprintln!(
        "  quiet after {:.1}s (the sequencer verifies the filler trail before it signs a checkpoint)",
        quiet.elapsed().as_secs_f64()
    );
    let scaled = rounds(client, humint, handlers, plan, args, &mut rates).await?;
    Ok(ScaleOutcome { base, scaled, before, after, fill: grown.summary(), vacuum_secs })
}

fn pick(all: &[Measure], s: Scenario) -> Vec<&Measure> {
    all.iter().filter(|m| m.scenario == s).collect()
}

fn med(ms: &[&Measure], f: impl Fn(&Measure) -> f64) -> f64 {
    median(ms.iter().map(|m| f(m)).collect())
}

pub fn report(o: &ScaleOutcome, verify: Option<(u64, f64)>, plan: &Plan, backend: &str) {
    println!();
    println!("humint scale run: backend {backend}, {} round(s) per data set, {}s per phase", plan.rounds, plan.secs);
    println!("  base:   {}", o.before.describe());
    println!("  scaled: {}", o.after.describe());
    println!("  filler: {}", o.fill);
    if let Some(secs) = o.vacuum_secs {
        println!("  VACUUM (ANALYZE) after the fill: {secs:.1}s");
    }
    println!("(medians over rounds; latencies at the same fixed rate, open loop, corrected for coordinated omission)");
    println!();
    println!(
        "| scenario | data set | req/s at saturation | fixed rate | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for s in SCENARIOS {
        for (label, all, shape) in [("base", &o.base, &o.before), ("scaled", &o.scaled, &o.after)] {
            let ms = pick(all, s);
            println!(
                "| {} | {label} ({} sources, {} contacts) | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                s.name(),
                shape.sources,
                shape.contacts,
                med(&ms, |m| m.sat_rps),
                med(&ms, |m| m.rate),
                med(&ms, |m| m.p50 as f64),
                med(&ms, |m| m.p99 as f64),
                med(&ms, |m| m.p999 as f64),
                med(&ms, |m| m.cpu_us),
                ms.iter().map(|m| m.errors).sum::<u64>(),
            );
        }
    }
    if let Some((events, rate)) = verify {
        println!(
            "| audit verify (`humint audit verify`) | scaled | {rate:.0} events/s over {events} events | | | | | | |"
        );
    }
    println!();
    println!(
        "| scenario | p50 scaled/base | p99 scaled/base | req/s at saturation scaled/base | CPU per request scaled/base | latency within 1.5× |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for s in SCENARIOS {
        let (b, a) = (pick(&o.base, s), pick(&o.scaled, s));
        let ratio = |f: &dyn Fn(&Measure) -> f64| med(&a, f) / med(&b, f).max(1e-9);
        let (p50, p99) = (ratio(&|m| m.p50 as f64), ratio(&|m| m.p99 as f64));
        println!(
            "| {} | {p50:.2} | {p99:.2} | {:.2} | {:.2} | {} |",
            s.name(),
            ratio(&|m| m.sat_rps),
            ratio(&|m| m.cpu_us),
            if p50 <= 1.5 && p99 <= 1.5 { "yes" } else { "no" }
        );
    }
}
