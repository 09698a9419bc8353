//! The audit-verify scenario over a long trail (docs/performance.md, "Audit verification over
//! 1,000,000 events").
//!
//! A trail of 1,000,000 events through the API would take ~20 minutes of requests on this
//! machine, so after the load rounds, with humint stopped, the trail is grown to
//! `--verify-events` directly in humint's database, the way the sequencer itself extends it:
//! - the last stored checkpoint is verified with the audit key, and every stored event after it
//!   is verified (`ChainVerifier::resume_after`);
//! - new events continue the stored head through humint's own `ChainTip` (seq, prev_hash, hash),
//!   each shaped like one the load rounds wrote (the stored events' field values are reused
//!   round robin, with a fresh request id and time), and are pushed through the same verifier;
//! - they are inserted as chained rows in large transactions, and a checkpoint over the new head
//!   is signed with the keyring's audit key (`next_checkpoint` needs the verifier's proof), so the
//!   verification below also meets a checkpoint at the very end.
//!
//! Then `humint audit verify` runs as a separate process, `--verify-runs` times, on every core
//! (the driver pins itself to one core, and children inherit that): events/s from the wall time
//! of the command, start-up included, and the command's own figure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use humint::audit::sequencer::checkpoints;
use humint::audit::store::chained_after;
use humint::audit::{
    AuditRecord, AuditSigner, ChainTip, ChainVerifier, ChainedEvent, CheckpointVerifier, GENESIS_PREV_HASH, format_at,
    next_checkpoint,
};
use humint::crypto::Keyring;
use humint::db::schema::{audit_checkpoints, audit_events};
use humint::db::{Backend, DbConnection, DbManager};

use crate::{HumintEnv, Res, err, median};

/// Events generated, verified and inserted per transaction.
const TX_ROWS: u64 = 50_000;
/// Rows per INSERT statement: 17 columns each stays below SQLite's 32,766 and PostgreSQL's
/// 65,535 bind parameters.
const STATEMENT_ROWS: usize = 1_000;
/// How many of the stored events lend their shape to the new ones.
const TEMPLATES: i64 = 2_000;
/// Spacing of the new events' times; they end at the moment of growing.
const EVENT_SPACING_MICROS: i64 = 100;

#[derive(clap::Args, Debug)]
pub struct TrailArgs {
    /// Grow the audit trail to this many events before `humint audit verify` (default
    /// 1,000,000; smoke 20,000; 0 leaves the trail as the load rounds wrote it).
    #[arg(long)]
    verify_events: Option<u64>,
    /// How many times `humint audit verify` runs over the trail (default 3; smoke 1).
    #[arg(long)]
    verify_runs: Option<usize>,
}

impl TrailArgs {
    /// One verify run over the trail as it stands (the scale mode's grown trail).
    pub fn as_is() -> Self {
        TrailArgs { verify_events: Some(0), verify_runs: Some(1) }
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_events, treat_none_as_null = true)]
struct ChainedRow {
    id: String,
    seq: i64,
    at: String,
    actor_id: Option<String>,
    actor_username: Option<String>,
    action: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
    source_id: Option<String>,
    purpose: Option<String>,
    outcome: &'static str,
    reason: Option<String>,
    request_id: Option<String>,
    client_ip: Option<String>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    created_at: NaiveDateTime,
}

impl ChainedRow {
    fn new(e: ChainedEvent, created_at: NaiveDateTime) -> Self {
        let r = e.record;
        ChainedRow {
            id: uuid::Uuid::new_v4().to_string(),
            seq: r.seq,
            at: r.at,
            actor_id: r.actor_id,
            actor_username: r.actor_username,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            source_id: r.source_id,
            purpose: r.purpose,
            outcome: r.outcome.as_str(),
            reason: r.reason,
            request_id: r.request_id,
            client_ip: r.client_ip,
            prev_hash: e.prev_hash.to_vec(),
            hash: e.hash.to_vec(),
            created_at,
        }
    }
}

/// One run of `humint audit verify`.
struct VerifyRun {
    events: u64,
    wall_secs: f64,
    /// The command's own figure ("verified at N events/s", measured after start-up).
    own_rate: Option<f64>,
}

