//! Reading what is due for the group's buckets and sending it: each due
//! delivery becomes what `rules::fate` says, within what `gate` admits,
//! and one sent goes to the agent of the group with the most room that
//! serves its bucket and has room for its output.

use std::collections::HashSet;
use std::sync::Arc;

use model::{BucketId, OutputId};
use store::{DeliveryKey, DueDelivery, Settle};
use tokio::sync::watch;

use super::acks::{self, InFlight};
use super::Pump;
use crate::deliver::message;
use crate::deliver::rules::{self, Fate, Sent};

/// What became of one due delivery.
pub(super) enum Outcome {
    Sent(DeliveryKey),
    /// No agent has a free slot; handed back (a claim is released, a lane
    /// keeps it).
    NoRoom(Box<DueDelivery>),
    /// Its output (or its share of the agents) is full: later rows of
    /// other outputs may still go.
    Gated(Box<DueDelivery>),
    /// Not yet (an ephemeral payload on its way); the pump wakes by then.
    Later(Box<DueDelivery>),
    /// Settled without sending.
    Skipped,
}

/// The most due rows one look reads when the first rows are all of full
/// outputs (an ordered output's backlog, a dead destination's retries).
const MAX_LOOK: usize = 4_096;

impl Pump {
    pub(super) async fn dispatch(&mut self) {
        let now = store::clock::now_ms();
        self.wake_at = None;
        let (mark_tx, mark_rx) = watch::channel(false);
        let mut marks = Vec::new();
        let buckets: Vec<BucketId> = self.buckets.iter().cloned().collect();
        let lanes = !self.state.store.shared_dispatch();
        self.waiting_since = None;
        for bucket in buckets {
            if lanes {
                self.dispatch_lanes(&bucket, now, &mark_rx, &mut marks)
                    .await;
            } else {
                self.dispatch_bucket(&bucket, now, &mark_rx, &mut marks)
                    .await;
            }
        }
        let oldest = if lanes {
            self.lanes.oldest()
        } else {
            self.waiting_since
        };
        self.state
            .metrics
            .backlog_oldest(&self.tenant, &self.group, oldest);
        if marks.is_empty() {
            return;
        }
        let store = Arc::clone(&self.state.store);
        tokio::spawn(async move {
            if let Err(err) = store.mark_in_flight(&marks).await {
                tracing::warn!(%err, "could not mark deliveries in flight");
            }
            let _ = mark_tx.send(true);
        });
    }

