//! Error types of the crypto module.
//!
//! Decryption failures are deliberately one opaque variant each
//! ([`FieldError::Integrity`], [`DekError::Integrity`]): wrong key, wrong
//! AAD, bad tag and truncated input look the same to callers, so no caller
//! can build an oracle on top of them. Everything else is an operator or
//! programming fault and gets a precise variant.

use std::path::PathBuf;

/// The operating system's random number generator failed.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("the operating system's random number generator failed")]
pub struct RngError;

/// Errors of field envelope encryption.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum FieldError {
    /// The blob could not be authenticated under this key and context:
    /// wrong key, wrong row/column/table/owner, altered or truncated bytes,
    /// unknown format version. Callers cannot (and must not try to) tell
    /// which.
    #[error("encrypted field failed its integrity check")]
    Integrity,
    /// Programming fault: the context's table or column name is empty or
    /// contains characters other than `[a-z0-9_]` (a `|` would make the AAD
    /// ambiguous).
    #[error("invalid field context: table and column must be non-empty [a-z0-9_]")]
    InvalidContext,
    /// Programming fault: sealing under a data key that belongs to another
    /// owner than the row would create a value nobody can ever open.
    #[error("data key owner does not match the field context owner")]
    OwnerMismatch,
    /// The plaintext is larger than AES-GCM can encrypt in one message.
    #[error("plaintext too long to encrypt")]
    TooLong,
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// Errors of wrapping and unwrapping data keys under a KEK.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum DekError {
    /// The wrapped key could not be authenticated: wrong KEK bytes, wrong
    /// owner, altered or truncated bytes. Opaque on purpose.
    #[error("wrapped data key failed its integrity check")]
    Integrity,
    /// Operator/caller fault: the KEK handed in is not the version the key
    /// was wrapped under (look the right version up in the keyring).
    #[error("data key is wrapped under KEK version {wrapped_under}, not {given}")]
    KekVersionMismatch { wrapped_under: u32, given: u32 },
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// Errors of loading, validating, changing and saving the keyring file.
///
/// None of the messages ever contains key material: values read from the
/// file are named by their JSON path, never echoed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read keyring file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write keyring file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("keyring file {path} already exists; refusing to overwrite it")]
    AlreadyExists { path: PathBuf },
    #[error("keyring file {path} is {len} bytes, more than a keyring can need; refusing to read it")]
    TooLarge { path: PathBuf, len: u64 },
    #[error("keyring file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "keyring file {path} has mode {mode:04o}, which lets group or others access it; \
         it must be readable by its owner only (chmod 600 or 400)"
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("keyring file is not valid humint-keyring/v1 JSON (line {line}, column {column}): {reason}")]
    Malformed { line: usize, column: usize, reason: String },
    #[error("keyring file has format {found:?}; this build reads only \"humint-keyring/v1\"")]
    UnsupportedFormat { found: String },
    #[error("keyring field {field} is not valid standard (padded) base64")]
    BadBase64 { field: String },
    #[error("keyring field {field} must hold {expected} bytes, found {found}")]
    BadKeyLength { field: String, expected: usize, found: usize },
    #[error("keyring holds no KEK")]
    NoKek,
    #[error("KEK version 0 is invalid: versions start at 1")]
    ZeroKekVersion,
    #[error("KEK version {0} appears more than once in the keyring")]
    DuplicateKekVersion(u32),
    #[error("keyring holds no token-signing key")]
    NoTokenKey,
    #[error("token-signing kid {0:?} is not 1 to 64 characters of [A-Za-z0-9_-]")]
    BadKid(String),
    #[error("token-signing kid {0:?} appears more than once in the keyring")]
    DuplicateKid(String),
    #[error("active token-signing kid {0:?} names no key in the keyring")]
    ActiveKidMissing(String),
    #[error("keyring field {field} is not an Ed25519 PKCS#8 v2 document")]
    BadPkcs8 { field: String },
    #[error("audit checkpoint key_id {found:?} does not match its public key (expected {expected:?})")]
    AuditKeyIdMismatch { found: String, expected: String },
    #[error("KEK version {0} is not in the keyring")]
    UnknownKekVersion(u32),
    #[error(
        "KEK version {0} is the latest version and cannot be removed \
         (rotate first, then retire the older version)"
    )]
    CannotRemoveLatestKek(u32),
    #[error("keyring could not be serialised")]
    Serialise,
    #[error("KEK version numbers are exhausted")]
    KekVersionOverflow,
    #[error("Ed25519 key generation failed")]
    KeyGeneration,
    #[error(transparent)]
    Rng(#[from] RngError),
}