/// Grows the trail (unless asked not to), then runs `humint audit verify`. Returns the events
/// checked and the median events/s over the runs (wall time).
pub fn verify_scenario(args: &TrailArgs, smoke: bool, env: &HumintEnv, bin: &Path) -> Res<(u64, f64)> {
    let target = args.verify_events.unwrap_or(if smoke { 20_000 } else { 1_000_000 });
    let runs = args.verify_runs.unwrap_or(if smoke { 1 } else { 3 }).clamp(1, 20);
    let var = |name: &str| env.vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
    let url = var("HUMINT_DATABASE_URL").ok_or("no HUMINT_DATABASE_URL")?;
    let keyring = match var("HUMINT_KEYRING") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(var("HUMINT_DATA_DIR").ok_or("no HUMINT_DATA_DIR")?).join("keyring.json"),
    };
    if target > 0 {
        grow(&url, &keyring, target)?;
    }
    let mut results = Vec::new();
    for run in 1..=runs {
        let r = run_verify(env, bin, run == 1)?;
        eprintln!(
            "  verify run {run}: {} events in {:.2} s: {:.0} events/s wall{}",
            r.events,
            r.wall_secs,
            r.events as f64 / r.wall_secs.max(1e-9),
            r.own_rate.map(|x| format!(", {x:.0} events/s by the command's own measure")).unwrap_or_default()
        );
        results.push(r);
    }
    let events = results.iter().map(|r| r.events).max().unwrap_or(0);
    let wall = median(results.iter().map(|r| r.events as f64 / r.wall_secs.max(1e-9)).collect());
    let own: Vec<f64> = results.iter().filter_map(|r| r.own_rate).collect();
    eprintln!(
        "  audit verify over {events} events: median {wall:.0} events/s wall{} ({} run(s))",
        if own.is_empty() { String::new() } else { format!(", {:.0} events/s (command)", median(own)) },
        results.len()
    );
    Ok((events, wall))
}

/// Extends the stored chain to `target` events, then signs a checkpoint over the new head.
fn grow(url: &str, keyring: &Path, target: u64) -> Res<()> {
    let backend = Backend::from_url(url).map_err(err("database URL"))?;
    let mut conn = DbManager::new(backend).open().map_err(err("connect"))?;
    let keyring = Keyring::load(keyring).map_err(err("keyring"))?;
    let key = keyring.audit_key();
    let signer = AuditSigner::from_pkcs8(key.pkcs8_der(), key.key_id().to_string()).map_err(err("audit key"))?;
    let public = CheckpointVerifier::from_public_key(key.public_key()).map_err(err("audit key"))?;

    // As the sequencer does before signing: the last checkpoint, then the chain since it.
    let last = checkpoints(&mut conn).map_err(err("read checkpoints"))?.last().map(|row| row.checkpoint());
    let anchor = match &last {
        Some(cp) => Some(public.verify(cp).map_err(err("last checkpoint"))?),
        None => None,
    };
    let mut verifier = match &anchor {
        Some(a) => ChainVerifier::resume_after(a),
        None => ChainVerifier::new(&[], &public),
    };
    let mut head = anchor.as_ref().map_or((0, GENESIS_PREV_HASH), |a| (a.seq(), *a.hash()));
    loop {
        let rows = chained_after(&mut conn, head.0, 10_000).map_err(err("read events"))?;
        for row in &rows {
            let event = row.chained().ok_or_else(|| format!("stored event {:?} is not readable", row.seq))?;
            verifier.push(&event);
            head = (event.record.seq, event.hash);
        }
        if rows.len() < 10_000 {
            break;
        }
    }
    let have = u64::try_from(head.0).unwrap_or(0);
    if have >= target {
        eprintln!("  the trail already holds {have} events");
        return Ok(());
    }
    let templates: Vec<AuditRecord> = chained_after(&mut conn, (head.0 - TEMPLATES).max(0), TEMPLATES)
        .map_err(err("read events"))?
        .iter()
        .filter_map(|row| row.chained().map(|e| e.record))
        .collect();
    if templates.is_empty() {
        return Err("no stored event to take the new events' shape from".into());
    }

    let started = Instant::now();
    let mut tip = ChainTip::from_head(head.0, head.1).map_err(err("chain head"))?;
    let total = target - have;
    let first_at = Utc::now() - TimeDelta::microseconds(EVENT_SPACING_MICROS.saturating_mul(total as i64));
    let mut done = 0u64;
    while done < total {
        let n = (total - done).min(TX_ROWS);
        let mut rows = Vec::with_capacity(n as usize);
        for k in done..done + n {
            let mut record = templates[(k % templates.len() as u64) as usize].clone();
            let at = first_at + TimeDelta::microseconds(EVENT_SPACING_MICROS * k as i64);
            record.at = format_at(&at);
            if record.request_id.is_some() {
                record.request_id = Some(uuid::Uuid::new_v4().to_string());
            }
            let event = tip.append(record).map_err(err("append"))?;
            verifier.push(&event);
            rows.push(ChainedRow::new(event, humint::time::to_db(at)));
        }
        insert(&mut conn, &rows).map_err(err("insert events"))?;
        done += n;
    }
    let insert_secs = started.elapsed().as_secs_f64();

    let verified = verifier.finish().into_verified().ok_or("the grown chain does not verify")?;
    let checkpoint = match next_checkpoint(anchor.as_ref(), &verified).map_err(err("checkpoint"))? {
        Some(t) => {
            let cp = signer.sign(&t);
            diesel::insert_into(audit_checkpoints::table)
                .values((
                    audit_checkpoints::seq.eq(cp.seq),
                    audit_checkpoints::hash.eq(t.hash().to_vec()),
                    audit_checkpoints::note.eq(&cp.note),
                    audit_checkpoints::signature.eq(&cp.signature_b64),
                    audit_checkpoints::key_id.eq(&cp.key_id),
                    audit_checkpoints::created_at.eq(humint::time::to_db(Utc::now())),
                ))
                .execute(&mut conn)
                .map_err(err("insert checkpoint"))?;
            format!("checkpoint signed at seq {}", cp.seq)
        }
        None => "no checkpoint needed".to_string(),
    };
    // A long-lived database has been checkpointed (SQLite) or vacuumed (PostgreSQL: hint bits
    // and the visibility map set) long before anyone verifies it; without this the first
    // verification would also pay for that.
    let tidy = match &conn {
        DbConnection::Sqlite(_) => "PRAGMA wal_checkpoint(TRUNCATE)",
        DbConnection::Postgres(_) => "VACUUM ANALYZE audit_events",
    };
    diesel::sql_query(tidy).execute(&mut conn).map_err(err(tidy))?;
    eprintln!(
        "  trail grown from {have} to {target} events in {insert_secs:.1} s ({:.0} events/s), {checkpoint}; {tidy} in {:.1} s",
        total as f64 / insert_secs.max(1e-9),
        started.elapsed().as_secs_f64() - insert_secs
    );
    Ok(())
}

