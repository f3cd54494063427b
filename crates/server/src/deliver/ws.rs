//! The WebSocket transport: `GET /v1/agent/ws`, one protobuf message per
//! binary frame (see `proto`). Text frames break the protocol; the
//! WebSocket's own ping/pong is answered by the library and otherwise
//! ignored (the protocol has its own heartbeats).
//!
//! The upgrade is done here rather than by axum's `WebSocketUpgrade` so the
//! connection can be read through the pre-authentication meter
//! (`preauth`): tungstenite's message limit is fixed when the socket is
//! made, and before `Hello` it must be a few KiB, not 32 MiB.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, Stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use proto::{agent_message, ServerMessage};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::preauth::{self, Gate, GatedIo, Meter};
use super::session::{self, AgentLink, LinkError, LinkReader, LinkWriter};
use crate::error::ApiError;
use crate::state::AppState;

/// What an agent's socket reads into at a time. An agent sends acks and
/// pings, a few hundred bytes each; tungstenite's default of 128 KiB was
/// 85 % of an idle WebSocket agent's memory on the relay (massif), and a
/// larger message is still read whole, in more reads.
const READ_BUFFER_BYTES: usize = 4 * 1024;

pub(super) type Socket = WebSocketStream<GatedIo<TokioIo<hyper::upgrade::Upgraded>>>;

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let budget = state.preauth.budget();
    accept(
        request,
        proto::MAX_MESSAGE_BYTES,
        budget,
        move |socket, gate| session::run(state, WsLink { socket, gate }, Some(peer)),
    )
}

/// Answers a WebSocket upgrade request (101, or 400 if it is not one) and,
/// once upgraded, runs `serve` on the socket read through the
/// pre-authentication meter, with messages of at most `max_message` bytes
/// once the gate opens. Shared by the agent transport and the Webhook
/// Relay socket server (`socket`).
pub(super) fn accept<F, Fut>(
    mut request: Request,
    max_message: usize,
    budget: Arc<tokio::sync::Semaphore>,
    serve: F,
) -> Response
where
    F: FnOnce(Socket, Arc<Gate>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(accept) = accept_key(request.headers()) else {
        return ApiError::invalid_request("expected a WebSocket upgrade (RFC 6455)")
            .into_response();
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return ApiError::invalid_request("this connection cannot be upgraded").into_response();
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let gate = Arc::new(Gate::default());
        let meter = Meter::new(preauth::WebSocket::default(), Arc::clone(&gate), budget);
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message))
            .read_buffer_size(READ_BUFFER_BYTES);
        let io = GatedIo::new(TokioIo::new(upgraded), meter);
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        serve(socket, gate).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// The `Sec-WebSocket-Accept` answering a valid version-13 upgrade request.
fn accept_key(headers: &HeaderMap) -> Option<HeaderValue> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::CONNECTION, "upgrade")
        || !has(header::UPGRADE, "websocket")
        || headers.get(header::SEC_WEBSOCKET_VERSION)? != "13"
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).ok()
}

struct WsLink {
    socket: Socket,
    gate: Arc<Gate>,
}

/// The next protocol message on `frames`, skipping WebSocket control
/// frames; `None` once the socket is closed.
async fn next_message<S>(frames: &mut S) -> Option<Result<agent_message::Kind, LinkError>>
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin + Send,
{
    loop {
        let frame = match frames.next().await? {
            Ok(frame) => frame,
            Err(err) => return Some(Err(LinkError::Transport(err.to_string()))),
        };
        return match frame {
            Message::Binary(bytes) => {
                Some(proto::decode_agent(&bytes).map_err(|e| LinkError::Protocol(e.to_string())))
            }
            Message::Text(_) => Some(Err(LinkError::Protocol(
                "text frames are not part of the protocol".into(),
            ))),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Close(_) => None,
        };
    }
}

fn frame(message: &ServerMessage) -> Message {
    Message::Binary(proto::encode(message).into())
}

#[async_trait]
impl AgentLink for WsLink {
    async fn recv(&mut self) -> Option<Result<agent_message::Kind, LinkError>> {
        next_message(&mut self.socket).await
    }

    async fn send(&mut self, message: ServerMessage) -> Result<(), LinkError> {
        self.socket
            .send(frame(&message))
            .await
            .map_err(|e| LinkError::Transport(e.to_string()))
    }

    fn transport(&self) -> &'static str {
        "ws"
    }

    fn authenticated(&mut self) {
        self.gate.open();
    }

    fn split(self) -> (Box<dyn LinkReader>, Box<dyn LinkWriter>) {
        // The halves share the socket through a lock held for one poll at
        // a time; tungstenite keeps reading while its writes would block.
        let (sink, frames) = self.socket.split();
        (Box::new(WsReader { frames }), Box::new(WsWriter { sink }))
    }
}

struct WsReader {
    frames: SplitStream<Socket>,
}

#[async_trait]
impl LinkReader for WsReader {
    async fn recv(&mut self) -> Option<Result<agent_message::Kind, LinkError>> {
        next_message(&mut self.frames).await
    }
}

struct WsWriter {
    sink: SplitSink<Socket, Message>,
}

#[async_trait]
impl LinkWriter for WsWriter {
    async fn send(&mut self, message: ServerMessage) -> Result<(), LinkError> {
        self.sink
            .send(frame(&message))
            .await
            .map_err(|e| LinkError::Transport(e.to_string()))
    }
}
