//! What `hookrelay keys` learns from either store: which keys the sealed
//! records use ([`KeyUsage`]) and what one re-encryption batch did
//! ([`ReencryptStep`]). The SQLite side is `sqlite::KeyMaintenance`, the
//! Redis side `redis::RedisKeyMaintenance`; both count and rewrite the
//! same records (event payloads, input secrets, bucket and tunnel auth,
//! function configs).

use std::collections::BTreeMap;

use crypto::KeyId;

/// Records under each key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// Event payloads per key.
    pub events: BTreeMap<KeyId, u64>,
    /// Sealed input secrets per key.
    pub inputs: BTreeMap<KeyId, u64>,
    /// Sealed bucket auth settings per key.
    pub buckets: BTreeMap<KeyId, u64>,
    /// Sealed function configs per key.
    pub functions: BTreeMap<KeyId, u64>,
    /// Sealed tunnel auth settings per key.
    pub tunnels: BTreeMap<KeyId, u64>,
    /// Redis only: the key the cluster's canary is sealed under (a node
    /// that cannot open it refuses to start).
    pub canary: Option<KeyId>,
    /// The key the last server to open the store encrypted with; on Redis,
    /// of the running nodes, one whose key is not the keyring's active one
    /// if there is such a node, else their common key.
    pub server_active: Option<KeyId>,
}

impl KeyUsage {
    fn maps(&self) -> [&BTreeMap<KeyId, u64>; 5] {
        [
            &self.events,
            &self.inputs,
            &self.buckets,
            &self.functions,
            &self.tunnels,
        ]
    }

    /// Every record sealed under `id`.
    pub fn records(&self, id: KeyId) -> u64 {
        let sealed: u64 = self
            .maps()
            .iter()
            .map(|m| m.get(&id).copied().unwrap_or(0))
            .sum();
        sealed + u64::from(self.canary == Some(id))
    }

    /// Every key some record uses.
    pub fn keys(&self) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = self
            .maps()
            .iter()
            .flat_map(|m| m.keys())
            .copied()
            .chain(self.canary)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// What one re-encryption batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReencryptStep {
    /// Records now sealed under the active key.
    pub rewritten: usize,
    /// Records that could not be opened (altered, or under a key the ring
    /// lacks): left as they are, and reported.
    pub unreadable: usize,
    /// No record after this batch remains to look at.
    pub done: bool,
}
