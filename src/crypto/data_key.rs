//! A data encryption key (DEK) in the clear, as held briefly in memory.
//!
//! Sealing and opening fields live in `field.rs`, wrapping under a KEK in
//! `dek.rs`; this file only defines the secret itself.

use std::fmt;

use uuid::Uuid;

use super::error::RngError;
use super::owner::Owner;
use super::secret::Secret32;

/// An unwrapped DEK: its id (the UUID written into every field blob it
/// seals), its owner, and 32 key bytes that are wiped on drop.
///
/// Not `Clone`: a DEK in the clear exists once, in the bounded cache or on
/// the stack of the request using it. `Debug` never shows the bytes.
pub struct DataKey {
    id: Uuid,
    owner: Owner,
    key: Secret32,
}

impl DataKey {
    /// A fresh DEK: random v4 id and 32 random bytes.
    pub fn generate(owner: Owner) -> Result<DataKey, RngError> {
        Ok(DataKey { id: Uuid::new_v4(), owner, key: Secret32::random()? })
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// Rebuilds a DEK from parts; only unwrapping and test vectors may.
    pub(in crate::crypto) fn from_parts(id: Uuid, owner: Owner, key: Secret32) -> DataKey {
        DataKey { id, owner, key }
    }

    pub(in crate::crypto) fn key_bytes(&self) -> &[u8; 32] {
        self.key.expose()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(id={}, owner={}, <redacted>)", self.id, self.owner)
    }
}
