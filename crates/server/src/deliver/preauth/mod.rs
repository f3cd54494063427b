//! The agent transports' pre-authentication budget (DESIGN §7, issue 19):
//! what a peer that has not yet sent a verified `Hello` can make the relay
//! hold, and what an authenticated one can.
//!
//! - Before `Hello` is verified a stream may carry at most
//!   [`PREAUTH_BYTES`], and no message announcing more than
//!   [`HELLO_MESSAGE_BYTES`] (a `Hello` is a few hundred bytes): the
//!   transport fails on the length prefix, before buffering anything.
//!   Before this, tonic reserved and tungstenite buffered up to the 32 MiB
//!   message limit for anyone (20 streams took the relay to 617 MiB).
//! - Unauthenticated sessions are bounded server-wide, per client IP and
//!   per HTTP/2 connection ([`Doorway`]); at a bound the oldest one gives
//!   way, as the listener does for idle HTTP connections, so a flood can
//!   never keep a newcomer out, only push out its own older attempts. A
//!   session whose `Hello` is in and being verified gives way only after
//!   every one still waiting for its `Hello`: junk that never completes a
//!   `Hello` cannot push out an agent during its bcrypt check (those are
//!   bounded by the per-IP bcrypt budget instead).
//! - After `Hello`, messages up to [`proto::MAX_MESSAGE_BYTES`] pass; each
//!   of at least [`BUDGETED_FROM`] bytes holds its size from a server-wide
//!   budget while it is being received, and a stream whose next message
//!   does not fit waits (HTTP/2 and TCP flow control push back on the peer).
//!
//! Used by `grpc` (a body wrapper, [`GatedBody`]) and `ws` (an I/O wrapper,
//! [`GatedIo`]); the session asks [`Doorway::admit`] and opens the [`Gate`].
//! Layout: `mod.rs` (the doorway and the gate), `framing` (where messages
//! start and end on each transport), `meter` (the wrappers).

mod framing;
mod meter;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub(crate) use framing::{Grpc, WebSocket};
pub(crate) use meter::{GatedBody, GatedIo, Meter};

/// The largest message a peer may announce before its `Hello` is
/// verified: a `Hello` with a 256-bucket subscription list of long names
/// still fits.
pub(crate) const HELLO_MESSAGE_BYTES: usize = 8 * 1024;

/// Bytes a stream may carry before its `Hello` is verified (the `Hello`,
/// its framing, and a ping or two sent before the `Welcome`).
pub(crate) const PREAUTH_BYTES: usize = 16 * 1024;

/// Messages from this size on are counted against the server-wide budget;
/// smaller ones (acks, pings) are bounded by the connection and stream
/// limits already, and counting them would cost a semaphore per ack.
pub(crate) const BUDGETED_FROM: usize = 64 * 1024;

/// Unauthenticated sessions one HTTP/2 connection may hold at once (an
/// agent opens one stream; hyper allows 200 per connection).
pub(crate) const PER_CONNECTION: usize = 4;

/// The bounds, from the server's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Unauthenticated sessions server-wide.
    pub(crate) total: usize,
    /// Unauthenticated sessions per client IP.
    pub(crate) per_ip: usize,
    /// Bytes of large messages being received at once, server-wide.
    pub(crate) message_budget: usize,
}

/// Sessions that have not yet been authenticated, oldest first, and the
/// budget of authenticated agents' large messages.
pub(crate) struct Doorway {
    limits: Limits,
    next: AtomicU64,
    waiting: Arc<Mutex<Waiting>>,
    budget: Arc<Semaphore>,
}

#[derive(Default)]
struct Waiting {
    /// By admission order: the first is the oldest.
    sessions: BTreeMap<u64, Waiter>,
    per_ip: HashMap<IpAddr, usize>,
    per_connection: HashMap<SocketAddr, usize>,
}

struct Waiter {
    ip: IpAddr,
    connection: SocketAddr,
    evicted: CancellationToken,
    /// Its `Hello` is in and being verified.
    verifying: bool,
}

impl Doorway {
    pub(crate) fn new(limits: Limits) -> Self {
        // The budget must hold the largest message, or its stream would
        // wait forever.
        let budget = limits.message_budget.max(proto::MAX_MESSAGE_BYTES);
        Doorway {
            limits,
            next: AtomicU64::new(0),
            waiting: Arc::default(),
            budget: Arc::new(Semaphore::new(budget)),
        }
    }

    /// The budget large messages are counted against.
    pub(crate) fn budget(&self) -> Arc<Semaphore> {
        Arc::clone(&self.budget)
    }

