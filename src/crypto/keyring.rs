//! The keyring: every secret key of a deployment, held in one file that
//! never enters the database. File format in `keyring_format.rs`, file
//! handling in `keyring_file.rs`, normative description in
//! docs/encryption.md.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::KeyringError;
use super::keys::{AuditKey, BlindIndexKey, Kek, TokenSigningKey};
use super::secret::Secret32;

/// Value of the `format` field of every keyring file this build reads.
pub const KEYRING_FORMAT: &str = "humint-keyring/v1";

/// All secret keys of a deployment.
///
/// The shape makes the file's rules unrepresentable to break: there is
/// always a latest KEK and an active token key, and KEK versions only grow
/// (the latest version cannot be removed, so a version number is never
/// reused for a different key).
#[derive(Debug)]
pub struct Keyring {
    latest_kek: Kek,
    // INVARIANT: sorted ascending by version, every version unique and
    // strictly below latest_kek.version().
    older_keks: Vec<Kek>,
    blind_index_key: BlindIndexKey,
    active_token_key: TokenSigningKey,
    // INVARIANT: kids unique, none equal to active_token_key.kid().
    other_token_keys: Vec<TokenSigningKey>,
    audit_key: AuditKey,
}

impl Keyring {
    /// A fresh keyring: KEK version 1, a blind-index key, one active
    /// token-signing key and the audit-checkpoint key, all random.
    pub fn generate() -> Result<Keyring, KeyringError> {
        Ok(Keyring {
            latest_kek: Kek::generate(1)?,
            older_keks: Vec::new(),
            blind_index_key: BlindIndexKey::new(Secret32::random()?),
            active_token_key: TokenSigningKey::generate()?,
            other_token_keys: Vec::new(),
            audit_key: AuditKey::generate()?,
        })
    }

    /// Assembles a keyring from parsed parts, checking every rule the
    /// types alone do not enforce.
    pub(in crate::crypto) fn from_parts(
        mut keks: Vec<Kek>,
        blind_index_key: BlindIndexKey,
        token_keys: Vec<TokenSigningKey>,
        active_kid: &str,
        audit_key: AuditKey,
    ) -> Result<Keyring, KeyringError> {
        keks.sort_by_key(Kek::version);
        if let Some(pair) = keks.windows(2).find(|w| w[0].version() == w[1].version()) {
            return Err(KeyringError::DuplicateKekVersion(pair[0].version()));
        }
        let latest_kek = keks.pop().ok_or(KeyringError::NoKek)?;

        if token_keys.is_empty() {
            return Err(KeyringError::NoTokenKey);
        }
        let mut seen = std::collections::HashSet::new();
        for key in &token_keys {
            if !seen.insert(key.kid()) {
                return Err(KeyringError::DuplicateKid(key.kid().to_owned()));
            }
        }
        let (active, others): (Vec<_>, Vec<_>) = token_keys.into_iter().partition(|k| k.kid() == active_kid);
        let active_token_key =
            active.into_iter().next().ok_or_else(|| KeyringError::ActiveKidMissing(active_kid.to_owned()))?;

        Ok(Keyring {
            latest_kek,
            older_keks: keks,
            blind_index_key,
            active_token_key,
            other_token_keys: others,
            audit_key,
        })
    }

    /// Adds KEK version latest+1 with fresh random bytes and returns its
    /// number. The caller saves the file (`save_replace`) and only then
    /// records the new version as active in the database.
    pub fn add_kek_version(&mut self) -> Result<u32, KeyringError> {
        let next = self.latest_kek.version().checked_add(1).ok_or(KeyringError::KekVersionOverflow)?;
        let previous = std::mem::replace(&mut self.latest_kek, Kek::generate(next)?);
        self.older_keks.push(previous);
        Ok(next)
    }

