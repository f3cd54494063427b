//! Where a `listen` stopped: its default group name, derived from the
//! machine and the `--forward` URL, and one cursor file per (group, bucket)
//! holding the id of the last event handled.
//!
//! The group decides what "resume" means: a restarted `listen` to the same
//! URL on the same machine finds its cursor and goes on from there; a
//! `listen` to another URL (or on another machine) is another group with
//! its own cursor, so each receives every event.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// `listen-<host>-<8 hex digits of the forward URL's hash>`.
pub(super) fn default_group(host: &str, forward: &str) -> String {
    let host: String = host
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let host = if host.is_empty() { "host".into() } else { host };
    format!("listen-{host}-{:08x}", fnv1a(forward.as_bytes()) as u32)
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust releases and
/// machines (std's `DefaultHasher` promises neither), so a group name
/// survives an upgrade of the binary.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// This machine's name: `HOSTNAME`, else the kernel's, else `hostname`.
pub(super) fn machine_name() -> String {
    if let Some(name) = std::env::var_os("HOSTNAME").and_then(|v| v.into_string().ok()) {
        if !name.trim().is_empty() {
            return name;
        }
    }
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        return name.trim().to_owned();
    }
    std::process::Command::new("hostname")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The default directory of cursor files: `$XDG_STATE_HOME/hookrelay`, else
/// `~/.local/state/hookrelay`, else `./.hookrelay-state`.
pub(super) fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("hookrelay");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/hookrelay"),
        None => PathBuf::from(".hookrelay-state"),
    }
}

/// The cursor file of one (group, bucket).
pub(super) struct CursorFile {
    path: PathBuf,
}

impl CursorFile {
    pub(super) fn new(state_dir: &Path, group: &str, bucket: &str) -> Self {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        Self {
            path: state_dir
                .join("listen")
                .join(format!("{}.{}.cursor", safe(group), safe(bucket))),
        }
    }

    /// The saved event id, if any.
    pub(super) fn load(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let id = text.trim();
        (!id.is_empty()).then(|| id.to_owned())
    }

    /// Saves `id` by writing a temporary file and renaming it over the old
    /// one, so a crash leaves the old cursor or the new one, never half.
    pub(super) fn save(&self, id: &str) -> anyhow::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = self.path.with_extension("cursor.tmp");
        std::fs::write(&tmp, id).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_depends_on_machine_and_url_only() {
        let a = default_group("Dev-Box.local", "http://localhost:3000/hook");
        assert!(a.starts_with("listen-dev-box-local-"), "{a}");
        assert_eq!(
            a,
            default_group("Dev-Box.local", "http://localhost:3000/hook")
        );
        assert_ne!(
            a,
            default_group("Dev-Box.local", "http://localhost:4000/hook")
        );
        assert_ne!(a, default_group("other", "http://localhost:3000/hook"));
        // Pinned: a group name must not change between releases.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_cursor_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = CursorFile::new(dir.path(), "listen-x", "prod/../x");
        assert_eq!(file.load(), None);
        file.save("evt_1").unwrap();
        file.save("evt_2").unwrap();
        assert_eq!(
            CursorFile::new(dir.path(), "listen-x", "prod/../x")
                .load()
                .as_deref(),
            Some("evt_2")
        );
        assert_eq!(
            CursorFile::new(dir.path(), "listen-y", "prod/../x").load(),
            None
        );
    }
}
