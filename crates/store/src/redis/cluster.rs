//! What makes several nodes one cluster: the clock estimate behind
//! `visible_before`, node liveness and the sweeper that gives a dead node's
//! claims back. The bus between them is `bus`.
//!
//! Liveness: each open store is a node with a random id; a task refreshes
//! the global key `node:<id>` (TTL `RedisOptions::node_ttl`) every fifth of
//! the TTL. Every node also sweeps at that pace: a node listed in `nodes`
//! whose liveness key is gone has its claims released (`lua/release.lua`,
//! in each tenant of `nt:<node>`) and leaves the list. So a node killed
//! with `kill -9` holds its deliveries for one TTL and a sweep, at most.
//! A live node's own claims that it never marked in flight go back after
//! [`CLAIM_LEASE_TTLS`] TTLs (a pump that claimed more than it had room
//! to send, or whose agents left).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use model::TenantId;
use redis::AsyncCommands;

use super::append::SKEW_MS;
use super::codec::unavailable;
use super::Inner;
use crate::Result;

/// Allowance for the error of the clock estimate (network round trips,
/// scheduling) on top of [`SKEW_MS`].
const MARGIN_MS: i64 = 250;

/// A claim not marked in flight within this many liveness TTLs goes back
/// to its queue: the claiming node took more than it could send.
const CLAIM_LEASE_TTLS: u32 = 3;

/// The offset between this host's clock and Redis `TIME`.
#[derive(Debug, Default)]
pub(super) struct Clock {
    offset: AtomicI64,
}

impl Clock {
    /// Redis time now, estimated.
    pub(super) fn redis_now(&self) -> i64 {
        crate::clock::now_ms() + self.offset.load(Ordering::SeqCst)
    }

    /// Takes a Redis time read just now.
    pub(super) fn observe(&self, redis_ms: i64) {
        self.offset
            .store(redis_ms - crate::clock::now_ms(), Ordering::SeqCst);
    }

    /// Every event committed after a query starting now has `receivedAt`
    /// at or above this (see `append`), so a poller passing it as `since`
    /// misses nothing. Never ahead of this host's clock either.
    pub(super) fn visible_before(&self) -> i64 {
        let local = crate::clock::now_ms();
        local.min(self.redis_now()) - SKEW_MS - MARGIN_MS
    }
}

/// What the key canary holds, sealed.
const CANARY: &[u8] = b"hookrelay master key canary";

impl Inner {
    /// Every node of a cluster must hold the key the others seal with
    /// (`HOOKRELAY_MASTER_KEY`, the same on each): the first node seals a
    /// canary (`{ns}:canary`), and a node whose keyring cannot open it
    /// refuses to start rather than store what the others cannot read.
    pub(super) async fn check_keys(&self) -> Result<()> {
        let mut con = self.con()?;
        let key = self.keys.canary();
        let aad = key.as_bytes();
        let sealed = self
            .crypto
            .seal(aad, CANARY)
            .map_err(|e| crate::Error::Unavailable(e.to_string()))?;
        let _: bool = con.set_nx(&key, sealed).await.map_err(unavailable)?;
        let stored: Vec<u8> = con.get(&key).await.map_err(unavailable)?;
        match self.crypto.open(aad, &stored) {
            Ok(plain) if plain == CANARY => {
                // For `hookrelay keys`: which key this node seals with.
                let _: () = con
                    .hset(
                        self.keys.node_keys(),
                        &self.node,
                        self.crypto.active().to_string(),
                    )
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }
            // Data this node cannot read, not an outage: the binary reports
            // it as a configuration mistake (exit 64).
            _ => Err(crate::Error::Corrupt(
                "this node's master key is not the one the cluster's data is sealed with: \
                 give every node the same HOOKRELAY_MASTER_KEY"
                    .into(),
            )),
        }
    }

