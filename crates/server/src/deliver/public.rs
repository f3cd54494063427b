//! The server's own deliveries to public outputs (`internal: false`): the
//! same rules as agent delivery (`rules`), sent through a
//! `forward::Forwarder` that refuses private, loopback and link-local
//! addresses after DNS resolution unless `allow_private_destinations` is
//! set (DESIGN §7).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use forward::{EgressPolicy, Forwarder, Outbound};
use model::Attempt;
use store::{DeliveryKey, DueDelivery, Settle};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::gate::{Gate, Slots};
use super::rules::{self, Fate, Payload, Sent};
use super::Answer;
use crate::state::AppState;

/// Requests the server makes at once, across every public output.
const CONCURRENCY: usize = 32;

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
    let mut worker = Worker {
        state: state.clone(),
        forwarder,
        held: HashSet::new(),
        gate: Gate::default(),
        slots: Slots::new(CONCURRENCY),
        tasks: JoinSet::new(),
    };
    let mut commits = state.store.commits();
    let mut next_look = Some(Instant::now());
    loop {
        if next_look.is_some_and(|at| at <= Instant::now()) && worker.slots.free() > 0 {
            next_look = worker.fill().await;
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
            Some(done) = worker.tasks.join_next(), if !worker.tasks.is_empty() => {
                if let Ok((key, sent)) = done {
                    worker.done(&key, sent);
                }
                next_look = Some(next_look.map_or(Instant::now(), |at| at.min(Instant::now())));
            }
            () = tokio::time::sleep_until(timer) => {}
        }
    }
    // Requests under way get the shutdown grace; any cut short stay
    // in flight in the store, which releases them when it next opens.
    let drained = tokio::time::timeout(state.config.shutdown_grace, async {
        while worker.tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("public deliveries still under way at shutdown; they will be retried");
    }
}

/// The public sender's state.
struct Worker {
    state: AppState,
    forwarder: Arc<Forwarder>,
    /// Sent (or being settled) and not yet settled in the store.
    held: HashSet<DeliveryKey>,
    /// Requests under way per output.
    gate: Gate,
    /// [`CONCURRENCY`], shared fairly among the outputs with work ready.
    slots: Slots,
    /// Requests and settlements under way; each ends with its key, and
    /// whether it was a request (holding a slot).
    tasks: JoinSet<(DeliveryKey, bool)>,
}

