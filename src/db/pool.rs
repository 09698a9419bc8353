//! The connection pool, and when a pooled connection is checked before use.
//!
//! A network database can drop a connection while it idles in the pool (a restart, a failover,
//! an idle timeout on the way); checking with `SELECT 1` before use replaces such a connection
//! instead of failing a request with it. But a request checks a connection out twice (the
//! session check, then the handler), and on PostgreSQL each check is a round trip, about a
//! quarter of those of an audited read. So a connection is checked only when it may have gone
//! stale: when it was handed back more than [`TRUSTED_FOR`] ago, or when its last use failed
//! (the failure may have been the connection's). Within that window it was just working; a
//! database restart takes longer than the window, so connections that were alive before it are
//! all checked after it. SQLite files do not vanish: SQLite connections are never checked.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use diesel::connection::{Connection, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, Pool, PoolError, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{ConnectionError, r2d2};

use super::{Backend, DbConnection};
use crate::error::AppError;

/// Applied to every SQLite connection: an acknowledged write must survive `kill -9` and power
/// loss (WAL + synchronous=FULL); foreign keys are off by default in SQLite; the busy timeout
/// lets concurrent writers queue instead of failing. The busy timeout comes first: switching a
/// fresh file to WAL needs a lock, and several instances opening it at once would otherwise
/// fail at once instead of waiting their turn.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";

/// How long after a connection was handed back in working order it is used without a check.
pub const TRUSTED_FOR: Duration = Duration::from_millis(500);

/// Opens connections for the pool, each configured before first use.
#[derive(Debug)]
pub struct DbManager {
    backend: Backend,
}

impl DbManager {
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }

    /// A new connection, configured, outside any pool.
    pub fn open(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.backend {
            Backend::Postgres(url) => {
                PgConnection::establish(url).map(DbConnection::Postgres).map_err(r2d2::Error::ConnectionError)
            }
            Backend::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    r2d2::Error::ConnectionError(ConnectionError::InvalidConnectionUrl(
                        "SQLite path is not UTF-8".into(),
                    ))
                })?;
                let mut conn = SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS).map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// A connection as the pool keeps it: with what is known about its health.
pub struct Kept {
    conn: DbConnection,
    /// When it was last handed back to the pool, or opened.
    returned_at: Instant,
    /// Its last use failed: check it before the next, however recent.
    distrusted: bool,
}

impl Kept {
    /// Whether a check-out must check the connection first (see the module comment).
    fn needs_check(&self, now: Instant) -> bool {
        self.distrusted || now.saturating_duration_since(self.returned_at) >= TRUSTED_FOR
    }
}

impl ManageConnection for DbManager {
    type Connection = Kept;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Kept, Self::Error> {
        // Just opened: it works, and the first check-out does not need to ask again.
        self.open().map(|conn| Kept { conn, returned_at: Instant::now(), distrusted: false })
    }

    fn is_valid(&self, kept: &mut Kept) -> Result<(), Self::Error> {
        if !kept.needs_check(Instant::now()) {
            return Ok(());
        }
        kept.conn.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)?;
        kept.distrusted = false;
        Ok(())
    }

    fn has_broken(&self, kept: &mut Kept) -> bool {
        kept.returned_at = Instant::now();
        <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(&mut kept.conn)
    }
}

/// The pool of database connections.
#[derive(Clone, Debug)]
pub struct DbPool(Pool<DbManager>);

impl DbPool {
    /// A connection, checked first if it may have gone stale; waits up to the connect timeout.
    pub fn get(&self) -> Result<PooledDb, PoolError> {
        self.0.get().map(PooledDb)
    }
}

/// A connection checked out of the pool; it goes back when dropped.
pub struct PooledDb(PooledConnection<DbManager>);

impl PooledDb {
    /// Runs `work` on this connection; if it fails (perhaps because of the connection itself),
    /// the connection is checked before it is used again. Every use on a path that may run
    /// again within [`TRUSTED_FOR`] goes through here: a dead connection that kept failing
    /// without being distrusted would be handed out again and again unchecked.
    pub fn failing_distrusted<T, E>(mut self, work: impl FnOnce(&mut DbConnection) -> Result<T, E>) -> Result<T, E> {
        let result = work(&mut self);
        if result.is_err() {
            self.0.distrusted = true;
        }
        result
    }
}

impl Deref for PooledDb {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.0.conn
    }
}

impl DerefMut for PooledDb {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.0.conn
    }
}

/// Builds the pool without connecting: the service starts (and answers 503) while the database
/// is down, and recovers by itself when it returns.
pub fn build_pool(backend: &Backend, size: u32, connect_timeout: Duration) -> Result<DbPool, AppError> {
    if let Backend::Sqlite(path) = backend
        && let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| AppError::internal(format!("creating {}: {e}", dir.display())))?;
    }
    Ok(DbPool(
        Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(connect_timeout)
            .test_on_check_out(backend.is_postgres())
            .build_unchecked(DbManager::new(backend.clone())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(returned_ago: Duration, distrusted: bool, now: Instant) -> Kept {
        let conn = DbConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        Kept { conn, returned_at: now - returned_ago, distrusted }
    }

    #[test]
    fn only_a_connection_just_handed_back_in_working_order_skips_the_check() {
        let now = Instant::now() + Duration::from_secs(10);
        assert!(!kept(Duration::ZERO, false, now).needs_check(now));
        assert!(!kept(TRUSTED_FOR - Duration::from_millis(1), false, now).needs_check(now));
        assert!(kept(TRUSTED_FOR, false, now).needs_check(now), "the window is half-open");
        assert!(kept(Duration::from_secs(5), false, now).needs_check(now));
        assert!(kept(Duration::ZERO, true, now).needs_check(now), "a failed use is always checked");
    }

    #[test]
    fn work_that_fails_leaves_its_connection_distrusted() {
        let dir = tempfile::tempdir().unwrap();
        let pool = build_pool(&Backend::Sqlite(dir.path().join("p.db")), 1, Duration::from_secs(5)).unwrap();
        assert_eq!(pool.get().unwrap().failing_distrusted(|_| Ok::<_, ()>(7)), Ok(7));
        assert!(!pool.get().unwrap().0.distrusted, "a use that worked leaves it trusted");
        assert_eq!(pool.get().unwrap().failing_distrusted(|_| Err::<(), _>("failed")), Err("failed"));
        assert!(pool.get().unwrap().0.distrusted, "the one connection of the pool is now distrusted");
    }

    #[test]
    fn a_distrusted_connection_is_trusted_again_after_a_check_passes() {
        let manager = DbManager::new(Backend::Sqlite(":memory:".into()));
        let now = Instant::now() + Duration::from_secs(10);
        let mut k = kept(Duration::ZERO, true, now);
        manager.is_valid(&mut k).unwrap();
        assert!(!k.distrusted);
        assert!(!manager.has_broken(&mut k), "no transaction left open");
        assert!(!k.needs_check(Instant::now()), "handed back just now");
    }
}
