//! The keyring as the running service holds it, and the token signer and verifier made from it.
//!
//! The keyring file is shared by every instance; it is loaded at start-up and re-read when an
//! instance meets a key version it does not hold (key rotation without restart).
//!
//! `Keys` is also where request code gets data keys: `create_source_key`, `source_key`,
//! `system_key`, `key_by_id`, `shred_source_key`, `seal_field` and `open_field` take the
//! request's connection inside its transaction (implemented in `crypto::store`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::actor::Actor;
use crate::auth::token_cache::VerifiedTokenCache;
use crate::auth::tokens::{MintedToken, TokenError, TokenSigner, TokenVerifier, VerifiedClaims};
use crate::config::Config;
use crate::crypto::store::DataKeyStore;
use crate::crypto::{DataKey, FieldContext, Keyring, KeyringError, Owner};
use crate::db::DbConnection;
use crate::error::AppResult;
use crate::http::context::RequestContext;

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
    verified: VerifiedTokenCache,
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
        Ok(Self { signer, verifier, verified: VerifiedTokenCache::new(TOKEN_LEEWAY) })
    }

    /// Verifies an access token, once per token: a token verified before is accepted from the
    /// cache while it is within its validity (see `auth::token_cache`).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedClaims, TokenError> {
        let hash = VerifiedTokenCache::hash(token);
        if let Some(claims) = self.verified.get(&hash, now) {
            return Ok(claims);
        }
        let claims = self.verifier.verify(token, now)?;
        self.verified.insert(hash, claims.clone(), now);
        Ok(claims)
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
    data_keys: DataKeyStore,
}

impl Keys {
    pub fn new(path: &Path, keyring: Keyring, config: &Config) -> Result<Self, KeysError> {
        let tokens = Tokens::from_keyring(&keyring, config)?;
        Ok(Self {
            path: path.to_path_buf(),
            keyring: RwLock::new(Arc::new(keyring)),
            tokens,
            data_keys: DataKeyStore::default(),
        })
    }

    /// The keyring file this instance reads.
    pub fn keyring_path(&self) -> &Path {
        &self.path
    }

    /// The store of data keys and its cache (diagnostics; request code uses the methods below).
    pub fn data_keys(&self) -> &DataKeyStore {
        &self.data_keys
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

/// Data keys for request code. Each takes the request's connection inside its transaction.
impl Keys {
    /// A new data key for a new source, wrapped under the active KEK version and inserted in
    /// the caller's transaction. 409 if the source already has one.
    pub fn create_source_key(
        &self,
        conn: &mut DbConnection,
        source_id: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<Arc<DataKey>> {
        self.data_keys.create_source_key(self, conn, source_id, now)
    }

    /// The source's data key (cached). `Gone` once destroyed, `Integrity` if missing or if it
    /// does not unwrap.
    pub fn source_key(&self, conn: &mut DbConnection, source_id: Uuid) -> AppResult<Arc<DataKey>> {
        self.data_keys.key_of(self, conn, Owner::Source(source_id))
    }

    /// The system data key (created at start-up, see [`Keys::ensure_system_key`]).
    pub fn system_key(&self, conn: &mut DbConnection) -> AppResult<Arc<DataKey>> {
        self.data_keys.key_of(self, conn, Owner::System)
    }

    /// Creates the system data key if it does not exist yet; run in a transaction of its own.
    pub fn ensure_system_key(&self, conn: &mut DbConnection, now: DateTime<Utc>) -> AppResult<()> {
        self.data_keys.ensure_system_key(self, conn, now)
    }

    /// The key a field blob names (`crypto::key_id_of`), checked to be the key of the row's
    /// owner.
    pub fn key_by_id(&self, conn: &mut DbConnection, key_id: Uuid, row_owner: Owner) -> AppResult<Arc<DataKey>> {
        self.data_keys.key_by_id(self, conn, key_id, row_owner)
    }

    /// Crypto-shredding: destroys the source's data key, audited, in the caller's transaction.
    pub fn shred_source_key(
        &self,
        conn: &mut DbConnection,
        ctx: &RequestContext,
        actor: Option<&Actor>,
        source_id: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        self.data_keys.shred_source_key(conn, ctx, actor, source_id, now)
    }

    /// Seals a value for the row, column and owner `ctx` names.
    pub fn seal_field(&self, conn: &mut DbConnection, ctx: &FieldContext, plaintext: &[u8]) -> AppResult<Vec<u8>> {
        self.data_keys.seal_field(self, conn, ctx, plaintext)
    }

    /// Opens a value read from the row, column and owner `ctx` names.
    pub fn open_field(
        &self,
        conn: &mut DbConnection,
        ctx: &FieldContext,
        blob: &[u8],
    ) -> AppResult<Zeroizing<Vec<u8>>> {
        self.data_keys.open_field(self, conn, ctx, blob)
    }
}
