//! The one crypto backend jsonwebtoken uses in humint: ring, Ed25519 only.
//!
//! jsonwebtoken 12 has no crypto of its own; it asks a process-wide `CryptoProvider` for a
//! signer or verifier per algorithm and panics at first use if none is installed. Its built-in
//! backends would each bring a second crypto library (`rust_crypto` pulls in the `rsa` crate,
//! which has an open advisory, and `aws_lc_rs` a large C library) while humint already relies on
//! ring. This provider hands out Ed25519 signers and verifiers backed by ring and refuses every
//! other algorithm with an error, so an HMAC, RSA or ECDSA token can never be produced or
//! accepted, whatever a token header or a caller asks for.
//!
//! [`install`] must have run before any `jsonwebtoken::encode`/`decode`; the constructors in
//! `crate::auth::tokens` call it themselves, and `serve` may call it at start-up to fail early.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, new_error};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
// jsonwebtoken re-exports the `signature` crate it is built against, so the trait versions
// always match; a separate `signature` dependency could silently drift to another major version.
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::signature::{ED25519, ED25519_PUBLIC_KEY_LEN, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// Why the provider could not be made the process default.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// Some other code installed a different jsonwebtoken `CryptoProvider` first (or a
    /// dependency enabled one of jsonwebtoken's built-in backends and it was picked up before
    /// we installed ours). Tokens would then be handled by crypto we did not choose, so the
    /// service must not start.
    #[error("another jsonwebtoken CryptoProvider is installed; refusing to use it")]
    ForeignProviderInstalled,
}

/// The ring-backed, EdDSA-only provider. A `static` (not a `const`) so that it has one address,
/// which is how [`install`] recognises it in jsonwebtoken's process-wide slot.
static RING_EDDSA_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: refuse_rsa_components,
        rsa_pub_components_from_public_key: refuse_rsa_components,
        ec_pub_components_from_private_key: refuse_ec_components,
        ed_pub_components_from_private_key: ed25519_public_key_from_pkcs8,
        compute_digest,
    },
};

/// Makes the ring EdDSA-only provider jsonwebtoken's process default.
///
/// Idempotent and safe to call from several threads: every call after the first that installed
/// it returns `Ok(())`. Returns [`ProviderError::ForeignProviderInstalled`] if any other
/// provider holds the slot, because jsonwebtoken allows exactly one per process and never
/// replaces it.
pub fn install() -> Result<(), ProviderError> {
    check_install_outcome(RING_EDDSA_ONLY.install_default(), &RING_EDDSA_ONLY)
}

/// Separated from [`install`] so the foreign-provider branch can be tested without putting a
/// foreign provider into the process-wide slot (which would break every other test).
fn check_install_outcome(
    outcome: Result<(), &'static CryptoProvider>,
    ours: &'static CryptoProvider,
) -> Result<(), ProviderError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(installed) if std::ptr::eq(installed, ours) => Ok(()),
        Err(_) => Err(ProviderError::ForeignProviderInstalled),
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *algorithm != Algorithm::EdDSA {
        return Err(new_error(ErrorKind::UnsupportedAlgorithm));
    }
    if key.family() != AlgorithmFamily::Ed {
        return Err(new_error(ErrorKind::InvalidAlgorithm));
    }
    // `from_pkcs8` accepts only PKCS#8 v2 (with the public key) and checks that both halves
    // match, so a corrupted keyring entry fails here instead of producing bad signatures.
    let pair = Ed25519KeyPair::from_pkcs8(key.as_bytes()).map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?;
    Ok(Box::new(RingEd25519Signer(pair)))
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *algorithm != Algorithm::EdDSA {
        return Err(new_error(ErrorKind::UnsupportedAlgorithm));
    }
    if key.family() != AlgorithmFamily::Ed {
        return Err(new_error(ErrorKind::InvalidAlgorithm));
    }
    let raw: [u8; ED25519_PUBLIC_KEY_LEN] =
        key.try_get_as_bytes()?.try_into().map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?;
    Ok(Box::new(RingEd25519Verifier(raw)))
}

