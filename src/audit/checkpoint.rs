//! Signed checkpoints: the Ed25519 audit key signs the note for a chain position, and anyone
//! holding the public key can check that the chain still passes through it.
//!
//! Verification checks the signature over the exact stored note bytes first and only then
//! parses the note (never a re-serialisation). Signing goes through `next_checkpoint`, which
//! refuses a checkpoint that does not extend the last one signed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::note::{format_note, parse_note};
use super::record::{HASH_LEN, parse_hash_hex};
use super::verify::VerifiedChain;

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// A stored checkpoint. `seq` and `hash_hex` are convenience columns; what counts is `note`,
/// and verification refuses a checkpoint whose columns disagree with its signed note.
///
/// JSON (API) names: `seq`, `hash`, `note`, `signature`, `key_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: i64,
    #[serde(rename = "hash")]
    pub hash_hex: String,
    /// Exactly `humint-audit-checkpoint\n{seq}\n{hash_hex}\n`; these bytes are what is signed.
    pub note: String,
    /// Ed25519 signature over `note`, standard base64 with padding.
    #[serde(rename = "signature")]
    pub signature_b64: String,
    /// Which audit key (from the keyring) signed; the verifier picks the public key by it.
    pub key_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("the audit checkpoint key is not a valid Ed25519 PKCS#8 v2 document")]
    InvalidSigningKey,
    #[error("an Ed25519 public key must be 32 bytes")]
    InvalidPublicKey,
    #[error("the checkpoint names a key id this verifier does not hold")]
    UnknownKeyId,
    #[error("the checkpoint signature does not verify")]
    BadSignature,
    #[error("the signed checkpoint note is not in the fixed format")]
    MalformedNote,
    #[error("the checkpoint's seq/hash columns disagree with its signed note")]
    NoteMismatch,
}

impl CheckpointError {
    /// Whether the failure means "not signed by a key we trust" (as opposed to "signed, but
    /// saying something that does not fit").
    pub fn is_signature_failure(&self) -> bool {
        matches!(self, CheckpointError::UnknownKeyId | CheckpointError::BadSignature)
    }
}

/// Refusals of the signer-side consistency rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsistencyError {
    #[error("chain head {head_seq} is behind the last signed checkpoint {last_seq}")]
    Rollback { last_seq: i64, head_seq: i64 },
    #[error("the verified chain does not pass through the last signed checkpoint {last_seq}")]
    NotExtending { last_seq: i64 },
}

/// Proof that a checkpoint's signature verified under a trusted key and that its columns
/// agree with the note. Only `CheckpointVerifier::verify` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    seq: i64,
    hash: [u8; HASH_LEN],
    key_id: String,
}

impl VerifiedCheckpoint {
    pub fn seq(&self) -> i64 {
        self.seq
    }
    pub fn hash(&self) -> &[u8; HASH_LEN] {
        &self.hash
    }
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// A chain position that may be signed: only `next_checkpoint` makes one, after checking that
/// it extends the last signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointTarget {
    seq: i64,
    hash: [u8; HASH_LEN],
}

impl CheckpointTarget {
    pub fn seq(&self) -> i64 {
        self.seq
    }
    pub fn hash(&self) -> &[u8; HASH_LEN] {
        &self.hash
    }
}

/// Decides what to sign next, never an inconsistent checkpoint.
///
/// `last` is the latest checkpoint already signed (verified), `head` a chain verified up to
/// its head. Returns `Ok(None)` when there is nothing new to sign (empty chain, or the head is
/// the last checkpoint), `Ok(Some(target))` when the head extends `last`, and an error when the
/// head is behind `last` or `head` was not verified through `last`'s (seq, hash) — as the base
/// it resumed from, a checkpoint it matched, or its own head.
pub fn next_checkpoint(
    last: Option<&VerifiedCheckpoint>,
    head: &VerifiedChain,
) -> Result<Option<CheckpointTarget>, ConsistencyError> {
    if let Some(last) = last {
        if head.head_seq() < last.seq {
            return Err(ConsistencyError::Rollback { last_seq: last.seq, head_seq: head.head_seq() });
        }
        if !head.passes_through(last.seq, &last.hash) {
            return Err(ConsistencyError::NotExtending { last_seq: last.seq });
        }
        if head.head_seq() == last.seq {
            return Ok(None);
        }
    }
    if head.head_seq() == 0 {
        return Ok(None);
    }
    Ok(Some(CheckpointTarget { seq: head.head_seq(), hash: *head.head_hash() }))
}

/// Signs checkpoints with the Ed25519 audit key from the keyring.
///
/// No `Clone`, and `Debug` shows the key id only. ring's key pair offers no zeroisation, so
/// the secret lives in ring's own type until drop; the PKCS#8 input stays the caller's to wipe.
pub struct AuditSigner {
    key_id: String,
    key_pair: Ed25519KeyPair,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner").field("key_id", &self.key_id).field("key", &"<redacted>").finish()
    }
}

