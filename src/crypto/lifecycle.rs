//! The KEK lifecycle behind `humint keys rotate|rewrap|retire|status` (docs/encryption.md,
//! section 8). Operator commands: each runs its own transactions and is audited
//! (`key.rotate`, `key.rewrap`, `key.retire`; refusals as `denied`).
//!
//! `rotate` and `retire` change the shared keyring file. They do so inside a database
//! transaction holding the key-administration lock, so two of them never interleave their
//! read-change-replace of the file (which could give one version number two different keys).

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::dek::WrappedKey;
use super::error::KeyringError;
use super::key_rows::{self, KeyRow, StoredKey};
use super::keyring::Keyring;
use crate::audit::{Event, Outcome, append, append_alone};
use crate::db::{DbConnection, write_tx};
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;

/// Data keys re-wrapped per transaction: large enough that a million keys take seconds, small
/// enough that each transaction (and SQLite's write lock) is held for milliseconds.
pub const REWRAP_BATCH: i64 = 200;

fn keyring_error(path: &Path, e: KeyringError) -> AppError {
    AppError::internal(format!("{}: {e}", path.display()))
}

fn load(path: &Path) -> AppResult<Keyring> {
    Keyring::load(path).map_err(|e| keyring_error(path, e))
}

/// Records a refused operation in a transaction of its own, then returns the refusal.
fn refuse(conn: &mut DbConnection, action: &'static str, version: u32, why: String, now: DateTime<Utc>) -> AppError {
    let event = Event::new(action, Outcome::Denied).resource("kek", Some(version.to_string())).reason(&why);
    if let Err(e) = append_alone(conn, &RequestContext::system(), event, now) {
        return AppError::internal(format!("{why} (and recording the refusal failed: {e})"));
    }
    AppError::Conflict(why)
}

/// What `rotate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    pub previous: u32,
    pub active: u32,
}

/// Adds KEK version `latest + 1` to the keyring file, then records it as the active version.
/// The file is replaced before the database names the version, so no instance is ever told to
/// use a version that no keyring file holds.
pub fn rotate(conn: &mut DbConnection, keyring_path: &Path, now: DateTime<Utc>) -> AppResult<Rotated> {
    let result = write_tx(conn, |conn| -> AppResult<Result<Rotated, (u32, String)>> {
        key_rows::lock_key_admin(conn)?;
        let previous = key_rows::active_kek_version(conn, false)?;
        let mut keyring = load(keyring_path)?;
        if keyring.kek(previous).is_none() {
            // A stale or foreign keyring: adding latest + 1 to it could reuse a version number
            // that already has another key in the real keyring.
            return Ok(Err((
                previous,
                format!(
                    "the database's active KEK version is {previous}, which {} does not hold: this is not \
                     the deployment's current keyring",
                    keyring_path.display()
                ),
            )));
        }
        let active = keyring.add_kek_version().map_err(|e| keyring_error(keyring_path, e))?;
        keyring.save_replace(keyring_path).map_err(|e| keyring_error(keyring_path, e))?;
        key_rows::set_active_kek_version(conn, active, now)?;
        let event = Event::new("key.rotate", Outcome::Allowed)
            .resource("kek", Some(active.to_string()))
            .reason(&format!("active KEK version {previous} -> {active}"));
        append(conn, &RequestContext::system(), event, now)?;
        Ok(Ok(Rotated { previous, active }))
    })?;
    result.map_err(|(version, why)| refuse(conn, "key.rotate", version, why, now))
}

/// Progress and result of `rewrap`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewrapProgress {
    /// The KEK version keys are re-wrapped under.
    pub active: u32,
    /// Live keys under other versions when the run started.
    pub total: i64,
    pub rewrapped: i64,
    /// Keys that could not be re-wrapped: `(key id, owner, reason)`; never key material.
    pub failed: Vec<(String, String, String)>,
}

/// Re-wraps every live data key that is not under the active KEK version, `REWRAP_BATCH` keys
/// per transaction, calling `progress` after each batch. Online (each batch is short), resumable
/// (committed batches stay done), idempotent (only keys not yet under the active version are
/// selected, and each update is conditional on the version it read). DEK ids and bytes do not
/// change, so no field and no cached key is affected.
pub fn rewrap(
    conn: &mut DbConnection,
    keyring_path: &Path,
    now: DateTime<Utc>,
    mut progress: impl FnMut(&RewrapProgress),
) -> AppResult<RewrapProgress> {
    let active = key_rows::active_kek_version(conn, false)?;
    let keyring = load(keyring_path)?;
    if keyring.kek(active).is_none() {
        return Err(AppError::internal(format!(
            "the active KEK version {active} is not in {}: install the current keyring first",
            keyring_path.display()
        )));
    }
    let mut state =
        RewrapProgress { active, total: key_rows::live_not_under_count(conn, active)?, ..RewrapProgress::default() };
    let mut after: Option<String> = None;
    loop {
        let (seen, last) = write_tx(conn, |conn| rewrap_batch(conn, &keyring, after.as_deref(), &mut state, now))?;
        if seen == 0 {
            break;
        }
        after = last;
        progress(&state);
    }
    if state.total == 0 {
        let event = Event::new("key.rewrap", Outcome::Allowed)
            .resource("kek", Some(active.to_string()))
            .reason(&format!("every data key is already wrapped under KEK version {active}"));
        append_alone(conn, &RequestContext::system(), event, now)?;
    }
    Ok(state)
}