struct RingEd25519Signer(Ed25519KeyPair);

impl Signer<Vec<u8>> for RingEd25519Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).as_ref().to_vec())
    }
}

impl JwtSigner for RingEd25519Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

/// Holds the raw 32-byte Ed25519 public key (RFC 8032 encoding).
struct RingEd25519Verifier([u8; ED25519_PUBLIC_KEY_LEN]);

impl Verifier<Vec<u8>> for RingEd25519Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        // The signature crate asks that crypto failures carry no source (no oracle details).
        UnparsedPublicKey::new(&ED25519, &self.0).verify(msg, signature).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingEd25519Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

// jsonwebtoken's `KeyUtils::new_unimplemented()` panics when called; these return errors
// instead, so nothing reachable from this provider can panic.

fn refuse_rsa_components(_der: &[u8]) -> jsonwebtoken::errors::Result<(Vec<u8>, Vec<u8>)> {
    Err(new_error(ErrorKind::UnsupportedAlgorithm))
}

fn refuse_ec_components(
    _der: &[u8],
    _algorithm: Algorithm,
) -> jsonwebtoken::errors::Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    Err(new_error(ErrorKind::UnsupportedAlgorithm))
}

/// Lets jsonwebtoken build an OKP JWK (e.g. for a future JWKS endpoint) from our own key.
fn ed25519_public_key_from_pkcs8(pkcs8: &[u8], curve: &EllipticCurve) -> jsonwebtoken::errors::Result<Vec<u8>> {
    if *curve != EllipticCurve::Ed25519 {
        return Err(new_error(ErrorKind::UnsupportedAlgorithm));
    }
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?;
    Ok(pair.public_key().as_ref().to_vec())
}

