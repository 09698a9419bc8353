//! The `humint` command line (DESIGN.md, "Operating interface — fixed").

mod audit_cmd;
mod keys_cmd;
mod user_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "humint", version, about = "Covert human source management service")]
pub struct Cli {
    /// Configuration file (overrides config/default.toml; HUMINT_* variables override it).
    #[arg(long, global = true, env = "HUMINT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (migrates and bootstraps first).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: user_cmd::UserCommand,
    },
    /// Manage keys.
    Keys {
        #[command(subcommand)]
        command: keys_cmd::KeysCommand,
    },
    /// Inspect the audit trail.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless, so its error is ignored.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Exit codes: 0 success; 1 failure (for `audit verify`: the chain is invalid); 2 could not run.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("humint: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let result = match cli.command {
        Command::Serve => serve(config),
        Command::Migrate => migrate(&config),
        Command::User { command } => user_cmd::run(command, &config),
        Command::Keys { command } => keys_cmd::run(command, &config),
        Command::Audit { command } => return audit_cmd::run(command, &config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("humint: {message}");
            ExitCode::from(1)
        }
    }
}

fn serve(config: Config) -> Result<(), String> {
    let bind = config.bind.clone();
    let state = crate::app::build_state(config, crate::clock::Clock::system()).map_err(|e| e.to_string())?;
    let listener = std::net::TcpListener::bind(&bind).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    tracing::info!(bind = %bind, backend = if state.backend.is_postgres() { "postgres" } else { "sqlite" }, "humint listening");
    actix_web::rt::System::new().block_on(async move {
        let running = crate::app::start(state, listener).map_err(|e| e.to_string())?;
        let result = running.server.await.map_err(|e| e.to_string());
        running.sequencer.stop();
        result
    })
}

/// A connection for one-shot commands, with migrations applied.
fn connect(config: &Config) -> Result<crate::db::PooledDb, String> {
    let backend = crate::db::Backend::from_url(config.database_url.expose()).map_err(|e| e.to_string())?;
    let pool = crate::db::build_pool(&backend, 2, std::time::Duration::from_millis(config.db_connect_timeout_ms))
        .map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| format!("database unavailable: {e}"))?;
    crate::bootstrap::prepare_database(&mut conn, config, &crate::clock::Clock::system()).map_err(|e| e.to_string())?;
    Ok(conn)
}

fn migrate(config: &Config) -> Result<(), String> {
    connect(config).map(|_| {
        println!("migrations applied");
    })
}
