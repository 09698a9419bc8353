//! Known-answer vectors, computed once with Python's `cryptography`
//! package (the snippet is in docs/encryption.md) and pinned here byte for
//! byte.

use chrono::NaiveDate;

use super::super::blind_index::{blind_index, normalise_name};
use super::super::data_key::DataKey;
use super::super::dek::WrappedKey;
use super::super::field::{FieldContext, key_id_of};
use super::super::keys::BlindIndexKey;
use super::super::owner::Owner;
use super::{VECTOR_DEK1_ID, VECTOR_SOURCE, counting_key, uuid, vector_dek1, vector_kek1};

pub(super) const FIELD1_PLAINTEXT: &str = "Meeting moved to the café at 14:00 — bring the package.";
pub(super) const FIELD1_NONCE: &str = "cafebabefacedbaddecaf888";
pub(super) const FIELD1_AAD: &str =
    "humint/v1|contacts|narrative|1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5|9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
pub(super) const FIELD1_BLOB: &str = "016f0c6f4e5a3b4c1d9e2f0a1b2c3d4e5fcafebabefacedbaddecaf888c7c6c552c314283b2b642bb81f3dfd502d54a834ff7a0b128d762410caa954cb9760f1662354dd424429410655a3540d3c74d930c0e1e9b746bc70058479dec5fcc532f2a33db6871e71";

const FIELD2_DEK_ID: &str = "0d9e8f7a-6b5c-4d4e-af30-2b1c0d9e8f7a";
const FIELD2_ROW: &str = "5e6f7a8b-9cad-4ebf-80c1-d2e3f4a5b6c7";
const FIELD2_AAD: &str = "humint/v1|users|totp_seed|5e6f7a8b-9cad-4ebf-80c1-d2e3f4a5b6c7|system";
pub(super) const FIELD2_BLOB: &str = "010d9e8f7a6b5c4d4eaf302b1c0d9e8f7a000102030405060708090a0b16100ef01306afbcf9b1998d1523066c1e3e94e7ed7042e214f4d09f604bc38a";

const WRAP_NONCE: &str = "f0f1f2f3f4f5f6f7f8f9fafb";
const WRAPPED_DEK1: &str = "f0f1f2f3f4f5f6f7f8f9fafbd33c7401fb57d7ff78b492f2a1b5a055ff66a0486ee147144c2edf8090945a71a908e1290bf95aedb1b62444cb8f08d5";

pub(super) fn field1_ctx() -> FieldContext {
    FieldContext::new(
        "contacts",
        "narrative",
        uuid("1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"),
        Owner::Source(uuid(VECTOR_SOURCE)),
    )
}

fn field2_dek() -> DataKey {
    DataKey::from_parts(uuid(FIELD2_DEK_ID), Owner::System, counting_key(0x20))
}

fn field2_ctx() -> FieldContext {
    FieldContext::new("users", "totp_seed", uuid(FIELD2_ROW), Owner::System)
}

fn nonce(hex_str: &str) -> [u8; 12] {
    let mut n = [0u8; 12];
    hex::decode_to_slice(hex_str, &mut n).expect("12-byte hex nonce");
    n
}

#[test]
fn field_vector_1_aad_is_exact() {
    assert_eq!(field1_ctx().aad().expect("valid ctx"), FIELD1_AAD);
}

#[test]
fn field_vector_2_aad_uses_literal_system() {
    assert_eq!(field2_ctx().aad().expect("valid ctx"), FIELD2_AAD);
}

#[test]
fn field_vector_1_seal_reproduces_published_bytes() {
    let blob = vector_dek1()
        .dangerous_seal_with_nonce(&field1_ctx(), nonce(FIELD1_NONCE), FIELD1_PLAINTEXT.as_bytes())
        .expect("seal");
    assert_eq!(hex::encode(&blob), FIELD1_BLOB);
}

#[test]
fn field_vector_1_opens_to_published_plaintext() {
    let blob = hex::decode(FIELD1_BLOB).expect("hex");
    let plain = vector_dek1().open(&field1_ctx(), &blob).expect("open");
    assert_eq!(plain.as_slice(), FIELD1_PLAINTEXT.as_bytes());
    assert_eq!(key_id_of(&blob), Ok(uuid(VECTOR_DEK1_ID)));
}

#[test]
fn field_vector_2_system_owner_reproduces_published_bytes() {
    let blob = field2_dek()
        .dangerous_seal_with_nonce(&field2_ctx(), nonce("000102030405060708090a0b"), b"JBSWY3DPEHPK3PXP")
        .expect("seal");
    assert_eq!(hex::encode(&blob), FIELD2_BLOB);
    let plain = field2_dek().open(&field2_ctx(), &blob).expect("open");
    assert_eq!(plain.as_slice(), b"JBSWY3DPEHPK3PXP");
}

#[test]
fn wrap_vector_reproduces_published_bytes() {
    let wrapped = vector_dek1().dangerous_wrap_with_nonce(&vector_kek1(), nonce(WRAP_NONCE)).expect("wrap");
    assert_eq!(hex::encode(&wrapped.wrapped), WRAPPED_DEK1);
    assert_eq!(wrapped.kek_version, 1);
    assert_eq!(wrapped.id, uuid(VECTOR_DEK1_ID));
}

#[test]
fn wrap_vector_unwraps_to_the_vector_dek() {
    let wrapped = WrappedKey {
        id: uuid(VECTOR_DEK1_ID),
        owner: Owner::Source(uuid(VECTOR_SOURCE)),
        kek_version: 1,
        wrapped: hex::decode(WRAPPED_DEK1).expect("hex"),
    };
    let dek = wrapped.unwrap(&vector_kek1()).expect("unwrap");
    let blob = hex::decode(FIELD1_BLOB).expect("hex");
    let plain = dek.open(&field1_ctx(), &blob).expect("unwrapped DEK opens vector 1");
    assert_eq!(plain.as_slice(), FIELD1_PLAINTEXT.as_bytes());
}

fn blind_key() -> BlindIndexKey {
    BlindIndexKey::new(counting_key(0x60))
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

#[test]
fn blind_index_vector_reproduces_published_values() {
    let name = "  José   ÁLVAREZ García ";
    assert_eq!(normalise_name(name).as_str(), "josé álvarez garcía");
    assert_eq!(blind_index(&blind_key(), name, date(1971, 3, 9)), Some(2_044_620_885));
    assert_eq!(normalise_name("Straße").as_str(), "strasse");
    assert_eq!(blind_index(&blind_key(), "Straße", date(1980, 12, 31)), Some(938_339_614));
}
