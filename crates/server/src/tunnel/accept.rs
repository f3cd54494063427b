//! The tunnel agents' endpoints on the relay's one port — gRPC
//! `hookrelay.v1.Tunnel/Open` and WebSocket `GET /v1/tunnel/ws` — each
//! turned into one byte stream, then the handshake: `Hello` within
//! [`proto::HELLO_TIMEOUT`] (at most [`tunnel::wire::MAX_HANDSHAKE_BYTES`]),
//! an `agent` token of mode `tunnel` for a tunnel of its tenant, `Welcome`;
//! then the relay's HTTP/2 client runs on the stream until it ends.

use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use model::{AgentMode, Tunnel};
use proto::pb::tunnel_server::{Tunnel as TunnelRpc, TunnelServer};
use proto::pb::{self, TunnelChunk};
use proto::{agent_message, server_message, AgentMessage, ServerMessage};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status, Streaming};
use tracing::Instrument;
use tunnel::stream::{io_error, join, BoxIo};
use tunnel::wire;

use crate::state::AppState;

/// Chunks buffered towards a gRPC agent; HTTP/2's windows bound the rest.
const OUTBOUND_CHUNKS: usize = 16;

/// What the WebSocket reads into at a time: an idle tunnel costs little,
/// and a busy one reads larger frames in several reads.
const READ_BUFFER_BYTES: usize = 16 * 1024;

pub(crate) async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(tunnel::MAX_CHUNK_BYTES)
        .max_frame_size(tunnel::MAX_CHUNK_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            let inbound = stream.filter_map(|frame| {
                std::future::ready(match frame {
                    Ok(Message::Binary(data)) => Some(Ok(data)),
                    Ok(Message::Text(_)) => {
                        Some(Err(io_error("text frames are not part of the tunnel")))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(io_error(e))),
                })
            });
            let outbound = sink.sink_map_err(io_error).with(|data: Bytes| {
                std::future::ready(Ok::<_, std::io::Error>(Message::Binary(data)))
            });
            let io = join(Box::pin(inbound), Box::pin(outbound));
            serve(state, io, Some(peer), "ws")
        })
}

pub(crate) struct TunnelService {
    state: AppState,
}

/// The tower service mounted at `/hookrelay.v1.Tunnel/Open`.
pub(crate) fn grpc_service(state: AppState) -> TunnelServer<TunnelService> {
    TunnelServer::new(TunnelService { state })
        .max_decoding_message_size(tunnel::MAX_CHUNK_BYTES)
        .max_encoding_message_size(tunnel::MAX_CHUNK_BYTES)
}

#[async_trait]
impl TunnelRpc for TunnelService {
    type OpenStream = ReceiverStream<Result<TunnelChunk, Status>>;

    async fn open(
        &self,
        request: Request<Streaming<TunnelChunk>>,
    ) -> Result<tonic::Response<Self::OpenStream>, Status> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let (tx, rx) = tokio::sync::mpsc::channel(OUTBOUND_CHUNKS);
        let inbound = request
            .into_inner()
            .map(|chunk| chunk.map(|c| c.data).map_err(io_error));
        let outbound = tokio_util::sync::PollSender::new(tx)
            .sink_map_err(io_error)
            .with(|data: Bytes| {
                std::future::ready(Ok::<_, std::io::Error>(Ok(TunnelChunk { data })))
            });
        let io = join(inbound, Box::pin(outbound));
        tokio::spawn(serve(self.state.clone(), io, peer, "grpc"));
        Ok(tonic::Response::new(ReceiverStream::new(rx)))
    }
}

