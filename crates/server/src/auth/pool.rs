//! The bcrypt pool: where every check of a token, admin or poll secret
//! runs, and what each client may spend there.
//!
//! A check not answered from the cache costs ~250 ms of CPU at cost 12.
//! Three bounds keep that from being turned against other callers:
//! - a budget per client IP ([`CHECKS_ALLOWED`] a minute, 429 beyond),
//!   counted before the check so concurrent requests cannot slip under it;
//! - at most one check per core at once, so a flood queues here instead of
//!   taking every blocking thread and core from ingest;
//! - fairness inside the pool (issue 19): one check at a time per client
//!   IP and [`PER_PREFIX`] per network (/24, IPv6 /48) wait for a core,
//!   so 50 addresses of one network hold at most one place in the queue.
//!   Before, their 50 checks queued ahead of a legitimate caller, whose
//!   first use of a new token went from 0.4 s to 1.1–2.0 s.
//!
//! An unknown credential (a token key or tenant that does not exist) is
//! checked against a decoy hash, so it costs the same time and budget as
//! a known one and existence cannot be read from timing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use store::RateDecision;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::secrets;

/// bcrypt checks a client may cause per minute.
const CHECKS_ALLOWED: model::RateLimit = model::RateLimit {
    requests: 20,
    window_seconds: 60,
};

/// Checks of one network waiting for or holding a core at once.
const PER_PREFIX: usize = 1;

pub(crate) struct Pool {
    budget: store::SlidingWindow,
    /// One per core.
    slots: Semaphore,
    hosts: Turnstiles,
    prefixes: Turnstiles,
    /// A bcrypt hash of a random secret, made on first use.
    decoy: tokio::sync::OnceCell<String>,
}

impl Pool {
    pub(super) fn new() -> Self {
        Pool {
            budget: store::SlidingWindow::new(),
            slots: Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
            hosts: Turnstiles::new(1),
            prefixes: Turnstiles::new(PER_PREFIX),
            decoy: tokio::sync::OnceCell::new(),
        }
    }

    /// Counts one check against `client`'s budget, or refuses it (429).
    pub(super) fn spend(&self, client: IpAddr) -> Result<(), ApiError> {
        let key = crate::client::host(client).to_string();
        match self
            .budget
            .hit(&key, CHECKS_ALLOWED, store::clock::now_ms())
        {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after_secs } => {
                Err(ApiError::rate_limited(retry_after_secs))
            }
        }
    }

    /// Checks `secret` against a bcrypt `hash` for `client`, waiting its
    /// turn behind its own address and network first.
    pub(super) async fn check(&self, client: IpAddr, secret: &str, hash: String) -> bool {
        let _host = self.hosts.enter(crate::client::host(client)).await;
        let _prefix = self.prefixes.enter(crate::client::prefix(client)).await;
        // The semaphore is never closed, so acquiring only waits.
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        secrets::verify(secret.to_owned(), hash).await
    }

    /// The same work as checking a real secret, for a credential that does
    /// not exist; always `false`.
    pub(super) async fn check_decoy(&self, client: IpAddr, secret: &str, cost: u32) -> bool {
        let decoy = self
            .decoy
            .get_or_try_init(|| secrets::hash(secrets::generate(), cost))
            .await;
        if let Ok(decoy) = decoy {
            let _ = self.check(client, secret, decoy.clone()).await;
        }
        false
    }
}

/// A semaphore per key, made when first needed; idle ones are swept once
/// there are [`TURNSTILES_SWEPT_AT`], so distinct addresses cannot grow
/// the map without bound.
struct Turnstiles {
    per_key: usize,
    open: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

const TURNSTILES_SWEPT_AT: usize = 4_096;

impl Turnstiles {
    fn new(per_key: usize) -> Self {
        Turnstiles {
            per_key,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place in `key`'s turnstile, held until dropped; `None` only if
    /// the semaphore were closed, which it never is.
    async fn enter(&self, key: IpAddr) -> Option<OwnedSemaphorePermit> {
        let gate = {
            let mut open = self.lock();
            if open.len() >= TURNSTILES_SWEPT_AT {
                // Only the map holds an idle one: nobody waits or is inside.
                open.retain(|_, gate| Arc::strong_count(gate) > 1);
            }
            Arc::clone(
                open.entry(key)
                    .or_insert_with(|| Arc::new(Semaphore::new(self.per_key))),
            )
        };
        gate.acquire_owned().await.ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Arc<Semaphore>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn one_network_holds_one_place_at_a_time() {
        let prefixes = Turnstiles::new(1);
        let net = "127.0.0.0".parse().unwrap();
        let first = prefixes.enter(net).await;
        let second = prefixes.enter(net);
        tokio::pin!(second);
        assert!((&mut second).now_or_never().is_none(), "the second waits");
        let other = prefixes.enter("127.1.0.0".parse().unwrap());
        assert!(other.now_or_never().is_some(), "another network does not");
        drop(first);
        assert!(second.await.is_some());
    }
}
