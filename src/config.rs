//! Typed configuration: `config/default.toml` (compiled in) < a file given with `--config` or
//! `HUMINT_CONFIG` < `HUMINT_<KEY>` environment variables.
//!
//! Every key of the defaults can be overridden by an environment variable of the same name in
//! upper case; the value is read with the type the default has, so a typo in a number is an
//! error at start-up rather than a silently ignored setting.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

/// Upper bound for access tokens (DESIGN.md: at most 15 minutes).
pub const MAX_ACCESS_TOKEN_TTL_SECS: i64 = 900;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The database URL may carry a password, so it never prints in `Debug`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Show the scheme only: enough to tell the backend, never credentials or host.
        let scheme = self.0.split("://").next().unwrap_or("");
        write!(f, "DatabaseUrl({scheme}://<redacted>)")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bind: String,
    pub database_url: DatabaseUrl,
    pub data_dir: PathBuf,
    keyring: PathBuf,
    pub json_limit_bytes: usize,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub session_idle_timeout_secs: i64,
    pub session_absolute_timeout_secs: i64,
    pub lockout_threshold: i32,
    pub lockout_secs: i64,
    pub trusted_proxies: Vec<IpAddr>,
    pub log_format: LogFormat,
    pub token_issuer: String,
    pub token_audience: String,
    pub db_pool_size: u32,
    pub db_connect_timeout_ms: u64,
    pub password_hash_concurrency: usize,
    pub password_hash_queue: usize,
}

impl Config {
    /// Defaults < optional file < `HUMINT_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, |k| std::env::var(k).ok())
    }

    /// The compiled-in defaults alone (tests start from these).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::load_with_env(None, |_| None)
    }

    pub fn load_with_env(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut table = parse_table("config/default.toml", DEFAULTS)?;
        let file = file.map(Path::to_path_buf).or_else(|| env("HUMINT_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            let overlay = parse_table(&path.display().to_string(), &text)?;
            for (key, value) in overlay {
                if !table.contains_key(&key) {
                    return Err(ConfigError::Invalid(format!("unknown key `{key}` in {}", path.display())));
                }
                table.insert(key, value);
            }
        }
        apply_env(&mut table, env)?;
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.access_token_ttl_secs <= 0 || self.access_token_ttl_secs > MAX_ACCESS_TOKEN_TTL_SECS {
            return invalid("access_token_ttl_secs must be between 1 and 900");
        }
        if self.session_idle_timeout_secs <= 0 || self.session_absolute_timeout_secs <= 0 {
            return invalid("session timeouts must be positive");
        }
        if self.refresh_token_ttl_secs <= 0 {
            return invalid("refresh_token_ttl_secs must be positive");
        }
        if self.json_limit_bytes < 1024 {
            return invalid("json_limit_bytes must be at least 1024");
        }
        if self.lockout_threshold < 1 || self.lockout_secs < 1 {
            return invalid("lockout_threshold and lockout_secs must be positive");
        }
        if self.password_hash_concurrency == 0 || self.db_pool_size == 0 {
            return invalid("password_hash_concurrency and db_pool_size must be positive");
        }
        Ok(())
    }

    /// `keyring` if set, else `{data_dir}/keyring.json`.
    pub fn keyring_path(&self) -> PathBuf {
        if self.keyring.as_os_str().is_empty() { self.data_dir.join("keyring.json") } else { self.keyring.clone() }
    }

    pub fn set_keyring_path(&mut self, path: PathBuf) {
        self.keyring = path;
    }

    pub fn initial_admin_password_path(&self) -> PathBuf {
        self.data_dir.join("initial-admin-password")
    }
}

fn parse_table(name: &str, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Parse { path: name.to_string(), message: e.message().to_string() })
}

/// Overrides each known key from `HUMINT_<KEY>`, read with the type of its default.
fn apply_env(table: &mut toml::Table, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let var = format!("HUMINT_{}", key.to_ascii_uppercase());
        let Some(raw) = env(&var) else { continue };
        let err = |message: String| ConfigError::Env { var: var.clone(), message };
        *value = match value {
            toml::Value::Integer(_) => {
                toml::Value::Integer(raw.trim().parse().map_err(|_| err("expected an integer".into()))?)
            }
            toml::Value::Boolean(_) => {
                toml::Value::Boolean(raw.trim().parse().map_err(|_| err("expected true or false".into()))?)
            }
            toml::Value::Array(_) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            _ => toml::Value::String(raw),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load_with_env(None, |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_operating_interface() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert_eq!(c.database_url.expose(), "sqlite://./data/humint.db");
        assert_eq!(c.keyring_path(), PathBuf::from("./data/keyring.json"));
        assert_eq!(c.json_limit_bytes, 64 * 1024);
        assert!(c.access_token_ttl_secs <= 900);
        assert_eq!(c.session_idle_timeout_secs, 15 * 60);
        assert_eq!(c.session_absolute_timeout_secs, 12 * 3600);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.log_format, LogFormat::Pretty);
    }

    #[test]
    fn environment_overrides_with_typed_values() {
        let c = with_env(&[
            ("HUMINT_BIND", "0.0.0.0:9000"),
            ("HUMINT_DATA_DIR", "/srv/h"),
            ("HUMINT_LOG_FORMAT", "json"),
            ("HUMINT_TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ("HUMINT_JSON_LIMIT_BYTES", "2048"),
        ])
        .unwrap();
        assert_eq!(c.bind, "0.0.0.0:9000");
        assert_eq!(c.keyring_path(), PathBuf::from("/srv/h/keyring.json"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.json_limit_bytes, 2048);
    }

    #[test]
    fn bad_values_are_errors_not_defaults() {
        assert!(with_env(&[("HUMINT_JSON_LIMIT_BYTES", "lots")]).is_err());
        assert!(with_env(&[("HUMINT_ACCESS_TOKEN_TTL_SECS", "901")]).is_err());
        assert!(with_env(&[("HUMINT_LOG_FORMAT", "xml")]).is_err());
        assert!(with_env(&[("HUMINT_TRUSTED_PROXIES", "not-an-ip")]).is_err());
    }

    #[test]
    fn a_config_file_overrides_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "bind = \"127.0.0.1:1\"\nkeyring = \"/k.json\"\n").unwrap();
        let c = Config::load_with_env(Some(&good), |_| None).unwrap();
        assert_eq!(c.bind, "127.0.0.1:1");
        assert_eq!(c.keyring_path(), PathBuf::from("/k.json"));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "bnid = \"x\"\n").unwrap();
        assert!(Config::load_with_env(Some(&bad), |_| None).is_err());
    }

    #[test]
    fn debug_never_shows_the_database_credentials() {
        let c = with_env(&[("HUMINT_DATABASE_URL", "postgres://u:hunter2secret@db/x")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2secret"));
        assert!(shown.contains("postgres://<redacted>"));
    }
}
