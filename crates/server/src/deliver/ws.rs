//! The WebSocket transport: `GET /v1/agent/ws`, one protobuf message per
//! binary frame (see `proto`). Text frames break the protocol; the
//! WebSocket's own ping/pong is answered by the library and otherwise
//! ignored (the protocol has its own heartbeats).

use std::net::SocketAddr;

use async_trait::async_trait;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use proto::{agent_message, ServerMessage};

use super::session::{self, AgentLink, LinkError};
use crate::state::AppState;

/// What an agent's socket reads into at a time. An agent sends acks and
/// pings, a few hundred bytes each; tungstenite's default of 128 KiB was
/// 85 % of an idle WebSocket agent's memory on the relay (massif), and a
/// larger message is still read whole, in more reads.
const READ_BUFFER_BYTES: usize = 4 * 1024;

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = Some(peer);
    ws.max_message_size(proto::MAX_MESSAGE_BYTES)
        .max_frame_size(proto::MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| session::run(state, WsLink { socket }, peer))
}

struct WsLink {
    socket: WebSocket,
}

#[async_trait]
impl AgentLink for WsLink {
    async fn recv(&mut self) -> Option<Result<agent_message::Kind, LinkError>> {
        loop {
            let frame = match self.socket.recv().await? {
                Ok(frame) => frame,
                Err(err) => return Some(Err(LinkError::Transport(err.to_string()))),
            };
            return match frame {
                Message::Binary(bytes) => Some(
                    proto::decode_agent(&bytes).map_err(|e| LinkError::Protocol(e.to_string())),
                ),
                Message::Text(_) => Some(Err(LinkError::Protocol(
                    "text frames are not part of the protocol".into(),
                ))),
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(_) => None,
            };
        }
    }

    async fn send(&mut self, message: ServerMessage) -> Result<(), LinkError> {
        self.socket
            .send(Message::Binary(proto::encode(&message).into()))
            .await
            .map_err(|e| LinkError::Transport(e.to_string()))
    }

    fn transport(&self) -> &'static str {
        "ws"
    }
}
