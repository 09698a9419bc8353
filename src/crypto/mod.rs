//! Field-level encryption and the keys behind it (DESIGN.md, "Field-level
//! encryption — fixed format"; docs/encryption.md is the normative text).
//!
//! Key hierarchy: the keyring file holds versioned KEKs; each KEK version
//! wraps data keys (one per source, plus one system DEK); each DEK seals
//! that owner's fields. The keyring also holds the blind-index key and the
//! Ed25519 token-signing and audit-checkpoint keys.
//!
//! Everything here is pure (no database access) except three files:
//! `key_rows.rs` (the `data_keys` and `key_state` tables), `store.rs` (data
//! keys created, unwrapped through the cache, destroyed) and `lifecycle.rs`
//! (`humint keys rotate|rewrap|retire|status`). `cache.rs` is the bounded,
//! short-lived cache of unwrapped keys.

mod aead;
mod blind_index;
pub mod cache;
mod data_key;
mod dek;
mod error;
mod field;
mod key_rows;
mod keyring;
mod keyring_file;
mod keyring_format;
mod keys;
pub mod lifecycle;
mod owner;
mod random;
mod secret;
pub mod store;

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
