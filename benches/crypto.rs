//! Cost of field encryption next to ring's raw AES-256-GCM.
//!
//! `cargo bench --bench crypto`. The "ring_raw" group keeps one
//! `LessSafeKey` and a counter nonce: the floor any envelope could reach.
//! The difference to "field" is humint's per-call overhead: the random
//! nonce from the OS, the AAD string, the output buffer, and building the
//! AES key schedule per call (see src/crypto/aead.rs for why).

#![expect(clippy::expect_used, reason = "benchmark setup: a panic aborts the run")]

use std::hint::black_box;
use std::time::Duration;

use chrono::NaiveDate;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use uuid::Uuid;

use humint::crypto::{DataKey, FieldContext, Keyring, Owner, blind_index};

const SIZES: [usize; 2] = [100, 4096];

fn field(c: &mut Criterion) {
    let dek = DataKey::generate(Owner::Source(Uuid::new_v4())).expect("rng");
    let ctx = FieldContext::new("contacts", "narrative", Uuid::new_v4(), dek.owner());
    let mut group = c.benchmark_group("field");
    for size in SIZES {
        let plaintext = vec![0x5a; size];
        let blob = dek.seal(&ctx, &plaintext).expect("seal");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &plaintext, |b, p| {
            b.iter(|| dek.seal(black_box(&ctx), black_box(p)).expect("seal"))
        });
        group.bench_with_input(BenchmarkId::new("open", size), &blob, |b, blob| {
            b.iter(|| dek.open(black_box(&ctx), black_box(blob)).expect("open"))
        });
    }
    group.finish();
}

fn ring_raw(c: &mut Criterion) {
    let key_bytes = [0x42u8; 32];
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).expect("key"));
    let aad = b"humint/v1|contacts|narrative|1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5|9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
    let mut group = c.benchmark_group("ring_raw");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5a; size];
        let mut counter = 0u64;
        group.bench_function(BenchmarkId::new("seal", size), |b| {
            b.iter(|| {
                counter += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad[..]),
                    black_box(&mut buf),
                )
                .expect("seal")
            })
        });
        // Same, but with the key schedule built every call as humint does.
        group.bench_function(BenchmarkId::new("seal_key_per_call", size), |b| {
            b.iter(|| {
                counter += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, black_box(&key_bytes)).expect("key"));
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad[..]),
                    black_box(&mut buf),
                )
                .expect("seal")
            })
        });
    }
    group.finish();
}

fn dek_unwrap(c: &mut Criterion) {
    let keyring = Keyring::generate().expect("keyring");
    let kek = keyring.kek(1).expect("kek 1");
    let wrapped = DataKey::generate(Owner::Source(Uuid::new_v4())).expect("rng").wrap(kek).expect("wrap");
    c.bench_function("dek/unwrap", |b| b.iter(|| black_box(&wrapped).unwrap(kek).expect("unwrap")));
}

fn blind(c: &mut Criterion) {
    let keyring = Keyring::generate().expect("keyring");
    let key = keyring.blind_index_key();
    let dob = NaiveDate::from_ymd_opt(1971, 3, 9);
    c.bench_function("blind_index", |b| {
        b.iter(|| blind_index(key, black_box("  José   ÁLVAREZ García "), black_box(dob)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = field, ring_raw, dek_unwrap, blind
}
criterion_main!(benches);
