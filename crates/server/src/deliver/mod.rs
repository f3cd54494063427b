//! Push delivery (DESIGN §5): agents hold one stream each (gRPC or
//! WebSocket), and the hub hands them the deliveries of their buckets.
//!
//! Depends on `proto`, `store` and the crate's `AppState`; the API reads
//! [`Hub::agents`] and ingest uses [`Hub::waiters`] and
//! [`Hub::hold_ephemeral`]. Start with `session`, which is one agent's life.
//!
//! # Layout
//! - `mod.rs`: [`Hub`], the registry of connected agents by (tenant, group).
//! - `session`: the transport-agnostic session (hello, auth, welcome, then
//!   a reader of acks and heartbeats and a writer task of deliveries)
//!   written against [`AgentLink`] and its two halves.
//! - `grpc`, `ws`: the two transports, one [`AgentLink`] each; `socket`:
//!   Webhook Relay's socket server (DESIGN §15), a third link, and
//!   `PUT /v1/logs/{id}`.
//! - `preauth`: what a peer may make the relay hold before its `Hello` is
//!   verified (and the budget of authenticated agents' large messages).
//! - `rules`: what a due delivery becomes (send with this payload, settle
//!   it, try later) and what an attempt came to: the one rule set both
//!   senders below follow.
//! - `gate`: how many deliveries may be under way per output (its
//!   `concurrency`, one if `ordered`) and per agent (a fair share of its
//!   `max_in_flight` for each output with work ready).
//! - `pump/`: one task per connected group: asks the store what is due,
//!   hands it to the group's agents within their `max_in_flight`, settles
//!   acks, retries, and cuts off agents that never ack.
//! - `public`: the server's own deliveries to public outputs.
//! - `wait`: callers held by the `wait` response policy.
//! - `ephemeral`: payloads of ephemeral events, held in memory only.
//! - `message`: the `Deliver` a due delivery becomes.
//! - `retry`: which answers are retried, and when; writing settlements.

mod ephemeral;
mod gate;
mod grpc;
mod message;
mod preauth;
mod public;
mod pump;
mod retry;
mod rules;
mod session;
pub(crate) mod socket;
mod wait;
mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use model::{BucketId, TenantId};
use serde::Serialize;
use tokio::sync::mpsc;

pub(crate) use ephemeral::{EphemeralPayload, EphemeralPayloads};
pub(crate) use preauth::{Doorway, Limits as PreauthLimits};
pub(crate) use wait::{Answer, Waiters};

use crate::state::AppState;
use pump::{GroupCmd, PumpHandle};

/// The agent transports' routes: WebSocket and gRPC on the one port, and
/// Webhook Relay's socket server.
pub(crate) fn router(state: &AppState) -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/agent/ws", axum::routing::get(ws::upgrade))
        .route("/v1/socket", axum::routing::get(socket::upgrade))
        .merge(socket::logs_router())
        .route_service("/hookrelay.v1.Agent/Connect", grpc::service(state.clone()))
}

pub(crate) use public::run as run_public_deliveries;

/// Which agents share work: the same group name in one tenant.
type GroupKey = (TenantId, String);

/// The registry of connected agents.
pub(crate) struct Hub {
    groups: Mutex<HashMap<GroupKey, PumpHandle>>,
    agents: Mutex<HashMap<u64, Arc<AgentInfo>>>,
    next_agent: AtomicU64,
    /// Random, per process: agent ids stay unique across the nodes of a
    /// cluster, which list each other's agents.
    node_tag: String,
    pub(crate) waiters: Waiters,
    pub(crate) ephemeral: EphemeralPayloads,
    /// Wakes the public delivery worker (a resend).
    pub(crate) public_wake: tokio::sync::Notify,
}

/// What `GET /v1/agents` shows of a connection.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentInfo {
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) tenant: TenantId,
    pub(crate) group: String,
    pub(crate) buckets: Vec<BucketId>,
    pub(crate) transport: &'static str,
    pub(crate) address: String,
    pub(crate) version: String,
    pub(crate) connected_since: i64,
    pub(crate) max_in_flight: u32,
    /// Unacknowledged deliveries now; kept by the group's pump.
    #[serde(serialize_with = "load_count")]
    pub(crate) in_flight: AtomicUsize,
}

fn load_count<S: serde::Serializer>(n: &AtomicUsize, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(n.load(Ordering::Relaxed) as u64)
}

/// An agent as its group's pump sees it.
pub(crate) struct Slot {
    pub(crate) info: Arc<AgentInfo>,
    pub(crate) number: u64,
    pub(crate) buckets: Vec<model::Bucket>,
    /// Deliveries (and the cut-off) go to the session through this.
    /// Boxed: a channel's first block holds 32 messages, and a
    /// `ServerMessage` is ~310 bytes, so unboxed the two channels of an
    /// idle agent held ~20 KiB (massif, 300 idle WebSocket agents).
    pub(crate) tx: mpsc::Sender<Box<proto::ServerMessage>>,
}