    /// Removes (retires) an older KEK version. The caller must first have
    /// checked that no DEK in the database is still wrapped under it; the
    /// latest version is refused here so version numbers stay monotonic.
    pub fn remove_kek_version(&mut self, version: u32) -> Result<(), KeyringError> {
        if version == self.latest_kek.version() {
            return Err(KeyringError::CannotRemoveLatestKek(version));
        }
        let index = self
            .older_keks
            .iter()
            .position(|k| k.version() == version)
            .ok_or(KeyringError::UnknownKekVersion(version))?;
        // Dropping the Kek wipes its bytes.
        self.older_keks.remove(index);
        Ok(())
    }

    pub fn kek(&self, version: u32) -> Option<&Kek> {
        self.keks().find(|k| k.version() == version)
    }

    pub fn latest_kek_version(&self) -> u32 {
        self.latest_kek.version()
    }

    /// Every KEK, ascending by version.
    pub fn keks(&self) -> impl Iterator<Item = &Kek> {
        self.older_keks.iter().chain(std::iter::once(&self.latest_kek))
    }

    pub fn blind_index_key(&self) -> &BlindIndexKey {
        &self.blind_index_key
    }

    /// Every token-signing key as `(kid, PKCS#8 v2 DER)`, active one first.
    /// Tokens signed by any of them still verify; only the active one signs.
    pub fn token_signing_keys(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.token_keys().map(|k| (k.kid(), k.pkcs8_der()))
    }

    /// The key new tokens are signed with, as `(kid, PKCS#8 v2 DER)`.
    pub fn active_token_key(&self) -> (&str, &[u8]) {
        (self.active_token_key.kid(), self.active_token_key.pkcs8_der())
    }

    /// The full entry for `kid` (public key, creation time), if held.
    pub fn token_key(&self, kid: &str) -> Option<&TokenSigningKey> {
        self.token_keys().find(|k| k.kid() == kid)
    }

    /// Every token-signing key, active one first.
    pub(in crate::crypto) fn token_keys(&self) -> impl Iterator<Item = &TokenSigningKey> {
        std::iter::once(&self.active_token_key).chain(self.other_token_keys.iter())
    }

    pub fn audit_key(&self) -> &AuditKey {
        &self.audit_key
    }

    /// A summary safe to print or return from `humint keys status`: key
    /// versions, ids, dates and public keys, never secret key material.
    pub fn status(&self) -> KeyringStatus {
        KeyringStatus {
            format: KEYRING_FORMAT.to_owned(),
            kek_versions: self.keks().map(|k| KekStatus { version: k.version(), created_at: k.created_at() }).collect(),
            latest_kek_version: self.latest_kek_version(),
            token_signing_keys: self
                .token_keys()
                .map(|k| TokenKeyStatus {
                    kid: k.kid().to_owned(),
                    created_at: k.created_at(),
                    active: k.kid() == self.active_token_key.kid(),
                    public_key: BASE64.encode(k.public_key()),
                })
                .collect(),
            active_token_kid: self.active_token_key.kid().to_owned(),
            audit_checkpoint_key: AuditKeyStatus {
                key_id: self.audit_key.key_id().to_owned(),
                created_at: self.audit_key.created_at(),
                public_key: BASE64.encode(self.audit_key.public_key()),
            },
        }
    }
}

/// Output of [`Keyring::status`]. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyringStatus {
    pub format: String,
    /// Ascending by version.
    pub kek_versions: Vec<KekStatus>,
    pub latest_kek_version: u32,
    /// Active key first.
    pub token_signing_keys: Vec<TokenKeyStatus>,
    pub active_token_kid: String,
    pub audit_checkpoint_key: AuditKeyStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KekStatus {
    pub version: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKeyStatus {
    pub kid: String,
    pub created_at: DateTime<Utc>,
    pub active: bool,
    /// Raw 32-byte Ed25519 public key, standard base64.
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditKeyStatus {
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    /// Raw 32-byte Ed25519 public key, standard base64.
    pub public_key: String,
}
