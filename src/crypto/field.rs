//! Field envelope encryption — the fixed byte format of DESIGN.md.
//!
//! ```text
//! blob = 0x01 || data_key_id (16) || nonce (12) || ciphertext (n) || tag (16)
//! AAD  = "humint/v1|{table}|{column}|{row_id}|{owner_id}"
//! ```
//! AES-256-GCM under the DEK named by `data_key_id`. docs/encryption.md is
//! the normative description and carries a test vector.

use uuid::Uuid;
use zeroize::Zeroizing;

use super::aead::{self, NONCE_LEN, TAG_LEN};
use super::data_key::DataKey;
use super::error::FieldError;
use super::owner::Owner;
use super::random;

/// The format version byte every blob starts with.
pub const FIELD_FORMAT_VERSION: u8 = 0x01;
/// Length of a DEK id inside the blob (a UUID's 16 bytes, big-endian as
/// `Uuid::as_bytes`).
pub const KEY_ID_LEN: usize = 16;
/// version (1) + data_key_id (16) + nonce (12).
pub const FIELD_HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// Bytes a blob adds to its plaintext: header + tag = 45.
pub const FIELD_OVERHEAD: usize = FIELD_HEADER_LEN + TAG_LEN;

const NONCE_START: usize = 1 + KEY_ID_LEN;

/// Where an encrypted value lives. The AAD is derived from it in exactly
/// one way ([`FieldContext::aad`]), so a value only opens in the row,
/// column, table and owner it was sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldContext {
    /// Table name, `[a-z0-9_]+`.
    pub table: &'static str,
    /// Column name, `[a-z0-9_]+`.
    pub column: &'static str,
    /// Primary key of the row holding the value.
    pub row_id: Uuid,
    /// Owner of the row: its source, or the system.
    pub owner: Owner,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl FieldContext {
    pub fn new(table: &'static str, column: &'static str, row_id: Uuid, owner: Owner) -> Self {
        FieldContext { table, column, row_id, owner }
    }

    /// The one AAD encoding: `humint/v1|{table}|{column}|{row_id}|{owner_id}`.
    ///
    /// Names are restricted to `[a-z0-9_]` so that no `|` can shift a
    /// boundary (table `a|b` + column `c` versus `a` + `b|c`).
    pub(in crate::crypto) fn aad(&self) -> Result<String, FieldError> {
        if !valid_name(self.table) || !valid_name(self.column) {
            return Err(FieldError::InvalidContext);
        }
        Ok(format!("humint/v1|{}|{}|{}|{}", self.table, self.column, self.row_id.hyphenated(), self.owner))
    }
}

/// Reads the DEK id from a blob header so the caller can fetch (and
/// unwrap) the right DEK. Anything that cannot be a version-1 blob is an
/// integrity failure; a well-formed id the caller does not know is the
/// caller's to report.
pub fn key_id_of(blob: &[u8]) -> Result<Uuid, FieldError> {
    if blob.len() < FIELD_OVERHEAD || blob[0] != FIELD_FORMAT_VERSION {
        return Err(FieldError::Integrity);
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&blob[1..NONCE_START]);
    Ok(Uuid::from_bytes(id))
}

impl DataKey {
    /// Encrypts `plaintext` for the place `ctx` names. The 96-bit nonce is
    /// drawn here from the system CSPRNG; callers never choose nonces.
    pub fn seal(&self, ctx: &FieldContext, plaintext: &[u8]) -> Result<Vec<u8>, FieldError> {
        let mut nonce = [0u8; NONCE_LEN];
        random::fill(&mut nonce)?;
        self.seal_with_nonce(ctx, nonce, plaintext)
    }

    /// Test-vector-only variant with a caller-chosen nonce. Reusing a nonce
    /// under one key destroys GCM's confidentiality and integrity, hence the
    /// name and the `cfg(test)`.
    #[cfg(test)]
    pub(in crate::crypto) fn dangerous_seal_with_nonce(
        &self,
        ctx: &FieldContext,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, FieldError> {
        self.seal_with_nonce(ctx, nonce, plaintext)
    }

    fn seal_with_nonce(
        &self,
        ctx: &FieldContext,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, FieldError> {
        let aad = ctx.aad()?;
        if ctx.owner != self.owner() {
            return Err(FieldError::OwnerMismatch);
        }
        let mut blob = Vec::with_capacity(FIELD_OVERHEAD + plaintext.len());
        blob.push(FIELD_FORMAT_VERSION);
        blob.extend_from_slice(self.id().as_bytes());
        blob.extend_from_slice(&nonce);
        // The plaintext is copied straight into the output buffer and
        // encrypted there, so no second plaintext copy is left behind.
        blob.extend_from_slice(plaintext);
        aead::seal_in_place_append_tag(self.key_bytes(), nonce, aad.as_bytes(), &mut blob, FIELD_HEADER_LEN)
            .map_err(|_| FieldError::TooLong)?;
        Ok(blob)
    }

    /// Authenticates and decrypts a blob sealed for `ctx`.
    ///
    /// Checks, in order: the version byte, that the blob names this DEK,
    /// that the row's owner is this DEK's owner, then the AEAD tag over the
    /// AAD. Every failure is the same [`FieldError::Integrity`].
    pub fn open(&self, ctx: &FieldContext, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, FieldError> {
        let aad = ctx.aad()?;
        if key_id_of(blob)? != self.id() || ctx.owner != self.owner() {
            return Err(FieldError::Integrity);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&blob[NONCE_START..FIELD_HEADER_LEN]);
        aead::open(self.key_bytes(), nonce, aad.as_bytes(), &blob[FIELD_HEADER_LEN..])
            .map_err(|_| FieldError::Integrity)
    }
}
