//! The server-wide budget of ingest bodies being read at once (DESIGN §7,
//! §13; issue 19): every byte of a webhook body the relay holds, from the
//! first frame read to the end of the pipeline (stored or refused), is
//! counted against one byte semaphore. Over it, ingest answers 503
//! `unavailable` with `Retry-After`, and nothing is stored.
//!
//! Bytes are counted as they arrive, not as they are announced: a sender
//! that declares 25 MiB and then trickles holds only what it has sent, so
//! slow senders cannot fence off the budget without spending the bandwidth.
//! A declared length that does not fit in what is free right now is refused
//! before a byte is read, which spares the sender its upload and the relay
//! the work of reading a body it would have to drop half-way.
//!
//! Used by `pipeline` only; the agent transports have their own budget
//! (`deliver::preauth`).

use std::sync::Arc;

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Bytes taken from the budget at a time, ahead of what has arrived: one
/// semaphore operation per 64 KiB instead of one per frame (hyper's frames
/// are up to 16 KiB on HTTP/2, a read buffer's worth on HTTP/1).
const STEP: usize = 64 * 1024;

/// Copies of a body the relay holds at once at worst: the buffer read here,
/// and while the store appends it the sealed payload's plaintext and its
/// ciphertext (`store::sealed`), and the copy SQLite binds (or the command
/// the Redis client packs). The budget counts each byte that often, so it
/// bounds memory, not just buffers: measured, 200 senders of 25 MiB against
/// a 128 MiB budget peaked at 219 MiB of RSS, 38 MiB of it the idle relay
/// (`faults::bodies`).
const COPIES: usize = 4;

/// The seconds a refused sender is told to wait: bodies are read at the
/// speed of the network, so room comes back within a second or two.
const RETRY_AFTER_SECS: u64 = 2;

/// The budget, shared by every ingest request of the server.
pub(crate) struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `total` bytes. The binary makes it at least one largest
    /// body (an input's `bodyLimit` is at most 32 MiB); a smaller one
    /// refuses every body larger than itself.
    pub(crate) fn new(total: usize) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(total)),
        }
    }

    /// A hold for one request whose sender declared `declared` bytes, or
    /// the 503 when they do not fit in what is free now.
    pub(crate) fn admit(&self, declared: Option<u64>) -> Result<Held, ApiError> {
        let room = (self.bytes.available_permits() / COPIES) as u64;
        if declared.is_some_and(|len| len > room) {
            return Err(busy());
        }
        Ok(Held {
            budget: Arc::clone(&self.bytes),
            permit: None,
        })
    }
}

/// Budget held by one request; given back when dropped (the request ended,
/// stored or refused).
pub(crate) struct Held {
    budget: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    fn held(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Makes the hold cover a body of `bytes` (rounded up to the next step,
    /// within `cap`, each byte counted [`COPIES`] times); the 503 when the
    /// budget has no room left.
    pub(crate) fn cover(&mut self, bytes: usize, cap: usize) -> Result<(), ApiError> {
        let (bytes, cap) = (bytes.saturating_mul(COPIES), cap.saturating_mul(COPIES));
        if bytes <= self.held() {
            return Ok(());
        }
        let wanted = bytes
            .div_ceil(STEP)
            .saturating_mul(STEP)
            .min(cap.max(bytes));
        let more = u32::try_from(wanted - self.held()).map_err(|_| busy())?;
        let permit = Arc::clone(&self.budget)
            .try_acquire_many_owned(more)
            .map_err(|_| busy())?;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        Ok(())
    }
}

/// The answer when the budget is spent.
pub(crate) fn busy() -> ApiError {
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!(
            "the relay is receiving too many bodies at once; nothing was accepted, \
             retry after {RETRY_AFTER_SECS} s"
        ),
    );
    e.retry_after = Some(RETRY_AFTER_SECS);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    const LARGEST: usize = 1024 * 1024;

    #[test]
    fn bytes_are_held_as_they_arrive_and_given_back_when_dropped() {
        let budget = BodyBudget::new(LARGEST);
        let mut first = budget.admit(Some(1_000)).expect("room");
        first.cover(1_000, 1_000).expect("room");
        assert_eq!(first.held(), 4_000, "four copies, never beyond the cap");
        let mut second = budget.admit(None).expect("room");
        second.cover(10, usize::MAX).expect("room");
        assert_eq!(second.held(), STEP, "a step ahead");
        second.cover(STEP, usize::MAX).expect("room");
        assert_eq!(second.held(), 4 * STEP);
        assert!(
            budget.admit(Some((LARGEST / 4) as u64)).is_err(),
            "a declared length that does not fit now is refused at once"
        );
        let err = second
            .cover(LARGEST, usize::MAX)
            .expect_err("over the budget");
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.retry_after, Some(RETRY_AFTER_SECS));
        drop((first, second));
        assert_eq!(budget.bytes.available_permits(), LARGEST);
    }
}
