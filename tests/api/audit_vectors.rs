//! Named negative (and one positive) test vectors for the audit chain, stored as JSON files in
//! tests/vectors/audit/ so that independent verifiers can run them too. One table maps each
//! vector to its expected result; the files are rebuilt here from the same recipe and must
//! match byte for byte (to rewrite them after a deliberate change, run this one test with
//! HUMINT_REGEN_AUDIT_VECTORS=1: `cargo test --test audit_vectors vector_files_match`).

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use humint::audit::{
    AuditRecord, AuditSigner, ChainTip, ChainVerifier, ChainedEvent, Checkpoint, CheckpointVerifier, FailureKind,
    Outcome, chain_hash, next_checkpoint, verify_chain,
};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

/// INSECURE fixed test key: seed bytes 0x00..=0x1f. Never used outside tests and examples.
fn insecure_test_signer() -> AuditSigner {
    let seed: Vec<u8> = (0u8..32).collect();
    let public = match Ed25519KeyPair::from_seed_unchecked(&seed) {
        Ok(kp) => kp.public_key().as_ref().to_vec(),
        Err(e) => panic!("{e}"),
    };
    // PKCS#8 v2 as ring writes it: fixed prefix, seed, [1] public key.
    let mut pkcs8 = hex::decode("3051020101300506032b657004220420").unwrap_or_default();
    pkcs8.extend_from_slice(&seed);
    pkcs8.extend_from_slice(&[0x81, 0x21, 0x00]);
    pkcs8.extend_from_slice(&public);
    match AuditSigner::from_pkcs8(&pkcs8, "audit-insecure-test-1".into()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    valid: bool,
    failure: Option<FailureKind>,
    first_invalid_seq: Option<i64>,
    checked: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    name: String,
    description: String,
    /// Raw Ed25519 public key, standard base64.
    public_key: String,
    /// Rows as a verifier reads them: ordered by seq.
    events: Vec<ChainedEvent>,
    checkpoints: Vec<Checkpoint>,
    expected: Expected,
}

/// Expected failure kind and first invalid seq; `None` for a valid chain.
type Failure = Option<(FailureKind, i64)>;

/// The table: vector name -> expected (failure, events checked).
const TABLE: &[(&str, Failure, u64)] = &[
    ("valid_chain", None, 12),
    ("chain_gap", Some((FailureKind::SeqGap, 5)), 11),
    ("deleted_first", Some((FailureKind::SeqGap, 1)), 11),
    ("edited_field", Some((FailureKind::HashMismatch, 7)), 12),
    ("edited_field_rehashed", Some((FailureKind::BrokenLink, 8)), 12),
    ("swapped_events", Some((FailureKind::HashMismatch, 3)), 12),
    ("swapped_contents", Some((FailureKind::HashMismatch, 3)), 12),
    ("truncated_tail", Some((FailureKind::Truncated, 11)), 10),
    ("checkpoint_bad_sig", Some((FailureKind::CheckpointSignature, 6)), 12),
    ("checkpoint_mismatch", Some((FailureKind::CheckpointMismatch, 12)), 12),
];

fn record(i: i64) -> AuditRecord {
    let uuid = |prefix: &str| format!("{prefix}-7a61-4f3e-8c5d-{i:012}");
    let login_failure = i % 3 == 2;
    let denied = login_failure || i % 4 == 3;
    AuditRecord {
        seq: 0,
        at: format!("2026-11-28T10:{:02}:{:02}.{:06}Z", i, (i * 7) % 60, (i * 104_729) % 1_000_000),
        actor_id: (!login_failure).then(|| uuid("3f2b8c1d")),
        actor_username: Some(["h.martin", "c.ward", "j.doe"][(i % 3) as usize].into()),
        action: match i % 3 {
            0 => "source.identity.read",
            1 => "contact.create",
            _ => "auth.login.failed",
        }
        .into(),
        resource_type: (!login_failure).then(|| "source".into()),
        resource_id: (!login_failure).then(|| uuid("0b8e4d2c")),
        source_id: (!login_failure).then(|| uuid("0b8e4d2c")),
        purpose: (i % 3 == 0).then(|| format!("Opération \"SAHEL-{i}\" — vérification\\n°{i}")),
        outcome: if denied { Outcome::Denied } else { Outcome::Allowed },
        reason: Some(
            match (login_failure, denied) {
                (true, _) => "bad_credentials",
                (false, true) => "not_assigned",
                (false, false) => "rule:handler_assignment",
            }
            .into(),
        ),
        request_id: Some(uuid("e4d3c2b1")),
        client_ip: Some(if i % 2 == 0 { "198.51.100.23" } else { "2001:db8::17" }.into()),
    }
}

/// Twelve events with checkpoints at 6 and 12, signed through the consistency-checked path.
fn base() -> (AuditSigner, Vec<ChainedEvent>, Vec<Checkpoint>) {
    let signer = insecure_test_signer();
    let verifier = verifier(&signer);
    let mut tip = ChainTip::genesis();
    let events: Vec<ChainedEvent> = (1..=12)
        .map(|i| match tip.append(record(i)) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        })
        .collect();
    let first = verify_chain(&events[..6], &[], &verifier).into_verified();
    let cp6 = match first.as_ref().map(|v| next_checkpoint(None, v)) {
        Some(Ok(Some(t))) => signer.sign(&t),
        other => panic!("first checkpoint: {other:?}"),
    };
    let last = match verifier.verify(&cp6) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    let mut resumed = ChainVerifier::resume_after(&last);
    events[6..].iter().for_each(|e| resumed.push(e));
    let cp12 = match resumed.finish().verified().map(|v| next_checkpoint(Some(&last), v)) {
        Some(Ok(Some(t))) => signer.sign(&t),
        other => panic!("second checkpoint: {other:?}"),
    };
    (signer, events, vec![cp6, cp12])
}

