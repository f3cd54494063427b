//! What a due delivery becomes (DESIGN §5, §6): the one set of rules both
//! senders follow — `pump` (a group's agents) and `public` (the server's
//! own requests to public outputs). A sender asks [`fate`] and then only
//! moves bytes: send this payload, settle without sending, or look again
//! later. After an attempt, [`attempt_of_ack`] / [`attempt_of_outcome`]
//! and `retry::settle_after` say where the delivery goes, and [`record`]
//! writes it. How many may be under way at once, per output and per
//! agent, is `gate`'s rule.
//!
//! Output functions (DESIGN §9) plug in at [`shaped`], once [`fate`] has
//! chosen the payload: a function's changed request becomes the [`Payload`], a stop
//! becomes a settlement (`skipped`), a failure settles `failed`.

use std::time::Duration;

use bytes::Bytes;
use model::{Attempt, EventBody, EventId, ResponsePolicy};
use proto::pb;
use store::{DeliveryKey, DueDelivery, Settle, Signal};

use super::{retry, Answer, EphemeralPayloads};
use crate::state::AppState;

/// How long after its commit an ephemeral event's payload may still be on
/// its way from ingest to memory (ingest holds it just after `append`
/// returns; 2 s is far beyond that step's worst case under load).
pub(crate) const EPHEMERAL_HANDOVER_MS: i64 = 2_000;

/// While a young ephemeral event's payload is on its way, look again this
/// often: the hand-over takes microseconds, so 20 ms costs one look.
pub(crate) const HANDOVER_RECHECK_MS: i64 = 20;

/// How long an ephemeral payload stays in its accepting node's memory.
pub(crate) const EPHEMERAL_HOLD_MS: i64 = super::ephemeral::HOLD.as_millis() as i64;

/// On a shared store, an ephemeral payload another node holds is left to
/// that node's agents; this node looks again this much later (until the
/// payload's hold ends and the delivery expires).
pub(crate) const HELD_ELSEWHERE_RECHECK_MS: i64 = 1_000;

/// After a store error, a sender looks again this much later.
pub(crate) const STORE_RETRY: Duration = Duration::from_secs(1);

/// Errors kept per attempt, in bytes: an agent's error text is untrusted.
const MAX_ERROR_LEN: usize = 512;

/// The request a delivery sends: the parts of an event the store may not
/// have (headers, query, body), and the method and path suffix, which an
/// input or output function may have changed.
pub(crate) struct Payload {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Values byte-exact (DESIGN §8).
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) query: String,
    pub(crate) body: Bytes,
}

/// What a due delivery becomes.
pub(crate) enum Fate {
    /// Send it with this payload.
    Send(Payload),
    /// Settle it without sending: expired, undecryptable or failed.
    Settle(Option<Attempt>, Settle),
    /// Not yet: look again at this time (ms). On a shared store the claim
    /// is handed back due then (`Settle::RetryAt`, no try counted); on the
    /// embedded one the sender keeps it and wakes by then.
    Later(i64),
}

/// The rule: the payload comes from the event itself — stored with it,
/// or for an ephemeral event (DESIGN §6) from memory while it is held
/// there. Never from a copy of the bucket, whose `ephemeral` flag may have
/// changed since the event arrived.
pub(crate) fn fate(
    ephemeral: &EphemeralPayloads,
    due: &DueDelivery,
    shared: bool,
    now: i64,
) -> Fate {
    let event = &due.event;
    match &event.body {
        EventBody::Undecryptable { .. } => Fate::Settle(Some(undecryptable(now)), Settle::Failed),
        // What the input's function made of the request, when it changed it.
        EventBody::Stored(_) if event.forwarded.is_some() => {
            let f = event.forwarded.clone().unwrap_or_default();
            Fate::Send(Payload {
                method: f.method,
                path: f.path,
                headers: f.headers,
                query: f.query,
                body: Bytes::from(f.body),
            })
        }
        EventBody::Stored(body) => Fate::Send(Payload {
            method: event.method.clone(),
            path: event.path.clone(),
            headers: event.headers.clone().unwrap_or_default(),
            query: event.query.clone().unwrap_or_default(),
            body: Bytes::from(body.clone()),
        }),
        EventBody::Omitted { .. } => match ephemeral.get(&event.id) {
            Some(held) => Fate::Send(Payload {
                method: event.method.clone(),
                path: event.path.clone(),
                headers: held.headers.clone(),
                query: held.query.clone(),
                body: held.body.clone(),
            }),
            None => {
                let age = now - event.received_at;
                if age < EPHEMERAL_HANDOVER_MS {
                    Fate::Later(now + HANDOVER_RECHECK_MS)
                } else if shared && age < EPHEMERAL_HOLD_MS {
                    Fate::Later(now + HELD_ELSEWHERE_RECHECK_MS)
                } else {
                    // An ephemeral event whose payload is no longer held.
                    Fate::Settle(None, Settle::Expired)
                }
            }
        },
    }
}