    /// Sends what is due in one bucket, on a store that claims (shared
    /// dispatch; the embedded store is read by lanes, `lanes`). When every
    /// row read was of a full output, reads further (up to [`MAX_LOOK`]) so that one output's
    /// backlog never hides another's work.
    async fn dispatch_bucket(
        &mut self,
        bucket: &BucketId,
        now: i64,
        mark_rx: &watch::Receiver<bool>,
        marks: &mut Vec<DeliveryKey>,
    ) {
        let free = |pump: &Pump| -> usize {
            pump.agents
                .iter()
                .filter(|a| a.serves(bucket))
                .map(acks::Agent::free)
                .sum()
        };
        let mut room = free(self);
        // Outputs none of whose later rows may go in this look: one of its
        // rows was gated, or is still on its way back to the queue (a
        // release not yet written), so an ordered output's first attempts
        // stay in event order.
        let mut blocked: HashSet<OutputId> = HashSet::new();
        while room > 0 {
            let limit = rules::due_limit(self.state.store.as_ref(), room, self.held.len());
            let batch = self
                .state
                .store
                .due_deliveries(&self.tenant, bucket, Some(&self.group), now, limit)
                .await;
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(%err, "could not read due deliveries");
                    self.wake_by(now + rules::STORE_RETRY.as_millis() as i64);
                    return;
                }
            };
            if let Some(at) = batch.next_at {
                self.wake_by(at);
            }
            let full = batch.due.len() >= limit;
            let (mut sent, mut gated) = (0, 0);
            let mut due = batch.due.into_iter();
            for one in due.by_ref() {
                if self.held.contains(&one.key) {
                    if one.output.ordered {
                        blocked.insert(one.key.output);
                    }
                    continue;
                }
                if blocked.contains(&one.key.output) {
                    self.note_waiting(&one);
                    self.release_claim(one.key);
                    gated += 1;
                    continue;
                }
                match self.send(bucket, one, mark_rx, now).await {
                    Outcome::Sent(key) => {
                        marks.push(key);
                        sent += 1;
                    }
                    Outcome::NoRoom(due) => {
                        self.note_waiting(&due);
                        self.release_claim(due.key);
                        break;
                    }
                    Outcome::Gated(due) => {
                        self.note_waiting(&due);
                        blocked.insert(due.key.output.clone());
                        self.release_claim(due.key);
                        gated += 1;
                    }
                    Outcome::Skipped | Outcome::Later(_) => {}
                }
            }
            for unsent in due {
                self.note_waiting(&unsent);
                self.release_claim(unsent.key);
            }
            room = free(self);
            let look_further = full && sent == 0 && gated > 0 && limit < MAX_LOOK;
            if !look_further {
                return;
            }
            room = (room * 4).max(limit * 4).min(MAX_LOOK);
        }
    }

    pub(super) async fn send(
        &mut self,
        bucket: &BucketId,
        due: DueDelivery,
        marked: &watch::Receiver<bool>,
        now: i64,
    ) -> Outcome {
        self.gate.note_ready(&due.output);
        if !self.agents.iter().any(|a| a.serves(bucket) && a.free() > 0) {
            return Outcome::NoRoom(Box::new(due));
        }
        if !self.gate.output_has_room(&due.output) {
            return Outcome::Gated(Box::new(due));
        }
        let gate = &self.gate;
        // Agents with as much room take turns: one that acks fast would
        // otherwise be picked every time while the others stay idle.
        let (count, turn) = (self.agents.len(), self.next_dispatch as usize);
        let Some(at) = self
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                a.serves(bucket) && gate.slots_admit(&a.slots, &due.output.id, |b| a.serves(b))
            })
            .max_by_key(|(i, a)| (a.free(), (i + turn) % count))
            .map(|(i, _)| i)
        else {
            return Outcome::Gated(Box::new(due));
        };
        let shared = self.state.store.shared_dispatch();
        let fate = rules::fate(&self.state.hub.ephemeral, &due, shared, now);
        let fate = rules::shaped(&self.state, &due, fate, now).await;
        let payload = match fate {
            Fate::Send(payload) => payload,
            Fate::Settle(attempt, next) => {
                self.settle_unsent(due.key, attempt, next);
                return Outcome::Skipped;
            }
            Fate::Later(at) if shared => {
                self.settle_unsent(due.key, None, Settle::RetryAt(at));
                return Outcome::Skipped;
            }
            Fate::Later(at) => {
                self.wake_by(at);
                return Outcome::Later(Box::new(due));
            }
        };
        let want_response = rules::wants_response(&self.state, &due).await;
        self.next_dispatch += 1;
        let delivery_id = format!("d{}", self.next_dispatch);
        let message = message::deliver(&delivery_id, &due, payload, want_response);
        let agent = &mut self.agents[at];
        if agent.slot.tx.try_send(Box::new(message)).is_err() {
            return Outcome::NoRoom(Box::new(due));
        }
        let f = InFlight {
            sent: Sent {
                key: due.key.clone(),
                tries: due.tries,
                retry: due.output.retry,
                want_response,
            },
            deadline: acks::deadline(due.output.timeout_ms),
            marked: marked.clone(),
        };
        agent.hold(delivery_id, f);
        self.gate.started(&due.output.id);
        self.state.metrics.output_in_flight(&due.output.id, true);
        self.held.insert(due.key.clone());
        Outcome::Sent(due.key)
    }

    /// Notes a due delivery read and not sent, for the backlog's age.
    fn note_waiting(&mut self, due: &DueDelivery) {
        let at = due.event.received_at;
        self.waiting_since = Some(self.waiting_since.map_or(at, |w| w.min(at)));
    }

    /// Hands back a delivery a shared store claimed for this node and that
    /// was not sent; the embedded store claims nothing.
    fn release_claim(&mut self, key: DeliveryKey) {
        if self.state.store.shared_dispatch() && !self.held.contains(&key) {
            self.settle_unsent(key, None, Settle::Released);
        }
    }
}
