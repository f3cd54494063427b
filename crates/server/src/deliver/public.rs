//! The server's own deliveries to public outputs (`internal: false`): the
//! same queue discipline and retry policy as agent delivery, through a
//! `forward::Forwarder` that refuses private, loopback and link-local
//! addresses after DNS resolution unless `allow_private_destinations` is
//! set (DESIGN §7).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use forward::{EgressPolicy, Forwarder, Outbound};
use model::{Attempt, EventBody, ResponsePolicy};
use store::{DeliveryKey, DueDelivery, Settle};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{retry, Answer};
use crate::state::AppState;

/// Requests the server makes at once.
const CONCURRENCY: usize = 32;

/// After a store error, look again this much later.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Runs until `cancel`; waits for the requests under way before returning.
pub(crate) async fn run(state: AppState, cancel: CancellationToken) {
    let policy = if state.config.allow_private_destinations {
        EgressPolicy::AllowAll
    } else {
        EgressPolicy::PublicOnly
    };
    let forwarder = match Forwarder::new(policy) {
        Ok(f) => Arc::new(f),
        Err(err) => {
            tracing::error!(%err, "cannot build the HTTP client; public outputs will not be delivered");
            return;
        }
    };
    let mut commits = state.store.commits();
    let mut held: HashSet<DeliveryKey> = HashSet::new();
    let mut tasks: JoinSet<DeliveryKey> = JoinSet::new();
    let mut next_look = Some(Instant::now());
    loop {
        if next_look.is_some_and(|at| at <= Instant::now()) && tasks.len() < CONCURRENCY {
            next_look = fill(&state, &forwarder, &mut held, &mut tasks).await;
        }
        let timer = next_look.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            () = cancel.cancelled() => break,
            changed = commits.changed() => {
                if changed.is_err() {
                    break;
                }
                next_look = Some(Instant::now());
            }
            () = state.hub.public_wake.notified() => next_look = Some(Instant::now()),
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(key) = done {
                    held.remove(&key);
                }
                next_look = Some(next_look.map_or(Instant::now(), |at| at.min(Instant::now())));
            }
            () = tokio::time::sleep_until(timer) => {}
        }
    }
    // Requests under way get the shutdown grace; any cut short stay
    // in flight in the store, which releases them when it next opens.
    let drained = tokio::time::timeout(state.config.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("public deliveries still under way at shutdown; they will be retried");
    }
}

/// Starts requests for due deliveries up to the concurrency; returns when
/// to look again (`None`: on the next commit or finished request).
async fn fill(
    state: &AppState,
    forwarder: &Arc<Forwarder>,
    held: &mut HashSet<DeliveryKey>,
    tasks: &mut JoinSet<DeliveryKey>,
) -> Option<Instant> {
    let now = store::clock::now_ms();
    let room = CONCURRENCY - tasks.len();
    let limit = super::due_limit(state.store.as_ref(), room, held.len());
    let batch = match state.store.due_public_deliveries(now, limit).await {
        Ok(batch) => batch,
        Err(err) => {
            tracing::warn!(%err, "could not read due public deliveries");
            return Some(Instant::now() + STORE_RETRY);
        }
    };
    let fresh: Vec<DueDelivery> = batch
        .due
        .into_iter()
        .filter(|d| !held.contains(&d.key))
        .take(room)
        .collect();
    let keys: Vec<DeliveryKey> = fresh.iter().map(|d| d.key.clone()).collect();
    if keys.is_empty() {
        return next_look(batch.next_at, now);
    }
    if let Err(err) = state.store.mark_in_flight(&keys).await {
        tracing::warn!(%err, "could not mark public deliveries in flight");
        if state.store.shared_dispatch() {
            // The mark may have been written before the answer was lost:
            // hand the claims back, or they would wait for a restart.
            for key in &keys {
                settle(state, key, None, Settle::Released).await;
            }
        }
        return Some(Instant::now() + STORE_RETRY);
    }
    for due in fresh {
        held.insert(due.key.clone());
        let span = tracing::info_span!("deliver", event = %due.key.event, output = %due.output.id);
        tasks.spawn(deliver(state.clone(), Arc::clone(forwarder), due).instrument(span));
    }
    next_look(batch.next_at, now)
}

/// The instant of a store time `at` (ms), seen at store time `now`.
fn next_look(at: Option<i64>, now: i64) -> Option<Instant> {
    at.map(|at| {
        let wait = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
        Instant::now() + Duration::from_millis(wait)
    })
}