/// One transaction of multi-row inserts, on the concrete connection (batch inserts are per
/// backend in diesel).
fn insert(conn: &mut DbConnection, rows: &[ChainedRow]) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => c.transaction(|c| {
            for chunk in rows.chunks(STATEMENT_ROWS) {
                diesel::insert_into(audit_events::table).values(chunk).execute(c)?;
            }
            Ok(())
        }),
        DbConnection::Postgres(c) => c.transaction(|c| {
            for chunk in rows.chunks(STATEMENT_ROWS) {
                diesel::insert_into(audit_events::table).values(chunk).execute(c)?;
            }
            Ok(())
        }),
    }
}

/// `humint audit verify`, on every online core: the driver runs pinned to one core and a child
/// inherits that, but the verifier is meant to use both (humint is stopped by now).
fn run_verify(env: &HumintEnv, bin: &Path, show_output: bool) -> Res<VerifyRun> {
    let mut cmd = match std::fs::read_to_string("/sys/devices/system/cpu/online") {
        Ok(cpus) if crate::two_cores() => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus.trim()]).arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.args(["audit", "verify"]).output().map_err(err("humint audit verify"))?;
    let wall_secs = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("humint audit verify: {}: {stdout}{stderr}", out.status));
    }
    if show_output {
        stdout.lines().for_each(|line| eprintln!("  {line}"));
    }
    // "valid: N events checked, head seq ..." and "verified at R events/s".
    let number_before = |text: &str, word: &str| {
        let words: Vec<&str> = text.split_whitespace().collect();
        words.windows(2).find(|w| w[1] == word).and_then(|w| w[0].parse::<f64>().ok())
    };
    let events = number_before(&stdout, "events").unwrap_or(0.0) as u64;
    let own_rate = number_before(&stderr, "events/s");
    Ok(VerifyRun { events, wall_secs, own_rate })
}
