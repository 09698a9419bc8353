//! Field envelope encryption: round trips, context binding, tampering.

use std::collections::HashSet;

use uuid::Uuid;

use super::super::data_key::DataKey;
use super::super::error::FieldError;
use super::super::field::{FIELD_HEADER_LEN, FIELD_OVERHEAD, FieldContext, key_id_of};
use super::super::owner::Owner;
use super::random_source_dek;

fn ctx_for(dek: &DataKey) -> FieldContext {
    FieldContext::new("contacts", "narrative", Uuid::new_v4(), dek.owner())
}

fn assert_round_trip(dek: &DataKey, plaintext: &[u8]) {
    let ctx = ctx_for(dek);
    let blob = dek.seal(&ctx, plaintext).expect("seal");
    assert_eq!(blob.len(), plaintext.len() + FIELD_OVERHEAD);
    assert_eq!(blob[0], 0x01);
    assert_eq!(&blob[1..17], dek.id().as_bytes());
    if !plaintext.is_empty() {
        assert_ne!(&blob[FIELD_HEADER_LEN..FIELD_HEADER_LEN + plaintext.len()], plaintext);
    }
    let opened = dek.open(&ctx, &blob).expect("open");
    assert_eq!(opened.as_slice(), plaintext);
}

#[test]
fn round_trip_empty() {
    assert_round_trip(&random_source_dek(), b"");
}

#[test]
fn round_trip_short() {
    assert_round_trip(&random_source_dek(), b"x");
    assert_round_trip(&random_source_dek(), b"Alias: KESTREL");
}

#[test]
fn round_trip_60_kib() {
    let big: Vec<u8> = (0..60 * 1024).map(|i| (i % 251) as u8).collect();
    assert_round_trip(&random_source_dek(), &big);
}

#[test]
fn round_trip_non_ascii() {
    let text = "Zoë Ñúñez — 東京 — Ελένη — 🕵️ — \u{0000} end";
    assert_round_trip(&random_source_dek(), text.as_bytes());
}

#[test]
fn round_trip_system_owner() {
    let dek = DataKey::generate(Owner::System).expect("rng");
    assert_round_trip(&dek, b"JBSWY3DPEHPK3PXP");
}

#[test]
fn same_plaintext_seals_differently_each_time() {
    let dek = random_source_dek();
    let ctx = ctx_for(&dek);
    let a = dek.seal(&ctx, b"same").expect("seal");
    let b = dek.seal(&ctx, b"same").expect("seal");
    assert_ne!(a, b);
}

/// Seals a value and opens it under a modified context: must be Integrity.
fn open_in_other_context(modify: impl FnOnce(&mut FieldContext)) -> Result<(), FieldError> {
    let dek = random_source_dek();
    let ctx = ctx_for(&dek);
    let blob = dek.seal(&ctx, b"secret narrative").expect("seal");
    let mut other = ctx;
    modify(&mut other);
    assert_ne!(other, ctx, "the test must actually change the context");
    dek.open(&other, &blob).map(|_| ())
}

#[test]
fn value_opened_with_another_row_id_fails() {
    let r = open_in_other_context(|c| c.row_id = Uuid::new_v4());
    assert_eq!(r, Err(FieldError::Integrity));
}

#[test]
fn value_opened_with_another_column_fails() {
    let r = open_in_other_context(|c| c.column = "summary");
    assert_eq!(r, Err(FieldError::Integrity));
}

#[test]
fn value_opened_with_another_table_fails() {
    let r = open_in_other_context(|c| c.table = "reviews");
    assert_eq!(r, Err(FieldError::Integrity));
}

#[test]
fn value_opened_with_another_owner_fails() {
    let r = open_in_other_context(|c| c.owner = Owner::Source(Uuid::new_v4()));
    assert_eq!(r, Err(FieldError::Integrity));
    let r = open_in_other_context(|c| c.owner = Owner::System);
    assert_eq!(r, Err(FieldError::Integrity));
}

#[test]
fn value_opened_with_another_key_fails() {
    let dek = random_source_dek();
    let ctx = ctx_for(&dek);
    let blob = dek.seal(&ctx, b"secret").expect("seal");
    let other = DataKey::generate(dek.owner()).expect("rng");
    assert_eq!(other.open(&ctx, &blob).map(|_| ()), Err(FieldError::Integrity));
}

/// Flips one bit at `index` of a fresh blob and opens it.
fn open_with_flipped_bit(index: impl FnOnce(usize) -> usize, bit: u8) -> Result<(), FieldError> {
    let dek = random_source_dek();
    let ctx = ctx_for(&dek);
    let mut blob = dek.seal(&ctx, b"0123456789").expect("seal");
    let i = index(blob.len());
    blob[i] ^= 1 << bit;
    dek.open(&ctx, &blob).map(|_| ())
}

