//! Tampering cases against the verifier: each asserts the exact first bad seq and failure kind.

use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;

use super::*;

fn record(i: i64) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: format!("2026-11-28T10:00:{:02}.{:06}Z", i % 60, i * 37 % 1_000_000),
        actor_id: (i % 3 != 0).then(|| format!("00000000-0000-4000-8000-{i:012}")),
        actor_username: Some(format!("user.{i}")),
        action: if i % 2 == 0 { "source.identity.read".into() } else { "auth.login.failed".into() },
        resource_type: (i % 2 == 0).then(|| "source".into()),
        resource_id: None,
        source_id: (i % 4 == 0).then(|| format!("11111111-0000-4000-8000-{i:012}")),
        purpose: (i % 5 == 0).then(|| format!("Opération \"SAHEL-{i}\" — vérification\t😀")),
        outcome: if i % 2 == 0 { Outcome::Allowed } else { Outcome::Denied },
        reason: Some("rule:handler_assignment".into()),
        request_id: Some(format!("req-{i}")),
        client_ip: Some("203.0.113.7".into()),
    }
}

/// A valid chain of `n` events, seq 1..=n.
fn chain(n: i64) -> Vec<ChainedEvent> {
    let mut tip = ChainTip::genesis();
    (1..=n)
        .map(|i| match tip.append(record(i)) {
            Ok(e) => e,
            Err(e) => panic!("append: {e}"),
        })
        .collect()
}

/// Recomputes prev_hash/hash from index `from` on, as an attacker with write access would.
fn rehash_from(events: &mut [ChainedEvent], from: usize) {
    let mut prev = if from == 0 { GENESIS_PREV_HASH } else { events[from - 1].hash };
    for e in &mut events[from..] {
        e.prev_hash = prev;
        e.hash = chain_hash(&prev, &e.record);
        prev = e.hash;
    }
}

fn signer() -> AuditSigner {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new());
    let pkcs8 = pkcs8.map(|d| d.as_ref().to_vec()).unwrap_or_default();
    match AuditSigner::from_pkcs8(&pkcs8, "audit-test".into()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn verifier(s: &AuditSigner) -> CheckpointVerifier {
    match s.verifier() {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn cp_at(s: &AuditSigner, events: &[ChainedEvent], seq: i64) -> Checkpoint {
    let idx = usize::try_from(seq - 1).unwrap_or(usize::MAX);
    s.sign_unchecked(seq, &events[idx].hash)
}

/// Rows as read `ORDER BY seq`.
fn by_seq(mut events: Vec<ChainedEvent>) -> Vec<ChainedEvent> {
    events.sort_by_key(|e| e.record.seq);
    events
}

fn outcome(r: &VerificationReport) -> (bool, Option<FailureKind>, Option<i64>) {
    (r.valid, r.failure, r.first_invalid_seq)
}

fn failed(kind: FailureKind, seq: i64) -> (bool, Option<FailureKind>, Option<i64>) {
    (false, Some(kind), Some(seq))
}

const VALID: (bool, Option<FailureKind>, Option<i64>) = (true, None, None);

#[test]
fn untouched_chain_is_valid_with_head_and_latest_checkpoint() {
    let s = signer();
    let ev = chain(12);
    let cps = [cp_at(&s, &ev, 6), cp_at(&s, &ev, 12)];
    let r = verify_chain(&ev, &cps, &verifier(&s));
    assert_eq!(outcome(&r), VALID);
    assert_eq!(r.checked, 12);
    assert_eq!(r.head, Some((12, hex::encode(ev[11].hash))));
    assert_eq!(r.latest_checkpoint.as_ref(), Some(&cps[1]));
    let proof = r.verified().map(|v| (v.head_seq(), *v.head_hash(), v.from_genesis()));
    assert_eq!(proof, Some((12, ev[11].hash, true)));
}

#[test]
fn checkpoints_may_be_given_in_any_order() {
    let s = signer();
    let ev = chain(12);
    let cps = [cp_at(&s, &ev, 12), cp_at(&s, &ev, 3), cp_at(&s, &ev, 6)];
    let r = verify_chain(&ev, &cps, &verifier(&s));
    assert_eq!(outcome(&r), VALID);
    assert_eq!(r.latest_checkpoint.as_ref(), Some(&cps[0]));
}

#[test]
fn empty_chain_is_valid_with_no_head() {
    let s = signer();
    let r = verify_chain(Vec::<ChainedEvent>::new(), &[], &verifier(&s));
    assert_eq!(outcome(&r), VALID);
    assert_eq!((r.checked, r.head.clone()), (0, None));
    let proof = r.verified().map(|v| (v.head_seq(), *v.head_hash()));
    assert_eq!(proof, Some((0, GENESIS_PREV_HASH)));
}

#[test]
fn empty_chain_with_a_checkpoint_is_truncated_at_1() {
    let s = signer();
    let ev = chain(3);
    let r = verify_chain(Vec::<ChainedEvent>::new(), &[cp_at(&s, &ev, 3)], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::Truncated, 1));
    assert!(r.verified().is_none());
}

#[test]
fn edited_field_fails_hash_at_that_seq_for_every_field() {
    let s = signer();
    type Edit = fn(&mut AuditRecord);
    let edits: [(&str, Edit); 12] = [
        ("at", |r| r.at.replace_range(0..4, "2025")),
        ("actor_id", |r| r.actor_id = Some("someone-else".into())),
        ("actor_username", |r| r.actor_username = None),
        ("action", |r| r.action = "source.read".into()),
        ("resource_type", |r| r.resource_type = Some("contact".into())),
        ("resource_id", |r| r.resource_id = Some("x".into())),
        ("source_id", |r| r.source_id = Some("y".into())),
        ("purpose", |r| r.purpose = Some("Opération \"SAHEL-8\"".into())),
        ("outcome", |r| r.outcome = Outcome::Allowed),
        ("reason", |r| r.reason = Some("rule:other".into())),
        ("request_id", |r| r.request_id = None),
        ("client_ip", |r| r.client_ip = Some("198.51.100.1".into())),
    ];
    for (field, edit) in edits {
        let mut ev = chain(10);
        edit(&mut ev[6].record);
        let r = verify_chain(&ev, &[], &verifier(&s));
        assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 7), "{field}");
        assert_eq!(r.checked, 10, "later events are still counted");
    }
}

