//! The meter between an agent's stream and its transport's decoder: it
//! sees every byte before tonic or tungstenite buffers it, refuses what
//! the pre-authentication limits forbid, and holds the budget for large
//! messages of authenticated agents. Two thin wrappers put it in place: a
//! request body for gRPC and an I/O stream for WebSocket.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;

use super::framing::{Event, Framing};
use super::{Gate, BUDGETED_FROM, HELLO_MESSAGE_BYTES, PREAUTH_BYTES};

/// What the pre-authentication limits refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("a message of {0} bytes before Hello was verified (at most {HELLO_MESSAGE_BYTES})")]
    MessageTooLarge(usize),
    #[error("more than {PREAUTH_BYTES} bytes before Hello was verified")]
    TooMuchBeforeHello,
}

/// One stream's meter.
pub(crate) struct Meter<F> {
    framing: F,
    gate: Arc<Gate>,
    budget: PollSemaphore,
    /// Bytes seen while the gate was closed.
    before_hello: usize,
    /// The budget held for the message being received.
    held: Option<OwnedSemaphorePermit>,
    /// Budget the message being received still needs before more is read.
    owed: usize,
}

impl<F: Framing> Meter<F> {
    pub(crate) fn new(framing: F, gate: Arc<Gate>, budget: Arc<Semaphore>) -> Self {
        Meter {
            framing,
            gate,
            budget: PollSemaphore::new(budget),
            before_hello: 0,
            held: None,
            owed: 0,
        }
    }

    /// Ready once the message being received has its budget: until then
    /// nothing more is read from the peer.
    fn poll_budget(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.owed == 0 {
            return Poll::Ready(());
        }
        // At most 32 MiB (the framing layer refuses larger), so it fits.
        let wanted = u32::try_from(self.owed).unwrap_or(u32::MAX);
        // The semaphore is never closed; `None` would only end the wait.
        if let Some(permit) = ready!(self.budget.poll_acquire_many(cx, wanted)) {
            match &mut self.held {
                Some(held) => held.merge(permit),
                None => self.held = Some(permit),
            }
        }
        self.owed = 0;
        Poll::Ready(())
    }

    /// Accounts for bytes just read, before the decoder sees them.
    fn inspect(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        let open = self.gate.is_open();
        if !open {
            self.before_hello += bytes.len();
            if self.before_hello > PREAUTH_BYTES {
                return Err(Refused::TooMuchBeforeHello);
            }
        }
        let (mut refused, mut owed, mut released) = (None, self.owed, false);
        let mut held = self
            .held
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits);
        self.framing.feed(bytes, &mut |event| match event {
            Event::Start(len) if !open && len > HELLO_MESSAGE_BYTES => {
                refused.get_or_insert(Refused::MessageTooLarge(len));
            }
            Event::Start(len) if open && len >= BUDGETED_FROM => {
                // Fragments of one WebSocket message add up; the transport
                // refuses a message over the limit, so cap the claim there.
                owed = (owed + len).min(proto::MAX_MESSAGE_BYTES.saturating_sub(held));
            }
            Event::Start(_) => {}
            Event::End => {
                (owed, held, released) = (0, 0, true);
            }
        });
        if let Some(refused) = refused {
            return Err(refused);
        }
        if released {
            self.held = None;
        }
        self.owed = owed;
        Ok(())
    }
}

/// A gRPC request body, metered.
pub(crate) struct GatedBody {
    inner: axum::body::Body,
    meter: Meter<super::Grpc>,
}

impl GatedBody {
    pub(crate) fn new(inner: axum::body::Body, meter: Meter<super::Grpc>) -> Self {
        GatedBody { inner, meter }
    }
}

impl Body for GatedBody {
    type Data = Bytes;
    type Error = tower::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        ready!(this.meter.poll_budget(cx));
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Err(refused) = this.meter.inspect(data) {
                        return Poll::Ready(Some(Err(refused.into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => Poll::Ready(Some(Err(err.into()))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A WebSocket's connection, metered on the read side.
pub(crate) struct GatedIo<T> {
    inner: T,
    meter: Meter<super::WebSocket>,
}

impl<T> GatedIo<T> {
    pub(crate) fn new(inner: T, meter: Meter<super::WebSocket>) -> Self {
        GatedIo { inner, meter }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GatedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.meter.poll_budget(cx));
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.meter
            .inspect(&buf.filled()[before..])
            .map_err(|refused| io::Error::new(io::ErrorKind::InvalidData, refused))?;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GatedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter<F: Framing>(framing: F, budget: usize) -> (Meter<F>, Arc<Gate>, Arc<Semaphore>) {
        let gate = Arc::new(Gate::default());
        let budget = Arc::new(Semaphore::new(budget));
        let meter = Meter::new(framing, Arc::clone(&gate), Arc::clone(&budget));
        (meter, gate, budget)
    }

    #[test]
    fn before_hello_a_large_announcement_is_refused_at_its_prefix() {
        let (mut m, _, _) = meter(super::super::Grpc::default(), 1 << 26);
        let hello = [0, 0, 0, 1, 0]; // 256 bytes announced
        assert!(m.inspect(&hello).is_ok());
        assert!(m.inspect(&[0u8; 256]).is_ok());
        let huge = [0, 0x02, 0, 0, 0];
        assert!(matches!(m.inspect(&huge), Err(Refused::MessageTooLarge(_))));
    }

    #[test]
    fn before_hello_the_byte_count_is_bounded() {
        let (mut m, _, _) = meter(super::super::Grpc::default(), 1 << 26);
        let mut refused = false;
        for _ in 0..(PREAUTH_BYTES / 5 + 1) {
            refused |= m.inspect(&[0, 0, 0, 0, 0]).is_err();
        }
        assert!(refused, "empty messages still count");
    }

    #[test]
    fn after_hello_large_messages_hold_the_budget_until_they_end() {
        let (mut m, gate, budget) = meter(super::super::Grpc::default(), 1 << 20);
        gate.open();
        let len: u32 = 512 * 1024;
        let mut prefix = vec![0u8];
        prefix.extend(len.to_be_bytes());
        m.inspect(&prefix).unwrap();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(m.poll_budget(&mut cx).is_ready());
        assert_eq!(budget.available_permits(), (1 << 20) - len as usize);
        m.inspect(&vec![0u8; len as usize]).unwrap();
        assert_eq!(budget.available_permits(), 1 << 20, "released at its end");
        // A small message holds nothing.
        m.inspect(&[0, 0, 0, 0, 4, 1, 2, 3, 4]).unwrap();
        assert!(m.poll_budget(&mut cx).is_ready());
        assert_eq!(budget.available_permits(), 1 << 20);
    }

    #[test]
    fn after_hello_a_message_that_does_not_fit_waits() {
        let (mut m, gate, budget) = meter(super::super::Grpc::default(), 1 << 20);
        gate.open();
        let others = Arc::clone(&budget)
            .try_acquire_many_owned(900 * 1024)
            .unwrap();
        m.inspect(&[0, 0, 0x02, 0, 0]).unwrap(); // 128 KiB
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(m.poll_budget(&mut cx).is_pending());
        drop(others);
        assert!(m.poll_budget(&mut cx).is_ready());
    }
}
