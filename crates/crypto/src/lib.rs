//! Encryption at rest for hookrelay: a [`Keyring`] of AES-256-GCM keys named
//! by [`KeyId`], which seals a record's secret bytes under its active key and
//! opens them under whichever key sealed them; and the master key file
//! ([`keyfile`]).
//!
//! Depends on no other hookrelay crate, so every store backend (SQLite
//! today, Redis later) seals the same way and a backend only ever sees
//! ciphertext. Start with [`Keyring::seal`] and [`Keyring::open`].
//!
//! # Sealed format
//! `[1: format 0x01][4: key id, big-endian][12: random nonce][ciphertext][16: GCM tag]`,
//! 33 bytes over the plaintext. The caller passes the record's id as the
//! associated data, so a ciphertext copied onto another record fails to open.
//! Nonces are random (96 bits): NIST SP 800-38D bounds one key to 2^32
//! seals, so rotate well before four billion records under one key.

pub mod keyfile;

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Bytes a sealed record carries beyond its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// A key's public name: the first four bytes of SHA-256 over a label and the
/// key, shown as 8 hex digits. Derived rather than numbered, so the same key
/// has the same id whether it came from the environment or the key file,
/// and the id reveals nothing usable about the key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl std::str::FromStr for KeyId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        if s.len() != 8 {
            return Err(KeyError::BadId(s.to_owned()));
        }
        u32::from_str_radix(s, 16)
            .map(KeyId)
            .map_err(|_| KeyError::BadId(s.to_owned()))
    }
}

/// One AES-256 key. `Debug` shows its id only.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; KEY_LEN],
    id: KeyId,
}

impl Key {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"hookrelay key id\0")
            .chain_update(bytes)
            .finalize();
        let id = KeyId(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]));
        Self { bytes, id }
    }

    /// A fresh key from the operating system's CSPRNG (via `rand`).
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// A key for another purpose than sealing, named by `label` (e.g. the
    /// nodes' shared key for node-to-node requests): SHA-256 over a label
    /// and this key. The key is 256 uniformly random bits, so a hash with a
    /// distinct label per purpose is a sound derivation, and the derived
    /// key reveals nothing of the master key or of another purpose's.
    pub fn derive(&self, label: &str) -> [u8; KEY_LEN] {
        Sha256::new()
            .chain_update(b"hookrelay derived key\0")
            .chain_update(label.as_bytes())
            .chain_update([0])
            .chain_update(self.bytes)
            .finalize()
            .into()
    }

    /// The key in standard base64, the form of `HOOKRELAY_MASTER_KEY` and of
    /// the key file. Only for writing the key where it belongs.
    pub fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.bytes)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

/// Why keys could not be loaded. Messages name files, lines and key ids,
/// never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{what}: not the base64 of {KEY_LEN} bytes")]
    Malformed { what: String },
    #[error("no key given")]
    Empty,
    #[error("key {0} is listed twice")]
    Duplicate(KeyId),
    #[error("{0:?} is not a key id (8 hex digits)")]
    BadId(String),
    #[error("{path}: mode {mode:o} lets other users read the master key; run chmod 600 {path}")]
    TooOpen { path: String, mode: u32 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Why a sealed record could not be opened. None of these ever yields
/// plaintext: GCM checks the tag before anything is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("not a sealed record (truncated or unknown format)")]
    Malformed,
    #[error("sealed under key {0}, which is not in the keyring")]
    UnknownKey(KeyId),
    #[error("authentication failed: the record was altered, moved to another record, or its key is wrong")]
    Tampered,
}

/// A plaintext too large for one GCM message (64 GiB); never a real body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record too large to seal")]
pub struct SealError;

/// The keys a process can use: the first encrypts, every one decrypts.
#[derive(Clone)]
pub struct Keyring {
    /// Newest first; never empty.
    keys: Vec<(KeyId, Aes256Gcm)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(id, _)| id))
            .finish()
    }
}

impl Keyring {
    /// A keyring of `keys`, newest (the one that encrypts) first.
    pub fn new(keys: &[Key]) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        let mut ring: Vec<(KeyId, Aes256Gcm)> = Vec::with_capacity(keys.len());
        for key in keys {
            if ring.iter().any(|(id, _)| *id == key.id) {
                return Err(KeyError::Duplicate(key.id));
            }
            ring.push((key.id, Aes256Gcm::new(&key.bytes.into())));
        }
        Ok(Self { keys: ring })
    }

    /// The key new records are sealed under.
    pub fn active(&self) -> KeyId {
        self.keys[0].0
    }

    /// Every key id, the active one first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|(id, _)| *id).collect()
    }

    pub fn contains(&self, id: KeyId) -> bool {
        self.keys.iter().any(|(k, _)| *k == id)
    }

    /// Seals `plaintext` under the active key with a fresh random nonce,
    /// binding it to `aad` (the record's id).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.push(FORMAT);
        out.extend_from_slice(&id.0.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut out[HEADER_LEN..])
            .map_err(|_| SealError)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a record sealed by [`Keyring::seal`] under any key of the ring
    /// with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let id = key_id_of(sealed)?;
        let cipher = self
            .keys
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, c)| c)
            .ok_or(OpenError::UnknownKey(id))?;
        let nonce = Nonce::from_slice(&sealed[5..HEADER_LEN]);
        let body_end = sealed.len() - TAG_LEN;
        let tag = Tag::from_slice(&sealed[body_end..]);
        let mut plain = sealed[HEADER_LEN..body_end].to_vec();
        cipher
            .decrypt_in_place_detached(nonce, aad, &mut plain, tag)
            .map_err(|_| OpenError::Tampered)?;
        Ok(plain)
    }
}

/// The key a sealed record names, without opening it (re-encryption and
/// key retirement look at this only).
pub fn key_id_of(sealed: &[u8]) -> Result<KeyId, OpenError> {
    if sealed.len() < OVERHEAD || sealed[0] != FORMAT {
        return Err(OpenError::Malformed);
    }
    Ok(KeyId(u32::from_be_bytes([
        sealed[1], sealed[2], sealed[3], sealed[4],
    ])))
}

#[cfg(test)]
mod tests;