#[test]
fn edited_prev_hash_fails_hash_at_that_seq() {
    let s = signer();
    let mut ev = chain(10);
    ev[4].prev_hash[0] ^= 1;
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 5));
}

#[test]
fn edited_stored_hash_fails_hash_at_that_seq() {
    let s = signer();
    let mut ev = chain(10);
    ev[4].hash[31] ^= 1;
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 5));
}

#[test]
fn edited_and_rehashed_event_breaks_the_link_of_the_next() {
    let s = signer();
    let mut ev = chain(10);
    ev[6].record.purpose = Some("covering tracks".into());
    ev[6].hash = chain_hash(&ev[6].prev_hash, &ev[6].record);
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::BrokenLink, 8));
}

#[test]
fn deleted_event_is_a_gap_at_its_seq() {
    let s = signer();
    let mut ev = chain(10);
    ev.remove(4);
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::SeqGap, 5));
    assert_eq!(r.head, Some((10, hex::encode(ev[8].hash))));
}

#[test]
fn deleted_first_event_is_a_gap_at_1() {
    let s = signer();
    let mut ev = chain(5);
    ev.remove(0);
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::SeqGap, 1));
}

#[test]
fn deleted_event_with_later_seqs_renumbered_fails_hash_at_its_seq() {
    let s = signer();
    let mut ev = chain(10);
    ev.remove(4);
    for e in &mut ev[4..] {
        e.record.seq -= 1;
    }
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 5));
}

#[test]
fn duplicated_row_is_a_gap_at_the_expected_seq() {
    let s = signer();
    let mut ev = chain(6);
    ev.insert(3, ev[2].clone());
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::SeqGap, 4));
}

#[test]
fn events_swapped_by_exchanging_seq_values_fail_at_the_lower_seq() {
    let s = signer();
    let mut ev = chain(10);
    ev[2].record.seq = 4;
    ev[3].record.seq = 3;
    let ev = by_seq(ev);
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 3));
}

#[test]
fn events_swapped_by_exchanging_contents_fail_at_the_lower_seq() {
    let s = signer();
    let mut ev = chain(10);
    let (a, b) = (ev[2].record.clone(), ev[3].record.clone());
    ev[2].record = AuditRecord { seq: 3, ..b };
    ev[3].record = AuditRecord { seq: 4, ..a };
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 3));
}

#[test]
fn whole_rows_swapped_keeping_seq_fail_at_the_lower_seq() {
    let s = signer();
    let mut ev = chain(10);
    ev.swap(2, 3);
    ev[2].record.seq = 3;
    ev[3].record.seq = 4;
    let r = verify_chain(&ev, &[], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 3));
}

