//! The pump's side of what is out: each agent's unacknowledged deliveries,
//! their acks and settlements, and the cut-off of an agent that stays
//! silent on one past its deadline.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use model::{Attempt, BucketId, RetryPolicy};
use proto::pb;
use store::{DeliveryKey, Settle, Settlement};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Pump;
use crate::deliver::gate::Slots;
use crate::deliver::rules::{self, Sent};
use crate::deliver::{Answer, Slot};

/// An agent of the group, as its pump sees it.
pub(super) struct Agent {
    pub(super) slot: Slot,
    /// By the id of the `Deliver` it was sent.
    pub(super) in_flight: HashMap<String, InFlight>,
    /// Its `max_in_flight`, and what each output holds of it.
    pub(super) slots: Slots,
}

impl Agent {
    pub(super) fn new(slot: Slot) -> Self {
        let max = slot.info.max_in_flight as usize;
        Agent {
            slot,
            in_flight: HashMap::new(),
            slots: Slots::new(max),
        }
    }

    pub(super) fn free(&self) -> usize {
        self.slots.free()
    }

    /// Records a delivery sent to this agent.
    pub(super) fn hold(&mut self, delivery_id: String, f: InFlight) {
        self.slots.take(&f.sent.key.output);
        self.in_flight.insert(delivery_id, f);
        self.publish_count();
    }

    /// Takes back a delivery this agent held (acked).
    pub(super) fn release(&mut self, delivery_id: &str) -> Option<InFlight> {
        let f = self.in_flight.remove(delivery_id)?;
        self.slots.give_back(&f.sent.key.output);
        self.publish_count();
        Some(f)
    }

    pub(super) fn serves(&self, bucket: &BucketId) -> bool {
        self.slot.buckets.iter().any(|b| &b.id == bucket)
    }

    pub(super) fn publish_count(&self) {
        self.slot
            .info
            .in_flight
            .store(self.in_flight.len(), Ordering::Relaxed);
    }
}

/// One delivery an agent holds.
pub(super) struct InFlight {
    pub(super) sent: Sent,
    /// The agent is cut off if it has not acked by then: the output's
    /// timeout plus [`super::ACK_GRACE`] after it was sent. The agent
    /// forwards each delivery as it arrives (never more than its
    /// `max_in_flight`), so another delivery's ack, failed or not, says
    /// nothing about this one and never moves its deadline.
    pub(super) deadline: Instant,
    /// Becomes true once the `in_flight` mark is written, so a settlement
    /// can never be overwritten by its own delivery's mark.
    pub(super) marked: watch::Receiver<bool>,
}

impl Pump {
    /// Cuts off every agent holding a delivery past its deadline: dropping
    /// its sender ends its session, and its deliveries go to the others.
    pub(super) fn on_timer(&mut self) {
        self.dirty = true;
        self.wake_at = None;
        let now = Instant::now();
        let late: Vec<u64> = self
            .agents
            .iter()
            .filter(|a| a.in_flight.values().any(|f| f.deadline <= now))
            .map(|a| a.slot.number)
            .collect();
        for number in late {
            let Some(agent) = self.remove_agent(number) else {
                continue;
            };
            tracing::warn!(agent = %agent.slot.info.id, "agent did not acknowledge in time; cut off");
            let at = store::clock::now_ms();
            for (_, f) in agent.in_flight {
                let (attempt, next) = rules::attempt_of_silence(&f.sent, at);
                self.settle(f, Some(attempt), next);
            }
        }
    }

    pub(super) fn on_ack(&mut self, number: u64, ack: pb::Ack) {
        let Some(agent) = self.agents.iter_mut().find(|a| a.slot.number == number) else {
            return;
        };
        // Unknown ids are acks of deliveries already taken back: ignored.
        let Some(f) = agent.release(&ack.delivery_id) else {
            return;
        };
        let now = store::clock::now_ms();
        let (attempt, next) = rules::attempt_of_ack(&ack, &f.sent, now);
        if f.sent.want_response {
            if let Some(response) = ack.response {
                rules::answer_caller(&self.state, f.sent.key.event, Answer::from_pb(response));
            }
        }
        self.settle(f, Some(attempt), next);
    }

    /// Writes the settlement of a delivery that was out (its output's
    /// place under way is free at once); it stays held until written.
    pub(super) fn settle(&mut self, f: InFlight, attempt: Option<Attempt>, next: Settle) {
        self.gate.finished(&f.sent.key.output);
        self.state
            .metrics
            .output_in_flight(&f.sent.key.output, false);
        self.write_settlement(f, attempt, next);
    }

    /// Queues a settlement for the next [`Pump::flush_settlements`].
    fn write_settlement(&mut self, f: InFlight, attempt: Option<Attempt>, next: Settle) {
        let settlement = Settlement {
            key: f.sent.key,
            attempt,
            next,
        };
        self.to_settle.push((f.marked, settlement));
    }

    /// Writes every queued settlement in one store call (one transaction,
    /// or one script per tenant): acks that arrive together cost one
    /// write, not one each. Each waits for its delivery's in-flight mark
    /// first, so a settlement is never overwritten by its own mark.
    pub(super) fn flush_settlements(&mut self) {
        if self.to_settle.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.to_settle);
        let state = self.state.clone();
        self.settling.spawn(async move {
            let mut settlements = Vec::with_capacity(batch.len());
            for (mut marked, settlement) in batch {
                // A closed channel means the mark task ended: written or failed.
                let _ = marked.wait_for(|m| *m).await;
                settlements.push(settlement);
            }
            rules::record_batch(&state, &settlements).await;
            settlements.into_iter().map(|s| s.key).collect()
        });
    }

    /// Settles a delivery that was never sent (nothing to wait for).
    pub(super) fn settle_unsent(
        &mut self,
        key: DeliveryKey,
        attempt: Option<Attempt>,
        next: Settle,
    ) {
        let (tx, rx) = watch::channel(true);
        drop(tx);
        let f = InFlight {
            sent: Sent {
                key,
                tries: 0,
                retry: RetryPolicy::default(),
                want_response: false,
            },
            deadline: Instant::now(),
            marked: rx,
        };
        self.held.insert(f.sent.key.clone());
        self.write_settlement(f, attempt, next);
    }
}

/// The deadline of a delivery sent now with this output timeout.
pub(super) fn deadline(timeout_ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(timeout_ms) + super::ACK_GRACE
}
