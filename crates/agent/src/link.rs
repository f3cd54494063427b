//! The agent's side of the two transports, behind one [`ServerLink`]:
//! gRPC (`hookrelay.v1.Agent/Connect` over HTTP/2) and WebSocket
//! (`/v1/agent/ws`, one protobuf message per binary frame). Once welcomed,
//! a session splits its link into a [`LinkReader`] and a [`LinkWriter`],
//! so that a send waiting on the relay never delays reading from it.

use async_trait::async_trait;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, Stream, StreamExt};
use proto::pb::agent_client::AgentClient;
use proto::{server_message, AgentMessage};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{AgentConfig, Transport};

/// Messages buffered towards the relay on the gRPC stream.
const OUTBOUND_BUFFER: usize = 64;

#[async_trait]
pub(crate) trait ServerLink: Send {
    /// The next message from the relay; `None` once the stream ended.
    /// Cancel safe.
    async fn recv(&mut self) -> Option<Result<server_message::Kind, String>>;
    async fn send(&mut self, message: AgentMessage) -> Result<(), String>;
    /// The two directions apart, so that each can wait without the other.
    fn split(self: Box<Self>) -> (Box<dyn LinkReader>, Box<dyn LinkWriter>);
}

/// The reading half of a [`ServerLink`].
#[async_trait]
pub(crate) trait LinkReader: Send {
    /// As [`ServerLink::recv`]; cancel safe.
    async fn recv(&mut self) -> Option<Result<server_message::Kind, String>>;
}

/// The writing half of a [`ServerLink`].
#[async_trait]
pub(crate) trait LinkWriter: Send {
    async fn send(&mut self, message: AgentMessage) -> Result<(), String>;
    /// Ends the stream from this side. The relay then ends it too, which
    /// the reader sees: what was sent before — the last acks — arrived.
    async fn close(&mut self);
}

/// Reads until the relay ends the stream, within [`CLOSE_WAIT`].
pub(crate) async fn wait_for_end(reader: &mut dyn LinkReader) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = reader.recv().await {}
    })
    .await;
}

/// How long a closing link waits for the relay's end of the stream.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the configured transport and sends `hello` as its first message.
pub(crate) async fn connect(
    config: &AgentConfig,
    hello: AgentMessage,
) -> Result<Box<dyn ServerLink>, String> {
    let ca = match &config.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    match config.transport {
        Transport::Grpc => Ok(Box::new(
            GrpcLink::connect(&config.server, ca.as_deref(), hello).await?,
        )),
        Transport::WebSocket => {
            let mut link = WsLink::connect(&config.server, ca.as_deref()).await?;
            link.send(hello).await?;
            Ok(Box::new(link))
        }
    }
}

struct GrpcLink {
    /// `None` once closed: dropping the sender ends the request stream.
    outbound: Option<mpsc::Sender<AgentMessage>>,
    inbound: tonic::Streaming<proto::ServerMessage>,
}

impl GrpcLink {
    async fn connect(
        server: &str,
        ca_pem: Option<&[u8]>,
        hello: AgentMessage,
    ) -> Result<Self, String> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(server.to_owned())
            .map_err(|e| format!("invalid server URL: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(10))
            .http2_keep_alive_interval(proto::HEARTBEAT)
            .keep_alive_while_idle(true);
        if server.starts_with("https://") {
            let tls = tonic::transport::ClientTlsConfig::new();
            let tls = match ca_pem {
                Some(pem) => tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                None => tls.with_native_roots(),
            };
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| format!("TLS: {}", proto::link::error_chain(&e)))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {}", proto::link::error_chain(&e)))?;
        let mut client = AgentClient::new(channel)
            .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);
        let (outbound, rx) = mpsc::channel(OUTBOUND_BUFFER);
        outbound
            .send(hello)
            .await
            .map_err(|_| "the stream closed before Hello".to_owned())?;
        let response = client
            .connect(ReceiverStream::new(rx))
            .await
            .map_err(|status| format!("the relay refused the stream: {}", status.message()))?;
        Ok(GrpcLink {
            outbound: Some(outbound),
            inbound: response.into_inner(),
        })
    }
}

async fn grpc_next(
    inbound: &mut tonic::Streaming<proto::ServerMessage>,
) -> Option<Result<server_message::Kind, String>> {
    match inbound.message().await {
        Ok(Some(message)) => Some(
            message
                .kind
                .ok_or_else(|| "a message without a kind".to_owned()),
        ),
        Ok(None) => None,
        Err(status) => Some(Err(status.message().to_owned())),
    }
}

