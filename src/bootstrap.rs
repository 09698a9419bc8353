//! Start-up: keyring, migrations and the first administrator.

use std::io::Write;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::Keyring;
use crate::db::{Backend, DbConnection, migrations, write_tx};
use crate::error::AppError;
use crate::keys::Keys;
use crate::users::model::{Role, Roles};
use crate::users::queries::{self, NewUser};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "no keyring at {0}: with PostgreSQL the keyring must be provisioned (`humint keys init --out FILE`, then set HUMINT_KEYRING)"
    )]
    KeyringMissing(String),
    #[error("keyring {path}: {message}")]
    Keyring { path: String, message: String },
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Other(String),
}

/// Loads the keyring. In the zero-configuration SQLite mode a missing keyring is generated (with
/// a loud warning: such keys are for evaluation only); on PostgreSQL it must be provisioned.
pub fn load_or_create_keyring(config: &Config, backend: &Backend) -> Result<Keyring, StartupError> {
    let path = config.keyring_path();
    let shown = path.display().to_string();
    if path.exists() {
        return Keyring::load(&path).map_err(|e| StartupError::Keyring { path: shown, message: e.to_string() });
    }
    if backend.is_postgres() {
        return Err(StartupError::KeyringMissing(shown));
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let keyring = Keyring::generate().map_err(|e| StartupError::Other(e.to_string()))?;
    keyring.save_new(&path).map_err(|e| StartupError::Keyring { path: shown.clone(), message: e.to_string() })?;
    tracing::warn!(
        keyring = %shown,
        "GENERATED AN EVALUATION KEYRING: these keys are for evaluation only. For real data, provision a keyring \
         with `humint keys init --out FILE`, keep it off this host's backups, and set HUMINT_KEYRING."
    );
    Ok(keyring)
}

fn create_private_dir(dir: &Path) -> Result<(), StartupError> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| StartupError::Other(format!("creating {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StartupError::Other(format!("securing {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Runs migrations and creates the first administrator, under the start-up lock so that several
/// instances starting together do neither twice.
pub fn prepare_database(conn: &mut DbConnection, config: &Config, clock: &Clock) -> Result<(), StartupError> {
    migrations::with_startup_lock(conn, |conn| {
        let applied = migrations::run_pending(conn)?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        bootstrap_admin(conn, config, clock).map_err(|e| e.to_string().into())
    })
    .map_err(|e| StartupError::Database(e.to_string()))
}

/// Creates the system data key if it does not exist yet, in a transaction of its own, so that
/// no request ever creates it inside work that may roll back. Needs the active KEK version in
/// this instance's keyring (re-read from the file if need be).
pub fn ensure_system_key(conn: &mut DbConnection, keys: &Keys, clock: &Clock) -> Result<(), StartupError> {
    write_tx(conn, |conn| keys.ensure_system_key(conn, clock.now()))
        .map_err(|e| StartupError::Other(format!("creating the system data key: {e}")))
}

/// On an empty database: user `admin` with a random password written to
/// `{data_dir}/initial-admin-password` (mode 0600). The log names the file, never the password.
/// The admin must change the password before doing anything else.
fn bootstrap_admin(conn: &mut DbConnection, config: &Config, clock: &Clock) -> Result<(), AppError> {
    if queries::count(conn)? > 0 {
        return Ok(());
    }
    let password = random_password()?;
    let hash = crate::auth::passwords::hash_blocking(&password)?;
    let roles = Roles::new([Role::Admin]).map_err(|_| AppError::internal("admin roles"))?;
    let now = clock.now();
    let file = config.initial_admin_password_path();
    create_private_dir(&config.data_dir).map_err(AppError::internal)?;
    write_tx(conn, |conn| {
        let new = NewUser {
            username: "admin".into(),
            display_name: "Bootstrap administrator".into(),
            password_hash: hash,
            roles,
            unit: "ADMIN".into(),
        };
        let user = queries::insert(conn, new, now)?;
        // Written inside the transaction: if the file cannot be written, no admin exists whose
        // password nobody knows.
        write_secret_file(&file, password.as_bytes())
            .map_err(|e| AppError::internal(format!("{}: {e}", file.display())))?;
        let event = crate::audit::Event::new("user.bootstrap_admin", crate::audit::Outcome::Allowed)
            .resource("user", Some(user.id.clone()));
        crate::audit::append(conn, &crate::http::context::RequestContext::system(), event, now)
    })?;
    tracing::warn!(file = %file.display(), "created the bootstrap user `admin`; its one-time password is in this file (change it at first login, then delete the file)");
    Ok(())
}

fn random_password() -> Result<Zeroizing<String>, AppError> {
    let mut bytes = Zeroizing::new([0u8; 18]);
    SystemRandom::new().fill(bytes.as_mut()).map_err(|_| AppError::internal("random source failed"))?;
    Ok(Zeroizing::new(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes.as_ref())))
}

/// Writes a file only its owner can read, replacing any earlier one.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        // `mode` applies only when the file is created; an existing file is tightened too.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}
