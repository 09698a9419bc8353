//! The keyring in memory: generation, rotation, redaction, strict parsing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

use super::super::error::KeyringError;
use super::super::keyring::{KEYRING_FORMAT, Keyring};
use super::super::keyring_format::{parse, serialise};
use super::super::keys::audit_key_id;

/// Every secret byte string of a keyring, for "never printed" checks.
fn secrets(k: &Keyring) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = k.keks().map(|kek| kek.key_bytes().to_vec()).collect();
    out.push(k.blind_index_key().key_bytes().to_vec());
    for (_, pkcs8) in k.token_signing_keys() {
        out.push(pkcs8.to_vec());
        // ring's PKCS#8 v2 layout puts the 32-byte seed at offset 16.
        out.push(pkcs8[16..48].to_vec());
    }
    out.push(k.audit_key().pkcs8_der().to_vec());
    out.push(k.audit_key().pkcs8_der()[16..48].to_vec());
    out
}

fn assert_no_secret_in(text: &str, k: &Keyring) {
    for secret in secrets(k) {
        for form in [
            BASE64.encode(&secret),
            hex::encode(&secret),
            hex::encode_upper(&secret),
            format!("{secret:?}"),
            // A prefix catches partial leaks (a base64 line split, a slice).
            BASE64.encode(&secret[..12]),
            hex::encode(&secret[..12]),
        ] {
            assert!(!text.contains(&form), "secret leaked as {form}");
        }
    }
}

fn rotated_keyring() -> Keyring {
    let mut k = Keyring::generate().expect("generate");
    k.add_kek_version().expect("rotate");
    k
}

