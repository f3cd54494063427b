//! What this node tells, and hears from, the other nodes sharing its store
//! (DESIGN §6, several `serve` nodes on one Redis). The embedded store has
//! one node: nothing is sent and nothing arrives.
//!
//! - A destination's answer for a `wait` caller arrives here when the
//!   caller is held by this node and the delivery was made by another
//!   (`deliver::rules` sends it).
//! - An admin write tells the other nodes to drop their cached inputs and
//!   credentials at once, instead of at their expiry.
//!
//! Depends on `store` (the carrier), `deliver` (the waiting callers) and
//! the crate's `AppState`; nothing in `deliver` depends on this module.

use store::Signal;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::deliver::Answer;
use crate::state::AppState;

/// Drops this node's cached configuration and tells the others to.
pub(crate) async fn config_changed(state: &AppState) {
    state.catalog.invalidate();
    if let Err(err) = state.store.broadcast(Signal::ConfigChanged).await {
        // The other nodes' caches expire within seconds anyway.
        tracing::warn!(%err, "could not tell the other nodes of a configuration change");
    }
}

/// Applies the other nodes' signals until `cancel`.
pub(crate) async fn listen(state: AppState, cancel: CancellationToken) {
    let Some(mut signals) = state.store.signals() else {
        return;
    };
    loop {
        let signal = tokio::select! {
            () = cancel.cancelled() => return,
            signal = signals.recv() => signal,
        };
        match signal {
            Ok(Signal::Answer { event, answer }) => match Answer::decode(&answer) {
                Some(answer) => state.hub.waiters.answer(event, answer),
                None => tracing::warn!(%event, "an undecodable answer from another node"),
            },
            Ok(Signal::ConfigChanged) => {
                state.catalog.invalidate();
                state.auth.forget_all();
            }
            Err(RecvError::Lagged(missed)) => {
                // What was missed may have been a configuration change.
                tracing::warn!(missed, "missed signals from other nodes");
                state.catalog.invalidate();
                state.auth.forget_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}
