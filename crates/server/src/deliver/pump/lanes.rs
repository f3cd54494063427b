//! Dispatch by lanes, on a store whose dispatch is not shared (the
//! embedded one; issue 13): each internal output of a bucket is one lane,
//! read from its own cursor, only as much as the output can take now plus
//! a bounded read-ahead. What a read returns stays in memory until it is
//! sent, so each row is read and decrypted once, whatever the backlog
//! behind it or the deliveries out before it; a full or dead output's
//! lane is not read at all, so it costs its neighbours nothing.
//!
//! A row comes back behind a lane's cursor only as "due again" (a retry's
//! backoff ended, a release, a resend: the store gives those a due time,
//! never 0), which every read of the lane asks for first. So a lane needs
//! reading again only after new events commit, a settlement of its own is
//! written, a retry's time comes, or a resend; until then it is
//! `exhausted`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use model::{BucketId, EventBody, EventId, OutputId};
use store::{DeliveryKey, DueDelivery, LaneRead};
use tokio::sync::watch;

use super::dispatch::Outcome;
use super::Pump;
use crate::deliver::rules;

/// Rows read ahead of what a lane can send now (at most), so a lane at
/// full speed reads once per this many deliveries rather than per ack.
const READ_AHEAD: usize = 64;

/// A lane stops reading ahead while it holds this many payload bytes.
const READ_AHEAD_BYTES: u64 = 4 << 20;

/// The lanes of the group's buckets on this node.
#[derive(Default)]
pub(super) struct Lanes {
    buckets: HashMap<BucketId, BucketLanes>,
    /// Every row in some lane's `ready`: a row due again is read again
    /// until it is sent, and must not be queued twice.
    queued: HashSet<DeliveryKey>,
}

#[derive(Default)]
struct BucketLanes {
    /// The bucket's internal outputs and their in-flight limits, as of
    /// configuration version `version`.
    outputs: Vec<(OutputId, usize)>,
    version: Option<u64>,
    lanes: HashMap<OutputId, Lane>,
}

#[derive(Default)]
struct Lane {
    cursor: Option<EventId>,
    ready: VecDeque<DueDelivery>,
    /// How many of `ready` were read as due again (they lead the queue).
    again: usize,
    ready_bytes: u64,
    exhausted: bool,
    /// When the lane's earliest retry becomes due, as of its last read.
    next_at: Option<i64>,
}

impl Lane {
    fn push(&mut self, due: DueDelivery, again: bool) {
        self.ready_bytes += payload_size(&due);
        if again {
            self.again += 1;
        }
        self.ready.push_back(due);
    }

    fn pop(&mut self) -> Option<DueDelivery> {
        let due = self.ready.pop_front()?;
        self.ready_bytes = self.ready_bytes.saturating_sub(payload_size(&due));
        self.again = self.again.saturating_sub(1);
        Some(due)
    }

    /// Puts back a row that could not go now, at the head of its lane.
    fn put_back(&mut self, due: DueDelivery) {
        self.ready_bytes += payload_size(&due);
        self.again += 1;
        self.ready.push_front(due);
    }
}

fn payload_size(due: &DueDelivery) -> u64 {
    match &due.event.body {
        EventBody::Stored(b) => b.len() as u64,
        _ => 0,
    }
}

impl Lanes {
    /// Something may be due in every lane (new events, a retry's time, a
    /// resend).
    pub(super) fn touch_all(&mut self) {
        for bucket in self.buckets.values_mut() {
            for lane in bucket.lanes.values_mut() {
                lane.exhausted = false;
            }
        }
    }

    /// A settlement of one of the output's deliveries was written: it may
    /// be due again.
    pub(super) fn touch(&mut self, output: &OutputId) {
        for bucket in self.buckets.values_mut() {
            if let Some(lane) = bucket.lanes.get_mut(output) {
                lane.exhausted = false;
            }
        }
    }

    /// When the oldest event read and not yet sent was received (ms).
    pub(super) fn oldest(&self) -> Option<i64> {
        self.buckets
            .values()
            .flat_map(|b| b.lanes.values())
            .filter_map(|l| l.ready.front().map(|d| d.event.received_at))
            .min()
    }

    /// Forgets everything read (the group's agents all left: what it held
    /// may expire before the next one comes).
    pub(super) fn clear(&mut self) {
        self.buckets.clear();
        self.queued.clear();
    }
}

