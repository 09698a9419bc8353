//! Data keys in the database: creating, unwrapping (through the cache), and destroying them.
//!
//! Every function takes the caller's connection, inside the caller's transaction, so a key is
//! created, or destroyed, exactly when the work it belongs to commits. Request code reaches this
//! through [`crate::keys::Keys`] (`state.keys.source_key(conn, id)` and friends).
//!
//! Errors, as the service answers them: a destroyed key is [`AppError::Gone`] (410
//! `key-destroyed`); a missing row, a row that does not unwrap, or a key that belongs to another
//! owner than the row being read is [`AppError::Integrity`] (500, logged with the owner and key
//! id, never with key bytes); a KEK version this instance's keyring lacks even after re-reading
//! the keyring file is an operator fault, [`AppError::Internal`] with a message saying what to do.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::cache::KeyCache;
use super::data_key::DataKey;
use super::error::{DekError, FieldError};
use super::field::{FieldContext, key_id_of};
use super::key_rows::{self, Inserted, StoredKey};
use super::keyring::Keyring;
use super::owner::Owner;
use crate::audit::{Event, Outcome, append};
use crate::auth::actor::Actor;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};
use crate::http::context::RequestContext;
use crate::keys::Keys;

/// The database-facing half of the key hierarchy, with the cache of unwrapped keys. One per
/// running instance, held by [`Keys`].
#[derive(Default)]
pub struct DataKeyStore {
    cache: KeyCache,
}

impl DataKeyStore {
    pub fn new(cache: KeyCache) -> Self {
        Self { cache }
    }

    /// How many unwrapped keys this instance holds (for tests and diagnostics).
    pub fn cached_keys(&self) -> usize {
        self.cache.len()
    }

    /// Generates `owner`'s data key, wraps it under the active KEK version and inserts it.
    /// `Ok(None)` when the owner already has a key (the insert ran in a savepoint, so the
    /// caller's transaction is intact).
    fn create(
        &self,
        keys: &Keys,
        conn: &mut DbConnection,
        owner: Owner,
        now: DateTime<Utc>,
    ) -> AppResult<Option<Arc<DataKey>>> {
        let generation = key_rows::generation(conn)?;
        let version = key_rows::active_kek_version(conn, true)?;
        let keyring = keyring_holding(keys, version, || format!("the active version, to create {owner}'s data key"))?;
        let kek = keyring.kek(version).ok_or_else(|| missing_kek(keys, version, "the active version"))?;
        let key = DataKey::generate(owner).map_err(AppError::internal)?;
        let wrapped = key.wrap(kek).map_err(|e| AppError::internal(format!("wrapping {owner}'s data key: {e}")))?;
        match key_rows::insert(conn, &wrapped, now)? {
            Inserted::OwnerTaken => Ok(None),
            Inserted::Yes => {
                let key = Arc::new(key);
                // Cached before commit: if the caller's transaction rolls back, the entry names
                // an owner that was never created either (source ids are fresh UUIDs), and it
                // expires with the TTL. The system key is created in its own transaction
                // (`ensure_system_key`), so it is never cached from a transaction that may fail.
                if matches!(owner, Owner::Source(_)) {
                    self.cache.insert(key.clone(), generation, Instant::now());
                }
                Ok(Some(key))
            }
        }
    }