#[test]
fn swapped_and_rehashed_tail_is_caught_only_by_a_checkpoint() {
    let s = signer();
    let original = chain(10);
    let cp = cp_at(&s, &original, 10);
    let mut ev = original.clone();
    let (a, b) = (ev[7].record.clone(), ev[8].record.clone());
    ev[7].record = AuditRecord { seq: 8, ..b };
    ev[8].record = AuditRecord { seq: 9, ..a };
    rehash_from(&mut ev, 7);
    assert_eq!(outcome(&verify_chain(&ev, &[], &verifier(&s))), VALID);
    let r = verify_chain(&ev, &[cp], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::CheckpointMismatch, 10));
}

#[test]
fn truncated_tail_is_caught_by_a_checkpoint_beyond_the_head() {
    let s = signer();
    let original = chain(12);
    let cps = [cp_at(&s, &original, 6), cp_at(&s, &original, 12)];
    let ev = &original[..10];
    let r = verify_chain(ev, &cps, &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::Truncated, 11));
    assert_eq!(r.checked, 10);
    assert_eq!(r.head, Some((10, hex::encode(original[9].hash))));
    assert_eq!(r.latest_checkpoint.as_ref(), Some(&cps[0]));
    // Without the checkpoint a prefix of a valid chain is valid: the documented limit.
    assert_eq!(outcome(&verify_chain(ev, &cps[..1], &verifier(&s))), VALID);
}

#[test]
fn altered_checkpoint_signature_fails_at_its_seq() {
    let s = signer();
    let ev = chain(12);
    let mut cps = [cp_at(&s, &ev, 6), cp_at(&s, &ev, 12)];
    cps[0].signature_b64 = cp_at(&s, &ev, 7).signature_b64;
    let r = verify_chain(&ev, &cps, &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::CheckpointSignature, 6));
    assert!(r.verified().is_none());
}

#[test]
fn checkpoint_signed_by_another_key_fails_signature() {
    let s = signer();
    let ev = chain(5);
    let cp = cp_at(&signer(), &ev, 5);
    let r = verify_chain(&ev, &[cp], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::CheckpointSignature, 5));
}

#[test]
fn checkpoint_with_unknown_key_id_fails_signature() {
    let s = signer();
    let ev = chain(5);
    let mut cp = cp_at(&s, &ev, 5);
    cp.key_id = "audit-old".into();
    let r = verify_chain(&ev, &[cp], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::CheckpointSignature, 5));
}

#[test]
fn rewritten_tail_fails_the_checkpoint_at_its_seq() {
    let s = signer();
    let original = chain(12);
    let cps = [cp_at(&s, &original, 6), cp_at(&s, &original, 12)];
    let mut ev = original.clone();
    ev[8].record.outcome = Outcome::Allowed;
    ev[8].record.reason = Some("rule:controller_unit".into());
    rehash_from(&mut ev, 8);
    let r = verify_chain(&ev, &cps, &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::CheckpointMismatch, 12));
    assert_eq!(r.latest_checkpoint.as_ref(), Some(&cps[0]));
}

#[test]
fn checkpoint_columns_disagreeing_with_note_fail_as_mismatch() {
    let s = signer();
    let ev = chain(8);
    let mut cp = cp_at(&s, &ev, 4);
    cp.seq = 7;
    let r = verify_chain(&ev, &[cp], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::CheckpointMismatch, 4));
}

#[test]
fn event_failure_wins_over_a_checkpoint_failure_at_the_same_seq() {
    let s = signer();
    let mut ev = chain(8);
    let cp = cp_at(&s, &ev, 6);
    ev[5].record.action = "edited".into();
    let r = verify_chain(&ev, &[cp], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 6));
}

#[test]
fn earlier_event_failure_wins_over_a_later_bad_checkpoint() {
    let s = signer();
    let mut ev = chain(8);
    let mut cp = cp_at(&s, &ev, 6);
    cp.signature_b64 = cp_at(&s, &ev, 5).signature_b64;
    ev[2].record.action = "edited".into();
    let r = verify_chain(&ev, &[cp], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 3));
}

#[test]
fn earlier_bad_checkpoint_wins_over_a_later_event_failure() {
    let s = signer();
    let mut ev = chain(8);
    let mut cp = cp_at(&s, &ev, 2);
    cp.signature_b64 = cp_at(&s, &ev, 5).signature_b64;
    ev[6].record.action = "edited".into();
    let r = verify_chain(&ev, &[cp], &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::CheckpointSignature, 2));
}