/// One batch: returns how many rows it looked at and the last id seen.
fn rewrap_batch(
    conn: &mut DbConnection,
    keyring: &Keyring,
    after: Option<&str>,
    state: &mut RewrapProgress,
    now: DateTime<Utc>,
) -> AppResult<(usize, Option<String>)> {
    let rows = key_rows::live_not_under(conn, state.active, after, REWRAP_BATCH)?;
    let mut done = 0i64;
    let mut failed = Vec::new();
    for row in &rows {
        match rewrap_one(keyring, row, state.active) {
            Ok(fresh) => done += key_rows::replace_wrapped(conn, &row.id, row.kek_version, &fresh, now)? as i64,
            Err(why) => failed.push((row.id.clone(), row.owner.clone(), why)),
        }
    }
    if done > 0 {
        let event = Event::new("key.rewrap", Outcome::Allowed)
            .resource("kek", Some(state.active.to_string()))
            .reason(&format!("{done} data keys re-wrapped under KEK version {}", state.active));
        append(conn, &RequestContext::system(), event, now)?;
    }
    // Counted before the commit: if the commit fails, `rewrap` returns that error and these
    // counts are never reported; the batches committed before stay done.
    state.rewrapped += done;
    state.failed.extend(failed);
    Ok((rows.len(), rows.last().map(|r| r.id.clone())))
}

fn rewrap_one(keyring: &Keyring, row: &KeyRow, active: u32) -> Result<WrappedKey, String> {
    let wrapped = match row.parse() {
        Ok(StoredKey::Live(w)) => w,
        Ok(StoredKey::Destroyed) => return Err("destroyed meanwhile".into()),
        Err(e) => return Err(e.to_string()),
    };
    let old = keyring
        .kek(wrapped.kek_version)
        .ok_or_else(|| format!("KEK version {} is not in the keyring", wrapped.kek_version))?;
    let new = keyring.kek(active).ok_or_else(|| format!("KEK version {active} is not in the keyring"))?;
    wrapped.rewrap(old, new).map_err(|e| e.to_string())
}

/// Removes an old KEK version from the keyring file. Refused (as a `Conflict`, and recorded as
/// a denied `key.retire`) for the active version, the keyring's latest version, and any version
/// a live data key is still wrapped under.
pub fn retire(conn: &mut DbConnection, keyring_path: &Path, version: u32, now: DateTime<Utc>) -> AppResult<()> {
    let result = write_tx(conn, |conn| {
        key_rows::lock_key_admin(conn)?;
        let active = key_rows::active_kek_version(conn, false)?;
        if version == active {
            return Ok(Err(format!("KEK version {version} is the active version; rotate first, then rewrap")));
        }
        let in_use = key_rows::live_under(conn, version)?;
        if in_use > 0 {
            return Ok(Err(format!(
                "KEK version {version} still wraps {in_use} data key(s); run `humint keys rewrap` first"
            )));
        }
        let mut keyring = load(keyring_path)?;
        match keyring.remove_kek_version(version) {
            Ok(()) => {}
            Err(e @ (KeyringError::CannotRemoveLatestKek(_) | KeyringError::UnknownKekVersion(_))) => {
                return Ok(Err(e.to_string()));
            }
            Err(e) => return Err(keyring_error(keyring_path, e)),
        }
        keyring.save_replace(keyring_path).map_err(|e| keyring_error(keyring_path, e))?;
        let event = Event::new("key.retire", Outcome::Allowed)
            .resource("kek", Some(version.to_string()))
            .reason(&format!("KEK version {version} removed from the keyring"));
        append(conn, &RequestContext::system(), event, now)?;
        Ok(Ok(()))
    })?;
    result.map_err(|why| refuse(conn, "key.retire", version, why, now))
}

/// The database half of `humint keys status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDbStatus {
    pub active_kek_version: u32,
    /// Live data keys per KEK version, ascending.
    pub data_keys_by_kek_version: Vec<VersionCount>,
    pub destroyed_data_keys: i64,
    pub invalidation_generation: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    pub kek_version: u32,
    pub data_keys: i64,
}

pub fn status(conn: &mut DbConnection) -> AppResult<KeyDbStatus> {
    Ok(KeyDbStatus {
        active_kek_version: key_rows::active_kek_version(conn, false)?,
        data_keys_by_kek_version: key_rows::live_by_version(conn)?
            .into_iter()
            .map(|(kek_version, data_keys)| VersionCount { kek_version, data_keys })
            .collect(),
        destroyed_data_keys: key_rows::destroyed_count(conn)?,
        invalidation_generation: key_rows::generation(conn)?,
    })
}
