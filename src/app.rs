//! Assembling a running service from its configuration: used by `humint serve` and by the
//! tests' `spawn_app()`, so that tests run exactly what production runs.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;

use crate::audit::sequencer::Sequencer;
use crate::auth::passwords::PasswordPool;
use crate::bootstrap::{self, StartupError};
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{self, Backend};
use crate::keys::Keys;
use crate::state::AppState;

pub struct Running {
    pub state: web::Data<AppState>,
    pub server: Server,
    pub sequencer: Sequencer,
}

impl Running {
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }
}

/// Everything before the socket: keyring, pool, migrations, bootstrap.
pub fn build_state(config: Config, clock: Clock) -> Result<web::Data<AppState>, StartupError> {
    let backend = Backend::from_url(config.database_url.expose()).map_err(|e| StartupError::Other(e.to_string()))?;
    let keyring = bootstrap::load_or_create_keyring(&config, &backend)?;
    let keys =
        Arc::new(Keys::new(&config.keyring_path(), keyring, &config).map_err(|e| StartupError::Other(e.to_string()))?);
    let pool = db::build_pool(&backend, config.db_pool_size, Duration::from_millis(config.db_connect_timeout_ms))
        .map_err(|e| StartupError::Other(e.to_string()))?;
    let passwords = PasswordPool::new(config.password_hash_concurrency, config.password_hash_queue)
        .map_err(|e| StartupError::Other(e.to_string()))?;
    // Migrate and bootstrap when the database answers; when it does not, start anyway (503 and
    // /readyz 503 until it returns) and retry in the background.
    let migrated = match pool.get() {
        Ok(mut conn) => {
            bootstrap::prepare_database(&mut conn, &config, &clock)?;
            bootstrap::ensure_system_key(&mut conn, &keys, &clock)?;
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "database unavailable at start-up; serving 503 until it returns");
            false
        }
    };
    Ok(web::Data::new(AppState {
        config,
        backend,
        pool,
        keys,
        clock,
        passwords,
        migrated: Arc::new(AtomicBool::new(migrated)),
        audit_commits: Arc::new(crate::audit::GroupCommit::new()),
    }))
}

/// Binds the server and starts the background work (the audit sequencer).
pub fn start(state: web::Data<AppState>, listener: TcpListener) -> Result<Running, StartupError> {
    let server = crate::server::run(state.clone(), listener).map_err(|e| StartupError::Other(e.to_string()))?;
    let sequencer = Sequencer::start(state.clone().into_inner());
    Ok(Running { state, server, sequencer })
}
