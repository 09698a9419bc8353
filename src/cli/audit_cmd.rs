//! `humint audit verify`: exit 0 valid, 1 invalid (first bad seq printed), 2 could not run.

use std::process::ExitCode;

use clap::Subcommand;

use crate::audit::check::verify_trail;
use crate::config::Config;
use crate::crypto::Keyring;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute every hash and check every checkpoint signature.
    Verify,
}

pub fn run(command: AuditCommand, config: &Config) -> ExitCode {
    match command {
        AuditCommand::Verify => match verify(config) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(message) => {
                eprintln!("humint: audit verify could not run: {message}");
                ExitCode::from(2)
            }
        },
    }
}

fn verify(config: &Config) -> Result<bool, String> {
    let path = config.keyring_path();
    let keyring = Keyring::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut conn = super::connect(config)?;
    let started = std::time::Instant::now();
    let result = verify_trail(&mut conn, &keyring, crate::clock::Clock::system().now()).map_err(|e| e.to_string())?;
    let r = &result.report;
    let rate = r.checked as f64 / started.elapsed().as_secs_f64().max(1e-9);
    match (&r.head, r.first_invalid_seq) {
        (_, Some(seq)) => println!("INVALID: first bad seq {seq} ({:?}); {} events checked", r.failure, r.checked),
        (Some((seq, hash)), None) => println!("valid: {} events checked, head seq {seq} hash {hash}", r.checked),
        (None, None) => println!("valid: the trail is empty"),
    }
    if let Some(cp) = &r.latest_checkpoint {
        println!("latest matching checkpoint: seq {} key {}", cp.seq, cp.key_id);
    }
    if result.unchained_stale > 0 {
        println!("warning: {} committed events are not chained (is the service running?)", result.unchained_stale);
    }
    eprintln!("verified at {rate:.0} events/s");
    Ok(r.valid)
}
