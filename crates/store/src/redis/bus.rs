//! The cluster bus on Redis: one pub/sub channel, `bus`, carrying commit
//! ticks and [`Signal`]s between the nodes of one namespace, and the
//! cluster-wide agent list (`agents`, per tenant: agent id → node, JSON),
//! and which nodes hold a tunnel's agents (the global sorted set
//! `tat:<tunnel id>`: node URL scored by when its hold lapses, in Redis
//! time, so a hold is one member and lapsing needs no sweeper).
//!
//! Bus messages are `<node id>\0<tag><fields>`: `c` (a commit or resend:
//! tick `commits()`), `g` (config changed), `a<event id>\0<answer bytes>`.
//! A node ignores its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use model::{EventId, TenantId, TunnelId};
use redis::AsyncCommands;
use tokio::sync::{broadcast, watch};

use super::codec::unavailable;
use super::{Inner, RedisStore};
use crate::{ClusterBus, Result, Signal};

impl Inner {
    /// Ticks `commits()` here and on every other node.
    pub(super) async fn tick_commits(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        if let Err(err) = self.publish(b"c").await {
            tracing::warn!(%err, "could not announce a commit to other nodes");
        }
    }

    /// Ticks `config_changes()` here and, through the bus, on every other
    /// node (which also tells its server with [`Signal::ConfigChanged`]).
    pub(super) async fn config_changed(&self) {
        self.config.send_modify(|n| *n = n.wrapping_add(1));
        if let Err(err) = self.publish(b"g").await {
            // The other nodes' caches expire within seconds anyway.
            tracing::warn!(%err, "could not tell the other nodes of a configuration change");
        }
    }

    pub(super) async fn publish(&self, body: &[u8]) -> Result<()> {
        let msg = self.bus_message(body);
        // The raw connection: the writer still announces the appends it
        // finishes while `close` drains it.
        let mut con = self.conn.clone();
        let _: i64 = con
            .publish(self.keys.bus(), msg)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// A bus message from this node (the append writer sends its commit
    /// tick in the pipeline of the commit itself).
    pub(super) fn bus_message(&self, body: &[u8]) -> Vec<u8> {
        let mut msg = Vec::with_capacity(self.node.len() + 1 + body.len());
        msg.extend_from_slice(self.node.as_bytes());
        msg.push(0);
        msg.extend_from_slice(body);
        msg
    }

    /// Handles one bus message.
    fn heard(&self, msg: &[u8]) {
        let Some(split) = msg.iter().position(|b| *b == 0) else {
            return;
        };
        let (from, body) = (&msg[..split], &msg[split + 1..]);
        if from == self.node.as_bytes() {
            return;
        }
        match body.split_first() {
            Some((b'c', _)) => self.commits.send_modify(|n| *n = n.wrapping_add(1)),
            Some((b'g', _)) => {
                self.config.send_modify(|n| *n = n.wrapping_add(1));
                let _ = self.signals.send(Signal::ConfigChanged);
            }
            Some((b'a', rest)) => {
                let Some(at) = rest.iter().position(|b| *b == 0) else {
                    return;
                };
                let event = std::str::from_utf8(&rest[..at])
                    .ok()
                    .and_then(|s| s.parse::<EventId>().ok());
                if let Some(event) = event {
                    let answer = rest[at + 1..].to_vec();
                    let _ = self.signals.send(Signal::Answer { event, answer });
                }
            }
            _ => {}
        }
    }
}

#[async_trait]
impl ClusterBus for RedisStore {
    fn shared_dispatch(&self) -> bool {
        true
    }

    async fn broadcast(&self, signal: Signal) -> Result<()> {
        self.inner.con()?;
        let body = match signal {
            Signal::ConfigChanged => b"g".to_vec(),
            Signal::Answer { event, answer } => {
                let mut b = format!("a{event}\0").into_bytes();
                b.extend_from_slice(&answer);
                b
            }
        };
        self.inner.publish(&body).await
    }

    fn config_changes(&self) -> watch::Receiver<u64> {
        self.inner.config.subscribe()
    }

    fn signals(&self) -> Option<broadcast::Receiver<Signal>> {
        Some(self.inner.signals.subscribe())
    }

