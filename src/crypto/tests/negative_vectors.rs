//! Named negative vectors: each case starts from the published field
//! vector 1 (which opens), applies one change, and must give the one
//! opaque `FieldError::Integrity`. One table, one test, so a new case is a
//! new line.

use uuid::Uuid;

use super::super::data_key::DataKey;
use super::super::error::FieldError;
use super::super::field::{FieldContext, key_id_of};
use super::super::owner::Owner;
use super::vectors::{FIELD1_BLOB, FIELD2_BLOB, field1_ctx};
use super::{VECTOR_DEK1_ID, counting_key, uuid, vector_dek1};

struct Case {
    key: DataKey,
    ctx: FieldContext,
    blob: Vec<u8>,
}

fn other_source() -> Owner {
    Owner::Source(uuid("11111111-2222-4333-8444-555555555555"))
}

type Mutation = fn(&mut Case);

const NEGATIVE_VECTORS: &[(&str, Mutation)] = &[
    ("wrong_aad_row", |c| c.ctx.row_id = Uuid::nil()),
    ("wrong_aad_column", |c| c.ctx.column = "summary"),
    ("wrong_aad_table", |c| c.ctx.table = "reviews"),
    ("wrong_owner", |c| c.ctx.owner = other_source()),
    ("wrong_owner_system", |c| c.ctx.owner = Owner::System),
    // Key and row both claim another owner: the owner pre-check passes, so
    // this exercises the owner inside the AAD.
    ("wrong_owner_in_aad", |c| {
        c.key = DataKey::from_parts(uuid(VECTOR_DEK1_ID), other_source(), counting_key(0));
        c.ctx.owner = other_source();
    }),
    ("wrong_key_bytes", |c| {
        c.key = DataKey::from_parts(c.key.id(), c.key.owner(), counting_key(1));
    }),
    ("wrong_key_id", |c| {
        c.key = DataKey::from_parts(Uuid::nil(), c.key.owner(), counting_key(0));
    }),
    ("flipped_version", |c| c.blob[0] ^= 0x01),
    ("unknown_version", |c| c.blob[0] = 0x02),
    ("zero_version", |c| c.blob[0] = 0x00),
    ("flipped_key_id", |c| c.blob[1] ^= 0x80),
    ("flipped_nonce", |c| c.blob[17] ^= 0x01),
    ("flipped_nonce_last", |c| c.blob[28] ^= 0x40),
    ("flipped_ciphertext", |c| c.blob[29] ^= 0x01),
    ("flipped_tag", |c| {
        let last = c.blob.len() - 1;
        c.blob[last] ^= 0x01;
    }),
    ("truncated_tag", |c| {
        c.blob.pop();
    }),
    ("tag_missing", |c| c.blob.truncate(c.blob.len() - 16)),
    ("truncated_to_header", |c| c.blob.truncate(29)),
    ("shorter_than_header", |c| c.blob.truncate(10)),
    ("empty_blob", |c| c.blob.clear()),
    ("appended_byte", |c| c.blob.push(0)),
    ("swapped_nonce_and_ciphertext", |c| c.blob[17..41].rotate_left(12)),
    ("blob_of_other_key", |c| c.blob = hex::decode(FIELD2_BLOB).expect("hex")),
];

#[test]
fn every_negative_vector_is_an_integrity_error() {
    // The unmodified vector must open, or every case below proves nothing.
    let base = hex::decode(FIELD1_BLOB).expect("hex");
    assert!(vector_dek1().open(&field1_ctx(), &base).is_ok());

    let mut names = std::collections::HashSet::new();
    for (name, mutate) in NEGATIVE_VECTORS {
        assert!(names.insert(*name), "duplicate case name {name}");
        let mut case = Case { key: vector_dek1(), ctx: field1_ctx(), blob: base.clone() };
        mutate(&mut case);
        let result = case.key.open(&case.ctx, &case.blob).map(|_| ());
        assert_eq!(result, Err(FieldError::Integrity), "case {name}");
    }
}

#[test]
fn every_single_bit_flip_of_vector_1_is_an_integrity_error() {
    let base = hex::decode(FIELD1_BLOB).expect("hex");
    let key = vector_dek1();
    let ctx = field1_ctx();
    for i in 0..base.len() {
        for bit in 0..8 {
            let mut blob = base.clone();
            blob[i] ^= 1 << bit;
            assert_eq!(key.open(&ctx, &blob).map(|_| ()), Err(FieldError::Integrity), "byte {i} bit {bit}");
        }
    }
    // Flips in the id still parse: the caller then looks up an unknown key.
    let mut blob = base;
    blob[5] ^= 1;
    assert!(key_id_of(&blob).is_ok_and(|id| id != key.id()));
}
