//! The `data_keys` and `key_state` tables: every query the key store and the key lifecycle
//! commands run, and nothing else. Rows hold wrapped keys only, never key bytes in the clear.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Integer;
use uuid::Uuid;

use super::dek::WrappedKey;
use super::owner::Owner;
use crate::db::schema::{data_keys, key_state};
use crate::db::{DbConnection, is_unique_violation};
use crate::error::{AppError, AppResult};
use crate::time::to_db;

/// `key_state` has exactly one row (the migration inserts it; a CHECK keeps it alone).
const STATE_ROW: i32 = 1;

/// Advisory lock key serialising `rotate` and `retire` on PostgreSQL ("humint-k" as a 64-bit
/// number): both read, change and replace the keyring file, and two of them at once could give
/// one KEK version two different keys.
const KEY_ADMIN_LOCK_KEY: i64 = 0x6875_6d69_6e74_2d6b;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = data_keys)]
pub struct KeyRow {
    pub id: String,
    pub owner: String,
    pub kek_version: i32,
    /// NULL once destroyed; `destroyed_at` then says when (read by nothing but operators).
    pub wrapped: Option<Vec<u8>>,
}

/// What a stored row turned out to be.
pub enum StoredKey {
    Live(WrappedKey),
    Destroyed,
}

impl KeyRow {
    /// Parses the row. A row the service cannot have written (bad id, owner or version) is an
    /// integrity failure naming the row, never a panic.
    pub fn parse(&self) -> AppResult<StoredKey> {
        let bad = |what: &str| AppError::Integrity(format!("data_keys row {:?}: {what}", self.id));
        let Some(wrapped) = &self.wrapped else {
            return Ok(StoredKey::Destroyed);
        };
        let id = Uuid::try_parse(&self.id).map_err(|_| bad("id is not a UUID"))?;
        let owner = self.owner.parse::<Owner>().map_err(|_| bad("owner is neither a source id nor system"))?;
        let kek_version = u32::try_from(self.kek_version).map_err(|_| bad("negative KEK version"))?;
        Ok(StoredKey::Live(WrappedKey { id, owner, kek_version, wrapped: wrapped.clone() }))
    }
}

#[derive(Insertable)]
#[diesel(table_name = data_keys)]
struct NewKeyRow {
    id: String,
    owner: String,
    kek_version: i32,
    wrapped: Vec<u8>,
    created_at: NaiveDateTime,
}

fn version_to_db(version: u32) -> AppResult<i32> {
    i32::try_from(version).map_err(|_| AppError::internal(format!("KEK version {version} does not fit the database")))
}

fn version_from_db(version: i32) -> AppResult<u32> {
    u32::try_from(version).map_err(|_| AppError::Integrity(format!("stored KEK version {version} is negative")))
}

#[derive(QueryableByName)]
struct ActiveRow {
    #[diesel(sql_type = Integer)]
    active_kek_version: i32,
}

/// The KEK version new data keys are wrapped under. With `hold`, on PostgreSQL, the state row
/// is share-locked until the caller's transaction ends, so `rotate` cannot move the version on
/// (and `retire` cannot then remove the old one) between this read and the insert of a key
/// wrapped under it. SQLite's write transactions are serialised already.
pub fn active_kek_version(conn: &mut DbConnection, hold: bool) -> AppResult<u32> {
    let lock = match conn {
        DbConnection::Postgres(_) if hold => " FOR SHARE",
        _ => "",
    };
    let row: ActiveRow =
        diesel::sql_query(format!("SELECT active_kek_version FROM key_state WHERE id = {STATE_ROW}{lock}"))
            .get_result(conn)
            .map_err(missing_state)?;
    version_from_db(row.active_kek_version)
}

fn missing_state(e: diesel::result::Error) -> AppError {
    match e {
        diesel::result::Error::NotFound => AppError::Integrity("key_state holds no row".into()),
        other => other.into(),
    }
}

/// The invalidation generation, bumped by every key destruction.
pub fn generation(conn: &mut DbConnection) -> AppResult<i64> {
    key_state::table.find(STATE_ROW).select(key_state::generation).first(conn).map_err(missing_state)
}

pub fn bump_generation(conn: &mut DbConnection, now: DateTime<Utc>) -> AppResult<()> {
    diesel::update(key_state::table.find(STATE_ROW))
        .set((key_state::generation.eq(key_state::generation + 1), key_state::updated_at.eq(to_db(now))))
        .execute(conn)?;
    Ok(())
}

pub fn set_active_kek_version(conn: &mut DbConnection, version: u32, now: DateTime<Utc>) -> AppResult<()> {
    diesel::update(key_state::table.find(STATE_ROW))
        .set((key_state::active_kek_version.eq(version_to_db(version)?), key_state::updated_at.eq(to_db(now))))
        .execute(conn)?;
    Ok(())
}

/// Takes the key-administration lock for the rest of the caller's transaction (PostgreSQL); on
/// SQLite the caller's `BEGIN IMMEDIATE` transaction already excludes every other writer.
pub fn lock_key_admin(conn: &mut DbConnection) -> AppResult<()> {
    if matches!(conn, DbConnection::Postgres(_)) {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({KEY_ADMIN_LOCK_KEY})")).execute(conn)?;
    }
    Ok(())
}

