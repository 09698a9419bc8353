//! The keyring as the running service holds it, and the token signer and verifier made from it.
//!
//! The keyring file is shared by every instance; it is loaded at start-up and re-read when an
//! instance meets a key version it does not hold (key rotation without restart).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::auth::tokens::{MintedToken, TokenError, TokenSigner, TokenVerifier, VerifiedClaims};
use crate::config::Config;
use crate::crypto::{Keyring, KeyringError};

/// Clock skew tolerated between instances when checking token times.
pub const TOKEN_LEEWAY: TimeDelta = TimeDelta::seconds(30);

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("token keys: {0}")]
    Tokens(String),
}

pub struct Tokens {
    signer: TokenSigner,
    verifier: TokenVerifier,
}

impl Tokens {
    fn from_keyring(keyring: &Keyring, config: &Config) -> Result<Self, KeysError> {
        let (kid, pkcs8) = keyring.active_token_key();
        let lifetime = TimeDelta::seconds(config.access_token_ttl_secs);
        let signer = TokenSigner::new(kid, pkcs8, &config.token_issuer, &config.token_audience, lifetime)
            .map_err(|e| KeysError::Tokens(e.to_string()))?;
        let verifier = TokenVerifier::new(
            keyring.token_signing_keys(),
            &config.token_issuer,
            &config.token_audience,
            TOKEN_LEEWAY,
        )
        .map_err(|e| KeysError::Tokens(e.to_string()))?;
        Ok(Self { signer, verifier })
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedClaims, TokenError> {
        self.verifier.verify(token, now)
    }

    pub fn mint(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<MintedToken, crate::error::AppError> {
        self.signer.mint(user_id, session_id, now).map_err(crate::error::AppError::internal)
    }

    pub fn lifetime_secs(&self) -> i64 {
        self.signer.lifetime().num_seconds()
    }
}

pub struct Keys {
    path: PathBuf,
    keyring: RwLock<Arc<Keyring>>,
    tokens: Tokens,
}

impl Keys {
    pub fn new(path: &Path, keyring: Keyring, config: &Config) -> Result<Self, KeysError> {
        let tokens = Tokens::from_keyring(&keyring, config)?;
        Ok(Self { path: path.to_path_buf(), keyring: RwLock::new(Arc::new(keyring)), tokens })
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The current keyring (cheap: an `Arc` clone).
    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keyring file (after `humint keys rotate` on another process).
    pub fn reload(&self) -> Result<Arc<Keyring>, KeysError> {
        let fresh = Arc::new(Keyring::load(&self.path)?);
        match self.keyring.write() {
            Ok(mut guard) => *guard = fresh.clone(),
            Err(poisoned) => *poisoned.into_inner() = fresh.clone(),
        }
        Ok(fresh)
    }
}
