//! Generated code names (`AMBER HERON`): drawn at random from 1024 × 1024 = 1,048,576 names,
//! never derived from the identity, unique (the caller retries on collision).

use ring::rand::{SecureRandom, SystemRandom};

use super::words::{ADJECTIVES, NOUNS};
use crate::error::{AppError, AppResult};

pub fn random() -> AppResult<String> {
    let mut bytes = [0u8; 4];
    SystemRandom::new().fill(&mut bytes).map_err(|_| AppError::internal("random source failed"))?;
    // Each list has 1024 words: 10 bits each, no modulo bias.
    let a = (usize::from(bytes[0]) << 2 | usize::from(bytes[1] >> 6)) % ADJECTIVES.len();
    let n = (usize::from(bytes[2]) << 2 | usize::from(bytes[3] >> 6)) % NOUNS.len();
    Ok(format!("{} {}", ADJECTIVES[a], NOUNS[n]))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_name_space_holds_over_a_million_distinct_names() {
        let adjectives: HashSet<_> = ADJECTIVES.iter().collect();
        let nouns: HashSet<_> = NOUNS.iter().collect();
        assert_eq!(adjectives.len(), 1024);
        assert_eq!(nouns.len(), 1024);
        assert!(adjectives.len() * nouns.len() >= 1_000_000);
        assert!(ADJECTIVES.iter().chain(NOUNS.iter()).all(|w| w.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn draws_spread_over_the_lists() {
        let names: HashSet<String> = (0..2000).map(|_| random().unwrap()).collect();
        assert!(names.len() > 1990, "2000 draws from a million names rarely collide");
    }
}
