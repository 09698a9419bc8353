//! What every request can reach: configuration, the database pool, keys, clock and the
//! password-hashing pool. Nothing here holds state that a second instance would contradict:
//! sessions, lockouts, the audit chain head and key metadata live in the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::TimeDelta;

use crate::audit::GroupCommit;
use crate::auth::lockout::LockoutPolicy;
use crate::auth::passwords::PasswordPool;
use crate::auth::sessions::SessionPolicy;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{Backend, DbConnection, DbPool};
use crate::error::AppError;
use crate::keys::Keys;

pub struct AppState {
    pub config: Config,
    pub backend: Backend,
    pub pool: DbPool,
    pub keys: Arc<Keys>,
    pub clock: Clock,
    pub passwords: PasswordPool,
    /// False until migrations and bootstrap have run: when the database was down at start-up
    /// they run on the first connection that works.
    pub migrated: Arc<AtomicBool>,
    /// Group commit of the audit events that commit on their own (reads, refusals).
    pub audit_commits: Arc<GroupCommit>,
}

impl AppState {
    /// Runs blocking database work off the async workers, on a pooled connection. A pool that
    /// cannot hand out a connection in time (database down) answers 503.
    pub async fn db<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let pending = (!self.migrated.load(Ordering::Acquire))
            .then(|| (self.config.clone(), self.clock.clone(), self.keys.clone(), self.migrated.clone()));
        actix_web::web::block(move || {
            pool.get()?.failing_distrusted(|conn| {
                if let Some((config, clock, keys, migrated)) = pending {
                    crate::bootstrap::prepare_database(conn, &config, &clock)
                        .map_err(|e| AppError::Unavailable(e.to_string()))?;
                    crate::bootstrap::ensure_system_key(conn, &keys, &clock)
                        .map_err(|e| AppError::Unavailable(e.to_string()))?;
                    migrated.store(true, Ordering::Release);
                }
                work(conn)
            })
        })
        .await?
    }

    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle: TimeDelta::seconds(self.config.session_idle_timeout_secs),
            absolute: TimeDelta::seconds(self.config.session_absolute_timeout_secs),
            refresh_ttl: TimeDelta::seconds(self.config.refresh_token_ttl_secs),
        }
    }

    pub fn lockout_policy(&self) -> LockoutPolicy {
        LockoutPolicy {
            threshold: self.config.lockout_threshold,
            lock_for: TimeDelta::seconds(self.config.lockout_secs),
        }
    }
}
