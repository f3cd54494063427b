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

/// A body that adds the bytes it yields to a shared counter.
pub(crate) struct Counted<B> {
    inner: B,
    count: Arc<AtomicU64>,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B, count: Arc<AtomicU64>) -> Self {
        Counted { inner, count }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
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
        self.state.tunnels.log.push(&self.tunnel, record);
    }
}

/// The response body: counted, and logging the request when dropped.
pub(crate) struct Logged<B> {
    pub(crate) inner: Counted<B>,
    pub(crate) _finish: Finish,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Logged<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