/// The output's function (DESIGN §9), applied to a payload [`fate`] chose
/// to send: a changed request becomes the payload, a stop settles the
/// delivery `skipped`, a failure settles it `failed` with
/// `function_error` (resendable). Without a function, `fate` as it was.
pub(crate) async fn shaped(state: &AppState, due: &DueDelivery, fate: Fate, now: i64) -> Fate {
    let Some(id) = &due.output.function_id else {
        return fate;
    };
    let payload = match fate {
        Fate::Send(payload) => payload,
        other => return other,
    };
    let failed = |error: String| {
        let attempt = Attempt {
            at: now,
            status: None,
            latency_ms: 0,
            error: Some(format!("function_error: {error}")),
        };
        Fate::Settle(Some(attempt), Settle::Failed)
    };
    let loaded = match state
        .scripts
        .load(state.store.as_ref(), &due.output.tenant, id)
        .await
    {
        Ok(loaded) => loaded,
        Err(error) => return failed(error),
    };
    let event = &due.event;
    // Functions work on text: headers that are not UTF-8 are seen lossily
    // and stay byte-exact unless the function changes the headers.
    let original_headers = payload.headers;
    let request = functions::Request {
        method: payload.method,
        path: payload.path,
        query: payload.query,
        headers: model::headers_lossy(&original_headers),
        body: payload.body.to_vec(),
    };
    let metadata = vec![
        ("tenant_id", event.tenant.to_string()),
        ("bucket_id", event.bucket.to_string()),
        ("input_id", event.input.to_string()),
        ("output_id", due.output.id.to_string()),
        ("output_url", due.output.url.clone()),
        ("event_id", event.id.to_string()),
    ];
    let outcome = state
        .scripts
        .run(&loaded, request, metadata, functions::Attachment::Output)
        .await;
    if let Some(error) = outcome.error {
        return failed(error);
    }
    if outcome.stop_forwarding {
        return Fate::Settle(None, Settle::Skipped);
    }
    let r = outcome.request;
    Fate::Send(Payload {
        method: r.method,
        path: r.path,
        headers: model::headers_from_text(r.headers, &original_headers),
        query: r.query,
        body: Bytes::from(r.body),
    })
}

/// The attempt recorded for a payload that no key opens (tampered, or its
/// key is gone): never retried, the bytes will not change.
pub(crate) fn undecryptable(now_ms: i64) -> Attempt {
    Attempt {
        at: now_ms,
        status: None,
        latency_ms: 0,
        error: Some("the stored payload cannot be decrypted".into()),
    }
}

/// The attempt an agent's ack reports, and where the delivery goes next.
pub(crate) fn attempt_of_ack(ack: &pb::Ack, due: &Sent, now: i64) -> (Attempt, Settle) {
    let status = u16::try_from(ack.destination_status)
        .ok()
        .filter(|s| *s != 0);
    let mut error = ack.error.clone();
    if error.len() > MAX_ERROR_LEN {
        let cut = (0..=MAX_ERROR_LEN)
            .rev()
            .find(|i| error.is_char_boundary(*i))
            .unwrap_or(0);
        error.truncate(cut);
    }
    let error = (!error.is_empty()).then_some(error);
    let verdict = retry::verdict_of_ack(status, error.as_deref());
    let attempt = Attempt {
        at: now,
        status,
        latency_ms: ack.latency_ms,
        error,
    };
    (
        attempt,
        retry::settle_after(verdict, due.tries + 1, &due.retry, now),
    )
}

/// The attempt the server's own request came to, and where it goes next.
pub(crate) fn attempt_of_outcome(
    outcome: forward::Outcome,
    due: &Sent,
    now: i64,
) -> (Attempt, Settle) {
    let verdict = forward::verdict(&outcome);
    let attempt = Attempt {
        at: now,
        status: outcome.status,
        latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
        error: outcome.error,
    };
    (
        attempt,
        retry::settle_after(verdict, due.tries + 1, &due.retry, now),
    )
}

/// An agent that never answered: the attempt counts as a failed one.
pub(crate) fn attempt_of_silence(due: &Sent, now: i64) -> (Attempt, Settle) {
    let attempt = Attempt {
        at: now,
        status: None,
        latency_ms: 0,
        error: Some("the agent did not acknowledge within the timeout".into()),
    };
    let next = retry::settle_after(forward::Verdict::Retry, due.tries + 1, &due.retry, now);
    (attempt, next)
}

