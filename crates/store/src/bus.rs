//! The cluster bus: [`ClusterBus`], what the nodes sharing one store tell
//! each other ([`Signal`]s, agent announcements), and whether they share
//! its delivery queue. Not storage: it rides on the shared backend because
//! that is the one thing every node already reaches. The embedded store has
//! one node, and keeps the trait's defaults (nothing sent, nothing heard)
//! but the configuration feed, which every store keeps.
//! Tunnels (DESIGN §10) keep here which nodes hold a tunnel's agents, so
//! a node without one knows where to carry a visitor's request; the
//! request itself goes node to node, never through the store.

use async_trait::async_trait;
use std::time::Duration;

use model::{EventId, TenantId, TunnelId};
use tokio::sync::watch;

use crate::Result;

/// What one node tells the others that share its store (a cluster); the
/// embedded store has one node and carries none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A destination's answer to the event's first delivery, for a `wait`
    /// caller held by whichever node accepted the event. The bytes are the
    /// server's own encoding; the store only carries them.
    Answer { event: EventId, answer: Vec<u8> },
    /// An admin write on another node changed inputs, buckets, tenants,
    /// tokens or tunnels: drop cached configuration now rather than at its expiry.
    /// The store sends it itself, when it hears of the write (after ticking
    /// [`ClusterBus::config_changes`]); nobody needs to broadcast it.
    ConfigChanged,
}

/// Signals and agent announcements between the nodes sharing a store.
///
/// Guarantees:
/// - **Best effort**: a node that misses a signal (it was down, or slow
///   and lagged) falls back on timeouts and cache expiry; nothing is
///   replayed.
/// - Announcements live as long as the announcing node: a node whose
///   liveness lapses takes its agents out of [`ClusterBus::cluster_agents`].
#[async_trait]
pub trait ClusterBus: Send + Sync + 'static {
    /// True when several nodes may dispatch from this store: the due
    /// queries then claim what they return (see [`crate::DeliveryQueue`]).
    /// The embedded store has one node, whose pumps keep their own record
    /// of what they hold.
    fn shared_dispatch(&self) -> bool {
        false
    }
    /// The configuration feed: ticks after every committed write of a
    /// tenant, token, bucket, input, output or tunnel ([`crate::Tenants`],
    /// [`crate::Buckets`], [`crate::Tunnels`]) made through this store, before the write
    /// returns; on a shared store also after those of the other nodes, as
    /// soon as the bus brings them. Configuration cached from reads made
    /// before a tick is stale, so a cache that compares the feed's value
    /// on each use needs no one to remember to invalidate it.
    fn config_changes(&self) -> watch::Receiver<u64>;
    /// Sends `signal` to every other node sharing the store.
    async fn broadcast(&self, _signal: Signal) -> Result<()> {
        Ok(())
    }
    /// Signals from other nodes; `None` when there are none to hear.
    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<Signal>> {
        None
    }
    /// Announces (or refreshes) an agent connected to this node, as the
    /// JSON `GET /v1/agents` shows, so every node can list it.
    async fn announce_agent(
        &self,
        _tenant: &TenantId,
        _agent_id: &str,
        _info: &serde_json::Value,
    ) -> Result<()> {
        Ok(())
    }
    /// Withdraws an agent announced by this node.
    async fn withdraw_agent(&self, _tenant: &TenantId, _agent_id: &str) -> Result<()> {
        Ok(())
    }
    /// Records that the node reachable at `node_url` holds agents of
    /// `tunnel`, for `ttl` unless refreshed: a node that dies without
    /// [`ClusterBus::release_tunnel`] drops out when its hold lapses.
    async fn hold_tunnel(&self, _tunnel: &TunnelId, _node_url: &str, _ttl: Duration) -> Result<()> {
        Ok(())
    }
    /// The node at `node_url` holds no agent of `tunnel` any more.
    async fn release_tunnel(&self, _tunnel: &TunnelId, _node_url: &str) -> Result<()> {
        Ok(())
    }
    /// The URLs of the nodes whose hold on `tunnel` has not lapsed (this
    /// node's own among them); empty when the store knows only this node.
    async fn tunnel_nodes(&self, _tunnel: &TunnelId) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// The tenant's agents on every live node, as announced; `None` when
    /// the store knows only this node (the caller lists its own).
    async fn cluster_agents(&self, _tenant: &TenantId) -> Result<Option<Vec<serde_json::Value>>> {
        Ok(None)
    }
}
