//! `humint keys ...`: the keyring's lifecycle. Never prints key material.

use std::path::PathBuf;

use clap::Subcommand;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::Keyring;
use crate::crypto::lifecycle;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a new keyring file (mode 0600); refuses to overwrite an existing one.
    Init {
        #[arg(long)]
        out: PathBuf,
    },
    /// Key ids, versions and creation dates (never key material), the active KEK version and
    /// how many data keys each version wraps.
    Status,
    /// Add a new KEK version to the keyring file and make it the active one.
    Rotate,
    /// Re-wrap every data key under the active KEK version (online, resumable, idempotent).
    Rewrap,
    /// Remove an old KEK version from the keyring file (refused while any data key uses it).
    Retire { version: u32 },
}

pub fn run(command: KeysCommand, config: &Config) -> Result<(), String> {
    let path = config.keyring_path();
    let now = || Clock::system().now();
    match command {
        KeysCommand::Init { out } => {
            let keyring = Keyring::generate().map_err(|e| e.to_string())?;
            keyring.save_new(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("keyring written to {} (mode 0600)", out.display());
            Ok(())
        }
        KeysCommand::Status => {
            let keyring = Keyring::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut conn = super::connect(config)?;
            let database = lifecycle::status(&mut conn).map_err(|e| e.to_string())?;
            let status = serde_json::json!({ "keyring": keyring.status(), "database": database });
            let text = serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(())
        }
        KeysCommand::Rotate => {
            let mut conn = super::connect(config)?;
            let done = lifecycle::rotate(&mut conn, &path, now()).map_err(|e| e.to_string())?;
            println!(
                "KEK version {} added to {} and recorded as active (was {}).\n\
                 Running instances sharing this keyring file use it for new data keys from now on. \
                 Next: `humint keys rewrap`, then `humint keys retire {}` once old backups have expired.",
                done.active,
                path.display(),
                done.previous,
                done.previous
            );
            Ok(())
        }
        KeysCommand::Rewrap => {
            let mut conn = super::connect(config)?;
            let result = lifecycle::rewrap(&mut conn, &path, now(), |p| {
                println!("rewrap: {}/{} data keys re-wrapped under KEK version {}", p.rewrapped, p.total, p.active);
            })
            .map_err(|e| e.to_string())?;
            for (id, owner, why) in &result.failed {
                eprintln!("rewrap: data key {id} (owner {owner}) not re-wrapped: {why}");
            }
            println!(
                "rewrap done: {} re-wrapped, {} failed; every other data key was already under KEK version {}",
                result.rewrapped,
                result.failed.len(),
                result.active
            );
            if result.failed.is_empty() {
                Ok(())
            } else {
                Err(format!("{} data key(s) could not be re-wrapped (see above)", result.failed.len()))
            }
        }
        KeysCommand::Retire { version } => {
            let mut conn = super::connect(config)?;
            lifecycle::retire(&mut conn, &path, version, now()).map_err(|e| match e {
                crate::error::AppError::Conflict(why) => format!("refused: {why}"),
                other => other.to_string(),
            })?;
            println!("KEK version {version} removed from {}", path.display());
            Ok(())
        }
    }
}
