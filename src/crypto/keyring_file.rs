//! Reading and writing the keyring file: owner-only permissions, atomic
//! creation that never overwrites, atomic replacement for rotation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::KeyringError;
use super::keyring::Keyring;
use super::keyring_format;
use super::random;

/// A keyring with many rotations is a few tens of KiB; anything far larger
/// is not a keyring and is not read into memory.
const MAX_KEYRING_FILE_LEN: u64 = 1024 * 1024;

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> KeyringError + '_ {
    move |source| KeyringError::Read { path: path.to_owned(), source }
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> KeyringError + '_ {
    move |source| KeyringError::Write { path: path.to_owned(), source }
}

/// Refuses a keyring that group or others can access in any way. Checked
/// on the open handle, so the file checked is the file read.
#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), KeyringError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), KeyringError> {
    Ok(())
}

/// Opens a new file that must not exist yet, readable and writable by its
/// owner only (the mode is set at creation, so there is no window in which
/// the file is readable by others, and set again to undo any umask).
fn create_owner_only(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a completed rename or link durable: the directory entry itself
/// must reach the disk, not only the file's data.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to a fresh owner-only temporary file beside `path`,
/// flushed to disk, and returns its path.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, KeyringError> {
    let name = path.file_name().ok_or_else(|| KeyringError::Write {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    let dir = parent_dir(path);
    let mut suffix = [0u8; 8];
    random::fill(&mut suffix)?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", hex::encode(suffix)));
    let temp = dir.join(temp_name);

    let mut file = create_owner_only(&temp).map_err(write_err(&temp))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(KeyringError::Write { path: temp, source });
    }
    Ok(temp)
}

impl Keyring {
    /// Loads and validates a keyring file.
    ///
    /// Refuses (on unix) a file whose mode grants group or others any
    /// access, a file that is not a regular file or is implausibly large,
    /// and any content that is not a valid `humint-keyring/v1` document.
    pub fn load(path: impl AsRef<Path>) -> Result<Keyring, KeyringError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(read_err(path))?;
        let meta = file.metadata().map_err(read_err(path))?;
        if !meta.is_file() {
            return Err(KeyringError::NotAFile { path: path.to_owned() });
        }
        check_permissions(path, &meta)?;
        if meta.len() > MAX_KEYRING_FILE_LEN {
            return Err(KeyringError::TooLarge { path: path.to_owned(), len: meta.len() });
        }
        // Sized up front so the buffer holding the secrets never reallocates
        // (a reallocation would leave an unwiped copy behind).
        let capacity = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        file.take(MAX_KEYRING_FILE_LEN + 1).read_to_end(&mut bytes).map_err(read_err(path))?;
        keyring_format::parse(&bytes)
    }

    /// Creates a new keyring file with mode 0600, atomically, and never
    /// over an existing file (`humint keys init --out FILE`).
    ///
    /// The content is written and flushed to a temporary file in the same
    /// directory, then hard-linked to `path`: the link fails if `path`
    /// exists, and readers see either no file or the complete file.
    pub fn save_new(&self, path: impl AsRef<Path>) -> Result<(), KeyringError> {
        let path = path.as_ref();
        let json = keyring_format::serialise(self)?;
        let temp = write_temp(path, &json)?;
        let linked = fs::hard_link(&temp, path);
        // The temporary name must not outlive this call: a stray copy of
        // every key is a fault the operator has to hear about.
        let removed = fs::remove_file(&temp);
        match linked {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(KeyringError::AlreadyExists { path: path.to_owned() });
            }
            Err(source) => {
                return Err(KeyringError::Write { path: path.to_owned(), source });
            }
            Ok(()) => {}
        }
        removed.map_err(write_err(&temp))?;
        sync_dir(parent_dir(path)).map_err(write_err(path))
    }

    /// Replaces the keyring file atomically (after `add_kek_version` or
    /// `remove_kek_version`): a fresh 0600 temporary file in the same
    /// directory, flushed, then renamed over `path`. Readers see the old or
    /// the new file, never a mixture.
    pub fn save_replace(&self, path: impl AsRef<Path>) -> Result<(), KeyringError> {
        let path = path.as_ref();
        let json = keyring_format::serialise(self)?;
        let temp = write_temp(path, &json)?;
        if let Err(source) = fs::rename(&temp, path) {
            let _ = fs::remove_file(&temp);
            return Err(KeyringError::Write { path: path.to_owned(), source });
        }
        sync_dir(parent_dir(path)).map_err(write_err(path))
    }
}
