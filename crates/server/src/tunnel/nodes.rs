//! Tunnel requests between nodes (DESIGN §10): a visitor's request that
//! reaches a node holding none of the tunnel's agents is carried, as one
//! HTTP/2 stream, to a node that holds one, and the answer streams back
//! the same way. Bodies never touch the store; only which nodes hold which
//! tunnel does (`store::ClusterBus::hold_tunnel`, a hold that lapses unless
//! refreshed, so a node killed without a goodbye drops out by itself).
//!
//! The sending node has done everything a visitor's request needs (name,
//! auth, limits, `X-Forwarded-*`, the request log); the holding node only
//! checks that the sender is a node of the cluster — the key derived from
//! the shared master key, compared in constant time — and hands the
//! stream to its least busy agent.
//!
//! Depends on the registry (`super`), `body` and the store's bus. Node
//! URLs are `http://` (h2c, prior knowledge): node-to-node traffic stays
//! on the nodes' own network.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::HeaderName;
use http::{HeaderValue, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use model::TunnelId;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tunnel::headers::strip_hop_by_hop;

use super::body::Holding;
use super::{lock, Busy};
use crate::error::ApiError;
use crate::state::AppState;

/// Where a node receives the others' tunnel requests:
/// `/v1/tunnel/node/{tunnel id}{path and query}`.
pub(crate) const NODE_PATH: &str = "/v1/tunnel/node/";

/// The node key (base64 of the derived key) on a node-to-node request.
const KEY_HEADER: HeaderName = HeaderName::from_static("x-hookrelay-node-key");
/// The authority the destination is to see (the visitor's `Host` or the
/// tunnel's `hostHeader`): the request's own is the holding node's.
const AUTHORITY_HEADER: HeaderName = HeaderName::from_static("x-hookrelay-authority");

/// A node's hold on a tunnel lapses this long after its last refresh: the
/// most a node killed with its agents can be sent requests for (each then
/// fails fast, the connection being refused).
pub(crate) const HOLD_TTL: Duration = Duration::from_secs(15);
/// Holds are refreshed three times per TTL, so one slow store round trip
/// does not let a live hold lapse.
const REFRESH: Duration = Duration::from_secs(5);
/// Connecting to another node (TCP and the HTTP/2 preface).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2 connections to the other nodes, one per node URL: streams
/// multiplex, so one connection carries every request to that node. At
/// most one entry per node that ever held a tunnel this node was asked for.
#[derive(Default)]
pub(crate) struct Peers {
    links: Mutex<HashMap<String, tunnel::relay::Sender<Body>>>,
}

/// Why a request could not be handed to another node.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error("node URL {0:?} is not http://host:port")]
    BadUrl(String),
    #[error("connecting to node {0}: {1}")]
    Connect(String, String),
    #[error("the node-to-node request failed: {0}")]
    Request(#[from] hyper::Error),
}

impl Peers {
    /// A ready connection to the node at `url`, reusing the open one.
    async fn link(&self, url: &str) -> Result<tunnel::relay::Sender<Body>, NodeError> {
        let open = lock(&self.links).get(url).cloned();
        if let Some(mut sender) = open {
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let address = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| NodeError::BadUrl(url.to_owned()))?;
        let failed = |e: String| NodeError::Connect(url.to_owned(), e);
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| failed("timed out".into()))?
            .map_err(|e| failed(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(tunnel::KEEP_ALIVE)
            .keep_alive_timeout(proto::SILENCE_LIMIT)
            .initial_stream_window_size(tunnel::STREAM_WINDOW)
            .initial_connection_window_size(tunnel::CONNECTION_WINDOW)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "a node-to-node connection ended");
            }
        });
        lock(&self.links).insert(url.to_owned(), sender.clone());
        Ok(sender)
    }
}

/// Another node holding an agent of `tunnel`, if the store knows one
/// (never this node: its own agents were looked for first).
pub(crate) async fn holder(state: &AppState, tunnel: &TunnelId) -> Option<String> {
    let own = state.config.node.as_ref().map(|n| n.url.as_str());
    let nodes = match state.store.tunnel_nodes(tunnel).await {
        Ok(nodes) => nodes,
        Err(err) => {
            tracing::warn!(%err, %tunnel, "could not read which nodes hold the tunnel");
            return None;
        }
    };
    let mut others: Vec<String> = nodes
        .into_iter()
        .filter(|n| Some(n.as_str()) != own)
        .collect();
    match others.len() {
        0 => None,
        n => Some(others.swap_remove(rand::random_range(0..n))),
    }
}

/// Sends `request` (as `proxy::outbound` made it for an agent) to the
/// node at `node`, for its agents of `tunnel`.
pub(crate) async fn send(
    state: &AppState,
    node: &str,
    tunnel: &TunnelId,
    mut request: http::Request<Body>,
) -> Result<http::Response<hyper::body::Incoming>, NodeError> {
    let link = state
        .config
        .node
        .as_ref()
        .and_then(|n| n.keys.first())
        .ok_or_else(|| NodeError::BadUrl(node.to_owned()))?;
    let mut sender = state.tunnels.peers.link(node).await?;
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if let Some(authority) = request
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(AUTHORITY_HEADER, authority);
    }
    let key = HeaderValue::from_str(link.expose()).map_err(|_| NodeError::BadUrl(node.into()))?;
    request.headers_mut().insert(KEY_HEADER, key);
    let uri = format!("{}{NODE_PATH}{tunnel}{path}", node.trim_end_matches('/'));
    *request.uri_mut() = uri
        .parse()
        .map_err(|_| NodeError::BadUrl(node.to_owned()))?;
    Ok(sender.send_request(request).await?)
}

