//! Embedded migrations, one folder per backend, and the start-up lock.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbConnection;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Advisory lock key taken while migrating and bootstrapping, so that several instances starting
/// at once against one PostgreSQL do not race ("humint-m" as a 64-bit number).
const STARTUP_LOCK_KEY: i64 = 0x6875_6d69_6e74_2d6d;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Applies pending migrations; returns how many ran.
pub fn run_pending(conn: &mut DbConnection) -> Result<usize, BoxError> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE)?.len(),
        DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES)?.len(),
    };
    Ok(applied)
}

/// Reverts every applied migration (used by the migration round-trip test and by operators who
/// need to rebuild a scratch database).
pub fn revert_all(conn: &mut DbConnection) -> Result<usize, BoxError> {
    let reverted = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE)?.len(),
        DbConnection::Postgres(c) => c.revert_all_migrations(POSTGRES)?.len(),
    };
    Ok(reverted)
}

/// Runs `f` while holding the start-up lock, so a second instance waits until the first has
/// migrated and bootstrapped and then finds nothing left to do.
///
/// On PostgreSQL this is a session advisory lock. SQLite has none: there `f` runs inside one
/// `BEGIN IMMEDIATE` transaction, whose write lock is the start-up lock (the others wait for it
/// on their busy timeout). Serialising each migration on its own is not enough: two instances
/// that both read "not applied" would both run it, and both see no users and both create
/// `admin`. Diesel runs each migration, and [`super::write_tx`] each bootstrap step, as a
/// savepoint inside that transaction.
pub fn with_startup_lock<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, BoxError>,
) -> Result<T, BoxError> {
    if matches!(conn, DbConnection::Sqlite(_)) {
        return super::write_tx(conn, f);
    }
    diesel::sql_query(format!("SELECT pg_advisory_lock({STARTUP_LOCK_KEY})")).execute(conn)?;
    let result = f(conn);
    // Release even when `f` failed; the lock also dies with the connection.
    if let Err(e) = conn.batch_execute(&format!("SELECT pg_advisory_unlock({STARTUP_LOCK_KEY})")) {
        tracing::warn!(error = %e, "releasing the start-up lock failed");
    }
    result
}
