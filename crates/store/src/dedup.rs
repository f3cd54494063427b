//! In-process dedup of provider delivery ids, for stores whose node is the
//! only one accepting (the embedded store).
//!
//! Why memory and not a table: a table of random delivery ids is a b-tree
//! insert at a random page per event, and the check before the signature is
//! a read on the request path; together they cost the embedded store about
//! 40 % of its ingest throughput (18.7k/s with the table, 31k/s without, on
//! the 2-core bench). The set is rebuilt at open from the events themselves
//! (each event keeps its dedup expiry), so a restart forgets nothing.
//!
//! Keys are SHA-256 of (input, delivery id) truncated to 128 bits, held per
//! tenant so deleting a tenant drops its entries at once. 128 bits make an
//! accidental collision (a false "replay") negligible even at millions of
//! live entries.
//!
//! An id becomes visible here only once its event is committed: the writer
//! checks each id against this set and the batch's own [`Pending`] ids, keeps
//! the new ones in `Pending`, and [`DedupSet::publish`]es them after COMMIT.
//! A failed batch drops its `Pending`, so [`DedupSet::seen`] (the request
//! path's early check) never reports an id whose event was not stored.
//!
//! Purging relies on insertion order: each tenant's `order` queue is walked
//! from the front and stops at the first unexpired entry. Entries go in in
//! `received_at` order (the writer's commits, and the open-time rebuild,
//! which inserts oldest first), and an expiry is `received_at` plus a window
//! of at most an hour, so the queue is sorted by expiry wherever windows are
//! equal. Where a short window sits behind a longer one it is purged late
//! (at most an hour), never answered wrong: `seen` compares the expiry.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use model::{InputId, TenantId};
use sha2::{Digest, Sha256};

type Key = [u8; 16];

#[derive(Default)]
struct TenantEntries {
    /// Key → expiry (ms).
    live: HashMap<Key, i64>,
    /// Keys in insertion order with the expiry they had then, so purging
    /// the expired ones never scans the live ones (see the module doc for
    /// why insertion order is close enough to expiry order).
    order: VecDeque<(i64, Key)>,
}

impl TenantEntries {
    fn live(&self, key: &Key, now_ms: i64) -> bool {
        self.live.get(key).is_some_and(|e| *e > now_ms)
    }

    fn record(&mut self, key: Key, expires_ms: i64) {
        self.live.insert(key, expires_ms);
        self.order.push_back((expires_ms, key));
    }
}

/// Delivery ids accepted by the write batch in flight, not yet committed.
/// Owned by the writer thread; published with [`DedupSet::publish`] after
/// COMMIT, or cleared if the batch fails.
#[derive(Default)]
pub(crate) struct Pending {
    tenants: HashMap<TenantId, TenantEntries>,
}

impl Pending {
    /// Records an id [`DedupSet::check`] found new, until `expires_ms`.
    pub(crate) fn record(&mut self, tenant: &TenantId, fresh: Fresh, expires_ms: i64) {
        let entries = match self.tenants.get_mut(tenant) {
            Some(entries) => entries,
            None => self.tenants.entry(tenant.clone()).or_default(),
        };
        entries.record(fresh.0, expires_ms);
    }

    /// Forgets every id of a batch that did not commit.
    pub(crate) fn clear(&mut self) {
        self.tenants.clear();
    }
}

/// A delivery id found new by [`DedupSet::check`], keyed so that recording
/// it does not hash it again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fresh(Key);

/// Delivery ids accepted within their window, per tenant.
#[derive(Default)]
pub struct DedupSet {
    tenants: Mutex<HashMap<TenantId, TenantEntries>>,
}

impl std::fmt::Debug for DedupSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupSet")
            .field("live", &self.len())
            .finish()
    }
}

