//! What this node tells, and hears from, the other nodes sharing its store
//! (DESIGN §6, several `serve` nodes on one Redis). The embedded store has
//! one node: nothing is sent and nothing arrives.
//!
//! - A destination's answer for a `wait` caller arrives here when the
//!   caller is held by this node and the delivery was made by another
//!   (`deliver::rules` sends it).
//! - An admin write on another node (the store tells of it itself, as
//!   `Signal::ConfigChanged`) drops the cached credentials at once, instead
//!   of at their expiry; the input catalog follows the store's
//!   configuration feed on its own.
//!
//! Depends on `store` (the carrier), `deliver` (the waiting callers) and
//! the crate's `AppState`; nothing in `deliver` depends on this module.

use store::Signal;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::deliver::Answer;
use crate::state::AppState;

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
            // The input catalog follows the store's configuration feed by
            // itself; credentials changed on another node are not known
            // one by one here, so every cached one goes.
            Ok(Signal::ConfigChanged) => state.auth.forget_all(),
            Err(RecvError::Lagged(missed)) => {
                // What was missed may have been a configuration change.
                tracing::warn!(missed, "missed signals from other nodes");
                state.auth.forget_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}
