//! The secret keys a keyring holds, each a newtype with a redacted
//! `Debug`, no `Clone`, and its bytes wiped on drop.

use std::fmt;

use chrono::{DateTime, Utc};
use ring::digest;
use ring::signature::{Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use super::error::KeyringError;
use super::random;
use super::secret::Secret32;

/// A versioned key-encryption key: wraps DEKs, never encrypts fields.
pub struct Kek {
    // INVARIANT: version >= 1.
    version: u32,
    created_at: DateTime<Utc>,
    key: Secret32,
}

impl Kek {
    pub(in crate::crypto) fn generate(version: u32) -> Result<Kek, KeyringError> {
        if version == 0 {
            return Err(KeyringError::ZeroKekVersion);
        }
        Ok(Kek { version, created_at: Utc::now(), key: Secret32::random()? })
    }

    pub(in crate::crypto) fn from_parts(
        version: u32,
        created_at: DateTime<Utc>,
        key: Secret32,
    ) -> Result<Kek, KeyringError> {
        if version == 0 {
            return Err(KeyringError::ZeroKekVersion);
        }
        Ok(Kek { version, created_at, key })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub(in crate::crypto) fn key_bytes(&self) -> &[u8; 32] {
        self.key.expose()
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek(version={}, <redacted>)", self.version)
    }
}

/// The HMAC-SHA256 key of the deconfliction blind index.
pub struct BlindIndexKey(Secret32);

impl BlindIndexKey {
    pub(in crate::crypto) fn new(key: Secret32) -> Self {
        BlindIndexKey(key)
    }

    pub(in crate::crypto) fn key_bytes(&self) -> &[u8; 32] {
        self.0.expose()
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(<redacted>)")
    }
}

/// An Ed25519 private key as a PKCS#8 v2 document, with its public key
/// extracted once at load time.
struct Ed25519Secret {
    pkcs8: Zeroizing<Vec<u8>>,
    public_key: [u8; 32],
}

impl Ed25519Secret {
    fn generate() -> Result<Self, KeyringError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&random::system()).map_err(|_| KeyringError::KeyGeneration)?;
        // ring's Pkcs8Document is not wiped on drop; the copy we keep is.
        Self::parse(Zeroizing::new(doc.as_ref().to_vec()), "generated key")
    }

    /// Accepts only PKCS#8 v2 (ring's `from_pkcs8` requires the embedded
    /// public key and checks it matches the private key).
    fn parse(pkcs8: Zeroizing<Vec<u8>>, field: &str) -> Result<Self, KeyringError> {
        let pair =
            Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyringError::BadPkcs8 { field: field.to_owned() })?;
        let mut public_key = [0u8; 32];
        if pair.public_key().as_ref().len() != public_key.len() {
            return Err(KeyringError::BadPkcs8 { field: field.to_owned() });
        }
        public_key.copy_from_slice(pair.public_key().as_ref());
        Ok(Ed25519Secret { pkcs8, public_key })
    }
}

/// `kid` values: 1 to 64 characters of `[A-Za-z0-9_-]`, safe in a JWT
/// header and a log line.
pub(in crate::crypto) fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A random kid: 8 random bytes as 16 lowercase hex characters.
pub(in crate::crypto) fn random_kid() -> Result<String, KeyringError> {
    let mut bytes = [0u8; 8];
    random::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// An Ed25519 access-token signing key and its `kid`.
pub struct TokenSigningKey {
    kid: String,
    created_at: DateTime<Utc>,
    secret: Ed25519Secret,
}

impl TokenSigningKey {
    pub(in crate::crypto) fn generate() -> Result<Self, KeyringError> {
        Ok(TokenSigningKey { kid: random_kid()?, created_at: Utc::now(), secret: Ed25519Secret::generate()? })
    }

    pub(in crate::crypto) fn from_parts(
        kid: String,
        created_at: DateTime<Utc>,
        pkcs8: Zeroizing<Vec<u8>>,
        field: &str,
    ) -> Result<Self, KeyringError> {
        if !valid_kid(&kid) {
            return Err(KeyringError::BadKid(kid));
        }
        Ok(TokenSigningKey { kid, created_at, secret: Ed25519Secret::parse(pkcs8, field)? })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// The private key as PKCS#8 v2 DER (for `jsonwebtoken`'s
    /// `EncodingKey::from_ed_der` or ring's `Ed25519KeyPair::from_pkcs8`).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.secret.pkcs8
    }

    /// The raw 32-byte Ed25519 public key (for `DecodingKey::from_ed_der`).
    pub fn public_key(&self) -> &[u8; 32] {
        &self.secret.public_key
    }
}

impl fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSigningKey(kid={}, <redacted>)", self.kid)
    }
}

/// The Ed25519 key that signs audit checkpoints.
pub struct AuditKey {
    // INVARIANT: key_id == audit_key_id(secret.public_key).
    key_id: String,
    created_at: DateTime<Utc>,
    secret: Ed25519Secret,
}

/// The audit key's id: lowercase hex of the first 8 bytes of SHA-256 of the
/// raw 32-byte public key, so anyone holding the public key can check it.
pub fn audit_key_id(public_key: &[u8; 32]) -> String {
    let digest = digest::digest(&digest::SHA256, public_key);
    hex::encode(&digest.as_ref()[..8])
}

impl AuditKey {
    pub(in crate::crypto) fn generate() -> Result<Self, KeyringError> {
        let secret = Ed25519Secret::generate()?;
        Ok(AuditKey { key_id: audit_key_id(&secret.public_key), created_at: Utc::now(), secret })
    }

    pub(in crate::crypto) fn from_parts(
        key_id: String,
        created_at: DateTime<Utc>,
        pkcs8: Zeroizing<Vec<u8>>,
        field: &str,
    ) -> Result<Self, KeyringError> {
        let secret = Ed25519Secret::parse(pkcs8, field)?;
        let expected = audit_key_id(&secret.public_key);
        if key_id != expected {
            return Err(KeyringError::AuditKeyIdMismatch { found: key_id, expected });
        }
        Ok(AuditKey { key_id, created_at, secret })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// The private key as PKCS#8 v2 DER (`Ed25519KeyPair::from_pkcs8`).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.secret.pkcs8
    }

    /// The raw 32-byte Ed25519 public key that verifies checkpoints.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.secret.public_key
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditKey(key_id={}, <redacted>)", self.key_id)
    }
}