fn key(input: &InputId, delivery_id: &str) -> Key {
    let mut hasher = Sha256::new();
    hasher.update(input.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(delivery_id.as_bytes());
    let digest = hasher.finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

impl DedupSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, TenantEntries>> {
        // A panic elsewhere while holding the lock leaves the maps whole.
        self.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the id is live (accepted and not yet expired) at `now_ms`.
    pub fn seen(&self, tenant: &TenantId, input: &InputId, delivery_id: &str, now_ms: i64) -> bool {
        let key = key(input, delivery_id);
        self.lock()
            .get(tenant)
            .is_some_and(|t| t.live(&key, now_ms))
    }

    /// Records the id until `expires_ms`; `false` if it is already live.
    pub fn insert(
        &self,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> bool {
        let key = key(input, delivery_id);
        let mut tenants = self.lock();
        let entries = match tenants.get_mut(tenant) {
            Some(entries) => entries,
            None => tenants.entry(tenant.clone()).or_default(),
        };
        if entries.live(&key, now_ms) {
            return false;
        }
        entries.record(key, expires_ms);
        true
    }

    /// The id if it is live neither here nor in the batch's `pending` ids
    /// at `now_ms`; `None` means a duplicate. Only the writer thread checks
    /// and publishes, so a check and the later record are atomic with
    /// respect to every other append.
    pub(crate) fn check(
        &self,
        pending: &Pending,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
    ) -> Option<Fresh> {
        let key = key(input, delivery_id);
        let in_batch = pending
            .tenants
            .get(tenant)
            .is_some_and(|t| t.live(&key, now_ms));
        let committed = || {
            self.lock()
                .get(tenant)
                .is_some_and(|t| t.live(&key, now_ms))
        };
        (!in_batch && !committed()).then_some(Fresh(key))
    }

    /// Makes a committed batch's ids visible, in the order they were
    /// recorded, and empties `pending`.
    pub(crate) fn publish(&self, pending: &mut Pending) {
        if pending.tenants.is_empty() {
            return;
        }
        let mut tenants = self.lock();
        for (tenant, batch) in pending.tenants.drain() {
            let entries = tenants.entry(tenant).or_default();
            for (expires_ms, key) in batch.order {
                entries.record(key, expires_ms);
            }
        }
    }

    /// Drops every entry of a deleted tenant.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.lock().remove(tenant);
    }

    /// Drops expired entries; returns how many went.
    pub fn purge(&self, now_ms: i64) -> usize {
        let mut purged = 0;
        let mut tenants = self.lock();
        for entries in tenants.values_mut() {
            while let Some(&(expires, key)) = entries.order.front() {
                if expires > now_ms {
                    break;
                }
                entries.order.pop_front();
                // Only if the live entry is this one, not a renewal.
                if entries.live.get(&key).is_some_and(|e| *e <= now_ms) {
                    entries.live.remove(&key);
                    purged += 1;
                }
            }
        }
        tenants.retain(|_, entries| !entries.live.is_empty());
        purged
    }

    /// Live entries, all tenants.
    pub fn len(&self) -> usize {
        self.lock().values().map(|t| t.live.len()).sum()
    }

    /// Whether there are no live entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_entries_block_and_expired_ones_do_not() {
        let set = DedupSet::new();
        let (t, i) = (TenantId::default_tenant(), InputId::generate());
        assert!(set.insert(&t, &i, "d1", 0, 100));
        assert!(set.seen(&t, &i, "d1", 99));
        assert!(!set.insert(&t, &i, "d1", 99, 199));
        assert!(!set.seen(&t, &i, "d1", 100), "expired at its expiry");
        assert!(set.insert(&t, &i, "d1", 100, 200), "renewed after expiry");
        assert!(!set.seen(&t, &InputId::generate(), "d1", 150), "per input");
        assert!(
            !set.seen(&"other".parse().unwrap(), &i, "d1", 150),
            "per tenant"
        );
    }

    #[test]
    fn purge_keeps_renewals_and_forget_drops_a_tenant() {
        let set = DedupSet::new();
        let (t, i) = (TenantId::default_tenant(), InputId::generate());
        set.insert(&t, &i, "a", 0, 10);
        set.insert(&t, &i, "b", 0, 50);
        set.insert(&t, &i, "a", 20, 60);
        assert_eq!(set.purge(30), 0, "a was renewed; b not yet expired");
        assert_eq!(set.len(), 2);
        assert_eq!(set.purge(55), 1);
        set.forget_tenant(&t);
        assert!(set.is_empty());
    }

    #[test]
    fn pending_ids_block_their_batch_and_show_only_once_published() {
        let set = DedupSet::new();
        let (t, i) = (TenantId::default_tenant(), InputId::generate());
        let mut pending = Pending::default();
        let fresh = set.check(&pending, &t, &i, "p", 0).expect("new id");
        pending.record(&t, fresh, 100);
        assert!(set.check(&pending, &t, &i, "p", 1).is_none(), "same batch");
        assert!(!set.seen(&t, &i, "p", 1), "invisible until published");
        set.publish(&mut pending);
        assert!(set.seen(&t, &i, "p", 1));
        assert!(set.check(&pending, &t, &i, "p", 1).is_none(), "committed");

        let fresh = set.check(&pending, &t, &i, "q", 0).expect("new id");
        pending.record(&t, fresh, 100);
        pending.clear();
        assert!(!set.seen(&t, &i, "q", 1), "a failed batch leaves nothing");
        assert!(set.check(&pending, &t, &i, "q", 1).is_some());
    }
}