impl Worker {
    /// Starts requests for due deliveries up to the concurrency; returns
    /// when to look again (`None`: on the next commit or finished task).
    async fn fill(&mut self) -> Option<Instant> {
        let state = self.state.clone();
        let now = store::clock::now_ms();
        let shared = state.store.shared_dispatch();
        let room = self.slots.free();
        let limit = rules::due_limit(state.store.as_ref(), room, self.held.len());
        let batch = match state.store.due_public_deliveries(now, limit).await {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(%err, "could not read due public deliveries");
                return Some(Instant::now() + rules::STORE_RETRY);
            }
        };
        let mut wake = batch.next_at;
        let mut sends = Vec::new();
        for due in batch.due {
            if self.held.contains(&due.key) {
                continue;
            }
            self.gate.note_ready(&due.output);
            let admitted = self.gate.output_has_room(&due.output)
                && self.gate.slots_admit(&self.slots, &due.output.id, |_| true);
            if !admitted {
                self.settle_unsent(due.key, None, Settle::Released, shared);
                continue;
            }
            let fate = rules::fate(&state.hub.ephemeral, &due, shared, now);
            let fate = rules::shaped(&state, &due, fate, now).await;
            match fate {
                Fate::Send(payload) => {
                    self.gate.started(&due.output.id);
                    self.slots.take(&due.output.id);
                    sends.push((due, payload));
                }
                Fate::Settle(attempt, next) => self.settle_unsent(due.key, attempt, next, true),
                Fate::Later(at) if shared => {
                    self.settle_unsent(due.key, None, Settle::RetryAt(at), true);
                }
                Fate::Later(at) => wake = Some(wake.map_or(at, |w| w.min(at))),
            }
        }
        if !sends.is_empty() && !self.mark(&sends).await {
            for (due, _) in &sends {
                self.gate.finished(&due.output.id);
                self.slots.give_back(&due.output.id);
            }
            return Some(Instant::now() + rules::STORE_RETRY);
        }
        for (due, payload) in sends {
            self.state.metrics.output_in_flight(&due.output.id, true);
            self.held.insert(due.key.clone());
            let span =
                tracing::info_span!("deliver", event = %due.key.event, output = %due.output.id);
            let task = deliver(
                self.state.clone(),
                Arc::clone(&self.forwarder),
                due,
                payload,
            );
            self.tasks
                .spawn(async move { (task.await, true) }.instrument(span));
        }
        wake.map(|at| {
            let wait = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
            Instant::now() + Duration::from_millis(wait)
        })
    }

    /// Marks the deliveries about to be sent in flight; false if the store
    /// failed (and the claims were handed back).
    async fn mark(&mut self, sends: &[(DueDelivery, Payload)]) -> bool {
        let keys: Vec<DeliveryKey> = sends.iter().map(|(d, _)| d.key.clone()).collect();
        let Err(err) = self.state.store.mark_in_flight(&keys).await else {
            return true;
        };
        tracing::warn!(%err, "could not mark public deliveries in flight");
        // The mark may have been written before the answer was lost: hand
        // the claims back, or they would wait for a restart.
        let shared = self.state.store.shared_dispatch();
        for key in keys {
            self.settle_unsent(key, None, Settle::Released, shared);
        }
        false
    }

    /// Settles a delivery without sending it, held until written; `write`
    /// false leaves it alone (an unclaimed row of the embedded store).
    fn settle_unsent(
        &mut self,
        key: DeliveryKey,
        attempt: Option<Attempt>,
        next: Settle,
        write: bool,
    ) {
        if !write {
            return;
        }
        self.held.insert(key.clone());
        let state = self.state.clone();
        self.tasks.spawn(async move {
            rules::record(&state, &key, attempt, next).await;
            (key, false)
        });
    }

    /// A task ended: its delivery is settled, and a request's slot free.
    fn done(&mut self, key: &DeliveryKey, sent: bool) {
        self.held.remove(key);
        if sent {
            self.state.metrics.output_in_flight(&key.output, false);
            self.gate.finished(&key.output);
            self.slots.give_back(&key.output);
        }
    }
}

/// One attempt: the request, the waiting caller's answer, the settlement.
async fn deliver(
    state: AppState,
    forwarder: Arc<Forwarder>,
    due: DueDelivery,
    payload: Payload,
) -> DeliveryKey {
    let now = store::clock::now_ms();
    let sent = Sent {
        key: due.key.clone(),
        tries: due.tries,
        retry: due.output.retry,
        want_response: rules::wants_response(&state, &due).await,
    };
    let outbound = match outbound(&due, payload) {
        Ok(outbound) => outbound,
        Err(err) => {
            let attempt = Attempt {
                at: now,
                status: None,
                latency_ms: 0,
                error: Some(format!(
                    "the output URL cannot take this event's path: {err}"
                )),
            };
            rules::record(&state, &due.key, Some(attempt), Settle::Failed).await;
            return due.key;
        }
    };
    let outcome = forwarder.send(outbound, sent.want_response).await;
    if sent.want_response {
        if let Some(status) = outcome.status {
            let answer = Answer {
                status,
                headers: outcome.headers.clone(),
                body: outcome.body.to_vec(),
            };
            rules::answer_caller(&state, due.key.event, answer);
        }
    }
    let (attempt, next) = rules::attempt_of_outcome(outcome, &sent, now);
    if attempt.error.is_some() {
        tracing::info!(event = %due.key.event, output = %due.output.id, error = ?attempt.error, "delivery attempt failed");
    }
    rules::record(&state, &due.key, Some(attempt), next).await;
    due.key
}

/// The request for this delivery.
fn outbound(due: &DueDelivery, payload: Payload) -> Result<Outbound, forward::ForwardError> {
    let url = forward::target_url(&due.output.url, &payload.path, &payload.query)?;
    Ok(Outbound {
        method: payload.method,
        url,
        headers: forward::outbound_headers(&payload.headers, &due.output.headers),
        body: payload.body,
        timeout: Duration::from_millis(due.output.timeout_ms),
    })
}
