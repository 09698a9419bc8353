//! The keyring file on disk: permissions, atomic create, atomic replace.

use std::fs;
use std::path::{Path, PathBuf};

use super::super::error::KeyringError;
use super::super::keyring::Keyring;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("humint-crypto-test-{}", uuid::Uuid::new_v4()));
        fs::create_dir(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Names in the directory, to prove no temporary file is left behind.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn save_new_then_load_round_trips() {
    let dir = TempDir::new();
    let path = dir.path("keyring.json");
    let k = Keyring::generate().expect("generate");
    k.save_new(&path).expect("save_new");
    #[cfg(unix)]
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(dir.entries(), ["keyring.json"]);
    let back = Keyring::load(&path).expect("load");
    assert_eq!(back.status(), k.status());
    assert_eq!(back.kek(1).map(|x| *x.key_bytes()), k.kek(1).map(|x| *x.key_bytes()));
}

#[test]
fn save_new_refuses_to_overwrite() {
    let dir = TempDir::new();
    let path = dir.path("keyring.json");
    fs::write(&path, b"precious").expect("write");
    let k = Keyring::generate().expect("generate");
    let err = k.save_new(&path).expect_err("must refuse");
    assert!(matches!(err, KeyringError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(fs::read(&path).expect("read"), b"precious");
    assert_eq!(dir.entries(), ["keyring.json"]);
}

#[test]
fn save_replace_rotates_atomically() {
    let dir = TempDir::new();
    let path = dir.path("keyring.json");
    let mut k = Keyring::generate().expect("generate");
    k.save_new(&path).expect("save_new");
    k.add_kek_version().expect("rotate");
    k.save_replace(&path).expect("save_replace");
    #[cfg(unix)]
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(dir.entries(), ["keyring.json"]);
    let back = Keyring::load(&path).expect("load");
    assert_eq!(back.latest_kek_version(), 2);
    assert_eq!(back.kek(2).map(|x| *x.key_bytes()), k.kek(2).map(|x| *x.key_bytes()));
}

#[cfg(unix)]
#[test]
fn load_refuses_files_open_to_group_or_others() {
    let dir = TempDir::new();
    let path = dir.path("keyring.json");
    Keyring::generate().expect("generate").save_new(&path).expect("save");
    for mode in [0o640, 0o604, 0o644, 0o660, 0o602, 0o610, 0o601] {
        set_mode(&path, mode);
        match Keyring::load(&path) {
            Err(KeyringError::InsecurePermissions { mode: found, .. }) => {
                assert_eq!(found, mode)
            }
            other => panic!("mode {mode:o}: {other:?}"),
        }
    }
    set_mode(&path, 0o644);
    let message = Keyring::load(&path).expect_err("refused").to_string();
    assert!(message.contains("mode 0644"), "{message}");
    assert!(message.contains("chmod 600"), "{message}");
    set_mode(&path, 0o400);
    Keyring::load(&path).expect("owner read-only is fine");
}

#[test]
fn load_reports_missing_and_non_regular_files() {
    let dir = TempDir::new();
    assert!(matches!(Keyring::load(dir.path("absent.json")), Err(KeyringError::Read { .. })));
    assert!(matches!(Keyring::load(&dir.0), Err(KeyringError::NotAFile { .. })));
}

#[cfg(unix)]
#[test]
fn load_refuses_oversized_files() {
    let dir = TempDir::new();
    let path = dir.path("keyring.json");
    fs::write(&path, vec![b' '; 2 * 1024 * 1024]).expect("write");
    set_mode(&path, 0o600);
    assert!(matches!(Keyring::load(&path), Err(KeyringError::TooLarge { .. })));
}

#[cfg(unix)]
#[test]
fn load_rejects_invalid_content_after_permission_check() {
    let dir = TempDir::new();
    let path = dir.path("keyring.json");
    fs::write(&path, b"{\"format\":\"humint-keyring/v1\"}").expect("write");
    set_mode(&path, 0o600);
    assert!(matches!(Keyring::load(&path), Err(KeyringError::Malformed { .. })));
}
