//! A tunnel connection's bytes arrive as chunks (gRPC messages or
//! WebSocket frames) and leave as chunks; HTTP/2 wants one
//! `AsyncRead + AsyncWrite`. [`join`] makes one from a chunk stream and a
//! chunk sink with tokio-util's `StreamReader` and `SinkWriter`, so each
//! write of HTTP/2 becomes one chunk and no byte is copied twice.

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::io::{CopyToBytes, SinkWriter, StreamReader};

/// A tunnel connection's byte stream, whatever carries it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`], so the relay and agent code is written once for both
/// transports.
pub type BoxIo = Pin<Box<dyn Io>>;

/// Joins a stream of received chunks and a sink of chunks to send.
pub fn join<St, Si>(chunks_in: St, chunks_out: Si) -> BoxIo
where
    St: Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static,
    Si: Sink<Bytes, Error = io::Error> + Send + Unpin + 'static,
{
    let reader = StreamReader::new(chunks_in);
    let writer = SinkWriter::new(CopyToBytes::new(chunks_out));
    Box::pin(tokio::io::join(reader, writer))
}

/// Maps any transport error into `io::Error` for [`join`].
pub fn io_error(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::wrappers::ReceiverStream;

    #[tokio::test]
    async fn chunks_become_bytes_both_ways() {
        let (to_io, from_peer) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
        let (io_out, mut sent) = tokio::sync::mpsc::channel::<Bytes>(4);
        let sink = tokio_util::sync::PollSender::new(io_out).sink_map_err(io_error);
        let mut io = join(ReceiverStream::new(from_peer), sink);
        to_io.send(Ok(Bytes::from_static(b"hel"))).await.unwrap();
        to_io.send(Ok(Bytes::from_static(b"lo"))).await.unwrap();
        let mut got = [0u8; 5];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        io.write_all(b"world").await.unwrap();
        io.flush().await.unwrap();
        assert_eq!(sent.recv().await.unwrap(), Bytes::from_static(b"world"));
        drop(to_io);
        assert_eq!(io.read(&mut got).await.unwrap(), 0);
    }
}
