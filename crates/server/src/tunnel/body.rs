//! Bodies streamed through a tunnel, counted as they pass (for the request
//! log), never collected: each frame is handed on as it arrives, so memory
//! per request is bounded by HTTP/2's stream window, not the body's size.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use model::TunnelId;

use super::log::RequestRecord;
use super::Busy;
use crate::state::AppState;

/// A body that adds the bytes it yields to a shared counter, and fails
/// once they pass `limit` (`serve --tunnel-body-limit`): the stream is
/// then reset, so neither side is sent more than the limit and a frame.
pub(crate) struct Counted<B> {
    inner: B,
    count: Arc<AtomicU64>,
    limit: u64,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B, count: Arc<AtomicU64>, limit: Option<u64>) -> Self {
        Counted {
            inner,
            count,
            limit: limit.unwrap_or(u64::MAX),
        }
    }
}

/// The error a body past `--tunnel-body-limit` ends with.
#[derive(Debug, thiserror::Error)]
#[error("the body exceeds the tunnel body limit of {0} bytes")]
pub(crate) struct TooLarge(u64);

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<tower::BoxError>,
{
    type Data = Bytes;
    type Error = tower::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tower::BoxError>>> {
        let polled = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = polled.data_ref() {
            let len = data.len() as u64;
            let total = self.count.fetch_add(len, Ordering::Relaxed) + len;
            if total > self.limit {
                return Poll::Ready(Some(Err(TooLarge(self.limit).into())));
            }
        }
        Poll::Ready(Some(Ok(polled)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What is written to the request log once the response body ends (or the
/// visitor goes away), with the agent's load held until then.
pub(crate) struct Finish {
    pub(crate) state: AppState,
    pub(crate) tunnel: TunnelId,
    pub(crate) record: RequestRecord,
    pub(crate) bytes_in: Arc<AtomicU64>,
    pub(crate) bytes_out: Arc<AtomicU64>,
    pub(crate) _busy: Option<Busy>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let mut record = self.record.clone();
        record.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        record.bytes_out = self.bytes_out.load(Ordering::Relaxed);
        self.state.tunnels.finished(&self.tunnel, record);
    }
}

/// A body that keeps `_guard` until it is dropped: the request's log entry
/// ([`Finish`]), or an agent's busy mark for an answer relayed to another
/// node ([`Busy`]: that node logs the request).
pub(crate) struct Guarded<B, G> {
    pub(crate) inner: B,
    pub(crate) _guard: G,
}

/// The response body: counted, and logging the request when dropped.
pub(crate) type Logged<B> = Guarded<Counted<B>, Finish>;
/// An answer relayed for another node: its agent counts as busy until the
/// body ends.
pub(crate) type Holding<B> = Guarded<B, Busy>;

impl<B, G> Body for Guarded<B, G>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<tower::BoxError>,
    G: Unpin,
{
    type Data = Bytes;
    type Error = tower::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tower::BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