#[test]
fn generate_makes_version_1_and_one_active_token_key() {
    let k = Keyring::generate().expect("generate");
    assert_eq!(k.latest_kek_version(), 1);
    assert_eq!(k.kek(1).map(|kek| kek.version()), Some(1));
    assert!(k.kek(0).is_none() && k.kek(2).is_none());
    assert_eq!(k.token_signing_keys().count(), 1);
    let (kid, _) = k.active_token_key();
    assert_eq!(kid.len(), 16);
    assert!(kid.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(k.audit_key().key_id(), audit_key_id(k.audit_key().public_key()));
}

#[test]
fn generated_keys_are_distinct() {
    let a = Keyring::generate().expect("generate");
    let b = Keyring::generate().expect("generate");
    assert_ne!(a.kek(1).map(|k| *k.key_bytes()), b.kek(1).map(|k| *k.key_bytes()));
    assert_ne!(a.kek(1).map(|k| *k.key_bytes()), Some(*a.blind_index_key().key_bytes()));
    assert_ne!(a.active_token_key().0, b.active_token_key().0);
}

#[test]
fn ed25519_keys_are_usable_pkcs8_v2() {
    let k = Keyring::generate().expect("generate");
    for der in [k.active_token_key().1, k.audit_key().pkcs8_der()] {
        let pair = Ed25519KeyPair::from_pkcs8(der).expect("PKCS#8 v2");
        let sig = pair.sign(b"humint-audit-checkpoint\n1\n00\n");
        UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
            .verify(b"humint-audit-checkpoint\n1\n00\n", sig.as_ref())
            .expect("verifies");
    }
    let (kid, _) = k.active_token_key();
    let entry = k.token_key(kid).expect("active key has an entry");
    let pair = Ed25519KeyPair::from_pkcs8(entry.pkcs8_der()).expect("parse");
    assert_eq!(pair.public_key().as_ref(), entry.public_key());
}

#[test]
fn keyring_debug_is_pinned_and_shows_no_key_material() {
    let k = rotated_keyring();
    let debug = format!("{k:?}");
    let expected = format!(
        "Keyring {{ latest_kek: Kek(version=2, <redacted>), \
         older_keks: [Kek(version=1, <redacted>)], \
         blind_index_key: BlindIndexKey(<redacted>), \
         active_token_key: TokenSigningKey(kid={}, <redacted>), \
         other_token_keys: [], \
         audit_key: AuditKey(key_id={}, <redacted>) }}",
        k.active_token_key().0,
        k.audit_key().key_id()
    );
    assert_eq!(debug, expected);
    assert_no_secret_in(&debug, &k);
    assert_no_secret_in(&format!("{k:#?}"), &k);
}

#[test]
fn status_lists_versions_and_public_keys_only() {
    let k = rotated_keyring();
    let status = k.status();
    assert_eq!(status.format, KEYRING_FORMAT);
    let versions: Vec<u32> = status.kek_versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(status.latest_kek_version, 2);
    assert_eq!(status.active_token_kid, k.active_token_key().0);
    assert_eq!(status.token_signing_keys.len(), 1);
    assert!(status.token_signing_keys[0].active);
    assert_eq!(status.audit_checkpoint_key.key_id, k.audit_key().key_id());
    assert_eq!(status.audit_checkpoint_key.public_key, BASE64.encode(k.audit_key().public_key()));
    let text = serde_json::to_string(&status).expect("serialise");
    assert_no_secret_in(&text, &k);
    assert_no_secret_in(&format!("{status:?}"), &k);
}

#[test]
fn add_and_remove_kek_versions() {
    let mut k = Keyring::generate().expect("generate");
    assert_eq!(k.add_kek_version().expect("add"), 2);
    assert_eq!(k.add_kek_version().expect("add"), 3);
    assert_eq!(k.latest_kek_version(), 3);
    assert!(k.kek(2).is_some());
    k.remove_kek_version(1).expect("retire 1");
    assert!(k.kek(1).is_none());
    assert!(matches!(k.remove_kek_version(1), Err(KeyringError::UnknownKekVersion(1))));
    assert!(matches!(k.remove_kek_version(3), Err(KeyringError::CannotRemoveLatestKek(3))));
    k.remove_kek_version(2).expect("retire 2");
    // Numbers never come back, even after every older version is gone.
    assert_eq!(k.add_kek_version().expect("add"), 4);
    assert_eq!(k.keks().map(|kek| kek.version()).collect::<Vec<_>>(), vec![3, 4]);
}

#[test]
fn serialise_then_parse_preserves_every_key() {
    let k = rotated_keyring();
    let json = serialise(&k).expect("serialise");
    let back = parse(&json).expect("parse");
    assert_eq!(back.status(), k.status());
    for (a, b) in k.keks().zip(back.keks()) {
        assert_eq!(a.key_bytes(), b.key_bytes());
    }
    assert_eq!(k.blind_index_key().key_bytes(), back.blind_index_key().key_bytes());
    assert_eq!(k.active_token_key(), back.active_token_key());
    assert_eq!(k.audit_key().pkcs8_der(), back.audit_key().pkcs8_der());
}

#[test]
fn serialised_file_has_the_documented_shape() {
    let k = rotated_keyring();
    let v: Value = serde_json::from_slice(&serialise(&k).expect("serialise")).expect("json");
    let obj = v.as_object().expect("object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["active_token_kid", "audit_checkpoint_key", "blind_index_key", "format", "keks", "token_signing_keys"]
    );
    assert_eq!(v["format"], "humint-keyring/v1");
    assert_eq!(v["keks"][0]["version"], 1);
    assert_eq!(v["keks"][1]["version"], 2);
    let key = BASE64.decode(v["keks"][1]["key"].as_str().expect("str")).expect("b64");
    assert_eq!(key.as_slice(), k.kek(2).expect("v2").key_bytes());
}

/// Serialises a fresh keyring, lets `edit` change the JSON, and parses.
fn parse_edited(edit: impl FnOnce(&mut Value)) -> Result<Keyring, KeyringError> {
    let k = rotated_keyring();
    let mut v: Value = serde_json::from_slice(&serialise(&k).expect("serialise")).expect("json");
    edit(&mut v);
    parse(&serde_json::to_vec(&v).expect("to_vec"))
}

/// A change to the JSON, and the test the resulting error must pass.
type Edit = Box<dyn FnOnce(&mut Value)>;
type Expect = fn(&KeyringError) -> bool;

#[test]
fn parsing_rejects_every_broken_rule_precisely() {
    let b64_31 = BASE64.encode([7u8; 31]);
    let b64_33 = BASE64.encode([7u8; 33]);
    let cases: Vec<(&str, Edit, Expect)> = vec![
        (
            "unknown top-level field",
            Box::new(|v| v["extra"] = json!(1)),
            |e| matches!(e, KeyringError::Malformed { reason, .. } if reason.contains("unknown field")),
        ),
        ("unknown kek field", Box::new(|v| v["keks"][0]["note"] = json!("x")), |e| {
            matches!(e, KeyringError::Malformed { .. })
        }),
        (
            "other format",
            Box::new(|v| v["format"] = json!("humint-keyring/v2")),
            |e| matches!(e, KeyringError::UnsupportedFormat { found } if found == "humint-keyring/v2"),
        ),
        (
            "missing format",
            Box::new(|v| {
                v.as_object_mut().expect("obj").remove("format");
            }),
            |e| matches!(e, KeyringError::Malformed { .. }),
        ),
        (
            "kek 31 bytes",
            Box::new(move |v| v["keks"][1]["key"] = json!(b64_31)),
            |e| matches!(e, KeyringError::BadKeyLength { field, expected: 32, found: 31 } if field == "keks[1].key"),
        ),
        ("blind key 33 bytes", Box::new(move |v| v["blind_index_key"] = json!(b64_33)), |e| {
            matches!(e, KeyringError::BadKeyLength { expected: 32, found: 33, .. })
        }),
        (
            "bad base64",
            Box::new(|v| v["keks"][0]["key"] = json!("not*base64")),
            |e| matches!(e, KeyringError::BadBase64 { field } if field == "keks[0].key"),
        ),
        (
            "url-safe unpadded base64",
            Box::new(|v| v["blind_index_key"] = json!("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")),
            |e| matches!(e, KeyringError::BadBase64 { .. }),
        ),
        ("duplicate version", Box::new(|v| v["keks"][1]["version"] = json!(1)), |e| {
            matches!(e, KeyringError::DuplicateKekVersion(1))
        }),
        ("version zero", Box::new(|v| v["keks"][0]["version"] = json!(0)), |e| {
            matches!(e, KeyringError::ZeroKekVersion)
        }),
        ("negative version", Box::new(|v| v["keks"][0]["version"] = json!(-1)), |e| {
            matches!(e, KeyringError::Malformed { .. })
        }),
        ("no kek", Box::new(|v| v["keks"] = json!([])), |e| matches!(e, KeyringError::NoKek)),
        ("no token key", Box::new(|v| v["token_signing_keys"] = json!([])), |e| matches!(e, KeyringError::NoTokenKey)),
        (
            "active kid missing",
            Box::new(|v| v["active_token_kid"] = json!("nope")),
            |e| matches!(e, KeyringError::ActiveKidMissing(kid) if kid == "nope"),
        ),
        (
            "duplicate kid",
            Box::new(|v| {
                let first = v["token_signing_keys"][0].clone();
                v["token_signing_keys"].as_array_mut().expect("array").push(first);
            }),
            |e| matches!(e, KeyringError::DuplicateKid(_)),
        ),
        (
            "kid with a space",
            Box::new(|v| {
                v["token_signing_keys"][0]["kid"] = json!("a b");
                v["active_token_kid"] = json!("a b");
            }),
            |e| matches!(e, KeyringError::BadKid(_)),
        ),
        (
            "token key not pkcs8",
            Box::new(|v| v["token_signing_keys"][0]["pkcs8"] = json!(BASE64.encode([1u8; 85]))),
            |e| matches!(e, KeyringError::BadPkcs8 { field } if field == "token_signing_keys[0].pkcs8"),
        ),
        ("audit key id mismatch", Box::new(|v| v["audit_checkpoint_key"]["key_id"] = json!("0000000000000000")), |e| {
            matches!(e, KeyringError::AuditKeyIdMismatch { .. })
        }),
        (
            "audit key not pkcs8",
            Box::new(|v| v["audit_checkpoint_key"]["pkcs8"] = json!(BASE64.encode([0u8; 32]))),
            |e| matches!(e, KeyringError::BadPkcs8 { .. }),
        ),
        ("bad timestamp", Box::new(|v| v["keks"][0]["created_at"] = json!("yesterday")), |e| {
            matches!(e, KeyringError::Malformed { .. })
        }),
    ];
    for (name, edit, expected) in cases {
        match parse_edited(edit) {
            Ok(_) => panic!("case {name}: parsed"),
            Err(e) => assert!(expected(&e), "case {name}: got {e:?}"),
        }
    }
}

#[test]
fn parse_errors_never_echo_values_from_the_file() {
    let k = rotated_keyring();
    let mut v: Value = serde_json::from_slice(&serialise(&k).expect("serialise")).expect("json");
    let key_b64 = v["keks"][0]["key"].as_str().expect("str").to_owned();
    // A key pasted where a number belongs: serde would quote it.
    v["keks"][0]["version"] = json!(key_b64.clone());
    let err = parse(&serde_json::to_vec(&v).expect("to_vec")).expect_err("must fail");
    assert!(matches!(err, KeyringError::Malformed { .. }));
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&key_b64), "{text}");
    assert!(!text.contains(&key_b64[..8]), "{text}");
}

#[test]
fn not_json_is_malformed() {
    assert!(matches!(parse(b"{"), Err(KeyringError::Malformed { .. })));
    assert!(matches!(parse(b""), Err(KeyringError::Malformed { .. })));
    assert!(matches!(parse(b"[]"), Err(KeyringError::Malformed { .. })));
}
