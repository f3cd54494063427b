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
        endpoint = endpoint.tls_config(tls).map_err(|e| error_chain(&e))?;
    }
    let channel = endpoint.connect().await.map_err(|e| error_chain(&e))?;
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
    let url = ws_url(server)?;
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(crate::MAX_CHUNK_BYTES))
        .max_frame_size(Some(crate::MAX_CHUNK_BYTES));
    let connector = if url.starts_with("wss://") {
        Some(tokio_tungstenite::Connector::Rustls(client_tls(ca)?))
    } else {
        None
    };
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, connector);
    let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| "connecting timed out".to_owned())?
        .map_err(|e| error_chain(&e))?;
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

/// `http://host/base` → `ws://host/base/v1/tunnel/ws` (and https → wss).
fn ws_url(server: &str) -> Result<String, String> {
    let (scheme, rest) = server
        .split_once("://")
        .ok_or_else(|| format!("the server URL {server:?} has no scheme"))?;
    let scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    Ok(format!(
        "{scheme}://{}{}",
        rest.trim_end_matches('/'),
        crate::WS_PATH
    ))
}

/// A TLS client trusting the CA file's certificates, or the system's roots:
/// for the relay (WebSocket) and for an `https://` destination.
pub(crate) fn client_tls(
    ca_pem: Option<&[u8]>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(tls))
}

/// The CA file's certificates, or the system's roots.
fn roots(ca_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("the CA file is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA file holds an unusable certificate: {e}"))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("no trusted certificate (empty CA file or system store)".into());
    }
    Ok(roots)
}

/// Transport errors say little at the top; the causes say what failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::ws_url;

    #[test]
    fn websocket_urls_follow_the_server_url() {
        assert_eq!(
            ws_url("https://r.example/").unwrap(),
            "wss://r.example/v1/tunnel/ws"
        );
        assert_eq!(
            ws_url("http://127.0.0.1:1").unwrap(),
            "ws://127.0.0.1:1/v1/tunnel/ws"
        );
        assert!(ws_url("ftp://x").is_err());
    }
}