impl Pump {
    /// Sends what is due in one bucket, lane by lane, oldest head first.
    pub(super) async fn dispatch_lanes(
        &mut self,
        bucket: &BucketId,
        now: i64,
        mark_rx: &watch::Receiver<bool>,
        marks: &mut Vec<DeliveryKey>,
    ) {
        let room: usize = self
            .agents
            .iter()
            .filter(|a| a.serves(bucket))
            .map(super::acks::Agent::free)
            .sum();
        if room == 0 {
            return;
        }
        if !self.refresh_outputs(bucket).await {
            return;
        }
        self.read_lanes(bucket, room, now).await;
        // A lane not read this time still has its retries to wake for; a
        // time already past is read again once the lane has room (every
        // wake-up makes every lane worth reading).
        let retries: Vec<i64> = self
            .lanes
            .buckets
            .get(bucket)
            .into_iter()
            .flat_map(|b| b.lanes.values())
            .filter_map(|l| l.next_at)
            .filter(|at| *at > now)
            .collect();
        for at in retries {
            self.wake_by(at);
        }
        let order: Vec<OutputId> = match self.lanes.buckets.get(bucket) {
            Some(lanes) => lanes.lanes.keys().cloned().collect(),
            None => return,
        };
        let mut blocked: HashSet<OutputId> = HashSet::new();
        loop {
            // The lane whose head is the oldest event goes next.
            let next = {
                let lanes = &self.lanes.buckets[bucket].lanes;
                order
                    .iter()
                    .filter(|o| !blocked.contains(*o))
                    .filter_map(|o| Some((lanes[o].ready.front()?.key.event, o)))
                    .min_by_key(|(event, _)| *event)
                    .map(|(_, o)| o.clone())
            };
            let Some(output) = next else {
                break;
            };
            let lane = self.lane(bucket, &output);
            let Some(due) = lane.pop() else {
                blocked.insert(output);
                continue;
            };
            self.lanes.queued.remove(&due.key);
            match self.send(bucket, due, mark_rx, now).await {
                Outcome::Sent(key) => marks.push(key),
                Outcome::Skipped => {}
                Outcome::Gated(due) | Outcome::Later(due) => {
                    self.requeue(bucket, *due);
                    blocked.insert(output);
                }
                Outcome::NoRoom(due) => {
                    self.requeue(bucket, *due);
                    break;
                }
            }
        }
    }

    fn lane(&mut self, bucket: &BucketId, output: &OutputId) -> &mut Lane {
        self.lanes
            .buckets
            .entry(bucket.clone())
            .or_default()
            .lanes
            .entry(output.clone())
            .or_default()
    }

    fn requeue(&mut self, bucket: &BucketId, due: DueDelivery) {
        self.lanes.queued.insert(due.key.clone());
        let output = due.key.output.clone();
        self.lane(bucket, &output).put_back(due);
    }

    /// Reads the bucket's internal outputs again when the configuration
    /// changed since the last look; false if the store cannot say.
    async fn refresh_outputs(&mut self, bucket: &BucketId) -> bool {
        let version = *self.state.store.config_changes().borrow();
        let lanes = self.lanes.buckets.entry(bucket.clone()).or_default();
        if lanes.version == Some(version) {
            return true;
        }
        let outputs = match self.state.store.list_outputs(&self.tenant, bucket).await {
            Ok(outputs) => outputs,
            Err(err) => {
                tracing::warn!(%err, %bucket, "could not read a bucket's outputs");
                let at = store::clock::now_ms() + rules::STORE_RETRY.as_millis() as i64;
                self.wake_by(at);
                return false;
            }
        };
        let lanes = self.lanes.buckets.entry(bucket.clone()).or_default();
        lanes.outputs = outputs
            .iter()
            .filter(|o| o.internal)
            .map(|o| (o.id.clone(), o.in_flight_limit()))
            .collect();
        lanes.version = Some(version);
        let gone: Vec<OutputId> = lanes
            .lanes
            .keys()
            .filter(|id| !lanes.outputs.iter().any(|(o, _)| o == *id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(lane) = lanes.lanes.remove(&id) {
                for due in lane.ready {
                    self.lanes.queued.remove(&due.key);
                }
            }
        }
        true
    }

    /// Reads, in one store call, every lane that can send more than it
    /// holds and may have more due.
    async fn read_lanes(&mut self, bucket: &BucketId, room: usize, now: i64) {
        let gate = &self.gate;
        let Some(lanes) = self.lanes.buckets.get_mut(bucket) else {
            return;
        };
        let mut reads = Vec::new();
        for (output, limit) in &lanes.outputs {
            let lane = lanes.lanes.entry(output.clone()).or_default();
            let want = limit.saturating_sub(gate.under_way(output)).min(room);
            if lane.exhausted || want <= lane.ready.len() {
                continue;
            }
            let ahead = if lane.ready_bytes < READ_AHEAD_BYTES {
                want.min(READ_AHEAD)
            } else {
                0
            };
            reads.push(LaneRead {
                output: output.clone(),
                after: lane.cursor,
                // Rows due again are read until sent: while some wait in
                // memory, the lane reads only fresh ones.
                again: lane.again == 0,
                limit: want - lane.ready.len() + ahead,
            });
        }
        if reads.is_empty() {
            return;
        }
        let store = Arc::clone(&self.state.store);
        let batches = match store
            .due_lanes(&self.tenant, bucket, &self.group, now, &reads)
            .await
        {
            Ok(batches) => batches,
            Err(err) => {
                tracing::warn!(%err, "could not read due deliveries");
                self.wake_by(now + rules::STORE_RETRY.as_millis() as i64);
                return;
            }
        };
        for (read, batch) in reads.into_iter().zip(batches) {
            let Some(lanes) = self.lanes.buckets.get_mut(bucket) else {
                return;
            };
            let lane = lanes.lanes.entry(read.output).or_default();
            lane.cursor = batch.cursor;
            lane.exhausted = batch.exhausted;
            lane.next_at = batch.next_at;
            for (i, due) in batch.due.into_iter().enumerate() {
                if self.held.contains(&due.key) || !self.lanes.queued.insert(due.key.clone()) {
                    continue;
                }
                lane.push(due, i < batch.again);
            }
        }
    }
}
