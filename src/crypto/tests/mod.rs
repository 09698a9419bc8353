//! Tests of the crypto module. The fixed keys below are the published test
//! vectors of docs/encryption.md; they exist only under `cfg(test)`.

mod blind_index_tests;
mod dek_tests;
mod field_tests;
mod keyring_file_tests;
mod keyring_tests;
mod negative_vectors;
mod owner_tests;
mod vectors;

use uuid::Uuid;

use super::data_key::DataKey;
use super::keys::Kek;
use super::owner::Owner;
use super::secret::Secret32;

/// 32 bytes counting up from `first` (the vectors' key pattern).
fn counting_key(first: u8) -> Secret32 {
    let bytes: Vec<u8> = (0..32u8).map(|i| first + i).collect();
    Secret32::from_slice(&bytes).expect("32 bytes")
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("valid test uuid")
}

const VECTOR_SOURCE: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
const VECTOR_DEK1_ID: &str = "6f0c6f4e-5a3b-4c1d-9e2f-0a1b2c3d4e5f";

/// DEK of vector 1: bytes 0x00..=0x1f, owned by `VECTOR_SOURCE`.
fn vector_dek1() -> DataKey {
    DataKey::from_parts(uuid(VECTOR_DEK1_ID), Owner::Source(uuid(VECTOR_SOURCE)), counting_key(0x00))
}

/// KEK version 1 of vector 3: bytes 0x40..=0x5f.
fn vector_kek1() -> Kek {
    Kek::from_parts(1, chrono::Utc::now(), counting_key(0x40)).expect("version 1")
}

/// A random source-owned DEK with a random source id.
fn random_source_dek() -> DataKey {
    DataKey::generate(Owner::Source(Uuid::new_v4())).expect("rng")
}

/// The lead's DEK cache and keyring holder share these across actix
/// workers; this fails to compile if a field ever stops being thread-safe.
#[test]
fn key_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<DataKey>();
    assert_send_sync::<Kek>();
    assert_send_sync::<super::keyring::Keyring>();
    assert_send_sync::<super::dek::WrappedKey>();
}