/// One attempt: the request, the waiting caller's answer, the settlement.
async fn deliver(state: AppState, forwarder: Arc<Forwarder>, due: DueDelivery) -> DeliveryKey {
    let now = store::clock::now_ms();
    if matches!(due.event.body, EventBody::Undecryptable { .. }) {
        let attempt = undecryptable(now);
        settle(&state, &due.key, Some(attempt), Settle::Failed).await;
        return due.key;
    }
    if matches!(due.event.body, EventBody::Omitted { .. }) {
        awaits_handover(&state, &due).await;
    }
    let Some(outbound) = outbound(&state, &due) else {
        // On a shared store the accepting node may still hold the payload:
        // hand the claim back for it while the payload can be held.
        let held_elsewhere = state.store.shared_dispatch()
            && matches!(due.event.body, EventBody::Omitted { .. })
            && now - due.event.received_at < super::EPHEMERAL_HOLD_MS;
        let next = if held_elsewhere {
            Settle::RetryAt(now + 1_000)
        } else {
            Settle::Expired
        };
        settle(&state, &due.key, None, next).await;
        return due.key;
    };
    let want_response = due.tries == 0 && wants_response(&state, &due).await;
    let outcome = forwarder.send(outbound, want_response).await;
    if want_response {
        if let Some(status) = outcome.status {
            crate::cluster::answer(
                &state,
                due.key.event,
                Answer {
                    status,
                    headers: outcome.headers.clone(),
                    body: outcome.body.to_vec(),
                },
            );
        }
    }
    let verdict = forward::verdict(&outcome);
    let tries = due.tries + 1;
    let next = retry::settle_after(verdict, tries, &due.output.retry, now);
    let attempt = Attempt {
        at: now,
        status: outcome.status,
        latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
        error: outcome.error,
    };
    if attempt.error.is_some() {
        tracing::info!(event = %due.key.event, output = %due.output.id, error = ?attempt.error, "delivery attempt failed");
    }
    settle(&state, &due.key, Some(attempt), next).await;
    due.key
}

/// Ingest hands an ephemeral event's payload to memory just after the
/// commit that made its delivery due; a young event gets that moment.
async fn awaits_handover(state: &AppState, due: &DueDelivery) {
    let deadline = due.event.received_at + super::EPHEMERAL_HANDOVER_MS;
    while state.hub.ephemeral.get(&due.event.id).is_none() && store::clock::now_ms() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The request for this delivery, or `None` for an ephemeral event whose
/// payload is no longer held.
fn outbound(state: &AppState, due: &DueDelivery) -> Option<Outbound> {
    let event = &due.event;
    let (headers, query, body) = match &event.body {
        EventBody::Stored(body) => (
            event.headers.clone().unwrap_or_default(),
            event.query.clone().unwrap_or_default(),
            Bytes::from(body.clone()),
        ),
        EventBody::Omitted { .. } | EventBody::Undecryptable { .. } => {
            let held = state.hub.ephemeral.get(&event.id)?;
            (held.headers.clone(), held.query.clone(), held.body.clone())
        }
    };
    let url = match forward::target_url(&due.output.url, &event.path, &query) {
        Ok(url) => url,
        Err(err) => {
            tracing::warn!(%err, output = %due.output.id, "the output URL cannot take this event's path");
            return None;
        }
    };
    Some(Outbound {
        method: event.method.clone(),
        url,
        headers: forward::outbound_headers(&headers, &due.output.headers),
        body,
        timeout: Duration::from_millis(due.output.timeout_ms),
    })
}

/// The attempt recorded for a payload that no key opens (tampered, or its
/// key is gone): never retried, the bytes will not change.
pub(super) fn undecryptable(now_ms: i64) -> Attempt {
    Attempt {
        at: now_ms,
        status: None,
        latency_ms: 0,
        error: Some("the stored payload cannot be decrypted".into()),
    }
}

async fn wants_response(state: &AppState, due: &DueDelivery) -> bool {
    let route = state
        .catalog
        .by_id(state.store.as_ref(), &due.event.input)
        .await;
    matches!(route, Ok(Some(r)) if matches!(r.input.response, ResponsePolicy::Wait { .. }))
}

async fn settle(state: &AppState, key: &DeliveryKey, attempt: Option<Attempt>, next: Settle) {
    state.metrics.delivery_settled(next);
    retry::settle_with_retries(state.store.as_ref(), key, attempt, next).await;
}