#[test]
fn two_signed_checkpoints_disagreeing_at_one_seq_fail_as_mismatch() {
    let s = signer();
    let ev = chain(8);
    let cps = [cp_at(&s, &ev, 5), s.sign_unchecked(5, &[9; 32])];
    let r = verify_chain(&ev, &cps, &verifier(&s));
    assert_eq!(outcome(&r), failed(FailureKind::CheckpointMismatch, 5));
}

#[test]
fn unreadable_row_fails_hash_at_its_seq() {
    let s = signer();
    let ev = chain(6);
    let mut v = ChainVerifier::new(&[], &verifier(&s));
    ev[..3].iter().for_each(|e| v.push(e));
    v.push_unreadable(4);
    ev[4..].iter().for_each(|e| v.push(e));
    let r = v.finish();
    assert_eq!(outcome(&r), failed(FailureKind::HashMismatch, 4));
    assert_eq!(r.checked, 6);
}

#[test]
fn unreadable_last_row_reports_head_without_hash() {
    let s = signer();
    let ev = chain(3);
    let mut v = ChainVerifier::new(&[], &verifier(&s));
    ev.iter().for_each(|e| v.push(e));
    v.push_unreadable(7);
    let r = v.finish();
    assert_eq!(outcome(&r), failed(FailureKind::SeqGap, 4));
    assert_eq!(r.head, Some((7, String::new())));
}

#[test]
fn feeding_pages_gives_the_same_report_as_one_pass() {
    let s = signer();
    let ev = chain(25);
    let cps = [cp_at(&s, &ev, 10), cp_at(&s, &ev, 20)];
    let mut tampered = ev.clone();
    tampered[17].record.client_ip = None;
    for events in [&ev, &tampered] {
        let mut v = ChainVerifier::new(&cps, &verifier(&s));
        for page in events.chunks(7) {
            page.iter().for_each(|e| v.push(e));
        }
        assert_eq!(v.finish(), verify_chain(events, &cps, &verifier(&s)));
    }
}

#[test]
fn has_failed_lets_the_caller_stop_paging() {
    let s = signer();
    let mut ev = chain(5);
    ev[1].record.action = "edited".into();
    let mut v = ChainVerifier::new(&[], &verifier(&s));
    v.push(&ev[0]);
    assert!(!v.has_failed());
    v.push(&ev[1]);
    assert!(v.has_failed());
}

#[test]
fn api_view_has_the_contract_fields() {
    let s = signer();
    let ev = chain(3);
    let cp = cp_at(&s, &ev, 3);
    let r = verify_chain(&ev, std::slice::from_ref(&cp), &verifier(&s));
    let json = serde_json::to_value(r.api_view()).unwrap_or_default();
    let expected = serde_json::json!({
        "valid": true,
        "checked": 3,
        "head": {"seq": 3, "hash": hex::encode(ev[2].hash)},
        "first_invalid_seq": null,
        "checkpoint": {
            "seq": 3, "hash": cp.hash_hex, "note": cp.note,
            "signature": cp.signature_b64, "key_id": "audit-test"
        },
        "failure": null
    });
    assert_eq!(json, expected);
    let mut bad = ev.clone();
    bad.remove(1);
    let r = verify_chain(&bad, &[], &verifier(&s));
    let json = serde_json::to_value(r.api_view()).unwrap_or_default();
    assert_eq!(json["first_invalid_seq"], 2);
    assert_eq!(json["failure"], "seq_gap");
    assert_eq!(json["valid"], false);
}

// ---- signer side: resume, and never signing an inconsistent checkpoint ----

