//! [`AuthCache`]: recently verified secrets, so hot routes do not pay
//! bcrypt on every request, and the bcrypt [`Pool`] every check goes
//! through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use model::Token;

use super::pool::Pool;
use crate::secrets;

struct Verified {
    digest: [u8; 32],
    expires: Instant,
    token: Option<Token>,
}

/// Cache of recently verified secrets, by credential name (`tok_…`,
/// `admin`, `poll:<tenant>`), and the bcrypt pool.
pub(crate) struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Verified>>,
    /// Bumped by every `forget`, under the `entries` lock. A verification
    /// remembers its result only if no credential was forgotten since it
    /// read the stored hash, so a check of a secret that was rotated or
    /// deleted meanwhile cannot put it back in the cache.
    generation: AtomicU64,
    /// Where every bcrypt check runs, within its client's budget.
    pub(super) pool: Pool,
}

/// Entries above this are swept of expired ones before inserting, so a
/// stream of distinct valid tokens cannot grow the map without bound.
const CACHE_SWEEP_AT: usize = 10_000;

impl AuthCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            pool: Pool::new(),
        }
    }

    /// The cached token (or `Some(None)` for a secret without a token) if
    /// `secret` was verified for `name` within the TTL.
    pub(super) fn lookup(&self, name: &str, secret: &str) -> Option<Option<Token>> {
        let digest = secrets::digest(secret);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(name)?;
        let fresh = entry.expires > Instant::now();
        (fresh && secrets::ct_eq(&entry.digest, &digest)).then(|| entry.token.clone())
    }

    /// Read before the stored hash, passed to [`AuthCache::remember`].
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(super) fn remember(&self, name: String, secret: &str, token: Option<Token>, since: u64) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() != since {
            return;
        }
        if entries.len() >= CACHE_SWEEP_AT {
            entries.retain(|_, v| v.expires > now);
        }
        entries.insert(
            name,
            Verified {
                digest: secrets::digest(secret),
                expires: now + self.ttl,
                token,
            },
        );
    }

    /// Drops every cached credential (after a tenant and its tokens were
    /// deleted: its id may be re-created from the same label at once).
    pub(crate) fn forget_all(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops a credential after it was deleted or rotated.
    pub(crate) fn forget(&self, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(name);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_raced_a_forget_is_not_remembered() {
        let cache = AuthCache::new(Duration::from_secs(30));
        let since = cache.generation();
        // A token is rotated while its old secret is being checked...
        cache.forget("tok_a");
        // ...so the check's success must not bring the old secret back.
        cache.remember("tok_a".into(), "old", None, since);
        assert!(cache.lookup("tok_a", "old").is_none());

        let since = cache.generation();
        cache.remember("tok_a".into(), "new", None, since);
        assert!(cache.lookup("tok_a", "new").is_some());
        assert!(cache.lookup("tok_a", "old").is_none());
        cache.forget("tok_a");
        assert!(cache.lookup("tok_a", "new").is_none());
    }
}
