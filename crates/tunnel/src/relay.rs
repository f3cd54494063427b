//! The relay's end of an accepted tunnel connection: after the handshake,
//! the relay is the HTTP/2 client. Each public request becomes one stream
//! on [`Sender`]; a dropped agent fails its open streams at once (the
//! visitor gets 502) and the connection task ends.

use std::future::Future;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::stream::BoxIo;
use crate::{CONNECTION_WINDOW, KEEP_ALIVE, STREAM_WINDOW};

/// Sends public requests to one agent. Cheap to clone (a handle).
pub type Sender<B> = hyper::client::conn::http2::SendRequest<B>;

/// Starts HTTP/2 on `io` as the client. The returned future drives the
/// connection and resolves when it ends (agent gone, silent for
/// [`proto::SILENCE_LIMIT`], or every sender dropped).
pub async fn client<B>(
    io: BoxIo,
) -> Result<(Sender<B>, impl Future<Output = Result<(), hyper::Error>>), hyper::Error>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEP_ALIVE)
        .keep_alive_timeout(proto::SILENCE_LIMIT)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_reset_streams(1024)
        .handshake(TokioIo::new(io))
        .await
}