fn verifier(signer: &AuditSigner) -> CheckpointVerifier {
    match CheckpointVerifier::from_public_key(signer.public_key()) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn rehash_from(events: &mut [ChainedEvent], from: usize) {
    for i in from..events.len() {
        let prev = if i == 0 { [0; 32] } else { events[i - 1].hash };
        events[i].prev_hash = prev;
        events[i].hash = chain_hash(&prev, &events[i].record);
    }
}

/// Builds one vector by tampering with the base chain the way its name says.
fn build(name: &str) -> (String, Vec<ChainedEvent>, Vec<Checkpoint>) {
    let (_signer, mut ev, mut cps) = base();
    let description = match name {
        "valid_chain" => "untouched chain of 12 events, checkpoints at 6 and 12",
        "chain_gap" => "event 5 deleted",
        "deleted_first" => "event 1 deleted",
        "edited_field" => "purpose of event 7 edited, stored hash left as it was",
        "edited_field_rehashed" => "purpose of event 7 edited and its own hash recomputed; event 8 no longer links",
        "swapped_events" => "the seq values of events 3 and 4 exchanged (rows re-read by seq)",
        "swapped_contents" => "the 12 non-seq fields of events 3 and 4 exchanged, chain columns left as they were",
        "truncated_tail" => "events 11 and 12 deleted; the checkpoint at 12 remains",
        "checkpoint_bad_sig" => "signature of the checkpoint at 6 replaced by one over another note",
        "checkpoint_mismatch" => {
            "event 9 edited and every hash from 9 on recomputed; only the checkpoint at 12 disagrees"
        }
        other => panic!("no recipe for vector {other}"),
    };
    match name {
        "chain_gap" => {
            ev.remove(4);
        }
        "deleted_first" => {
            ev.remove(0);
        }
        "edited_field" => ev[6].record.purpose = Some("Opération \"SAHEL-8\"".into()),
        "edited_field_rehashed" => {
            ev[6].record.purpose = Some("Opération \"SAHEL-8\"".into());
            ev[6].hash = chain_hash(&ev[6].prev_hash, &ev[6].record);
        }
        "swapped_events" => {
            ev[2].record.seq = 4;
            ev[3].record.seq = 3;
            ev.sort_by_key(|e| e.record.seq);
        }
        "swapped_contents" => {
            let (a, b) = (ev[2].record.clone(), ev[3].record.clone());
            ev[2].record = AuditRecord { seq: 3, ..b };
            ev[3].record = AuditRecord { seq: 4, ..a };
        }
        "truncated_tail" => ev.truncate(10),
        "checkpoint_bad_sig" => {
            let other = Ed25519KeyPair::from_seed_unchecked(&[0x42; 32]);
            let sig = match other {
                Ok(kp) => kp.sign(cps[0].note.as_bytes()),
                Err(e) => panic!("{e}"),
            };
            cps[0].signature_b64 = BASE64.encode(sig.as_ref());
        }
        "checkpoint_mismatch" => {
            ev[8].record.outcome = Outcome::Allowed;
            ev[8].record.reason = Some("rule:controller_unit".into());
            rehash_from(&mut ev, 8);
        }
        _ => {}
    }
    (description.to_owned(), ev, cps)
}

fn expected_from_table(name: &str) -> Expected {
    let Some((_, failure, checked)) = TABLE.iter().find(|(n, _, _)| *n == name) else {
        panic!("{name} not in table");
    };
    Expected {
        valid: failure.is_none(),
        failure: failure.map(|(k, _)| k),
        first_invalid_seq: failure.map(|(_, s)| s),
        checked: *checked,
    }
}

fn vector_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/audit")
}

fn render(name: &str) -> String {
    let (description, events, checkpoints) = build(name);
    let v = Vector {
        name: name.to_owned(),
        description,
        public_key: BASE64.encode(insecure_test_signer().public_key()),
        events,
        checkpoints,
        expected: expected_from_table(name),
    };
    match serde_json::to_string_pretty(&v) {
        Ok(s) => s + "\n",
        Err(e) => panic!("{e}"),
    }
}

fn load(name: &str) -> Vector {
    let path = vector_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn every_vector_gives_its_expected_result() {
    for (name, _, _) in TABLE {
        let v = load(name);
        let key = BASE64.decode(&v.public_key).unwrap_or_default();
        let verifier = match CheckpointVerifier::from_public_key(&key) {
            Ok(v) => v,
            Err(e) => panic!("{name}: {e}"),
        };
        let report = verify_chain(&v.events, &v.checkpoints, &verifier);
        let got = Expected {
            valid: report.valid,
            failure: report.failure,
            first_invalid_seq: report.first_invalid_seq,
            checked: report.checked,
        };
        assert_eq!(got, expected_from_table(name), "vector {name}");
        assert_eq!(v.expected, got, "vector {name}: file's own expectation");
        assert_eq!(v.name, *name);
    }
}

#[test]
fn vector_directory_holds_exactly_the_table() {
    let mut on_disk: Vec<String> = std::fs::read_dir(vector_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(n, _, _)| format!("{n}.json")).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn vector_files_match_their_recipe() {
    let regen = std::env::var("HUMINT_REGEN_AUDIT_VECTORS").is_ok_and(|v| v == "1");
    for (name, _, _) in TABLE {
        let path = vector_dir().join(format!("{name}.json"));
        let fresh = render(name);
        if regen {
            std::fs::create_dir_all(vector_dir()).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, &fresh).unwrap_or_else(|e| panic!("{e}"));
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(stored == fresh, "{name}.json differs from its recipe");
    }
}
