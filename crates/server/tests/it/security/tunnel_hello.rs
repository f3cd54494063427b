//! A tunnel agent's `Hello` on either transport, as `probing` sends it:
//! tenant A's tunnel-mode token asking for tunnel names (B's, or random).
//! The relay's answer (its `Error` or `Welcome`) is returned as text, so
//! two answers compare byte for byte once the probed name is masked.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proto::{agent_message::Kind as Up, pb, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use super::routes::Transport;

const PATIENCE: Duration = Duration::from_secs(15);

fn hello(token: &str, name: &str) -> proto::AgentMessage {
    let (key, secret) = token.split_once('.').expect("KEY.SECRET");
    proto::AgentMessage::from(Up::Hello(pb::Hello {
        token_key: key.into(),
        token_secret: secret.into(),
        mode: pb::Mode::Tunnel as i32,
        version: "probe".into(),
        tunnel: name.into(),
        ..Default::default()
    }))
}

/// The length-prefixed `Hello` of the tunnel handshake (the agent's own
/// framing, written to memory).
async fn framed(token: &str, name: &str) -> Vec<u8> {
    let mut frame = Vec::new();
    tunnel::wire::write_message(&mut frame, &hello(token, name))
        .await
        .expect("a Hello in memory");
    frame
}

/// The relay's answer once `bytes` holds a whole length-prefixed message.
async fn decoded(bytes: &[u8]) -> Option<ServerMessage> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    if rest.len() < u32::from_be_bytes(*len) as usize {
        return None;
    }
    let mut whole = bytes;
    Some(
        tunnel::wire::read_message(&mut whole)
            .await
            .expect("a ServerMessage"),
    )
}

/// Sends `Hello` for tunnel `name` with `token`; the answer as text.
pub(super) async fn tunnel_hello(
    url: &str,
    transport: Transport,
    token: &str,
    name: &str,
) -> String {
    let answer = match transport {
        Transport::WebSocket => websocket(url, token, name).await,
        Transport::Grpc => grpc(url, token, name).await,
    };
    format!("{:?}", answer.kind)
}

async fn websocket(url: &str, token: &str, name: &str) -> ServerMessage {
    let url = format!("{}{}", url.replacen("http", "ws", 1), tunnel::WS_PATH);
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket handshake");
    socket
        .send(Message::Binary(framed(token, name).await.into()))
        .await
        .expect("send Hello");
    let mut received = Vec::new();
    loop {
        if let Some(answer) = decoded(&received).await {
            return answer;
        }
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("an answer in time")
            .expect("an answer before close")
            .expect("a frame");
        if let Message::Binary(bytes) = frame {
            received.extend_from_slice(&bytes);
        }
    }
}

async fn grpc(url: &str, token: &str, name: &str) -> ServerMessage {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("the relay's URL")
        .connect()
        .await
        .expect("an HTTP/2 connection");
    let mut client = pb::tunnel_client::TunnelClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::TunnelChunk {
        data: framed(token, name).await.into(),
    })
    .await
    .expect("queue Hello");
    let response = client
        .open(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("the relay takes the stream");
    let mut inbound = response.into_inner();
    let mut received = Vec::new();
    loop {
        if let Some(answer) = decoded(&received).await {
            return answer;
        }
        let chunk = tokio::time::timeout(PATIENCE, inbound.message())
            .await
            .expect("an answer in time")
            .expect("a chunk")
            .expect("an answer before the end");
        received.extend_from_slice(&chunk.data);
    }
}
