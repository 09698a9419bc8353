//! A 32-byte secret that lives on the heap and is wiped when dropped.
//!
//! The bytes sit behind a `Box` so that moving the owning value (into a
//! `Vec`, out of a function) moves a pointer, not the key: a plain
//! `[u8; 32]` would leave stale copies of the key in every stack frame it
//! passed through, which no `Drop` can reach.

use zeroize::Zeroize;

use super::error::RngError;
use super::random;

/// Length in bytes of every symmetric key humint uses (AES-256, HMAC key).
pub const KEY_LEN: usize = 32;

/// Key bytes. Deliberately neither `Clone` nor `Debug`: the types that own
/// one implement a redacted `Debug` themselves.
pub(in crate::crypto) struct Secret32(Box<[u8; KEY_LEN]>);

impl Secret32 {
    /// Fresh bytes from the operating system's CSPRNG.
    pub(in crate::crypto) fn random() -> Result<Self, RngError> {
        let mut boxed = Box::new([0u8; KEY_LEN]);
        random::fill(boxed.as_mut_slice())?;
        Ok(Self(boxed))
    }

    /// Copies `bytes` if it is exactly [`KEY_LEN`] long.
    pub(in crate::crypto) fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut boxed = Box::new([0u8; KEY_LEN]);
        boxed.copy_from_slice(bytes);
        Some(Self(boxed))
    }

    pub(in crate::crypto) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for Secret32 {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}
