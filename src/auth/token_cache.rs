//! A cache of verified access tokens, so that the Ed25519 signature check (~46 µs, the largest
//! single cost of an authenticated request) runs once per token instead of once per request.
//!
//! DESIGN.md allows it on two conditions, both kept here: the key is a hash of the token (the
//! token itself is never stored), and no entry outlives the token's `exp`. Only tokens that
//! passed every check are cached, so only tokens this deployment signed can fill it; a token
//! that differs in any byte (a forged signature, an edited claim) hashes elsewhere and is
//! verified in full. The session row is still read on every request, so a revoked session or
//! disabled user is refused at once whatever the cache holds.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use ring::digest;

use super::tokens::VerifiedClaims;

/// Entries at most; at ~20 minutes of token lifetime this is thousands of concurrent users.
const CAPACITY: usize = 16_384;

type TokenHash = [u8; 32];

pub struct VerifiedTokenCache {
    entries: Mutex<HashMap<TokenHash, Entry>>,
    leeway: TimeDelta,
    capacity: usize,
}

struct Entry {
    claims: VerifiedClaims,
    /// `iat - leeway` and `exp + leeway`, as the verifier accepts them.
    valid_from: i64,
    valid_until: i64,
}

impl VerifiedTokenCache {
    /// `leeway` must be the verifier's, so that a cached token is accepted exactly while a fresh
    /// verification would accept it.
    pub fn new(leeway: TimeDelta) -> Self {
        Self::with_capacity(leeway, CAPACITY)
    }

    pub fn with_capacity(leeway: TimeDelta, capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), leeway, capacity }
    }

    pub fn hash(token: &str) -> TokenHash {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        out
    }

    /// The claims of a token verified before, if it is still within its validity at `now`.
    pub fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Option<VerifiedClaims> {
        let now = now.timestamp();
        let mut entries = self.lock();
        let entry = entries.get(hash)?;
        if now < entry.valid_from || now >= entry.valid_until {
            // Let the full verification give the precise answer (expired, not yet valid).
            entries.remove(hash);
            return None;
        }
        Some(entry.claims.clone())
    }

    /// Remembers `claims`, which the verifier has just accepted, for `hash`'s token.
    pub fn insert(&self, hash: TokenHash, claims: VerifiedClaims, now: DateTime<Utc>) {
        let leeway = self.leeway.num_seconds();
        let entry = Entry {
            valid_from: claims.issued_at().timestamp().saturating_sub(leeway),
            valid_until: claims.expires_at().timestamp().saturating_add(leeway),
            claims,
        };
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            let now = now.timestamp();
            entries.retain(|_, e| now < e.valid_until);
            if entries.len() >= self.capacity {
                // Every entry is live: start over rather than grow. Costs re-verifications only.
                entries.clear();
            }
        }
        entries.insert(hash, entry);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Entry>> {
        // The map is never left half-updated: a poisoned lock's contents are still sound.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for VerifiedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokenCache").field("entries", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::Ed25519KeyPair;
    use uuid::Uuid;

    use super::*;
    use crate::auth::tokens::{MAX_LEEWAY, MAX_TOKEN_LIFETIME, TokenSigner, TokenVerifier};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap()
    }

    struct Fixture {
        signer: TokenSigner,
        verifier: TokenVerifier,
        cache: VerifiedTokenCache,
    }

    impl Fixture {
        fn new(capacity: usize) -> Self {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap().as_ref().to_vec();
            Fixture {
                signer: TokenSigner::new("k1", &pkcs8, "humint", "humint-api", MAX_TOKEN_LIFETIME).unwrap(),
                verifier: TokenVerifier::new([("k1", pkcs8.as_slice())], "humint", "humint-api", MAX_LEEWAY).unwrap(),
                cache: VerifiedTokenCache::with_capacity(MAX_LEEWAY, capacity),
            }
        }

        fn token(&self) -> String {
            self.signer.mint(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap().token().to_string()
        }

        /// What `Keys::tokens().verify` does: the cache first, then the verifier.
        fn verify(&self, token: &str, at: DateTime<Utc>) -> Option<VerifiedClaims> {
            let hash = VerifiedTokenCache::hash(token);
            if let Some(claims) = self.cache.get(&hash, at) {
                return Some(claims);
            }
            let claims = self.verifier.verify(token, at).ok()?;
            self.cache.insert(hash, claims.clone(), at);
            Some(claims)
        }
    }

    #[test]
    fn a_verified_token_is_served_from_the_cache_within_its_validity_only() {
        let f = Fixture::new(16);
        let token = f.token();
        let first = f.verify(&token, now()).unwrap();
        assert_eq!(f.cache.len(), 1);
        let hash = VerifiedTokenCache::hash(&token);
        assert_eq!(f.cache.get(&hash, now() + TimeDelta::seconds(60)), Some(first.clone()));
        let last_second = first.expires_at() + MAX_LEEWAY - TimeDelta::seconds(1);
        assert!(f.cache.get(&hash, last_second).is_some(), "valid while the verifier would accept it");
        let expired = first.expires_at() + MAX_LEEWAY;
        assert_eq!(f.cache.get(&hash, expired), None, "never beyond exp (+ the verifier's leeway)");
        assert!(f.cache.is_empty(), "an expired entry is dropped");
        assert!(f.verify(&token, expired).is_none(), "and the full verification refuses it");
        let before_issue = first.issued_at() - MAX_LEEWAY - TimeDelta::seconds(1);
        f.verify(&token, now()).unwrap();
        assert_eq!(f.cache.get(&hash, before_issue), None, "a clock set back before iat is not served either");
    }

    #[test]
    fn a_token_differing_in_any_byte_from_a_cached_one_is_verified_in_full() {
        let f = Fixture::new(16);
        let token = f.token();
        f.verify(&token, now()).unwrap();
        for i in [0, token.len() / 2, token.len() - 1] {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(bytes).unwrap();
            assert!(f.verify(&forged, now()).is_none(), "byte {i} changed must not verify");
        }
        assert_eq!(f.cache.len(), 1, "refused tokens are never cached");
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let f = Fixture::new(3);
        let tokens: Vec<String> = (0..7).map(|_| f.token()).collect();
        for t in &tokens {
            f.verify(t, now()).unwrap();
            assert!(f.cache.len() <= 3);
        }
        // Whatever was evicted is verified again, not refused.
        for t in &tokens {
            assert!(f.verify(t, now()).is_some());
        }
    }
}
