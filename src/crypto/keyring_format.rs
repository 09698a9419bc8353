//! The keyring file's JSON format, `humint-keyring/v1`:
//!
//! ```json
//! {
//!   "format": "humint-keyring/v1",
//!   "keks": [ { "version": 1, "created_at": "RFC 3339", "key": "base64(32 bytes)" } ],
//!   "blind_index_key": "base64(32 bytes)",
//!   "token_signing_keys": [ { "kid": "16 hex", "created_at": "RFC 3339", "pkcs8": "base64(PKCS#8 v2)" } ],
//!   "active_token_kid": "16 hex",
//!   "audit_checkpoint_key": { "key_id": "16 hex", "created_at": "RFC 3339", "pkcs8": "base64(PKCS#8 v2)" }
//! }
//! ```
//! Parsing is strict (unknown fields, duplicate fields, wrong lengths are
//! errors) and the intermediate strings holding base64 key material are
//! wiped on drop. Error messages never echo a value from the file.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::KeyringError;
use super::keyring::{KEYRING_FORMAT, Keyring};
use super::keys::{AuditKey, BlindIndexKey, Kek, TokenSigningKey};
use super::secret::{KEY_LEN, Secret32};

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct RawKeyring {
    format: String,
    keks: Vec<RawKek>,
    blind_index_key: String,
    token_signing_keys: Vec<RawEd25519Key>,
    active_token_kid: String,
    audit_checkpoint_key: RawAuditKey,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct RawKek {
    version: u32,
    #[zeroize(skip)]
    created_at: DateTime<Utc>,
    key: String,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct RawEd25519Key {
    kid: String,
    #[zeroize(skip)]
    created_at: DateTime<Utc>,
    pkcs8: String,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct RawAuditKey {
    key_id: String,
    #[zeroize(skip)]
    created_at: DateTime<Utc>,
    pkcs8: String,
}

/// Read first, leniently, so a file of another format version is reported
/// as such rather than as a pile of unknown fields.
#[derive(Deserialize)]
struct FormatProbe {
    format: String,
}

/// serde_json's message without its " at line L column C" suffix; a
/// message quoting a value from the file (serde writes values in double
/// quotes, e.g. `invalid type: string "..."`) is replaced, since that value
/// could be key material.
fn malformed(err: serde_json::Error) -> KeyringError {
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    let reason = if message.contains('"') {
        "a value has the wrong type or form (value not shown)".to_owned()
    } else {
        message.to_owned()
    };
    KeyringError::Malformed { line, column, reason }
}

fn decode(field: &str, b64: &str) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
    BASE64.decode(b64).map(Zeroizing::new).map_err(|_| KeyringError::BadBase64 { field: field.to_owned() })
}

fn decode_key(field: &str, b64: &str) -> Result<Secret32, KeyringError> {
    let bytes = decode(field, b64)?;
    Secret32::from_slice(&bytes).ok_or_else(|| KeyringError::BadKeyLength {
        field: field.to_owned(),
        expected: KEY_LEN,
        found: bytes.len(),
    })
}

/// Parses and validates the bytes of a keyring file.
pub(in crate::crypto) fn parse(json: &[u8]) -> Result<Keyring, KeyringError> {
    let probe: FormatProbe = serde_json::from_slice(json).map_err(malformed)?;
    if probe.format != KEYRING_FORMAT {
        // Printed with {:?}; cap the length so a garbage file cannot flood
        // the log.
        let found = probe.format.chars().take(40).collect();
        return Err(KeyringError::UnsupportedFormat { found });
    }
    let raw: RawKeyring = serde_json::from_slice(json).map_err(malformed)?;

    let mut keks = Vec::with_capacity(raw.keks.len());
    for (i, k) in raw.keks.iter().enumerate() {
        let field = format!("keks[{i}].key");
        keks.push(Kek::from_parts(k.version, k.created_at, decode_key(&field, &k.key)?)?);
    }
    let blind_index_key = BlindIndexKey::new(decode_key("blind_index_key", &raw.blind_index_key)?);
    let mut token_keys = Vec::with_capacity(raw.token_signing_keys.len());
    for (i, k) in raw.token_signing_keys.iter().enumerate() {
        let field = format!("token_signing_keys[{i}].pkcs8");
        let pkcs8 = decode(&field, &k.pkcs8)?;
        token_keys.push(TokenSigningKey::from_parts(k.kid.clone(), k.created_at, pkcs8, &field)?);
    }
    let audit = &raw.audit_checkpoint_key;
    let field = "audit_checkpoint_key.pkcs8";
    let audit_key = AuditKey::from_parts(audit.key_id.clone(), audit.created_at, decode(field, &audit.pkcs8)?, field)?;
    Keyring::from_parts(keks, blind_index_key, token_keys, &raw.active_token_kid, audit_key)
}

/// Serialises a keyring as pretty-printed `humint-keyring/v1` JSON into a
/// buffer that is wiped on drop.
pub(in crate::crypto) fn serialise(keyring: &Keyring) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
    let raw = RawKeyring {
        format: KEYRING_FORMAT.to_owned(),
        keks: keyring
            .keks()
            .map(|k| RawKek { version: k.version(), created_at: k.created_at(), key: BASE64.encode(k.key_bytes()) })
            .collect(),
        blind_index_key: BASE64.encode(keyring.blind_index_key().key_bytes()),
        token_signing_keys: keyring
            .token_keys()
            .map(|k| RawEd25519Key {
                kid: k.kid().to_owned(),
                created_at: k.created_at(),
                pkcs8: BASE64.encode(k.pkcs8_der()),
            })
            .collect(),
        active_token_kid: keyring.active_token_key().0.to_owned(),
        audit_checkpoint_key: RawAuditKey {
            key_id: keyring.audit_key().key_id().to_owned(),
            created_at: keyring.audit_key().created_at(),
            pkcs8: BASE64.encode(keyring.audit_key().pkcs8_der()),
        },
    };
    // Generous capacity up front: a Vec that grows leaves the old, unwiped
    // allocation behind with a prefix of the file in it.
    let entries = raw.keks.len() + raw.token_signing_keys.len();
    let mut out = Zeroizing::new(Vec::with_capacity(8192 + 512 * entries));
    serde_json::to_writer_pretty(&mut *out, &raw).map_err(|_| KeyringError::Serialise)?;
    out.push(b'\n');
    Ok(out)
}