impl AuditSigner {
    /// `pkcs8` is a PKCS#8 v2 Ed25519 document (what `ring`'s `generate_pkcs8` produces); v2
    /// carries the public key, which ring checks against the private key.
    pub fn from_pkcs8(pkcs8: &[u8], key_id: String) -> Result<Self, CheckpointError> {
        let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| CheckpointError::InvalidSigningKey)?;
        Ok(AuditSigner { key_id, key_pair })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The raw 32-byte Ed25519 public key, as served to verifiers.
    pub fn public_key(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }

    /// A verifier that trusts this signer's key under its key id.
    pub fn verifier(&self) -> Result<CheckpointVerifier, CheckpointError> {
        CheckpointVerifier::from_keys([(self.key_id.as_str(), self.public_key())])
    }

    /// Signs a position that `next_checkpoint` accepted.
    pub fn sign(&self, target: &CheckpointTarget) -> Checkpoint {
        self.sign_unchecked(target.seq, &target.hash)
    }

    /// Signs any position. Kept crate-private: outside tests, only `sign` (behind
    /// `next_checkpoint`) may produce checkpoints.
    pub(crate) fn sign_unchecked(&self, seq: i64, hash: &[u8; HASH_LEN]) -> Checkpoint {
        let note = format_note(seq, hash);
        let signature = self.key_pair.sign(note.as_bytes());
        Checkpoint {
            seq,
            hash_hex: hex::encode(hash),
            signature_b64: BASE64.encode(signature.as_ref()),
            note,
            key_id: self.key_id.clone(),
        }
    }
}

/// Checks checkpoint signatures with public keys only.
#[derive(Debug, Clone)]
pub struct CheckpointVerifier {
    /// `None` as key id: trust this key whatever id a checkpoint names.
    keys: Vec<(Option<String>, [u8; PUBLIC_KEY_LEN])>,
}

impl CheckpointVerifier {
    /// Trusts one raw 32-byte Ed25519 public key, whatever key id a checkpoint names.
    pub fn from_public_key(public_key: &[u8]) -> Result<Self, CheckpointError> {
        Ok(CheckpointVerifier { keys: vec![(None, public_key_bytes(public_key)?)] })
    }

    /// Trusts several keys, each only under its own key id (after a key rotation).
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<Self, CheckpointError> {
        let keys = keys
            .into_iter()
            .map(|(id, key)| Ok((Some(id.to_owned()), public_key_bytes(key)?)))
            .collect::<Result<Vec<_>, CheckpointError>>()?;
        Ok(CheckpointVerifier { keys })
    }

    /// Verifies the signature over the exact stored note bytes, then parses the note, then
    /// checks the `seq`/`hash` columns agree with it.
    pub fn verify(&self, cp: &Checkpoint) -> Result<VerifiedCheckpoint, CheckpointError> {
        let key = self
            .keys
            .iter()
            .find(|(id, _)| id.as_deref().is_none_or(|id| id == cp.key_id))
            .map(|(_, key)| key)
            .ok_or(CheckpointError::UnknownKeyId)?;
        let signature = BASE64.decode(cp.signature_b64.as_bytes()).map_err(|_| CheckpointError::BadSignature)?;
        UnparsedPublicKey::new(&signature::ED25519, key)
            .verify(cp.note.as_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature)?;
        let (seq, hash) = parse_note(&cp.note).ok_or(CheckpointError::MalformedNote)?;
        if cp.seq != seq || parse_hash_hex(&cp.hash_hex) != Some(hash) {
            return Err(CheckpointError::NoteMismatch);
        }
        Ok(VerifiedCheckpoint { seq, hash, key_id: cp.key_id.clone() })
    }
}

