//! Wrapping DEKs under KEKs.

use uuid::Uuid;

use super::super::data_key::DataKey;
use super::super::dek::WRAPPED_KEY_LEN;
use super::super::error::DekError;
use super::super::field::FieldContext;
use super::super::keys::Kek;
use super::super::owner::Owner;
use super::{counting_key, random_source_dek, vector_kek1};

fn kek(version: u32, first_byte: u8) -> Kek {
    Kek::from_parts(version, chrono::Utc::now(), counting_key(first_byte)).expect("kek")
}

#[test]
fn wrap_then_unwrap_gives_the_same_key() {
    let dek = random_source_dek();
    let ctx = FieldContext::new("sources", "legal_name", Uuid::new_v4(), dek.owner());
    let blob = dek.seal(&ctx, b"Jane Roe").expect("seal");

    let wrapped = dek.wrap(&vector_kek1()).expect("wrap");
    assert_eq!(wrapped.wrapped.len(), WRAPPED_KEY_LEN);
    assert_eq!(wrapped.id, dek.id());
    assert_eq!(wrapped.owner, dek.owner());
    assert_eq!(wrapped.kek_version, 1);
    assert_ne!(&wrapped.wrapped[12..44], dek.key_bytes().as_slice());

    let back = wrapped.unwrap(&vector_kek1()).expect("unwrap");
    assert_eq!(back.id(), dek.id());
    assert_eq!(back.owner(), dek.owner());
    assert_eq!(back.open(&ctx, &blob).expect("open").as_slice(), b"Jane Roe");
}

#[test]
fn system_dek_wraps_and_unwraps() {
    let dek = DataKey::generate(Owner::System).expect("rng");
    let back = dek.wrap(&vector_kek1()).expect("wrap").unwrap(&vector_kek1()).expect("unwrap");
    assert_eq!(back.owner(), Owner::System);
    assert_eq!(back.key_bytes(), dek.key_bytes());
}

#[test]
fn wrapped_dek_moved_to_another_owner_fails_to_unwrap() {
    let dek = random_source_dek();
    let mut wrapped = dek.wrap(&vector_kek1()).expect("wrap");
    wrapped.owner = Owner::Source(Uuid::new_v4());
    assert_eq!(wrapped.unwrap(&vector_kek1()).map(|_| ()), Err(DekError::Integrity));
    wrapped.owner = Owner::System;
    assert_eq!(wrapped.unwrap(&vector_kek1()).map(|_| ()), Err(DekError::Integrity));
}

#[test]
fn unwrap_under_other_kek_bytes_fails() {
    let wrapped = random_source_dek().wrap(&kek(1, 0x40)).expect("wrap");
    assert_eq!(wrapped.unwrap(&kek(1, 0x41)).map(|_| ()), Err(DekError::Integrity));
}

#[test]
fn unwrap_with_wrong_kek_version_is_a_precise_error() {
    let wrapped = random_source_dek().wrap(&kek(1, 0x40)).expect("wrap");
    assert_eq!(
        wrapped.unwrap(&kek(2, 0x40)).map(|_| ()),
        Err(DekError::KekVersionMismatch { wrapped_under: 1, given: 2 })
    );
}

#[test]
fn tampered_or_truncated_wrapped_key_fails() {
    let wrapped = random_source_dek().wrap(&vector_kek1()).expect("wrap");
    for i in 0..WRAPPED_KEY_LEN {
        let mut bad = wrapped.clone();
        bad.wrapped[i] ^= 0x01;
        assert_eq!(bad.unwrap(&vector_kek1()).map(|_| ()), Err(DekError::Integrity), "byte {i}");
    }
    for len in 0..WRAPPED_KEY_LEN {
        let mut bad = wrapped.clone();
        bad.wrapped.truncate(len);
        assert_eq!(bad.unwrap(&vector_kek1()).map(|_| ()), Err(DekError::Integrity));
    }
    let mut long = wrapped.clone();
    long.wrapped.push(0);
    assert_eq!(long.unwrap(&vector_kek1()).map(|_| ()), Err(DekError::Integrity));
}

#[test]
fn rewrap_moves_a_dek_to_the_new_kek_version() {
    let dek = random_source_dek();
    let (old, new) = (kek(1, 0x40), kek(2, 0x80));
    let wrapped = dek.wrap(&old).expect("wrap");
    let rewrapped = wrapped.rewrap(&old, &new).expect("rewrap");
    assert_eq!(rewrapped.kek_version, 2);
    assert_eq!(rewrapped.id, dek.id());
    assert_ne!(rewrapped.wrapped, wrapped.wrapped);
    let back = rewrapped.unwrap(&new).expect("unwrap");
    assert_eq!(back.key_bytes(), dek.key_bytes());
    assert!(rewrapped.unwrap(&old).is_err());
}

#[test]
fn kek_debug_is_redacted() {
    assert_eq!(format!("{:?}", kek(7, 0x40)), "Kek(version=7, <redacted>)");
}