pub fn by_owner(conn: &mut DbConnection, owner: Owner) -> AppResult<Option<KeyRow>> {
    Ok(data_keys::table
        .filter(data_keys::owner.eq(owner.to_string()))
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Outcome of [`insert`].
pub enum Inserted {
    Yes,
    /// The owner already has a data key (a concurrent creator won, or a programming fault).
    OwnerTaken,
}

/// Inserts a freshly wrapped key. Runs in a savepoint, so that a lost race on the unique owner
/// does not abort the caller's whole transaction on PostgreSQL.
pub fn insert(conn: &mut DbConnection, key: &WrappedKey, now: DateTime<Utc>) -> AppResult<Inserted> {
    let row = NewKeyRow {
        id: key.id.hyphenated().to_string(),
        owner: key.owner.to_string(),
        kek_version: version_to_db(key.kek_version)?,
        wrapped: key.wrapped.clone(),
        created_at: to_db(now),
    };
    let result = conn.transaction(|conn| diesel::insert_into(data_keys::table).values(&row).execute(conn));
    match result {
        Ok(_) => Ok(Inserted::Yes),
        Err(e) if is_unique_violation(&e) => Ok(Inserted::OwnerTaken),
        Err(e) => Err(e.into()),
    }
}

/// Destroys `owner`'s wrapped key, keeping the row as a record; returns how many rows changed
/// (0 when there is no live key).
pub fn destroy(conn: &mut DbConnection, owner: Owner, now: DateTime<Utc>) -> AppResult<usize> {
    Ok(diesel::update(
        data_keys::table.filter(data_keys::owner.eq(owner.to_string())).filter(data_keys::wrapped.is_not_null()),
    )
    .set((data_keys::wrapped.eq(None::<Vec<u8>>), data_keys::destroyed_at.eq(Some(to_db(now)))))
    .execute(conn)?)
}

/// Live keys not wrapped under `version`, in id order after `after_id` (keyset paging, so a key
/// that cannot be re-wrapped is passed over instead of being met again in every batch).
pub fn live_not_under(
    conn: &mut DbConnection,
    version: u32,
    after_id: Option<&str>,
    limit: i64,
) -> AppResult<Vec<KeyRow>> {
    let mut q = data_keys::table
        .filter(data_keys::wrapped.is_not_null())
        .filter(data_keys::kek_version.ne(version_to_db(version)?))
        .select(KeyRow::as_select())
        .into_boxed();
    if let Some(after) = after_id {
        q = q.filter(data_keys::id.gt(after.to_owned()));
    }
    Ok(q.order(data_keys::id.asc()).limit(limit).load(conn)?)
}

/// Replaces the wrapped bytes of key `id`, but only if it is still live and still wrapped under
/// `old_version`: a key destroyed or re-wrapped meanwhile is left alone (returns 0).
pub fn replace_wrapped(
    conn: &mut DbConnection,
    id: &str,
    old_version: i32,
    key: &WrappedKey,
    now: DateTime<Utc>,
) -> AppResult<usize> {
    Ok(diesel::update(
        data_keys::table
            .filter(data_keys::id.eq(id))
            .filter(data_keys::kek_version.eq(old_version))
            .filter(data_keys::wrapped.is_not_null()),
    )
    .set((
        data_keys::wrapped.eq(Some(key.wrapped.clone())),
        data_keys::kek_version.eq(version_to_db(key.kek_version)?),
        data_keys::rewrapped_at.eq(Some(to_db(now))),
    ))
    .execute(conn)?)
}

/// How many live keys each KEK version wraps, ascending by version.
pub fn live_by_version(conn: &mut DbConnection) -> AppResult<Vec<(u32, i64)>> {
    let rows: Vec<(i32, i64)> = data_keys::table
        .filter(data_keys::wrapped.is_not_null())
        .group_by(data_keys::kek_version)
        .select((data_keys::kek_version, diesel::dsl::count_star()))
        .order(data_keys::kek_version.asc())
        .load(conn)?;
    rows.into_iter().map(|(v, n)| Ok((version_from_db(v)?, n))).collect()
}

pub fn live_under(conn: &mut DbConnection, version: u32) -> AppResult<i64> {
    Ok(data_keys::table
        .filter(data_keys::wrapped.is_not_null())
        .filter(data_keys::kek_version.eq(version_to_db(version)?))
        .count()
        .get_result(conn)?)
}

pub fn live_not_under_count(conn: &mut DbConnection, version: u32) -> AppResult<i64> {
    Ok(data_keys::table
        .filter(data_keys::wrapped.is_not_null())
        .filter(data_keys::kek_version.ne(version_to_db(version)?))
        .count()
        .get_result(conn)?)
}

pub fn destroyed_count(conn: &mut DbConnection) -> AppResult<i64> {
    Ok(data_keys::table.filter(data_keys::wrapped.is_null()).count().get_result(conn)?)
}
