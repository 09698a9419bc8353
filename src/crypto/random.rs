//! The one place that draws randomness, so every nonce and key in the
//! module comes from the operating system's CSPRNG via ring.

use ring::rand::{SecureRandom, SystemRandom};

use super::error::RngError;

/// Fills `dest` with random bytes.
///
/// `SystemRandom` is a zero-sized handle on `getrandom(2)`; making one per
/// call costs nothing and keeps no state that could be shared wrongly.
pub(in crate::crypto) fn fill(dest: &mut [u8]) -> Result<(), RngError> {
    SystemRandom::new().fill(dest).map_err(|_| RngError)
}

/// The `SystemRandom` handle for ring APIs that take one (Ed25519 keygen).
pub(in crate::crypto) fn system() -> SystemRandom {
    SystemRandom::new()
}
