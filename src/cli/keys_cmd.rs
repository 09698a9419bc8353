//! `humint keys ...`: the keyring's lifecycle. Never prints key material.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Config;
use crate::crypto::Keyring;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a new keyring file (mode 0600); refuses to overwrite an existing one.
    Init {
        #[arg(long)]
        out: PathBuf,
    },
    /// Key ids, versions and creation dates (never key material).
    Status,
}

pub fn run(command: KeysCommand, config: &Config) -> Result<(), String> {
    match command {
        KeysCommand::Init { out } => {
            let keyring = Keyring::generate().map_err(|e| e.to_string())?;
            keyring.save_new(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("keyring written to {} (mode 0600)", out.display());
            Ok(())
        }
        KeysCommand::Status => {
            let path = config.keyring_path();
            let keyring = Keyring::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let status = serde_json::to_string_pretty(&keyring.status()).map_err(|e| e.to_string())?;
            println!("{status}");
            Ok(())
        }
    }
}