fn verified(s: &AuditSigner, cp: &Checkpoint) -> VerifiedCheckpoint {
    match verifier(s).verify(cp) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn proof(r: VerificationReport) -> VerifiedChain {
    match r.into_verified() {
        Some(v) => v,
        None => panic!("chain did not verify"),
    }
}

#[test]
fn first_checkpoint_signs_the_verified_head() {
    let s = signer();
    let ev = chain(4);
    let head = proof(verify_chain(&ev, &[], &verifier(&s)));
    let target = next_checkpoint(None, &head);
    let cp = target.map(|t| t.map(|t| s.sign(&t)));
    assert_eq!(cp, Ok(Some(cp_at(&s, &ev, 4))));
}

#[test]
fn empty_chain_needs_no_checkpoint() {
    let s = signer();
    let head = proof(verify_chain(Vec::<ChainedEvent>::new(), &[], &verifier(&s)));
    assert_eq!(next_checkpoint(None, &head), Ok(None));
}

#[test]
fn resumed_verification_extends_the_last_checkpoint() {
    let s = signer();
    let ev = chain(9);
    let last = verified(&s, &cp_at(&s, &ev, 5));
    let mut v = ChainVerifier::resume_after(&last);
    ev[5..].iter().for_each(|e| v.push(e));
    let head = proof(v.finish());
    assert!(!head.from_genesis());
    let target = next_checkpoint(Some(&last), &head);
    let signed = target.map(|t| t.map(|t| s.sign(&t)));
    assert_eq!(signed, Ok(Some(cp_at(&s, &ev, 9))));
}

#[test]
fn resumed_verification_refuses_a_chain_not_linked_to_the_anchor() {
    let s = signer();
    let original = chain(9);
    let last = verified(&s, &cp_at(&s, &original, 5));
    let mut ev = original.clone();
    ev[4].record.action = "rewritten".into();
    rehash_from(&mut ev, 4);
    let mut v = ChainVerifier::resume_after(&last);
    ev[5..].iter().for_each(|e| v.push(e));
    assert_eq!(outcome(&v.finish()), failed(FailureKind::BrokenLink, 6));
}

#[test]
fn full_verification_through_the_last_checkpoint_allows_the_next() {
    let s = signer();
    let ev = chain(9);
    let cp = cp_at(&s, &ev, 5);
    let head = proof(verify_chain(&ev, std::slice::from_ref(&cp), &verifier(&s)));
    let target = next_checkpoint(Some(&verified(&s, &cp)), &head);
    assert_eq!(target.map(|t| t.map(|t| (t.seq(), *t.hash()))), Ok(Some((9, ev[8].hash))));
}

#[test]
fn no_new_checkpoint_when_head_is_the_last_checkpoint() {
    let s = signer();
    let ev = chain(5);
    let cp = cp_at(&s, &ev, 5);
    let head = proof(verify_chain(&ev, std::slice::from_ref(&cp), &verifier(&s)));
    assert_eq!(next_checkpoint(Some(&verified(&s, &cp)), &head), Ok(None));
    let resumed = proof(ChainVerifier::resume_after(&verified(&s, &cp)).finish());
    assert_eq!(next_checkpoint(Some(&verified(&s, &cp)), &resumed), Ok(None));
}

#[test]
fn refuses_to_sign_behind_the_last_checkpoint() {
    let s = signer();
    let ev = chain(9);
    let last = verified(&s, &cp_at(&s, &ev, 9));
    let head = proof(verify_chain(&ev[..6], &[], &verifier(&s)));
    assert_eq!(next_checkpoint(Some(&last), &head), Err(ConsistencyError::Rollback { last_seq: 9, head_seq: 6 }));
}

#[test]
fn refuses_to_sign_a_chain_not_verified_through_the_last_checkpoint() {
    let s = signer();
    let original = chain(9);
    let last = verified(&s, &cp_at(&s, &original, 5));
    // The chain was rewritten below the last checkpoint and verified without it.
    let mut ev = original.clone();
    ev[2].record.action = "rewritten".into();
    rehash_from(&mut ev, 2);
    let head = proof(verify_chain(&ev, &[], &verifier(&s)));
    assert_eq!(next_checkpoint(Some(&last), &head), Err(ConsistencyError::NotExtending { last_seq: 5 }));
    // Even the honest chain must have been verified through it, not merely past it.
    let honest = proof(verify_chain(&original, &[], &verifier(&s)));
    assert_eq!(next_checkpoint(Some(&last), &honest), Err(ConsistencyError::NotExtending { last_seq: 5 }));
}

#[test]
fn a_matched_older_checkpoint_does_not_vouch_for_the_last_one() {
    let s = signer();
    let original = chain(9);
    let cp3 = cp_at(&s, &original, 3);
    let last = verified(&s, &cp_at(&s, &original, 5));
    let mut ev = original.clone();
    ev[3].record.action = "rewritten".into();
    rehash_from(&mut ev, 3);
    let head = proof(verify_chain(&ev, std::slice::from_ref(&cp3), &verifier(&s)));
    assert_eq!(next_checkpoint(Some(&last), &head), Err(ConsistencyError::NotExtending { last_seq: 5 }));
}
