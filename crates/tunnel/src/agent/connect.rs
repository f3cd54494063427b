//! Opens the tunnel connection on the configured transport (through TLS
//! for `https://`), as one byte stream, and shakes hands: `Hello` (mode
//! tunnel, the tunnel's name) out, `Welcome` or `Error` back.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use proto::pb::tunnel_client::TunnelClient;
use proto::{agent_message, pb, server_message, AgentMessage, ServerMessage};
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite::Message;

use super::{Transport, TunnelConfig, TunnelError};
use crate::stream::{io_error, join, BoxIo};
use crate::wire;

/// Chunks buffered towards the relay on the gRPC stream; HTTP/2's windows
/// bound the rest.
const OUTBOUND_CHUNKS: usize = 16;

/// How long connecting (TCP, TLS, the upgrade) may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Codes a reconnect cannot fix.
const FATAL_CODES: [&str; 4] = ["unauthorized", "forbidden", "not_found", "bad_request"];

pub(crate) enum Failure {
    Refused(TunnelError),
    Lost(String),
}

/// Connects and hands back the stream, ready for HTTP/2, with the Welcome.
pub(crate) async fn open(
    config: &TunnelConfig,
    ca: Option<&[u8]>,
) -> Result<(BoxIo, pb::Welcome), Failure> {
    let mut io = match config.transport {
        Transport::Grpc => grpc(&config.server, ca).await,
        Transport::WebSocket => websocket(&config.server, ca).await,
    }
    .map_err(Failure::Lost)?;
    let hello = AgentMessage::from(agent_message::Kind::Hello(pb::Hello {
        token_key: config.token_key.clone(),
        token_secret: config.token_secret.clone(),
        mode: pb::Mode::Tunnel as i32,
        version: proto::VERSION.to_owned(),
        tunnel: config.name.clone(),
        ..Default::default()
    }));
    let lost = |e: wire::WireError| Failure::Lost(e.to_string());
    wire::write_message(&mut io, &hello).await.map_err(lost)?;
    let reply: ServerMessage =
        tokio::time::timeout(proto::HELLO_TIMEOUT, wire::read_message(&mut io))
            .await
            .map_err(|_| Failure::Lost("no Welcome in time".into()))?
            .map_err(lost)?;
    match reply.kind {
        Some(server_message::Kind::Welcome(welcome)) => Ok((io, welcome)),
        Some(server_message::Kind::Error(e)) if FATAL_CODES.contains(&e.code.as_str()) => {
            Err(Failure::Refused(TunnelError::Refused {
                code: e.code,
                message: e.message,
            }))
        }
        Some(server_message::Kind::Error(e)) => {
            Err(Failure::Lost(format!("{}: {}", e.code, e.message)))
        }
        _ => Err(Failure::Lost(
            "the relay answered Hello with something else".into(),
        )),
    }
}

async fn grpc(server: &str, ca: Option<&[u8]>) -> Result<BoxIo, String> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(server.to_owned())
        .map_err(|e| format!("invalid server URL: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(proto::HEARTBEAT)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(crate::STREAM_WINDOW)
        .initial_connection_window_size(crate::CONNECTION_WINDOW);
    if server.starts_with("https://") {
        let tls = tonic::transport::ClientTlsConfig::new();
        let tls = match ca {
            Some(pem) => tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            None => tls.with_native_roots(),
        };
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| proto::link::error_chain(&e))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| proto::link::error_chain(&e))?;
    let mut client = TunnelClient::new(channel)
        .max_decoding_message_size(crate::MAX_CHUNK_BYTES)
        .max_encoding_message_size(crate::MAX_CHUNK_BYTES);
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::TunnelChunk>(OUTBOUND_CHUNKS);
    let response = client
        .open(ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("the relay refused the stream: {}", s.message()))?;
    let inbound = response
        .into_inner()
        .map(|chunk| chunk.map(|c| c.data).map_err(io_error));
    let outbound = tokio_util::sync::PollSender::new(tx)
        .sink_map_err(io_error)
        .with(|data: Bytes| std::future::ready(Ok::<_, std::io::Error>(pb::TunnelChunk { data })));
    Ok(join(inbound, Box::pin(outbound)))
}

async fn websocket(server: &str, ca: Option<&[u8]>) -> Result<BoxIo, String> {
    let url = proto::link::ws_url(server, crate::WS_PATH)?;
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(crate::MAX_CHUNK_BYTES))
        .max_frame_size(Some(crate::MAX_CHUNK_BYTES));
    let connector = if url.starts_with("wss://") {
        Some(tokio_tungstenite::Connector::Rustls(
            proto::link::client_tls(ca)?,
        ))
    } else {
        None
    };
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, connector);
    let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| "connecting timed out".to_owned())?
        .map_err(|e| proto::link::error_chain(&e))?;
    let (sink, stream) = socket.split();
    let inbound = stream.filter_map(|frame| {
        std::future::ready(match frame {
            Ok(Message::Binary(data)) => Some(Ok(data)),
            Ok(Message::Text(_)) => Some(Err(io_error("the relay sent a text frame"))),
            Ok(Message::Close(_)) => None,
            Ok(_) => None,
            Err(e) => Some(Err(io_error(e))),
        })
    });
    let outbound = sink
        .sink_map_err(io_error)
        .with(|data: Bytes| std::future::ready(Ok::<_, std::io::Error>(Message::Binary(data))));
    Ok(join(Box::pin(inbound), Box::pin(outbound)))
}