impl Hub {
    pub(crate) fn new() -> Self {
        Hub {
            groups: Mutex::new(HashMap::new()),
            agents: Mutex::new(HashMap::new()),
            next_agent: AtomicU64::new(1),
            node_tag: format!("{:08x}", rand::random::<u32>()),
            waiters: Waiters::new(),
            ephemeral: EphemeralPayloads::new(),
            public_wake: tokio::sync::Notify::new(),
        }
    }

    pub(crate) fn next_agent_number(&self) -> u64 {
        self.next_agent.fetch_add(1, Ordering::Relaxed)
    }

    /// The id `GET /v1/agents` shows for this node's agent `number`.
    pub(crate) fn agent_id(&self, number: u64) -> String {
        format!("agt_{}{number}", self.node_tag)
    }

    /// Adds an agent to its group, starting the group's pump if it is the
    /// group's first agent on this node. Returns the channel its acks go to.
    pub(crate) async fn join(&self, state: &AppState, slot: Slot) -> mpsc::Sender<GroupCmd> {
        let key = (slot.info.tenant.clone(), slot.info.group.clone());
        lock(&self.agents).insert(slot.number, Arc::clone(&slot.info));
        announce(state, &slot.info).await;
        let cmds = {
            let mut groups = lock(&self.groups);
            let pump = groups
                .entry(key.clone())
                .or_insert_with(|| PumpHandle::spawn(state.clone(), key.0, key.1));
            // Counted under the registry lock, so a pump that finds itself
            // without agents cannot retire while this join is on its way.
            pump.members.fetch_add(1, Ordering::SeqCst);
            pump.cmds.clone()
        };
        // A pump that stopped (shutdown) drops the slot, which ends the
        // session: the agent reconnects.
        let _ = cmds.send(GroupCmd::Join(Box::new(slot))).await;
        cmds
    }

    /// Takes a stopped pump out of the registry, if it is still the one
    /// registered for its group.
    pub(crate) fn forget_pump(&self, tenant: &TenantId, group: &str, members: &Arc<AtomicUsize>) {
        let mut groups = lock(&self.groups);
        let key = (tenant.clone(), group.to_owned());
        if groups
            .get(&key)
            .is_some_and(|p| Arc::ptr_eq(&p.members, members))
        {
            groups.remove(&key);
        }
    }

    /// Removes a disconnected agent; its pump releases what it held.
    pub(crate) async fn leave(
        &self,
        store: &dyn store::Store,
        number: u64,
        cmds: &mpsc::Sender<GroupCmd>,
    ) {
        let gone = lock(&self.agents).remove(&number);
        let _ = cmds.send(GroupCmd::Leave(number)).await;
        if let Some(info) = gone {
            if let Err(err) = store.withdraw_agent(&info.tenant, &info.id).await {
                // Its node's liveness ends the listing when the node goes.
                tracing::warn!(%err, agent = %info.id, "could not withdraw an agent from the cluster list");
            }
        }
    }

    /// Called by a pump whose last agent left: true if it may stop (no join
    /// is on its way), in which case the group is forgotten and the next
    /// agent starts a fresh pump with a fresh catch-up.
    pub(crate) fn retire(&self, tenant: &TenantId, group: &str) -> bool {
        let mut groups = lock(&self.groups);
        let key = (tenant.clone(), group.to_owned());
        let idle = groups
            .get(&key)
            .is_some_and(|p| p.members.load(Ordering::SeqCst) == 0);
        if idle {
            groups.remove(&key);
        }
        idle
    }

    /// Makes the tenant's pumps look at the store again: deliveries became
    /// pending without a new event (a manual resend).
    pub(crate) fn wake(&self, tenant: &TenantId) {
        self.public_wake.notify_one();
        for ((t, _), pump) in lock(&self.groups).iter() {
            if t == tenant {
                let _ = pump.cmds.try_send(GroupCmd::Wake);
            }
        }
    }

    /// Cancels every pump (shutdown); sessions end on the shutdown token.
    pub(crate) fn stop(&self) {
        for pump in lock(&self.groups).values() {
            pump.cancel.cancel();
        }
    }

    /// The tenant's connected agents, oldest connection first.
    pub(crate) fn agents(&self, tenant: &TenantId) -> Vec<Arc<AgentInfo>> {
        let mut found: Vec<_> = lock(&self.agents)
            .values()
            .filter(|a| &a.tenant == tenant)
            .cloned()
            .collect();
        found.sort_by_key(|a| a.connected_since);
        found
    }

    /// Connected agents on this node (the `/metrics` gauge).
    pub(crate) fn agent_count(&self) -> usize {
        lock(&self.agents).len()
    }
}

/// Lists the agent for the other nodes of a cluster (a no-op on one node).
async fn announce(state: &AppState, info: &AgentInfo) {
    let shown = serde_json::to_value(info).unwrap_or_default();
    if let Err(err) = state
        .store
        .announce_agent(&info.tenant, &info.id, &shown)
        .await
    {
        tracing::warn!(%err, agent = %info.id, "could not list an agent for the cluster");
    }
}

/// A poisoned registry lock only means another task panicked mid-update of
/// a map whose every update is a single insert or remove: still coherent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The peer address shown in `GET /v1/agents`.
pub(crate) fn address(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
}