async fn grpc_send(
    outbound: Option<&mpsc::Sender<AgentMessage>>,
    message: AgentMessage,
) -> Result<(), String> {
    let outbound = outbound.ok_or("the stream is closed")?;
    outbound
        .send(message)
        .await
        .map_err(|_| "the stream is closed".to_owned())
}

#[async_trait]
impl ServerLink for GrpcLink {
    async fn recv(&mut self) -> Option<Result<server_message::Kind, String>> {
        grpc_next(&mut self.inbound).await
    }

    async fn send(&mut self, message: AgentMessage) -> Result<(), String> {
        grpc_send(self.outbound.as_ref(), message).await
    }

    fn split(self: Box<Self>) -> (Box<dyn LinkReader>, Box<dyn LinkWriter>) {
        (
            Box::new(GrpcReader(self.inbound)),
            Box::new(GrpcWriter(self.outbound)),
        )
    }
}

struct GrpcReader(tonic::Streaming<proto::ServerMessage>);

#[async_trait]
impl LinkReader for GrpcReader {
    async fn recv(&mut self) -> Option<Result<server_message::Kind, String>> {
        grpc_next(&mut self.0).await
    }
}

/// `None` once closed: dropping the sender ends the request stream.
struct GrpcWriter(Option<mpsc::Sender<AgentMessage>>);

#[async_trait]
impl LinkWriter for GrpcWriter {
    async fn send(&mut self, message: AgentMessage) -> Result<(), String> {
        grpc_send(self.0.as_ref(), message).await
    }

    async fn close(&mut self) {
        self.0 = None;
    }
}

struct WsLink {
    socket: WsSocket,
}

impl WsLink {
    async fn connect(server: &str, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let url = proto::link::ws_url(server, "/v1/agent/ws")?;
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(proto::MAX_MESSAGE_BYTES))
            .max_frame_size(Some(proto::MAX_MESSAGE_BYTES));
        let connector = if url.starts_with("wss://") {
            Some(tokio_tungstenite::Connector::Rustls(
                proto::link::client_tls(ca_pem)?,
            ))
        } else {
            None
        };
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, connector)
                .await
                .map_err(|e| format!("cannot connect: {}", proto::link::error_chain(&e)))?;
        Ok(WsLink { socket })
    }
}

type WsSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn ws_next<S>(frames: &mut S) -> Option<Result<server_message::Kind, String>>
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin + Send,
{
    loop {
        let frame = match frames.next().await? {
            Ok(frame) => frame,
            Err(e) => return Some(Err(e.to_string())),
        };
        return match frame {
            Message::Binary(bytes) => Some(proto::decode_server(&bytes).map_err(|e| e.to_string())),
            Message::Close(_) => None,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Text(_) => Some(Err("the relay sent a text frame".to_owned())),
        };
    }
}

fn ws_frame(message: &AgentMessage) -> Message {
    Message::Binary(proto::encode(message).into())
}

#[async_trait]
impl ServerLink for WsLink {
    async fn recv(&mut self) -> Option<Result<server_message::Kind, String>> {
        ws_next(&mut self.socket).await
    }

    async fn send(&mut self, message: AgentMessage) -> Result<(), String> {
        self.socket
            .send(ws_frame(&message))
            .await
            .map_err(|e| e.to_string())
    }

    fn split(self: Box<Self>) -> (Box<dyn LinkReader>, Box<dyn LinkWriter>) {
        // The halves share the socket through a lock held for one poll at
        // a time; tungstenite keeps reading while its writes would block.
        let (sink, frames) = self.socket.split();
        (Box::new(WsReader(frames)), Box::new(WsWriter(sink)))
    }
}

struct WsReader(SplitStream<WsSocket>);

#[async_trait]
impl LinkReader for WsReader {
    async fn recv(&mut self) -> Option<Result<server_message::Kind, String>> {
        ws_next(&mut self.0).await
    }
}

struct WsWriter(SplitSink<WsSocket, Message>);

#[async_trait]
impl LinkWriter for WsWriter {
    async fn send(&mut self, message: AgentMessage) -> Result<(), String> {
        self.0
            .send(ws_frame(&message))
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_WAIT, self.0.close()).await;
    }
}