    /// Refreshes this node's liveness key and the clock estimate.
    pub(super) async fn refresh(&self) -> Result<()> {
        let mut con = self.con()?;
        let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let before = crate::clock::now_ms();
        let (_, _, (secs, micros)): ((), (), (i64, i64)) = redis::pipe()
            .cmd("SET")
            .arg(self.keys.node(&self.node))
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .cmd("SADD")
            .arg(self.keys.nodes())
            .arg(&self.node)
            .cmd("TIME")
            .query_async(&mut con)
            .await
            .map_err(unavailable)?;
        let after = crate::clock::now_ms();
        let redis_ms = secs * 1000 + micros / 1000;
        self.clock
            .offset
            .store(redis_ms - (before + after) / 2, Ordering::SeqCst);
        Ok(())
    }

    /// Gives back every claim `node` holds, in every tenant it noted; or,
    /// with `stale_before`, only its claims older than that and never
    /// marked in flight (the claim lease, for a live node).
    pub(super) async fn release_node(
        &self,
        node: &str,
        stale_before: Option<i64>,
    ) -> Result<usize> {
        let mut con = self.conn.clone();
        let registry = self.keys.node_tenants(node);
        let tenants: Vec<String> = con.smembers(&registry).await.map_err(unavailable)?;
        let mut released = 0;
        for tenant in tenants {
            let Ok(tenant) = tenant.parse::<TenantId>() else {
                continue;
            };
            let n: usize = self
                .scripts
                .release
                .key(self.keys.tenant(&tenant))
                .arg(node)
                .arg(stale_before.map(|at| at.to_string()).unwrap_or_default())
                .invoke_async(&mut con)
                .await
                .map_err(unavailable)?;
            released += n;
        }
        if stale_before.is_none() {
            let _: () = con.del(&registry).await.map_err(unavailable)?;
        }
        Ok(released)
    }

    /// One sweep: releases the claims of nodes whose liveness lapsed, and
    /// this node's own claims past their lease.
    async fn sweep(&self) -> Result<()> {
        let mut con = self.con()?;
        let nodes: Vec<String> = con.smembers(self.keys.nodes()).await.map_err(unavailable)?;
        let mut released = 0;
        for node in nodes.iter().filter(|n| **n != self.node) {
            let alive: bool = con
                .exists(self.keys.node(node))
                .await
                .map_err(unavailable)?;
            if alive {
                continue;
            }
            let n = self.release_node(node, None).await?;
            let _: () = redis::pipe()
                .srem(self.keys.nodes(), node)
                .hdel(self.keys.node_keys(), node)
                .query_async(&mut con)
                .await
                .map_err(unavailable)?;
            tracing::info!(node = %node, released = n, "a node's liveness lapsed; its claims are back");
            released += n;
        }
        let lease = i64::try_from((self.ttl * CLAIM_LEASE_TTLS).as_millis()).unwrap_or(i64::MAX);
        let stale = self
            .release_node(&self.node, Some(self.clock.redis_now() - lease))
            .await?;
        if stale > 0 {
            tracing::info!(
                released = stale,
                "claims never sent are back in their queues"
            );
            released += stale;
        }
        if released > 0 {
            self.tick_commits().await;
        }
        Ok(())
    }
}

/// How often liveness is refreshed and dead nodes are looked for.
pub(super) fn beat(ttl: Duration) -> Duration {
    (ttl / 5).max(Duration::from_millis(50))
}

/// Refreshes liveness until aborted.
pub(super) async fn liveness(inner: Arc<Inner>) {
    let mut every = tokio::time::interval(beat(inner.ttl));
    loop {
        every.tick().await;
        if let Err(err) = inner.refresh().await {
            tracing::warn!(%err, "could not refresh this node's liveness");
        }
    }
}

/// Sweeps dead nodes until aborted.
pub(super) async fn sweeper(inner: Arc<Inner>) {
    let mut every = tokio::time::interval(beat(inner.ttl));
    loop {
        every.tick().await;
        if let Err(err) = inner.sweep().await {
            tracing::warn!(%err, "could not sweep dead nodes");
        }
    }
}