    /// Registers an unauthenticated session of `peer` (its connection's
    /// address), first making the oldest ones give way where a bound is
    /// reached. The session ends when its admission's `evicted` fires.
    pub(crate) fn admit(&self, peer: SocketAddr) -> Admission {
        let ip = crate::client::host(peer.ip());
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        let mut waiting = lock(&self.waiting);
        let (per_connection, per_ip, total) = (
            PER_CONNECTION,
            self.limits.per_ip.max(1),
            self.limits.total.max(1),
        );
        while waiting.per_connection.get(&peer).copied().unwrap_or(0) >= per_connection {
            waiting.evict_oldest(|w| w.connection == peer);
        }
        while waiting.per_ip.get(&ip).copied().unwrap_or(0) >= per_ip {
            waiting.evict_oldest(|w| w.ip == ip);
        }
        while waiting.sessions.len() >= total {
            waiting.evict_oldest(|_| true);
        }
        *waiting.per_ip.entry(ip).or_default() += 1;
        *waiting.per_connection.entry(peer).or_default() += 1;
        waiting.sessions.insert(
            id,
            Waiter {
                ip,
                connection: peer,
                evicted: evicted.clone(),
                verifying: false,
            },
        );
        Admission {
            id,
            evicted,
            waiting: Arc::clone(&self.waiting),
        }
    }

    /// Unauthenticated sessions now (for tests and metrics).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        lock(&self.waiting).sessions.len()
    }
}

impl Waiting {
    /// Evicts the oldest session that `matches`, preferring those still
    /// waiting for their `Hello`.
    fn evict_oldest(&mut self, matches: impl Fn(&Waiter) -> bool) {
        let oldest = |verifying: bool| {
            self.sessions
                .iter()
                .find(|(_, w)| w.verifying == verifying && matches(w))
                .map(|(id, _)| *id)
        };
        let oldest = oldest(false).or_else(|| oldest(true));
        if let Some(waiter) = oldest.and_then(|id| self.remove(id)) {
            tracing::debug!(peer = %waiter.connection, "unauthenticated agent session gave way");
            waiter.evicted.cancel();
        }
    }

    fn remove(&mut self, id: u64) -> Option<Waiter> {
        let waiter = self.sessions.remove(&id)?;
        decrement(&mut self.per_ip, &waiter.ip);
        decrement(&mut self.per_connection, &waiter.connection);
        Some(waiter)
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

/// A session's place among the unauthenticated; dropping it (once the
/// session is authenticated, or ends) frees the place.
pub(crate) struct Admission {
    id: u64,
    /// Fires when the session must give way to newer ones.
    pub(crate) evicted: CancellationToken,
    waiting: Arc<Mutex<Waiting>>,
}

impl Admission {
    /// The session's `Hello` is in: it now gives way only after those
    /// still waiting for theirs.
    pub(crate) fn verifying(&self) {
        if let Some(waiter) = lock(&self.waiting).sessions.get_mut(&self.id) {
            waiter.verifying = true;
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        lock(&self.waiting).remove(self.id);
    }
}

/// One stream's switch from the pre-authentication limits to the
/// authenticated ones, shared by the session and its transport's meter.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    open: AtomicBool,
}

impl Gate {
    /// The peer's `Hello` was verified.
    pub(crate) fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
}

/// Every update of the registry is a few counter changes and one map
/// insert or remove: a poisoned lock still guards a coherent map.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doorway(total: usize, per_ip: usize) -> Doorway {
        Doorway::new(Limits {
            total,
            per_ip,
            message_budget: 0,
        })
    }

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_oldest_session_of_a_full_scope_gives_way() {
        let door = doorway(4, 2);
        let a = door.admit(peer("10.0.0.1:1000"));
        let b = door.admit(peer("10.0.0.1:1001"));
        let other = door.admit(peer("10.0.0.2:1000"));
        // A third from 10.0.0.1 pushes out that address's oldest only.
        let c = door.admit(peer("10.0.0.1:1002"));
        assert!(a.evicted.is_cancelled());
        assert!(!b.evicted.is_cancelled() && !other.evicted.is_cancelled());
        // Server-wide: the oldest of all gives way.
        let d = door.admit(peer("10.0.0.3:1000"));
        let e = door.admit(peer("10.0.0.4:1000"));
        assert!(b.evicted.is_cancelled(), "the oldest left");
        assert!(!c.evicted.is_cancelled() && !d.evicted.is_cancelled());
        assert!(!e.evicted.is_cancelled());
        assert_eq!(door.waiting(), 4);
        drop((a, b, other, c, d, e));
        assert_eq!(door.waiting(), 0);
    }

    #[test]
    fn a_session_being_verified_gives_way_last() {
        let door = doorway(2, 10);
        let agent = door.admit(peer("10.0.0.1:1000"));
        agent.verifying();
        let junk = door.admit(peer("10.0.0.2:1000"));
        let more = door.admit(peer("10.0.0.3:1000"));
        assert!(junk.evicted.is_cancelled(), "the oldest junk went first");
        assert!(!agent.evicted.is_cancelled() && !more.evicted.is_cancelled());
    }

    #[test]
    fn one_connection_holds_few_unauthenticated_streams() {
        let door = doorway(100, 100);
        let streams: Vec<_> = (0..PER_CONNECTION + 1)
            .map(|_| door.admit(peer("10.0.0.1:1000")))
            .collect();
        assert!(streams[0].evicted.is_cancelled());
        assert!(streams[1..].iter().all(|s| !s.evicted.is_cancelled()));
        assert_eq!(door.waiting(), PER_CONNECTION);
    }
}
