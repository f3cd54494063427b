//! One public request through a tunnel: find the tunnel by name, check its
//! credentials (then remove them), pick the least busy agent, and send the
//! request as an HTTP/2 stream, bodies streamed both ways. An HTTP/1.1
//! upgrade (WebSocket) becomes an extended CONNECT to the agent, and the
//! visitor's upgraded connection is joined to the stream.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderValue, Method, StatusCode};
use model::{BucketAuth, Tunnel};
use tokio::time::Instant;
use tunnel::headers::{set_upgrade, strip_hop_by_hop, upgrade_protocol};

use super::body::{Counted, Finish, Logged};
use super::log::RequestRecord;
use super::route::{self, Target};
use super::Busy;
use crate::error::ApiError;
use crate::state::AppState;

/// `ANY /t/{name}/{*rest}`.
pub(crate) async fn by_path(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    match route::by_path(req.uri()) {
        Some(target) => proxy(state, peer, target, req).await,
        None => unknown(),
    }
}

/// Host routing, before any other route: with `--tunnel-domain D`, every
/// request for `{name}.D` goes to the tunnel, whatever its path (so
/// `/v1/...` on a tunnel host is the tunnel's, never the relay's API).
pub(crate) async fn by_host(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let Some(domain) = state.config.tunnel_domain.as_deref() else {
        return next.run(req).await;
    };
    let Some(host) = route::request_host(req.uri(), req.headers()) else {
        return next.run(req).await;
    };
    match route::by_host(&host, domain, req.uri()) {
        None => next.run(req).await,
        Some(None) => unknown(),
        Some(Some(target)) => proxy(state, peer, target, req).await,
    }
}

/// The route the router gives path-routed tunnel requests, as the
/// request metrics name it.
const PATH_ROUTE: &str = "/t/{*rest}";

/// Tunnel requests, taken before the router: host routing, then
/// `/t/{name}/...`, as `by_host` and `by_path` route them inside it, but
/// without the router's matching and its three middleware layers (each a
/// boxed future and a cloned service per request: 9% of the relay's CPU
/// under keep-alive load, `perf`). The request metrics count them as the
/// router's layer would. Anything else comes back for the router.
pub(crate) async fn front(
    state: &AppState,
    peer: SocketAddr,
    req: Request,
) -> Result<Response, Request> {
    if let Some(domain) = state.config.tunnel_domain.as_deref() {
        if let Some(host) = route::request_host(req.uri(), req.headers()) {
            match route::by_host(&host, domain, req.uri()) {
                None => {}
                Some(None) => return Ok(unknown()),
                Some(Some(target)) => return Ok(proxy(state.clone(), peer, target, req).await),
            }
        }
    }
    // `/t/` alone is no route of the router's (its wildcard takes one
    // byte at least): left to its fallback.
    if !req.uri().path().starts_with("/t/") || req.uri().path().len() == "/t/".len() {
        return Err(req);
    }
    let response = match route::by_path(req.uri()) {
        Some(target) => proxy(state.clone(), peer, target, req).await,
        None => unknown(),
    };
    state
        .metrics
        .request(PATH_ROUTE, response.status().as_u16());
    Ok(response)
}

pub(super) fn unknown() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_tunnel",
        "no tunnel by this name",
    )
    .into_response()
}