/// JWK thumbprints (RFC 7638); a plain digest, no algorithm choice an attacker could steer.
fn compute_digest(data: &[u8], hash: ThumbprintHash) -> jsonwebtoken::errors::Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        // `ThumbprintHash` is non-exhaustive: refuse what we do not know.
        _ => return Err(new_error(ErrorKind::UnsupportedAlgorithm)),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Header, Validation};
    use ring::rand::SystemRandom;

    /// Every variant jsonwebtoken 12 knows except EdDSA (the enum is `non_exhaustive`, so the
    /// list is written out; a new variant would still be refused by the `!= EdDSA` check).
    const NOT_EDDSA: [Algorithm; 11] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];

    fn ed25519_pkcs8() -> Vec<u8> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap().as_ref().to_vec()
    }

    fn public_key_of(pkcs8: &[u8]) -> Vec<u8> {
        Ed25519KeyPair::from_pkcs8(pkcs8).unwrap().public_key().as_ref().to_vec()
    }

    #[test]
    fn install_is_idempotent_and_leaves_our_provider_as_the_default() {
        install().unwrap();
        install().unwrap();
        let current = CryptoProvider::try_get_default().unwrap();
        assert!(std::ptr::eq(current, &RING_EDDSA_ONLY));
    }

    #[test]
    fn a_foreign_provider_in_the_slot_is_reported() {
        static FOREIGN: CryptoProvider = CryptoProvider {
            signer_factory: new_signer,
            verifier_factory: new_verifier,
            key_utils: KeyUtils::new_unimplemented(),
        };
        assert_eq!(
            check_install_outcome(Err(&FOREIGN), &RING_EDDSA_ONLY),
            Err(ProviderError::ForeignProviderInstalled)
        );
        assert_eq!(check_install_outcome(Err(&RING_EDDSA_ONLY), &RING_EDDSA_ONLY), Ok(()));
        assert_eq!(check_install_outcome(Ok(()), &RING_EDDSA_ONLY), Ok(()));
    }

    #[test]
    fn every_other_algorithm_is_refused_by_both_factories_without_panicking() {
        let pkcs8 = ed25519_pkcs8();
        let ed_signing = EncodingKey::from_ed_der(&pkcs8);
        let ed_verifying = DecodingKey::from_ed_der(&public_key_of(&pkcs8));
        let hmac_signing = EncodingKey::from_secret(b"some shared secret").unwrap();
        let hmac_verifying = DecodingKey::from_secret(b"some shared secret").unwrap();
        for algorithm in NOT_EDDSA {
            for key in [&ed_signing, &hmac_signing] {
                assert!((RING_EDDSA_ONLY.signer_factory)(&algorithm, key).is_err(), "signer for {algorithm:?}");
            }
            for key in [&ed_verifying, &hmac_verifying] {
                assert!((RING_EDDSA_ONLY.verifier_factory)(&algorithm, key).is_err(), "verifier for {algorithm:?}");
            }
        }
    }

    #[test]
    fn eddsa_with_a_key_of_another_family_is_refused() {
        let hmac_signing = EncodingKey::from_secret(b"some shared secret").unwrap();
        let hmac_verifying = DecodingKey::from_secret(&[7u8; 32]).unwrap();
        assert!((RING_EDDSA_ONLY.signer_factory)(&Algorithm::EdDSA, &hmac_signing).is_err());
        assert!((RING_EDDSA_ONLY.verifier_factory)(&Algorithm::EdDSA, &hmac_verifying).is_err());
    }

    #[test]
    fn malformed_ed25519_keys_are_errors() {
        let not_pkcs8 = EncodingKey::from_ed_der(b"not a pkcs8 document");
        assert!((RING_EDDSA_ONLY.signer_factory)(&Algorithm::EdDSA, &not_pkcs8).is_err());
        let short_public = DecodingKey::from_ed_der(&[1u8; 31]);
        assert!((RING_EDDSA_ONLY.verifier_factory)(&Algorithm::EdDSA, &short_public).is_err());
    }

    #[test]
    fn key_utils_refuse_rsa_and_ec_and_derive_the_ed25519_public_key() {
        let pkcs8 = ed25519_pkcs8();
        let utils = &RING_EDDSA_ONLY.key_utils;
        assert!((utils.rsa_pub_components_from_private_key)(&pkcs8).is_err());
        assert!((utils.rsa_pub_components_from_public_key)(&pkcs8).is_err());
        assert!((utils.ec_pub_components_from_private_key)(&pkcs8, Algorithm::ES256).is_err());
        assert!((utils.ed_pub_components_from_private_key)(&pkcs8, &EllipticCurve::P256).is_err());
        assert_eq!(
            (utils.ed_pub_components_from_private_key)(&pkcs8, &EllipticCurve::Ed25519).unwrap(),
            public_key_of(&pkcs8)
        );
    }

    #[test]
    fn sign_then_verify_round_trips_through_jsonwebtoken() {
        install().unwrap();
        let pkcs8 = ed25519_pkcs8();
        let message = b"header.payload";
        let signature =
            jsonwebtoken::crypto::sign(message, &EncodingKey::from_ed_der(&pkcs8), Algorithm::EdDSA).unwrap();
        let public = DecodingKey::from_ed_der(&public_key_of(&pkcs8));
        let verify = |msg: &[u8]| jsonwebtoken::crypto::verify(&signature, msg, &public, Algorithm::EdDSA).unwrap();
        assert!(verify(message));
        assert!(!verify(b"header.payloaD"));
    }

    #[test]
    fn jsonwebtoken_refuses_to_encode_or_decode_hs256_through_this_provider() {
        install().unwrap();
        let secret = b"some shared secret";
        let claims = serde_json::json!({ "sub": "x", "exp": 4_102_444_800_u64 });
        let encoded =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret).unwrap());
        assert!(encoded.is_err());

        // A correctly formed HS256 token, built without jsonwebtoken, must not verify even
        // when the caller (wrongly) asks for HS256.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let message = format!("{}.{}", b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#), b64.encode(claims.to_string()));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, message.as_bytes());
        let token = format!("{message}.{}", b64.encode(tag.as_ref()));
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(secret).unwrap(),
            &Validation::new(Algorithm::HS256),
        );
        assert!(decoded.is_err());
    }
}
