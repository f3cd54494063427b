//! What this node tells, and hears from, the other nodes sharing its store
//! (DESIGN §6, several `serve` nodes on one Redis). The embedded store has
//! one node: nothing is sent and nothing arrives.
//!
//! - A destination's answer for a `wait` caller goes to every node, since
//!   the caller may be held by the node that accepted the event while the
//!   agent that forwarded it is connected to another.
//! - An admin write on another node (the store tells of it itself, as
//!   `Signal::ConfigChanged`) drops the cached credentials at once, instead
//!   of at their expiry; the input catalog follows the store's
//!   configuration feed on its own.
//!
//! Depends on `store` (the carrier) and the crate's `AppState`.

use base64::Engine as _;
use model::EventId;
use serde::{Deserialize, Serialize};
use store::Signal;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::deliver::Answer;
use crate::state::AppState;

/// Hands the event's first destination answer to its caller, wherever the
/// caller is held.
pub(crate) fn answer(state: &AppState, event: EventId, answer: Answer) {
    if state.store.shared_dispatch() {
        let signal = Signal::Answer {
            event,
            answer: encode_answer(&answer),
        };
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.broadcast(signal).await {
                tracing::warn!(%err, "could not pass a destination's answer to the other nodes");
            }
        });
    }
    state.hub.waiters.answer(event, answer);
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
            Ok(Signal::Answer { event, answer }) => match decode_answer(&answer) {
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

/// An answer as it crosses between nodes.
#[derive(Serialize, Deserialize)]
struct WireAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64: the destination's body is any bytes.
    body: String,
}

fn encode_answer(answer: &Answer) -> Vec<u8> {
    let wire = WireAnswer {
        status: answer.status,
        headers: answer.headers.clone(),
        body: base64::engine::general_purpose::STANDARD.encode(&answer.body),
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

fn decode_answer(bytes: &[u8]) -> Option<Answer> {
    let wire: WireAnswer = serde_json::from_slice(bytes).ok()?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(wire.body)
        .ok()?;
    Some(Answer {
        status: wire.status,
        headers: wire.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_cross_nodes_byte_exact() {
        let answer = Answer {
            status: 201,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: vec![0, 159, 146, 150, 255],
        };
        let back = decode_answer(&encode_answer(&answer)).expect("decodes");
        assert_eq!(back.status, 201);
        assert_eq!(back.headers, answer.headers);
        assert_eq!(back.body, answer.body);
        assert!(decode_answer(b"{not json").is_none());
    }
}