fn public_key_bytes(key: &[u8]) -> Result<[u8; PUBLIC_KEY_LEN], CheckpointError> {
    <[u8; PUBLIC_KEY_LEN]>::try_from(key).map_err(|_| CheckpointError::InvalidPublicKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn signer(key_id: &str) -> AuditSigner {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new());
        let pkcs8 = pkcs8.map(|d| d.as_ref().to_vec()).unwrap_or_default();
        match AuditSigner::from_pkcs8(&pkcs8, key_id.to_owned()) {
            Ok(s) => s,
            Err(e) => panic!("test key: {e}"),
        }
    }

    fn verifier(s: &AuditSigner) -> CheckpointVerifier {
        match s.verifier() {
            Ok(v) => v,
            Err(e) => panic!("verifier: {e}"),
        }
    }

    #[test]
    fn debug_of_signer_is_redacted() {
        let s = signer("audit-1");
        assert_eq!(format!("{s:?}"), r#"AuditSigner { key_id: "audit-1", key: "<redacted>" }"#);
    }

    #[test]
    fn signed_checkpoint_has_the_fixed_note_and_verifies() {
        let s = signer("audit-1");
        let cp = s.sign_unchecked(7, &[0x5a; 32]);
        assert_eq!(cp.note, format!("humint-audit-checkpoint\n7\n{}\n", "5a".repeat(32)));
        assert_eq!(cp.hash_hex, "5a".repeat(32));
        assert_eq!(cp.key_id, "audit-1");
        assert_eq!(BASE64.decode(&cp.signature_b64).map(|s| s.len()), Ok(64));
        let v = verifier(&s).verify(&cp);
        assert_eq!(v.as_ref().map(|v| (v.seq(), *v.hash())), Ok((7, [0x5a; 32])));
    }

    #[test]
    fn public_key_verifier_accepts_any_key_id() {
        let s = signer("audit-1");
        let v = CheckpointVerifier::from_public_key(s.public_key());
        let mut cp = s.sign_unchecked(1, &[1; 32]);
        cp.key_id = "renamed".into();
        assert!(v.and_then(|v| v.verify(&cp)).is_ok());
    }

    #[test]
    fn keyed_verifier_refuses_unknown_key_id() {
        let s = signer("audit-1");
        let mut cp = s.sign_unchecked(1, &[1; 32]);
        cp.key_id = "audit-2".into();
        assert_eq!(verifier(&s).verify(&cp).err(), Some(CheckpointError::UnknownKeyId));
    }

    #[test]
    fn other_key_fails_as_bad_signature() {
        let s = signer("audit-1");
        let other = signer("audit-1");
        let cp = s.sign_unchecked(1, &[1; 32]);
        assert_eq!(verifier(&other).verify(&cp).err(), Some(CheckpointError::BadSignature));
    }

    #[test]
    fn edited_note_fails_signature_before_parsing() {
        let s = signer("audit-1");
        let mut cp = s.sign_unchecked(1, &[1; 32]);
        // Unparseable garbage must still be reported as a signature failure: the bytes are
        // checked before anything reads them.
        cp.note.push_str("garbage");
        assert_eq!(verifier(&s).verify(&cp).err(), Some(CheckpointError::BadSignature));
    }

    #[test]
    fn bad_base64_and_flipped_bit_fail_as_bad_signature() {
        let s = signer("audit-1");
        let v = verifier(&s);
        let good = s.sign_unchecked(3, &[3; 32]);
        let mut cp = good.clone();
        cp.signature_b64 = "not base64!".into();
        assert_eq!(v.verify(&cp).err(), Some(CheckpointError::BadSignature));
        let mut raw = BASE64.decode(&good.signature_b64).unwrap_or_default();
        raw[10] ^= 0x01;
        let mut cp = good.clone();
        cp.signature_b64 = BASE64.encode(&raw);
        assert_eq!(v.verify(&cp).err(), Some(CheckpointError::BadSignature));
    }

    #[test]
    fn columns_must_agree_with_signed_note() {
        let s = signer("audit-1");
        let v = verifier(&s);
        let mut cp = s.sign_unchecked(3, &[3; 32]);
        cp.seq = 4;
        assert_eq!(v.verify(&cp).err(), Some(CheckpointError::NoteMismatch));
        let mut cp = s.sign_unchecked(3, &[3; 32]);
        cp.hash_hex = "04".repeat(32);
        assert_eq!(v.verify(&cp).err(), Some(CheckpointError::NoteMismatch));
    }

    #[test]
    fn validly_signed_malformed_note_is_reported_as_malformed() {
        let s = signer("audit-1");
        let mut cp = s.sign_unchecked(3, &[3; 32]);
        cp.note = "humint-audit-checkpoint\n03\nxyz\n".into();
        cp.signature_b64 = BASE64.encode(s.key_pair.sign(cp.note.as_bytes()).as_ref());
        assert_eq!(verifier(&s).verify(&cp).err(), Some(CheckpointError::MalformedNote));
    }

    #[test]
    fn invalid_keys_are_refused() {
        assert_eq!(AuditSigner::from_pkcs8(b"not a key", "k".into()).err(), Some(CheckpointError::InvalidSigningKey));
        assert_eq!(CheckpointVerifier::from_public_key(&[0; 31]).err(), Some(CheckpointError::InvalidPublicKey));
    }

    #[test]
    fn checkpoint_json_uses_api_field_names() {
        let s = signer("audit-1");
        let cp = s.sign_unchecked(2, &[2; 32]);
        let json = serde_json::to_value(&cp).unwrap_or_default();
        let mut keys: Vec<&str> = json.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(keys, ["hash", "key_id", "note", "seq", "signature"]);
    }
}