/// 502 `tunnel_offline`, closing the visitor's connection: a keep-alive
/// HTTP/1 connection that has served a request keeps hyper's buffers (23
/// KiB; 10,000 idle visitors of an offline tunnel held 249 MiB), while one
/// that waits for its first request holds 4 KiB until the header timeout
/// cuts it. A visitor that tries again reconnects.
pub(super) fn offline() -> Response {
    let message = "no agent serves this tunnel now";
    let mut response =
        ApiError::new(StatusCode::BAD_GATEWAY, "tunnel_offline", message).into_response();
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

pub(super) fn agent_gone() -> Response {
    let message = "the tunnel agent went away before answering";
    ApiError::new(StatusCode::BAD_GATEWAY, "tunnel_error", message).into_response()
}

pub(super) fn first_byte_timeout() -> Response {
    let message = "the destination sent no answer within 60 s";
    ApiError::new(StatusCode::GATEWAY_TIMEOUT, "destination_timeout", message).into_response()
}

/// Where a request goes: an agent connected here, or another node that
/// holds one (DESIGN §10, several nodes).
enum Via {
    Agent(tunnel::relay::Sender<Body>),
    Node(String),
}

async fn proxy(state: AppState, peer: SocketAddr, target: Target, mut req: Request) -> Response {
    let tunnel = match state
        .tunnels
        .names
        .get(state.store.as_ref(), &target.name)
        .await
    {
        Ok(tunnel) => tunnel,
        Err(store::Error::NotFound) => return unknown(),
        Err(err) => return ApiError::from(err).into_response(),
    };
    if !tunnel.enabled {
        let message = "this tunnel is disabled";
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "disabled", message).into_response();
    }
    let query = target.path_and_query.query().unwrap_or("");
    if let Err(err) = crate::ingest::bucket_auth::check(&tunnel.auth, req.headers(), query) {
        return err.into_response();
    }
    if let Some(limit) = state.config.tunnel_body_limit {
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit) {
            let message =
                format!("the body exceeds this relay's tunnel body limit of {limit} bytes");
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
                .into_response();
        }
    }
    let client = crate::client::client_ip(&state.config.trusted_proxies, peer, req.headers());
    let record = RequestRecord {
        at: store::clock::now_ms(),
        method: req.method().to_string(),
        path: target.path_and_query.path().to_owned(),
        status: 0,
        latency_ms: 0,
        latency_micros: None,
        bytes_in: 0,
        bytes_out: 0,
        client_ip: client.to_string(),
    };
    let upgrade = upgrade_protocol(req.headers());
    let agent = state.tunnels.pick(&tunnel.id);
    // Upgrades are served by the node that holds an agent: extended
    // CONNECT is not carried between nodes.
    let node = match (&agent, &upgrade) {
        (None, None) => super::nodes::holder(&state, &tunnel.id).await,
        _ => None,
    };
    let (via, busy) = match (agent, node) {
        (Some(agent), _) => (Via::Agent(agent.sender.clone()), Some(Busy::new(agent))),
        (None, Some(node)) => (Via::Node(node), None),
        (None, None) => {
            let mut record = record;
            record.status = 502;
            state.tunnels.finished(&tunnel.id, record);
            return offline();
        }
    };
    let mut finish = Finish {
        state: state.clone(),
        tunnel: tunnel.id.clone(),
        record,
        bytes_in: Arc::new(AtomicU64::new(0)),
        bytes_out: Arc::new(AtomicU64::new(0)),
        _busy: busy,
    };
    let visitor_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let outbound = match outbound(
        &state,
        peer,
        &tunnel,
        &target,
        req,
        upgrade.as_deref(),
        &finish.bytes_in,
    ) {
        Ok(outbound) => outbound,
        Err(err) => return err.into_response(),
    };
    let started = Instant::now();
    let sent = async {
        match via {
            Via::Agent(mut sender) => sender.send_request(outbound).await.map_err(|err| {
                tracing::debug!(%err, tunnel = %tunnel.id, "tunnel request failed");
            }),
            Via::Node(node) => super::nodes::send(&state, &node, &tunnel.id, outbound)
                .await
                .map_err(|err| {
                    tracing::info!(%err, tunnel = %tunnel.id, "tunnel request to another node failed");
                }),
        }
    };
    let answer = tokio::time::timeout(tunnel::FIRST_BYTE_TIMEOUT, sent).await;
    let latency = started.elapsed();
    finish.record.latency_ms = latency.as_millis() as u64;
    finish.record.latency_micros = Some(latency.as_micros() as u64);
    let response = match answer {
        Ok(Ok(response)) => response,
        Ok(Err(())) => {
            finish.record.status = 502;
            return agent_gone();
        }
        Err(_) => {
            finish.record.status = 504;
            return first_byte_timeout();
        }
    };
    finish.record.status = response.status().as_u16();
    if let (Some(protocol), Some(visitor)) = (upgrade, visitor_upgrade) {
        if response.status().is_success() {
            return switch_protocols(response, &protocol, visitor, finish);
        }
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let count = Arc::clone(&finish.bytes_out);
    let body = Logged {
        inner: Counted::new(body, count, state.config.tunnel_body_limit),
        _guard: finish,
    };
    Response::from_parts(parts, Body::new(body))
}

