//! Where master keys come from: `HOOKRELAY_MASTER_KEY` (parsed by
//! [`parse_list`]) or the key file `master.key` in the data directory.
//!
//! The file holds one base64 key per line, newest (the one that encrypts)
//! first; blank lines and `#` comments are ignored. It is created with mode
//! 0600 at first start, and refused when group or others may read it. It is
//! rewritten only by `hookrelay keys rotate|retire`, through a 0600 temp
//! file renamed over it, so a crash never leaves it half-written.

use std::io::Write;
use std::path::Path;

use base64::Engine;

use crate::{Key, KeyError, Keyring, KEY_LEN};

/// The key file's name inside the data directory.
pub const FILE_NAME: &str = "master.key";

const HEADER: &str = "# hookrelay master keys: one base64 AES-256 key per line, newest first.\n\
# The first encrypts; all decrypt. Manage with `hookrelay keys`. Keep a copy\n\
# away from the data directory: without it the stored payloads are lost.\n";

/// Parses one base64 key; `what` names it in the error.
pub fn parse_key(text: &str, what: &str) -> Result<Key, KeyError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; KEY_LEN]>::try_from(b).ok())
        .ok_or_else(|| KeyError::Malformed {
            what: what.to_owned(),
        })?;
    Ok(Key::from_bytes(bytes))
}

/// Parses `HOOKRELAY_MASTER_KEY`: one base64 key, or a comma-separated list
/// newest first (the project's rotation convention, as for webhook secrets).
pub fn parse_list(value: &str, source: &str) -> Result<Vec<Key>, KeyError> {
    let keys = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, k)| parse_key(k, &format!("{source}, key {}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Keyring::new(&keys)?;
    Ok(keys)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the key file, refusing it if its mode is too open.
pub fn read(path: &Path) -> Result<Vec<Key>, KeyError> {
    check_mode(path)?;
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let keys = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| parse_key(l, &format!("{}, line {}", path.display(), n + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Keyring::new(&keys)?;
    Ok(keys)
}

/// Reads the key file in `data_dir`, creating it with one fresh key if it
/// does not exist. Returns the keys and whether the file was created.
pub fn load_or_create(data_dir: &Path) -> Result<(Vec<Key>, bool), KeyError> {
    let path = data_dir.join(FILE_NAME);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok((read(&path)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
            let key = Key::generate();
            let mut file = create_private(&path)?;
            write_keys(&mut file, std::slice::from_ref(&key)).map_err(io(&path))?;
            sync_dir(data_dir)?;
            Ok((vec![key], true))
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// Replaces the key file with `keys` (newest first), atomically.
pub fn write(path: &Path, keys: &[Key]) -> Result<(), KeyError> {
    Keyring::new(keys)?;
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = create_private(&tmp)?;
    write_keys(&mut file, keys).map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn write_keys(file: &mut std::fs::File, keys: &[Key]) -> std::io::Result<()> {
    let mut text = String::from(HEADER);
    for key in keys {
        text.push_str(&key.to_base64());
        text.push('\n');
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Creates a new file readable by its owner only (mode set at creation, so
/// the key is never readable by others, not even for an instant).
fn create_private(path: &Path) -> Result<std::fs::File, KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Refuses a key file that group or others may read or write.
fn check_mode(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