/// A refusal: the code (as the forward agents get) and a sentence.
struct Refusal(&'static str, String);

async fn serve(state: AppState, io: BoxIo, peer: Option<SocketAddr>, transport: &'static str) {
    let span =
        tracing::info_span!("tunnel_agent", transport, peer = %crate::deliver::address(peer));
    run(state, io, peer).instrument(span).await;
}

async fn run(state: AppState, mut io: BoxIo, peer: Option<SocketAddr>) {
    let hello = tokio::time::timeout(
        proto::HELLO_TIMEOUT,
        wire::read_message::<AgentMessage>(&mut io),
    )
    .await;
    let hello = match hello {
        Ok(Ok(AgentMessage {
            kind: Some(agent_message::Kind::Hello(hello)),
        })) => hello,
        Ok(Ok(_)) => {
            return refuse(
                io,
                Refusal("bad_request", "the first message must be Hello".into()),
            )
            .await
        }
        Ok(Err(err)) => return refuse(io, Refusal("bad_request", err.to_string())).await,
        Err(_) => return refuse(io, Refusal("too_slow", "no Hello in time".into())).await,
    };
    let client = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.ip());
    let tunnel = match accept(&state, &hello, client).await {
        Ok(tunnel) => tunnel,
        Err(refusal) => return refuse(io, refusal).await,
    };
    let number = state.tunnels.next_number();
    let welcome = ServerMessage::from(server_message::Kind::Welcome(pb::Welcome {
        agent_id: format!("tag_{number}"),
        heartbeat_ms: u32::try_from(tunnel::KEEP_ALIVE.as_millis()).unwrap_or(u32::MAX),
        tunnel_urls: super::urls(&state.config, &tunnel.name),
        ..Default::default()
    }));
    let sent =
        tokio::time::timeout(proto::HELLO_TIMEOUT, wire::write_message(&mut io, &welcome)).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let (sender, connection) = match tunnel::relay::client::<axum::body::Body>(io).await {
        Ok(client) => client,
        Err(err) => return tracing::info!(%err, "tunnel HTTP/2 failed to start"),
    };
    state.tunnels.add(&tunnel.id, number, sender);
    super::nodes::held(&state, &tunnel.id).await;
    tracing::info!(tunnel = %tunnel.id, agent = number, "tunnel agent connected");
    tokio::select! {
        end = connection => if let Err(err) = end { tracing::info!(%err, "tunnel connection ended") },
        () = state.shutdown.cancelled() => {}
    }
    state.tunnels.remove(&tunnel.id, number);
    super::nodes::released(&state, &tunnel.id).await;
    tracing::info!(tunnel = %tunnel.id, agent = number, "tunnel agent disconnected");
}

/// Checks the `Hello`, then writes `Welcome`.
async fn accept(
    state: &AppState,
    hello: &pb::Hello,
    client: IpAddr,
) -> Result<std::sync::Arc<Tunnel>, Refusal> {
    let token =
        crate::auth::authenticate_agent(state, &hello.token_key, &hello.token_secret, client)
            .await
            .map_err(|e| Refusal(e.code, e.message))?;
    if token.mode != Some(AgentMode::Tunnel) {
        return Err(Refusal(
            "forbidden",
            "a forward-mode token cannot open a tunnel".into(),
        ));
    }
    if hello.mode != pb::Mode::Tunnel as i32 {
        return Err(Refusal(
            "bad_request",
            "a tunnel connection says mode tunnel".into(),
        ));
    }
    let not_found = || Refusal("not_found", format!("no tunnel {:?}", hello.tunnel));
    let tunnel = match state
        .tunnels
        .names
        .get(state.store.as_ref(), &hello.tunnel)
        .await
    {
        Ok(tunnel) if tunnel.tenant == token.tenant => tunnel,
        Ok(_) | Err(store::Error::NotFound) => return Err(not_found()),
        Err(err) => return Err(Refusal("unavailable", err.to_string())),
    };
    if !tunnel.enabled {
        return Err(Refusal("disabled", "the tunnel is disabled".into()));
    }
    Ok(tunnel)
}

async fn refuse(mut io: BoxIo, Refusal(code, message): Refusal) {
    tracing::info!(code, "tunnel agent refused");
    let error = ServerMessage::from(server_message::Kind::Error(pb::Error {
        code: code.to_owned(),
        message,
    }));
    let _ = tokio::time::timeout(proto::HELLO_TIMEOUT, wire::write_message(&mut io, &error)).await;
}
