//! Field-level encryption and the keys behind it (DESIGN.md, "Field-level
//! encryption — fixed format"; docs/encryption.md is the normative text).
//!
//! Key hierarchy: the keyring file holds versioned KEKs; each KEK version
//! wraps data keys (one per source, plus one system DEK); each DEK seals
//! that owner's fields. The keyring also holds the blind-index key and the
//! Ed25519 token-signing and audit-checkpoint keys.
//!
//! Everything here is pure: no database access. Looking DEKs up, caching
//! them and recording the active KEK version belong to the callers.

mod aead;
mod blind_index;
mod data_key;
mod dek;
mod error;
mod field;
mod keyring;
mod keyring_file;
mod keyring_format;
mod keys;
mod owner;
mod random;
mod secret;

#[cfg(test)]
mod tests;

pub use blind_index::{blind_index, normalise_name};
pub use data_key::DataKey;
pub use dek::{WRAPPED_KEY_LEN, WrappedKey};
pub use error::{DekError, FieldError, KeyringError, RngError};
pub use field::{FIELD_FORMAT_VERSION, FIELD_HEADER_LEN, FIELD_OVERHEAD, FieldContext, KEY_ID_LEN, key_id_of};
pub use keyring::{AuditKeyStatus, KEYRING_FORMAT, KekStatus, Keyring, KeyringStatus, TokenKeyStatus};
pub use keys::{AuditKey, BlindIndexKey, Kek, TokenSigningKey, audit_key_id};
pub use owner::{Owner, ParseOwnerError, SYSTEM_OWNER};