#[test]
fn flipped_bit_in_version_byte_fails() {
    for bit in 0..8 {
        assert_eq!(open_with_flipped_bit(|_| 0, bit), Err(FieldError::Integrity));
    }
}

#[test]
fn flipped_bit_in_key_id_fails() {
    assert_eq!(open_with_flipped_bit(|_| 1, 0), Err(FieldError::Integrity));
    assert_eq!(open_with_flipped_bit(|_| 16, 7), Err(FieldError::Integrity));
}

#[test]
fn flipped_bit_in_nonce_fails() {
    assert_eq!(open_with_flipped_bit(|_| 17, 0), Err(FieldError::Integrity));
    assert_eq!(open_with_flipped_bit(|_| 28, 7), Err(FieldError::Integrity));
}

#[test]
fn flipped_bit_in_ciphertext_fails() {
    assert_eq!(open_with_flipped_bit(|_| 29, 0), Err(FieldError::Integrity));
    assert_eq!(open_with_flipped_bit(|len| len - 17, 3), Err(FieldError::Integrity));
}

#[test]
fn flipped_bit_in_tag_fails() {
    assert_eq!(open_with_flipped_bit(|len| len - 16, 0), Err(FieldError::Integrity));
    assert_eq!(open_with_flipped_bit(|len| len - 1, 7), Err(FieldError::Integrity));
}

#[test]
fn truncated_blob_fails() {
    let dek = random_source_dek();
    let ctx = ctx_for(&dek);
    let blob = dek.seal(&ctx, b"0123456789").expect("seal");
    for len in 0..blob.len() {
        assert_eq!(dek.open(&ctx, &blob[..len]).map(|_| ()), Err(FieldError::Integrity), "prefix of {len} bytes");
    }
}

#[test]
fn blob_shorter_than_header_fails_everywhere() {
    let dek = random_source_dek();
    let ctx = ctx_for(&dek);
    let mut short = vec![0x01];
    short.extend_from_slice(dek.id().as_bytes());
    short.extend_from_slice(&[0u8; 5]);
    assert_eq!(dek.open(&ctx, &short).map(|_| ()), Err(FieldError::Integrity));
    assert_eq!(key_id_of(&short), Err(FieldError::Integrity));
    assert_eq!(key_id_of(&[]), Err(FieldError::Integrity));
}

#[test]
fn key_id_of_reads_the_header() {
    let dek = random_source_dek();
    let blob = dek.seal(&ctx_for(&dek), b"v").expect("seal");
    assert_eq!(key_id_of(&blob), Ok(dek.id()));
    let mut other_version = blob.clone();
    other_version[0] = 0x02;
    assert_eq!(key_id_of(&other_version), Err(FieldError::Integrity));
}

#[test]
fn sealing_for_another_owner_is_refused() {
    let dek = random_source_dek();
    let ctx = FieldContext::new("contacts", "narrative", Uuid::new_v4(), Owner::System);
    assert_eq!(dek.seal(&ctx, b"v"), Err(FieldError::OwnerMismatch));
}

#[test]
fn context_names_outside_the_alphabet_are_refused() {
    let dek = random_source_dek();
    for (table, column) in [
        ("", "narrative"),
        ("contacts", ""),
        ("contacts|x", "narrative"),
        ("contacts", "narr|ative"),
        ("Contacts", "narrative"),
        ("contacts", "narrative "),
    ] {
        let ctx = FieldContext::new(table, column, Uuid::new_v4(), dek.owner());
        assert_eq!(dek.seal(&ctx, b"v"), Err(FieldError::InvalidContext), "{table}/{column}");
        assert_eq!(dek.open(&ctx, &[0u8; 64]).map(|_| ()), Err(FieldError::InvalidContext));
    }
}

#[test]
fn a_million_seals_under_one_key_repeat_no_nonce() {
    let dek = random_source_dek();
    let ctx = ctx_for(&dek);
    let mut seen: HashSet<[u8; 12]> = HashSet::with_capacity(1_000_000);
    for _ in 0..1_000_000 {
        let blob = dek.seal(&ctx, b"").expect("seal");
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&blob[17..29]);
        assert!(seen.insert(nonce), "nonce repeated");
    }
    assert_eq!(seen.len(), 1_000_000);
}

#[test]
fn data_key_debug_is_redacted() {
    let dek = super::vector_dek1();
    assert_eq!(
        format!("{dek:?}"),
        "DataKey(id=6f0c6f4e-5a3b-4c1d-9e2f-0a1b2c3d4e5f, \
         owner=9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a, <redacted>)"
    );
}
