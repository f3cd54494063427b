//! HTTP tunnels, the relay's side (DESIGN §10): the tunnel agents'
//! connections, the public routes that send requests through them, the
//! `/v1/tunnels` objects and each tunnel's request log.
//!
//! Depends on the `tunnel` crate (the connection's handshake and HTTP/2
//! roles), the store's tunnel objects and `AppState`. Start with `proxy`,
//! which is one public request's way.
//!
//! # Layout
//! - `mod.rs`: [`Registry`], the agents connected to this node per tunnel,
//!   and the routers.
//! - `route`: which tunnel a request names (Host or `/t/{name}`), from
//!   the raw target.
//! - `accept`: the agents' endpoints (gRPC `Tunnel/Open`, WebSocket
//!   `/v1/tunnel/ws`) and the handshake.
//! - `proxy`: a public request through an agent, upgrades included.
//! - `log`: the bounded per-tunnel ring of request metadata.
//! - `metrics`: the tunnel figures of `/metrics`.
//! - `names`: tunnels by name, cached along the store's configuration feed.
//! - `nodes`: requests carried to the node that holds the tunnel's agent.
//! - `api`: `/v1/tunnels` and `/v1/tunnels/{id}/requests`.

mod accept;
mod api;
mod body;
mod log;
mod metrics;
mod names;
mod nodes;
mod proxy;
pub(crate) mod route;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::any;
use axum::Router;
use model::TunnelId;

use crate::state::AppState;

pub(crate) use log::RequestLog;

/// The bodies and views, for `crate::openapi`.
pub(crate) mod schemas {
    pub(crate) use super::api::{
        CreateBody, PatchBody, RequestList, RequestsQuery, TunnelList, TunnelView,
    };
}
pub(crate) use proxy::{by_host, front};

/// The public, agent and admin routes of tunnels.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/t/{*rest}", any(proxy::by_path))
        .route("/v1/tunnel/ws", axum::routing::get(accept::websocket))
        .route("/v1/tunnel/node/{*rest}", any(nodes::receive))
        .route_service(
            "/hookrelay.v1.Tunnel/Open",
            accept::grpc_service(state.clone()),
        )
        .merge(admin_router())
}

/// Keeps this node's holds on its tunnels in the store until `cancel`
/// (with `serve --node-url`; otherwise returns at once).
pub(crate) async fn refresh_holds(state: AppState, cancel: tokio_util::sync::CancellationToken) {
    nodes::refresh_holds(state, cancel).await;
}

/// `/v1/tunnels`, also called in-process by the dashboard.
pub(crate) fn admin_router() -> Router<AppState> {
    api::router()
}

/// One tunnel agent connected to this node.
pub(crate) struct Agent {
    number: u64,
    sender: tunnel::relay::Sender<axum::body::Body>,
    /// Public requests it is answering now: the next goes to the least busy.
    in_flight: AtomicUsize,
}

/// The tunnel agents connected to this node, by tunnel.
pub(crate) struct Registry {
    agents: Mutex<HashMap<TunnelId, Vec<Arc<Agent>>>>,
    next: AtomicU64,
    pub(crate) log: RequestLog,
    metrics: metrics::TunnelMetrics,
    pub(crate) names: names::Names,
    /// Connections to the other nodes, for their tunnels' agents.
    peers: nodes::Peers,
}

impl Registry {
    /// `changes` is the store's configuration feed.
    pub(crate) fn new(changes: tokio::sync::watch::Receiver<u64>) -> Self {
        Registry {
            names: names::Names::new(changes),
            agents: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            log: RequestLog::new(),
            metrics: metrics::TunnelMetrics::default(),
            peers: nodes::Peers::default(),
        }
    }

    /// A public request is over: into the log and the metrics.
    fn finished(&self, tunnel: &TunnelId, record: log::RequestRecord) {
        self.metrics.finished(&record);
        self.log.push(tunnel, record);
    }

    /// Appends the tunnel metrics to the Prometheus text.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        let mut agents: Vec<(String, usize)> = lock(&self.agents)
            .iter()
            .map(|(id, list)| (id.to_string(), list.len()))
            .collect();
        agents.sort();
        self.metrics.render(out, &agents);
    }

    fn next_number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn add(&self, tunnel: &TunnelId, number: u64, sender: tunnel::relay::Sender<axum::body::Body>) {
        let agent = Arc::new(Agent {
            number,
            sender,
            in_flight: AtomicUsize::new(0),
        });
        lock(&self.agents)
            .entry(tunnel.clone())
            .or_default()
            .push(agent);
    }

    fn remove(&self, tunnel: &TunnelId, number: u64) {
        let mut agents = lock(&self.agents);
        if let Some(list) = agents.get_mut(tunnel) {
            list.retain(|a| a.number != number);
            if list.is_empty() {
                agents.remove(tunnel);
            }
        }
    }

    /// The least busy agent of `tunnel`. An agent whose connection ended
    /// is gone from the list already (its task removes it); hyper's
    /// `SendRequest::is_closed` is no help here: it answered true for live
    /// HTTP/2 connections, which sent every request to one agent.
    fn pick(&self, tunnel: &TunnelId) -> Option<Arc<Agent>> {
        lock(&self.agents)
            .get(tunnel)?
            .iter()
            .min_by_key(|a| a.in_flight.load(Ordering::Relaxed))
            .cloned()
    }

    /// The tunnels with an agent connected to this node.
    fn tunnel_ids(&self) -> Vec<TunnelId> {
        lock(&self.agents).keys().cloned().collect()
    }

    /// Agents connected to this node for `tunnel` (the API's view).
    pub(crate) fn agent_count(&self, tunnel: &TunnelId) -> usize {
        lock(&self.agents).get(tunnel).map_or(0, Vec::len)
    }
}

/// Counts a request in its agent's load while alive.
struct Busy(Arc<Agent>);

impl Busy {
    fn new(agent: Arc<Agent>) -> Self {
        agent.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(agent)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every update of the registry is a single insert or removal: a poisoned
/// lock still guards a coherent map.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The public URLs of tunnel `name`: path routing always, host routing
/// with `--tunnel-domain` (same scheme as the public URL).
pub(crate) fn urls(config: &crate::Config, name: &str) -> Vec<String> {
    let mut urls = vec![format!("{}/t/{name}/", config.public_url)];
    if let Some(domain) = &config.tunnel_domain {
        let scheme = if config.public_url.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        urls.push(format!("{scheme}://{name}.{domain}/"));
    }
    urls
}