    pub fn create_source_key(
        &self,
        keys: &Keys,
        conn: &mut DbConnection,
        source_id: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<Arc<DataKey>> {
        self.create(keys, conn, Owner::Source(source_id), now)?
            .ok_or_else(|| AppError::Conflict(format!("source {source_id} already has a data key")))
    }

    /// Creates the system data key unless it exists. Meant for its own transaction at start-up:
    /// a racing instance's insert is detected and left to win.
    pub fn ensure_system_key(&self, keys: &Keys, conn: &mut DbConnection, now: DateTime<Utc>) -> AppResult<()> {
        if key_rows::by_owner(conn, Owner::System)?.is_none() {
            self.create(keys, conn, Owner::System, now)?;
        }
        Ok(())
    }

    /// The unwrapped key of `owner`: from the cache, or read, unwrapped and cached.
    pub fn key_of(&self, keys: &Keys, conn: &mut DbConnection, owner: Owner) -> AppResult<Arc<DataKey>> {
        let now = Instant::now();
        let mut just_read = None;
        if self.cache.generation_check_due(now) {
            let generation = key_rows::generation(conn)?;
            self.cache.observe_generation(generation, now);
            just_read = Some(generation);
        }
        if let Some(key) = self.cache.get(owner, now) {
            return Ok(key);
        }
        // The generation is read before the row, in the same transaction: if the key is
        // destroyed after this read, its generation is newer and the cache refuses this entry
        // (or drops it at the next check).
        let generation = match just_read {
            Some(generation) => generation,
            None => key_rows::generation(conn)?,
        };
        let row = key_rows::by_owner(conn, owner)?
            .ok_or_else(|| AppError::Integrity(format!("no data key exists for owner {owner}")))?;
        let wrapped = match row.parse()? {
            StoredKey::Live(wrapped) => wrapped,
            StoredKey::Destroyed => return Err(AppError::Gone),
        };
        let keyring = keyring_holding(keys, wrapped.kek_version, || format!("to unwrap data key {}", wrapped.id))?;
        let kek = keyring
            .kek(wrapped.kek_version)
            .ok_or_else(|| missing_kek(keys, wrapped.kek_version, "to unwrap a data key"))?;
        let key = wrapped.unwrap(kek).map_err(|e| match e {
            DekError::Integrity => AppError::Integrity(format!(
                "data key {} of owner {owner} does not unwrap under KEK version {}",
                wrapped.id, wrapped.kek_version
            )),
            other => AppError::internal(format!("unwrapping data key {} of owner {owner}: {other}", wrapped.id)),
        })?;
        let key = Arc::new(key);
        self.cache.insert(key.clone(), generation, now);
        Ok(key)
    }

    /// The key a field blob names, checked to be the key of the row's owner.
    pub fn key_by_id(
        &self,
        keys: &Keys,
        conn: &mut DbConnection,
        key_id: Uuid,
        row_owner: Owner,
    ) -> AppResult<Arc<DataKey>> {
        // One key per owner: the row's owner decides which key may open its fields, and the
        // blob's key id must be that key. A blob naming any other key (another owner's, a
        // destroyed one's replacement, or one that never existed) is an integrity failure.
        let key = self.key_of(keys, conn, row_owner)?;
        if key.id() != key_id || key.owner() != row_owner {
            return Err(AppError::Integrity(format!(
                "a field of owner {row_owner} names data key {key_id}, which is not that owner's key"
            )));
        }
        Ok(key)
    }

    /// Destroys `source_id`'s data key (crypto-shredding), records it in the audit trail and
    /// bumps the invalidation generation, all in the caller's transaction. Destroying an
    /// already destroyed key succeeds again and is recorded as such.
    pub fn shred_source_key(
        &self,
        conn: &mut DbConnection,
        ctx: &RequestContext,
        actor: Option<&Actor>,
        source_id: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let owner = Owner::Source(source_id);
        let row = key_rows::by_owner(conn, owner)?
            .ok_or_else(|| AppError::Integrity(format!("no data key exists for source {source_id}")))?;
        let destroyed = key_rows::destroy(conn, owner, now)? > 0;
        if destroyed {
            key_rows::bump_generation(conn, now)?;
        }
        // Forget it here at once; other instances follow at their next generation check.
        self.cache.remove(owner);
        let event = match actor {
            Some(actor) => Event::by(actor, "key.shred", Outcome::Allowed),
            None => Event::new("key.shred", Outcome::Allowed),
        };
        let event = event.resource("data_key", Some(row.id)).source(source_id).reason(if destroyed {
            "data key destroyed"
        } else {
            "data key was already destroyed"
        });
        append(conn, ctx, event, now)
    }

    /// Seals `plaintext` for the place `ctx` names, under the key of `ctx.owner`.
    pub fn seal_field(
        &self,
        keys: &Keys,
        conn: &mut DbConnection,
        ctx: &FieldContext,
        plaintext: &[u8],
    ) -> AppResult<Vec<u8>> {
        let key = self.key_of(keys, conn, ctx.owner)?;
        key.seal(ctx, plaintext).map_err(|e| AppError::internal(format!("sealing {}: {e}", describe(ctx))))
    }

    /// Opens a blob read from the place `ctx` names: the key is the one the blob's header names,
    /// checked to belong to the row's owner.
    pub fn open_field(
        &self,
        keys: &Keys,
        conn: &mut DbConnection,
        ctx: &FieldContext,
        blob: &[u8],
    ) -> AppResult<Zeroizing<Vec<u8>>> {
        let integrity = || AppError::Integrity(format!("{} failed to decrypt", describe(ctx)));
        let key_id = key_id_of(blob).map_err(|_| integrity())?;
        let key = self.key_by_id(keys, conn, key_id, ctx.owner)?;
        key.open(ctx, blob).map_err(|e| match e {
            FieldError::Integrity => integrity(),
            other => AppError::internal(format!("opening {}: {other}", describe(ctx))),
        })
    }
}

/// Table, column, row and owner: what an integrity failure is logged with (never the value).
fn describe(ctx: &FieldContext) -> String {
    format!("{}.{} of row {} (owner {})", ctx.table, ctx.column, ctx.row_id, ctx.owner)
}

/// The keyring, re-read once from its file if it lacks `version` (a rotation by `humint keys
/// rotate` while this instance runs, or a key wrapped by an instance with a newer keyring).
fn keyring_holding(keys: &Keys, version: u32, why: impl FnOnce() -> String) -> AppResult<Arc<Keyring>> {
    let keyring = keys.keyring();
    if keyring.kek(version).is_some() {
        return Ok(keyring);
    }
    tracing::info!(kek_version = version, "KEK version not in memory; re-reading the keyring file");
    let why = why();
    let fresh = keys.reload().map_err(|e| {
        AppError::internal(format!("KEK version {version} is needed ({why}) and re-reading the keyring failed: {e}"))
    })?;
    if fresh.kek(version).is_none() {
        return Err(missing_kek(keys, version, &why));
    }
    Ok(fresh)
}

fn missing_kek(keys: &Keys, version: u32, why: &str) -> AppError {
    AppError::internal(format!(
        "KEK version {version} is needed ({why}) but the keyring file {} does not hold it: install this \
         deployment's current keyring on this instance (after `humint keys rotate`), or restore a version \
         that was retired while data keys still used it",
        keys.keyring_path().display()
    ))
}
