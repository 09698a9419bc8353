//! Wrapping data keys (DEKs) under a versioned KEK — fixed format.
//!
//! ```text
//! wrapped = nonce (12) || ciphertext (32) || tag (16)        (60 bytes)
//! AAD     = "humint/dek/v1|{owner_id}"
//! ```
//! AES-256-GCM under the KEK of `kek_version`. The DEK id and KEK version
//! are stored beside the wrapped bytes (the `data_keys` row), not inside
//! them; the AAD binds the owner only, as the fixed format says. A wrapped
//! key swapped onto another id of the same owner still unwraps, but every
//! field blob names its DEK id and is authenticated under the DEK bytes, so
//! such a swap turns into field integrity errors, never into wrong data.

use uuid::Uuid;

use super::aead::{self, NONCE_LEN, TAG_LEN};
use super::data_key::DataKey;
use super::error::DekError;
use super::keys::Kek;
use super::owner::Owner;
use super::random;
use super::secret::{KEY_LEN, Secret32};

/// Exact length of `WrappedKey::wrapped`.
pub const WRAPPED_KEY_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// A DEK as stored in the database: never the key bytes in the clear.
/// The wrapped bytes are ciphertext, so `Clone` and `Debug` are harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The DEK's id, as written into every field blob it seals.
    pub id: Uuid,
    pub owner: Owner,
    /// The KEK version `wrapped` is encrypted under.
    pub kek_version: u32,
    /// `nonce (12) || ciphertext (32) || tag (16)`.
    pub wrapped: Vec<u8>,
}

fn dek_aad(owner: Owner) -> String {
    format!("humint/dek/v1|{owner}")
}

impl DataKey {
    /// Wraps this DEK under `kek` with a fresh random nonce.
    pub fn wrap(&self, kek: &Kek) -> Result<WrappedKey, DekError> {
        let mut nonce = [0u8; NONCE_LEN];
        random::fill(&mut nonce)?;
        self.wrap_with_nonce(kek, nonce)
    }

    /// Test-vector-only variant with a caller-chosen nonce.
    #[cfg(test)]
    pub(in crate::crypto) fn dangerous_wrap_with_nonce(
        &self,
        kek: &Kek,
        nonce: [u8; NONCE_LEN],
    ) -> Result<WrappedKey, DekError> {
        self.wrap_with_nonce(kek, nonce)
    }

    fn wrap_with_nonce(&self, kek: &Kek, nonce: [u8; NONCE_LEN]) -> Result<WrappedKey, DekError> {
        // Holds the DEK in the clear until it is encrypted in place; wiped
        // if sealing fails part-way.
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(WRAPPED_KEY_LEN));
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(self.key_bytes());
        aead::seal_in_place_append_tag(kek.key_bytes(), nonce, dek_aad(self.owner()).as_bytes(), &mut buf, NONCE_LEN)
            // 32 bytes cannot exceed GCM's length limit; the only failure left
            // would be a broken key, which is an integrity-class fault.
            .map_err(|_| DekError::Integrity)?;
        Ok(WrappedKey {
            id: self.id(),
            owner: self.owner(),
            kek_version: kek.version(),
            wrapped: std::mem::take(&mut *buf),
        })
    }
}

impl WrappedKey {
    /// Recovers the DEK. `kek` must be the version this key names;
    /// otherwise this is a lookup fault, reported precisely. Any failure
    /// of the bytes themselves (including a key moved to another owner) is
    /// the opaque [`DekError::Integrity`].
    pub fn unwrap(&self, kek: &Kek) -> Result<DataKey, DekError> {
        if kek.version() != self.kek_version {
            return Err(DekError::KekVersionMismatch { wrapped_under: self.kek_version, given: kek.version() });
        }
        if self.wrapped.len() != WRAPPED_KEY_LEN {
            return Err(DekError::Integrity);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&self.wrapped[..NONCE_LEN]);
        let key = aead::open(kek.key_bytes(), nonce, dek_aad(self.owner).as_bytes(), &self.wrapped[NONCE_LEN..])
            .map_err(|_| DekError::Integrity)?;
        let key = Secret32::from_slice(&key).ok_or(DekError::Integrity)?;
        Ok(DataKey::from_parts(self.id, self.owner, key))
    }

    /// Unwraps under `old` and wraps again under `new` (`humint keys
    /// rewrap`), keeping the DEK id, owner and bytes.
    pub fn rewrap(&self, old: &Kek, new: &Kek) -> Result<WrappedKey, DekError> {
        self.unwrap(old)?.wrap(new)
    }
}