/// What the rules keep of a delivery once it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) key: DeliveryKey,
    pub(crate) tries: u32,
    pub(crate) retry: model::RetryPolicy,
    /// Its first destination answer goes to a `wait` caller.
    pub(crate) want_response: bool,
}

/// Whether this attempt's answer goes to a caller held by the `wait`
/// policy: only a first attempt's caller can still be waiting.
pub(crate) async fn wants_response(state: &AppState, due: &DueDelivery) -> bool {
    if due.tries > 0 {
        return false;
    }
    let route = state
        .catalog
        .by_id(state.store.as_ref(), &due.event.input)
        .await;
    matches!(route, Ok(Some(r)) if matches!(r.input.response, ResponsePolicy::Wait { .. }))
}

/// Hands the event's first destination answer to its caller, wherever the
/// caller is held: this node, or (shared store) whichever node accepted it.
pub(crate) fn answer_caller(state: &AppState, event: EventId, answer: Answer) {
    if state.store.shared_dispatch() {
        let signal = Signal::Answer {
            event,
            answer: answer.encode(),
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

/// Counts the settlement and writes it (retrying while the store fails).
pub(crate) async fn record(
    state: &AppState,
    key: &DeliveryKey,
    attempt: Option<Attempt>,
    next: Settle,
) {
    state.metrics.delivery_settled(next);
    retry::settle_with_retries(state.store.as_ref(), key, attempt, next).await;
}

/// [`record`] for several settlements, in one store write.
pub(crate) async fn record_batch(state: &AppState, batch: &[store::Settlement]) {
    for s in batch {
        state.metrics.delivery_settled(s.next);
    }
    retry::settle_batch_with_retries(state.store.as_ref(), batch).await;
}

/// How many due deliveries to ask the store for, to fill `room` slots
/// while `held` deliveries are out: a shared store claims what it returns
/// and never returns what this node holds; the embedded one returns held
/// rows too (at most 1,024 of them are skipped per look).
pub(crate) fn due_limit(store: &dyn store::Store, room: usize, held: usize) -> usize {
    if store.shared_dispatch() {
        room
    } else {
        room + held.min(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{BucketId, Event, EventId, InputId, Output, OutputId, RetryPolicy, TenantId};

    fn due(body: EventBody, received_at: i64) -> DueDelivery {
        let tenant = TenantId::default_tenant();
        let bucket = BucketId::generate();
        let event = Event {
            id: EventId::floor_at(received_at),
            tenant: tenant.clone(),
            bucket: bucket.clone(),
            input: InputId::generate(),
            integration: None,
            received_at,
            method: "POST".into(),
            path: String::new(),
            query: None,
            headers: None,
            body,
            client_ip: "127.0.0.1".into(),
            delivery_id: None,
            event_type: None,
            event_count: 1,
            verified: false,
            marks: Default::default(),
            forwarded: None,
        };
        let output = Output {
            id: OutputId::generate(),
            tenant: tenant.clone(),
            bucket,
            url: "http://127.0.0.1:9/".into(),
            internal: true,
            timeout_ms: 1_000,
            headers: Default::default(),
            retry: RetryPolicy::default(),
            concurrency: Output::DEFAULT_CONCURRENCY,
            ordered: false,
            function_id: None,
            created_at: 0,
        };
        DueDelivery {
            key: DeliveryKey {
                tenant,
                event: event.id,
                output: output.id.clone(),
                group: None,
            },
            event,
            output,
            tries: 0,
        }
    }

    #[test]
    fn the_event_decides_where_the_payload_comes_from() {
        let held = EphemeralPayloads::new();
        let now = 1_000_000;
        let stored = due(EventBody::Stored(b"x".to_vec()), now);
        assert!(matches!(fate(&held, &stored, false, now), Fate::Send(p) if p.body == "x"));
        let bad = due(EventBody::Undecryptable { size: 1 }, now);
        assert!(matches!(
            fate(&held, &bad, false, now),
            Fate::Settle(Some(_), Settle::Failed)
        ));
        let young = due(EventBody::Omitted { size: 1 }, now - 10);
        assert!(
            matches!(fate(&held, &young, false, now), Fate::Later(at) if at == now + HANDOVER_RECHECK_MS)
        );
        let gone = due(EventBody::Omitted { size: 1 }, now - EPHEMERAL_HANDOVER_MS);
        assert!(matches!(
            fate(&held, &gone, false, now),
            Fate::Settle(None, Settle::Expired)
        ));
        assert!(
            matches!(fate(&held, &gone, true, now), Fate::Later(at) if at == now + HELD_ELSEWHERE_RECHECK_MS)
        );
    }
}
