//! Verification throughput over 100,000 synthetic events (target: >= 500,000 events/s on one
//! core in release). Run: `cargo bench --bench audit_verify`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use humint::audit::{AuditRecord, ChainTip, ChainedEvent, CheckpointVerifier, Outcome, verify_chain};

const EVENTS: u64 = 100_000;

/// Events shaped like real ones: UUIDs, a purpose on a fifth of them, mostly ASCII.
fn synthetic_chain() -> Vec<ChainedEvent> {
    let mut tip = ChainTip::genesis();
    (0..EVENTS)
        .map(|i| {
            let rec = AuditRecord {
                seq: 0,
                at: format!("2026-11-28T10:{:02}:{:02}.{:06}Z", i / 60 % 60, i % 60, i % 1_000_000),
                actor_id: Some(format!("6f1c2a9e-3b7d-4c1e-9a2f-{i:012}")),
                actor_username: Some("h.martin".into()),
                action: "source.identity.read".into(),
                resource_type: Some("source".into()),
                resource_id: Some(format!("0b8e4d2c-7a61-4f3e-8c5d-{i:012}")),
                source_id: Some(format!("0b8e4d2c-7a61-4f3e-8c5d-{i:012}")),
                purpose: (i % 5 == 0).then(|| "Opération \"SAHEL-7\" — vérification".into()),
                outcome: Outcome::Allowed,
                reason: Some("rule:handler_assignment".into()),
                request_id: Some(format!("5d0f7a3b-1c2e-4b6a-9e8d-{i:012}")),
                client_ip: Some("203.0.113.7".into()),
            };
            match tip.append(rec) {
                Ok(e) => e,
                Err(e) => panic!("append: {e}"),
            }
        })
        .collect()
}

fn bench_verify(c: &mut Criterion) {
    let events = synthetic_chain();
    // No checkpoints: the cost measured is the per-event work (encode, hash, compare).
    let verifier = match CheckpointVerifier::from_public_key(&[0u8; 32]) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    let mut group = c.benchmark_group("audit_verify");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(20);
    group.bench_function("borrowed_100k", |b| {
        b.iter(|| {
            let report = verify_chain(&events, &[], &verifier);
            assert!(report.valid);
            report
        })
    });
    // Owned events, as a database page iterator yields them (cloning is in the setup).
    group.bench_function("owned_100k", |b| {
        b.iter_batched(
            || events.clone(),
            |owned| {
                let report = verify_chain(owned, &[], &verifier);
                assert!(report.valid);
                report
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