    async fn announce_agent(
        &self,
        tenant: &TenantId,
        agent: &str,
        info: &serde_json::Value,
    ) -> Result<()> {
        let mut con = self.inner.con()?;
        let value = format!("{}\0{info}", self.inner.node);
        let _: () = con
            .hset(
                format!("{}agents", self.inner.keys.tenant(tenant)),
                agent,
                value,
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn withdraw_agent(&self, tenant: &TenantId, agent: &str) -> Result<()> {
        let mut con = self.inner.con()?;
        let _: () = con
            .hdel(format!("{}agents", self.inner.keys.tenant(tenant)), agent)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn hold_tunnel(&self, tunnel: &TunnelId, node_url: &str, ttl: Duration) -> Result<()> {
        let mut con = self.inner.con()?;
        let key = self.inner.keys.tunnel_nodes(tunnel);
        let now = self.inner.clock.redis_now();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        // Lapsed holds go at each refresh; the key itself outlives the
        // last hold by one TTL, so a tunnel nobody serves leaves nothing.
        let _: ((), (), ()) = redis::pipe()
            .zadd(&key, node_url, now.saturating_add(ttl_ms))
            .zrembyscore(&key, "-inf", now)
            .pexpire(&key, ttl_ms.saturating_mul(2))
            .query_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release_tunnel(&self, tunnel: &TunnelId, node_url: &str) -> Result<()> {
        let mut con = self.inner.con()?;
        let _: () = con
            .zrem(self.inner.keys.tunnel_nodes(tunnel), node_url)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn tunnel_nodes(&self, tunnel: &TunnelId) -> Result<Vec<String>> {
        let mut con = self.inner.con()?;
        let now = self.inner.clock.redis_now();
        con.zrangebyscore(self.inner.keys.tunnel_nodes(tunnel), now, "+inf")
            .await
            .map_err(unavailable)
    }

    /// The tenant's agents on live nodes; those of dead nodes are dropped.
    async fn cluster_agents(&self, tenant: &TenantId) -> Result<Option<Vec<serde_json::Value>>> {
        let mut con = self.inner.con()?;
        let key = format!("{}agents", self.inner.keys.tenant(tenant));
        let all: HashMap<String, String> = con.hgetall(&key).await.map_err(unavailable)?;
        let mut alive: HashMap<String, bool> = HashMap::new();
        let mut out = Vec::new();
        let mut ids: Vec<_> = all.into_iter().collect();
        ids.sort();
        for (agent, value) in ids {
            let Some((node, json)) = value.split_once('\0') else {
                continue;
            };
            let live = match alive.get(node) {
                Some(live) => *live,
                None => {
                    let live: bool = con
                        .exists(self.inner.keys.node(node))
                        .await
                        .map_err(unavailable)?;
                    alive.insert(node.to_owned(), live);
                    live
                }
            };
            if !live {
                let _: () = con.hdel(&key, &agent).await.map_err(unavailable)?;
                continue;
            }
            if let Ok(v) = serde_json::from_str(json) {
                out.push(v);
            }
        }
        Ok(Some(out))
    }
}

/// Subscribes to the bus.
pub(super) async fn subscribe(inner: &Inner) -> Result<redis::aio::PubSub> {
    let mut pubsub = inner.client.get_async_pubsub().await.map_err(unavailable)?;
    pubsub
        .subscribe(inner.keys.bus())
        .await
        .map_err(unavailable)?;
    Ok(pubsub)
}

/// Listens to the bus until aborted, resubscribing after a lost
/// connection (and then ticking `commits()` and `config_changes()`: a
/// commit or an object write may have gone by).
pub(super) async fn listen(inner: Arc<Inner>, mut pubsub: redis::aio::PubSub) {
    loop {
        {
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                inner.heard(msg.get_payload_bytes());
            }
        }
        let mut backoff = Duration::from_millis(100);
        pubsub = loop {
            tokio::time::sleep(backoff).await;
            match subscribe(&inner).await {
                Ok(p) => break p,
                Err(err) => {
                    tracing::warn!(%err, "could not resubscribe to the cluster bus");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        inner.commits.send_modify(|n| *n = n.wrapping_add(1));
        inner.config.send_modify(|n| *n = n.wrapping_add(1));
    }
}