/// The request as the agent receives it: the tunnel's path and query, the
/// `Host` to send (the visitor's, or the tunnel's `hostHeader`) as the
/// authority, no hop-by-hop headers, no tunnel credentials, and the
/// `X-Forwarded-*` headers.
fn outbound(
    state: &AppState,
    peer: SocketAddr,
    tunnel: &Tunnel,
    target: &Target,
    req: Request,
    upgrade: Option<&str>,
    bytes_in: &Arc<AtomicU64>,
) -> Result<http::Request<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let visitor_host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(HOST);
    let mut path_and_query = target.path_and_query.as_str().to_owned();
    match &tunnel.auth {
        BucketAuth::None => {}
        BucketAuth::Basic { .. } => {
            headers.remove(AUTHORIZATION);
        }
        BucketAuth::Token { .. } => {
            headers.remove(AUTHORIZATION);
            if let Some(query) = target.path_and_query.query() {
                let kept = crate::ingest::bucket_auth::strip_query_token(query);
                path_and_query = match kept.as_str() {
                    "" => target.path_and_query.path().to_owned(),
                    kept => format!("{}?{kept}", target.path_and_query.path()),
                };
            }
        }
    }
    forwarded_headers(state, peer, &mut headers, visitor_host.as_deref(), target);
    let authority = tunnel
        .host_header
        .clone()
        .or(visitor_host)
        .unwrap_or_else(|| "localhost".to_owned());
    let uri = format!("http://{authority}{path_and_query}");
    let mut builder = http::Request::builder().uri(uri);
    let body = match upgrade {
        Some(protocol) => {
            builder = builder
                .method(Method::CONNECT)
                .extension(hyper::ext::Protocol::from(protocol));
            Body::empty()
        }
        None => {
            builder = builder.method(parts.method);
            Body::new(Counted::new(
                body,
                Arc::clone(bytes_in),
                state.config.tunnel_body_limit,
            ))
        }
    };
    let mut request = builder
        .body(body)
        .map_err(|_| ApiError::invalid_request("the request's Host cannot be forwarded"))?;
    *request.headers_mut() = headers;
    Ok(request)
}

fn forwarded_headers(
    state: &AppState,
    peer: SocketAddr,
    headers: &mut http::HeaderMap,
    visitor_host: Option<&str>,
    target: &Target,
) {
    // Only a trusted proxy's chain is kept; anyone else's would let a
    // visitor claim any address to the destination.
    let trusted = state.config.trusted_proxies.contains(&peer.ip());
    let chain = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .filter(|_| trusted)
        .map(|earlier| format!("{earlier}, {}", peer.ip()))
        .unwrap_or_else(|| peer.ip().to_string());
    let proto = headers
        .get("x-forwarded-proto")
        .filter(|_| trusted)
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_static(if state.config.tls.is_some() {
                "https"
            } else {
                "http"
            })
        });
    for name in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-prefix",
    ] {
        headers.remove(name);
    }
    if let Ok(chain) = HeaderValue::from_str(&chain) {
        headers.insert("x-forwarded-for", chain);
    }
    headers.insert("x-forwarded-proto", proto);
    if let Some(host) = visitor_host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert("x-forwarded-host", host);
    }
    if let Some(prefix) = target
        .prefix
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        headers.insert("x-forwarded-prefix", prefix);
    }
}

/// The agent accepted the upgrade: answer the visitor 101 with the
/// destination's headers and join the two upgraded streams.
fn switch_protocols(
    mut response: http::Response<hyper::body::Incoming>,
    protocol: &str,
    visitor: hyper::upgrade::OnUpgrade,
    finish: Finish,
) -> Response {
    let agent = hyper::upgrade::on(&mut response);
    let mut headers = std::mem::take(response.headers_mut());
    strip_hop_by_hop(&mut headers);
    set_upgrade(&mut headers, protocol);
    tokio::spawn(async move {
        let _finish = finish;
        let (Ok(visitor), Ok(agent)) = tokio::join!(visitor, agent) else {
            return;
        };
        let mut visitor = hyper_util::rt::TokioIo::new(visitor);
        let mut agent = hyper_util::rt::TokioIo::new(agent);
        let _ = tokio::io::copy_bidirectional(&mut visitor, &mut agent).await;
    });
    let mut answer = Response::new(Body::empty());
    *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *answer.headers_mut() = headers;
    answer
}