/// `ANY /v1/tunnel/node/{tunnel}/{*rest}`: another node's request for an
/// agent of this node.
pub(crate) async fn receive(State(state): State<AppState>, req: Request) -> Response {
    if !authentic(&state, req.headers()) {
        let message = "not a node of this cluster";
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    }
    let Some((tunnel, path)) = target(req.uri()) else {
        return super::proxy::unknown();
    };
    let Some(agent) = state.tunnels.pick(&tunnel) else {
        return super::proxy::offline();
    };
    let (mut parts, body) = req.into_parts();
    let authority = parts
        .headers
        .remove(AUTHORITY_HEADER)
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned());
    parts.headers.remove(KEY_HEADER);
    let Ok(uri) = format!("http://{authority}{path}").parse::<http::Uri>() else {
        return ApiError::invalid_request("the request's Host cannot be forwarded").into_response();
    };
    let mut request = http::Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = parts.headers;
    let mut sender = agent.sender.clone();
    let busy = Busy::new(agent);
    let answer =
        tokio::time::timeout(tunnel::FIRST_BYTE_TIMEOUT, sender.send_request(request)).await;
    match answer {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            let body = Holding {
                inner: body,
                _guard: busy,
            };
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(err)) => {
            tracing::debug!(%err, %tunnel, "tunnel request from another node failed");
            super::proxy::agent_gone()
        }
        Err(_) => super::proxy::first_byte_timeout(),
    }
}

/// Whether the request carries one of this node's node keys.
fn authentic(state: &AppState, headers: &http::HeaderMap) -> bool {
    let (Some(link), Some(given)) = (state.config.node.as_ref(), headers.get(KEY_HEADER)) else {
        return false;
    };
    let given = given.as_bytes();
    // Every key is compared, so the time taken says nothing of which
    // (or whether one) matched.
    link.keys.iter().fold(false, |found, key| {
        found | bool::from(key.expose().as_bytes().ct_eq(given))
    })
}

/// The tunnel id and the path for its agent, from the raw target.
fn target(uri: &http::Uri) -> Option<(TunnelId, String)> {
    let rest = uri.path().strip_prefix(NODE_PATH)?;
    let (id, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let id = id.parse::<TunnelId>().ok()?;
    let path = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    Some((id, path))
}

/// Keeps this node's holds on the tunnels whose agents it has, until
/// `cancel`; a hold is also taken and given up as agents come and go
/// ([`held`], [`released`]), so this only outruns the TTL.
pub(crate) async fn refresh_holds(state: AppState, cancel: CancellationToken) {
    let Some(url) = state.config.node.as_ref().map(|n| n.url.clone()) else {
        return;
    };
    let mut every = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        for tunnel in state.tunnels.tunnel_ids() {
            if let Err(err) = state.store.hold_tunnel(&tunnel, &url, HOLD_TTL).await {
                tracing::warn!(%err, %tunnel, "could not refresh this node's hold on a tunnel");
            }
        }
    }
}

/// An agent of `tunnel` connected here: other nodes may send its requests.
pub(crate) async fn held(state: &AppState, tunnel: &TunnelId) {
    let Some(link) = &state.config.node else {
        return;
    };
    if let Err(err) = state.store.hold_tunnel(tunnel, &link.url, HOLD_TTL).await {
        tracing::warn!(%err, %tunnel, "could not tell the other nodes of a tunnel agent");
    }
}

/// An agent of `tunnel` left: the hold goes when it was the node's last.
pub(crate) async fn released(state: &AppState, tunnel: &TunnelId) {
    let Some(link) = &state.config.node else {
        return;
    };
    if state.tunnels.agent_count(tunnel) > 0 {
        return;
    }
    if let Err(err) = state.store.release_tunnel(tunnel, &link.url).await {
        tracing::warn!(%err, %tunnel, "could not withdraw this node's hold on a tunnel");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_a_tunnel_id_and_keep_the_raw_path() {
        let id = TunnelId::generate();
        let cases = [
            (format!("{NODE_PATH}{id}"), Some("/".to_owned())),
            (format!("{NODE_PATH}{id}/"), Some("/".to_owned())),
            (
                format!("{NODE_PATH}{id}/a/../b?x=1"),
                Some("/a/../b?x=1".to_owned()),
            ),
            (format!("{NODE_PATH}{id}/a%2Fb"), Some("/a%2Fb".to_owned())),
            (format!("{NODE_PATH}not-an-id/a"), None),
            ("/v1/tunnel/nodes/x".to_owned(), None),
        ];
        for (uri, path) in cases {
            let uri: http::Uri = uri.parse().unwrap();
            assert_eq!(target(&uri).map(|(_, p)| p), path, "{uri}");
        }
    }
}
