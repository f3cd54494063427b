//! The tunnel handshake: one length-prefixed protobuf message each way (a
//! 4-byte big-endian length, then the message) before HTTP/2 begins. The
//! length is read first and checked against [`MAX_HANDSHAKE_BYTES`], so a
//! peer that has not authenticated can make the relay hold at most that.

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A `Hello` is two credentials, a name and a version: well under 4 KiB.
pub const MAX_HANDSHAKE_BYTES: usize = 16 * 1024;

/// A handshake that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("handshake message of {0} bytes exceeds {MAX_HANDSHAKE_BYTES}")]
    TooLarge(usize),
    #[error("handshake message is not valid protobuf: {0}")]
    Malformed(#[from] prost::DecodeError),
    #[error("the stream failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes one message and flushes it.
pub async fn write_message<M: Message>(
    io: &mut (impl AsyncWrite + Unpin),
    message: &M,
) -> Result<(), WireError> {
    let body = message.encode_to_vec();
    let len = u32::try_from(body.len()).map_err(|_| WireError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    io.write_all(&frame).await?;
    io.flush().await?;
    Ok(())
}

/// Reads one message of at most [`MAX_HANDSHAKE_BYTES`]. Reads exactly its
/// bytes: what follows (HTTP/2) stays in the stream.
pub async fn read_message<M: Message + Default>(
    io: &mut (impl AsyncRead + Unpin),
) -> Result<M, WireError> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HANDSHAKE_BYTES {
        return Err(WireError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(M::decode(body.as_slice())?)
}

/// Decodes a handshake message from the start of `bytes` (the fuzz entry:
/// the same checks as [`read_message`], without a stream).
pub fn decode_hello(bytes: &[u8]) -> Result<proto::AgentMessage, WireError> {
    let Some((len, body)) = bytes.split_first_chunk::<4>() else {
        return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    };
    let len = u32::from_be_bytes(*len) as usize;
    if len > MAX_HANDSHAKE_BYTES {
        return Err(WireError::TooLarge(len));
    }
    let body = body
        .get(..len)
        .ok_or_else(|| WireError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
    Ok(proto::AgentMessage::decode(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{agent_message, pb, AgentMessage};

    #[tokio::test]
    async fn a_message_round_trips_and_leaves_what_follows() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let hello = AgentMessage::from(agent_message::Kind::Hello(pb::Hello {
            tunnel: "myapp".into(),
            ..Default::default()
        }));
        write_message(&mut a, &hello).await.unwrap();
        a.write_all(b"PRI * HTTP/2.0").await.unwrap();
        let read: AgentMessage = read_message(&mut b).await.unwrap();
        assert_eq!(read, hello);
        let mut rest = [0u8; 3];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"PRI");
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading_the_body() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let read = read_message::<AgentMessage>(&mut b).await;
        assert!(matches!(read, Err(WireError::TooLarge(_))));
        assert!(matches!(
            decode_hello(&[0, 1, 0, 0, 1]),
            Err(WireError::TooLarge(_))
        ));
        assert!(decode_hello(&[0, 0, 0, 9, 1]).is_err());
    }
}
