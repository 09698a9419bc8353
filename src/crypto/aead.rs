//! AES-256-GCM through ring: the only file that touches ring's AEAD keys.
//!
//! `LessSafeKey` lets the caller pick the nonce, so it stays private here
//! and in crate-internal functions; the public `seal` operations in
//! `field.rs` and `dek.rs` draw their nonces themselves.
//!
//! The key schedule is built per call from the zeroised key bytes rather
//! than kept in a long-lived `LessSafeKey`: ring does not wipe its key
//! schedule on drop, so keeping one per cached DEK would leave expanded
//! key material in freed heap memory. The benchmark in benches/crypto.rs
//! measures what this costs.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

pub(in crate::crypto) const NONCE_LEN: usize = 12;
pub(in crate::crypto) const TAG_LEN: usize = 16;

/// Opaque failure of the AEAD primitive; callers map it to their own
/// error type (integrity for opening, length for sealing).
#[derive(Debug)]
pub(in crate::crypto) struct AeadFailure;

fn less_safe_key(key: &[u8; 32]) -> Result<LessSafeKey, AeadFailure> {
    let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| AeadFailure)?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `buf[start..]` in place and appends the 16-byte tag.
pub(in crate::crypto) fn seal_in_place_append_tag(
    key: &[u8; 32],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut Vec<u8>,
    start: usize,
) -> Result<(), AeadFailure> {
    let key = less_safe_key(key)?;
    let in_out = buf.get_mut(start..).ok_or(AeadFailure)?;
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), in_out)
        .map_err(|_| AeadFailure)?;
    buf.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Authenticates and decrypts `ciphertext || tag`, returning the plaintext
/// in a buffer that is wiped on drop (also on failure: ring may leave
/// partially decrypted bytes in it).
pub(in crate::crypto) fn open(
    key: &[u8; 32],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AeadFailure> {
    if ciphertext_and_tag.len() < TAG_LEN {
        return Err(AeadFailure);
    }
    let key = less_safe_key(key)?;
    let mut buf = Zeroizing::new(ciphertext_and_tag.to_vec());
    let plaintext_len = key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| AeadFailure)?
        .len();
    // Drops the tag; truncate keeps the allocation, which Zeroizing wipes
    // in full (Vec's zeroize clears the spare capacity too).
    buf.truncate(plaintext_len);
    Ok(buf)
}
