//! Background work, never in the request path. Today: retention, which
//! deletes events older than their bucket's retention in small batches,
//! and, on the same tick, the end of abandoned agent groups (DESIGN §13).
//!
//! [`spawn`] returns a handle; [`Jobs::stop`] cancels and waits.
//! Uses the store's `EventLog` and `DeliveryQueue`; `run` in `lib.rs` owns
//! the handle.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Events deleted per store transaction, so retention never holds the
/// writer for long.
const RETENTION_BATCH: usize = 500;

pub(crate) struct Jobs {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Jobs {
    pub(crate) async fn stop(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

pub(crate) fn spawn(state: AppState, cancel: CancellationToken) -> Jobs {
    let retention = tokio::spawn(retention(state, cancel.clone()));
    Jobs {
        cancel,
        tasks: vec![retention],
    }
}

async fn retention(state: AppState, cancel: CancellationToken) {
    let mut ticker = tokio::time::interval(state.config.retention_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        purge_all(&state, &cancel).await;
        abandon_groups(&state).await;
    }
}

/// Ends the agent groups no agent renewed within their catch-up window, so
/// that a `listen` session or an agent that never returns stops collecting
/// deliveries (they expire, and stay resendable by hand).
async fn abandon_groups(state: &AppState) {
    match state.store.abandon_groups(store::clock::now_ms()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            groups = n,
            "abandoned agent groups: their pending deliveries expired"
        ),
        Err(err) => {
            tracing::warn!(%err, "could not end abandoned agent groups; will retry next interval")
        }
    }
}

/// Purges batch after batch until a batch comes back short.
async fn purge_all(state: &AppState, cancel: &CancellationToken) {
    let mut total = 0;
    while !cancel.is_cancelled() {
        match state
            .store
            .purge_expired(store::clock::now_ms(), RETENTION_BATCH)
            .await
        {
            Ok(n) => {
                total += n;
                if n < RETENTION_BATCH {
                    break;
                }
                // Let ingest's writes interleave with a long purge.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(err) => {
                tracing::warn!(%err, "retention purge failed; will retry next interval");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(deleted = total, "retention purged expired events");
    }
}
