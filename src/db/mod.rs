//! Storage: one connection type over SQLite and PostgreSQL, chosen from the URL at run time.
//!
//! Both backends are always compiled in. The URL decides, explicitly: `sqlite://PATH` or a bare
//! path is SQLite, `postgres://`/`postgresql://` is PostgreSQL, anything else is an error. We do
//! not let diesel's `MultiConnection::establish` try each backend in turn, because a PostgreSQL
//! URL tried as SQLite would silently create an empty file named after it.

pub mod migrations;
mod pool;
pub mod schema;

pub use pool::{DbManager, DbPool, PooledDb, TRUSTED_FOR, build_pool};

use std::path::PathBuf;

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DbUrlError {
    #[error("unsupported database URL scheme `{0}` (use sqlite://PATH or postgres://...)")]
    UnknownScheme(String),
    #[error("empty SQLite path")]
    EmptyPath,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, DbUrlError> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(DbUrlError::EmptyPath);
            }
            return Ok(Self::Sqlite(PathBuf::from(rest)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(DbUrlError::UnknownScheme(scheme.to_string()));
        }
        // `sqlite:` without slashes and other `x:` forms are typos, not paths.
        if let Some((scheme, _)) = url.split_once(':')
            && !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+')
            && scheme.len() > 1
        {
            return Err(DbUrlError::UnknownScheme(scheme.to_string()));
        }
        if url.is_empty() {
            return Err(DbUrlError::EmptyPath);
        }
        Ok(Self::Sqlite(PathBuf::from(url)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// The turn of this process's SQLite writers (see [`write_tx`]). One per process: a deployment
/// has one SQLite database per process; the test suite, which opens several, only serialises
/// its writes a little more than it needs to.
static SQLITE_WRITERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, taking the write
/// lock up front: a deferred transaction that reads then writes can fail with SQLITE_BUSY when
/// another writer got in between, which the busy timeout cannot cure.
///
/// Inside a transaction already open (the SQLite start-up lock is one) it becomes a savepoint:
/// the outer transaction holds the lock, and `f`'s failure rolls back only `f`'s work.
pub fn write_tx<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let nested = <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some();
    // SQLite has one write lock, and its busy handler makes waiters *sleep* (1, 2, 5 … 100 ms)
    // and retry: the lock idles while work waits and the tail latency explodes. Writers of this
    // process therefore take turns on a mutex first, which hands the turn over at once; SQLite's
    // own lock (and busy timeout) still arbitrates between processes.
    let _turn = match conn {
        DbConnection::Sqlite(_) if !nested => {
            Some(SQLITE_WRITERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
        }
        _ => None,
    };
    match conn {
        _ if nested => <DbConnection as Connection>::TransactionManager::begin_transaction(conn)?,
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    // The multi-connection's transaction manager delegates to the inner connection's, so the
    // transaction begun above is the one committed or rolled back here.
    match f(conn) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn) {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// Is this diesel error a unique-constraint violation (a lost race on insert)?
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_from_the_url() {
        assert_eq!(
            Backend::from_url("sqlite://./data/humint.db").unwrap(),
            Backend::Sqlite(PathBuf::from("./data/humint.db"))
        );
        assert_eq!(Backend::from_url("/tmp/x.db").unwrap(), Backend::Sqlite(PathBuf::from("/tmp/x.db")));
        assert!(Backend::from_url("postgres://u@h/db").unwrap().is_postgres());
        assert!(Backend::from_url("postgresql://u@h/db").unwrap().is_postgres());
    }

    #[test]
    fn unknown_schemes_and_typos_are_errors() {
        for bad in ["mysql://u@h/db", "postgress://u@h/db", "sqlite:humint.db", "file://x.db", "", "sqlite://"] {
            assert!(Backend::from_url(bad).is_err(), "{bad} must be refused");
        }
    }
}
