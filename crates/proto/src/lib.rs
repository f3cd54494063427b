//! The agent wire protocol (DESIGN §5): the protobuf messages and gRPC
//! service generated from `proto/hookrelay/v1/agent.proto` at build time
//! (by protox, so no system `protoc`), the protocol's limits, and the
//! WebSocket framing of the same messages (one message per binary frame).
//!
//! [`link`] holds what both kinds of agent do alike when they connect.
//!
//! Depends on nothing of ours: the server and the agent both depend on it.
//! Start with `proto/hookrelay/v1/agent.proto`, which documents a session.

use prost::Message;

pub mod link;

/// The generated messages and the `Agent` service (client and server).
#[allow(clippy::all, unreachable_pub, missing_docs)]
pub mod pb {
    tonic::include_proto!("hookrelay.v1");
}

pub use pb::{agent_message, server_message, AgentMessage, ServerMessage};

/// The largest message either side accepts, on both transports: a 16 MiB
/// body (the largest body limit an input may set) plus its headers.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// How long the server waits for `Hello` after the stream opens.
pub const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often each side sends `Ping` when it has nothing else to say.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// A side that hears nothing (not even a heartbeat) for this long closes
/// the stream: three missed heartbeats.
pub const SILENCE_LIMIT: std::time::Duration = std::time::Duration::from_secs(45);

/// The `max_in_flight` used when an agent asks for 0, and the cap.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 16;
pub const MAX_IN_FLIGHT_CAP: u32 = 1024;

/// The version an agent reports in `Hello`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A WebSocket frame that is not one valid protocol message.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("frame is not a valid protobuf message: {0}")]
    Malformed(#[from] prost::DecodeError),
    #[error("message carries no kind")]
    Empty,
}

/// Encodes one message as a WebSocket binary frame's payload.
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// Decodes an agent's frame (the server's side of the WebSocket).
pub fn decode_agent(frame: &[u8]) -> Result<agent_message::Kind, FrameError> {
    check_size(frame)?;
    AgentMessage::decode(frame)?.kind.ok_or(FrameError::Empty)
}

/// Decodes a server's frame (the agent's side of the WebSocket).
pub fn decode_server(frame: &[u8]) -> Result<server_message::Kind, FrameError> {
    check_size(frame)?;
    ServerMessage::decode(frame)?.kind.ok_or(FrameError::Empty)
}

fn check_size(frame: &[u8]) -> Result<(), FrameError> {
    if frame.len() > MAX_MESSAGE_BYTES {
        return Err(FrameError::TooLarge(frame.len()));
    }
    Ok(())
}

impl pb::Header {
    /// A header with a value of any bytes: `value` when they are UTF-8,
    /// else `raw_value` and the lossy text in `value` (for older agents).
    pub fn from_bytes(name: String, value: Vec<u8>) -> Self {
        match String::from_utf8(value) {
            Ok(value) => pb::Header {
                name,
                value,
                raw_value: Vec::new(),
            },
            Err(e) => {
                let raw_value = e.into_bytes();
                pb::Header {
                    name,
                    value: String::from_utf8_lossy(&raw_value).into_owned(),
                    raw_value,
                }
            }
        }
    }

    /// The header's name and exact value bytes.
    pub fn into_bytes(self) -> (String, Vec<u8>) {
        if self.raw_value.is_empty() {
            (self.name, self.value.into_bytes())
        } else {
            (self.name, self.raw_value)
        }
    }
}

impl From<agent_message::Kind> for AgentMessage {
    fn from(kind: agent_message::Kind) -> Self {
        AgentMessage { kind: Some(kind) }
    }
}

impl From<server_message::Kind> for ServerMessage {
    fn from(kind: server_message::Kind) -> Self {
        ServerMessage { kind: Some(kind) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let hello = agent_message::Kind::Hello(pb::Hello {
            token_key: "tok_x".into(),
            buckets: vec!["prod".into()],
            max_in_flight: 4,
            ..Default::default()
        });
        let frame = encode(&AgentMessage::from(hello.clone()));
        assert_eq!(decode_agent(&frame).unwrap(), hello);
    }

    #[test]
    fn header_values_travel_byte_exact() {
        for value in [&b"text \xc3\xa9"[..], b"\xff\xfe", b""] {
            let header = pb::Header::from_bytes("x-a".into(), value.to_vec());
            let back = <pb::Header as Message>::decode(header.encode_to_vec().as_slice()).unwrap();
            assert_eq!(back.into_bytes(), ("x-a".to_owned(), value.to_vec()));
        }
        // An agent that predates `raw_value` reads the lossy text.
        let header = pb::Header::from_bytes("x-a".into(), b"a\xffb".to_vec());
        assert_eq!(header.value, "a\u{fffd}b");
    }

    #[test]
    fn garbage_and_empty_frames_are_errors_not_panics() {
        assert!(matches!(
            decode_agent(&[0xff, 0xff, 0xff]),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(decode_agent(&[]), Err(FrameError::Empty)));
        assert!(decode_server(&[0x0a, 0x80]).is_err());
    }

    #[test]
    fn oversized_frames_are_refused_before_decoding() {
        let frame = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(decode_agent(&frame), Err(FrameError::TooLarge(_))));
    }
}
