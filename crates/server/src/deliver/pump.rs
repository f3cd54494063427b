//! One task per agent group connected to this node: it asks the store what
//! is due for the group's buckets, hands each delivery to one agent of the
//! group with room under its `max_in_flight`, and settles the acks.
//!
//! Nothing is dispatched twice: a delivery is `held` from the moment it is
//! sent until its settlement is written, and the store's queue only holds
//! `pending` rows. An agent that does not ack within the output's timeout
//! (plus [`ACK_GRACE`]) is cut off and what it held goes to the others.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use model::{Attempt, Bucket, BucketId, EventBody, ResponsePolicy, RetryPolicy, TenantId};
use proto::pb;
use store::{DeliveryKey, DueDelivery, Settle};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{message, retry, Answer, Slot};
use crate::state::AppState;

/// Time an agent gets beyond the output's own timeout to ack.
pub(crate) const ACK_GRACE: Duration = Duration::from_secs(2);

/// Commands queued per group before joins, leaves and acks wait.
const COMMAND_QUEUE: usize = 1024;

/// After a store error, the pump looks again this much later.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Errors kept per attempt, in bytes: an agent's error text is untrusted.
const MAX_ERROR_LEN: usize = 512;

pub(crate) enum GroupCmd {
    Join(Slot),
    Leave(u64),
    Ack {
        agent: u64,
        ack: pb::Ack,
    },
    /// Something became due outside the pump's sight (a resend).
    Wake,
}

/// The registry's handle on a running pump.
pub(crate) struct PumpHandle {
    pub(crate) cmds: mpsc::Sender<GroupCmd>,
    /// Agents joined or on their way; the pump retires only at zero.
    pub(crate) members: Arc<AtomicUsize>,
    pub(crate) cancel: CancellationToken,
}

impl PumpHandle {
    pub(crate) fn spawn(state: AppState, tenant: TenantId, group: String) -> Self {
        let (cmds, rx) = mpsc::channel(COMMAND_QUEUE);
        let members = Arc::new(AtomicUsize::new(0));
        let cancel = state.shutdown.child_token();
        let pump = Pump {
            state,
            tenant,
            group,
            members: Arc::clone(&members),
            agents: Vec::new(),
            buckets: HashMap::new(),
            held: HashSet::new(),
            next_dispatch: 0,
            settling: JoinSet::new(),
            wake_at: None,
            dirty: false,
        };
        tokio::spawn(pump.run(rx, cancel.clone()));
        PumpHandle {
            cmds,
            members,
            cancel,
        }
    }
}

struct Agent {
    slot: Slot,
    in_flight: HashMap<String, InFlight>,
}

impl Agent {
    fn free(&self) -> usize {
        (self.slot.info.max_in_flight as usize).saturating_sub(self.in_flight.len())
    }

    fn serves(&self, bucket: &BucketId) -> bool {
        self.slot.buckets.iter().any(|b| &b.id == bucket)
    }

    fn publish_count(&self) {
        self.slot
            .info
            .in_flight
            .store(self.in_flight.len(), Ordering::Relaxed);
    }
}

struct InFlight {
    key: DeliveryKey,
    deadline: Instant,
    /// The output's timeout plus [`ACK_GRACE`].
    patience: Duration,
    tries: u32,
    retry: RetryPolicy,
    want_response: bool,
    /// Becomes true once the `in_flight` mark is written, so a settlement
    /// can never be overwritten by its own delivery's mark.
    marked: watch::Receiver<bool>,
}

struct Pump {
    state: AppState,
    tenant: TenantId,
    group: String,
    members: Arc<AtomicUsize>,
    agents: Vec<Agent>,
    /// Buckets the group is registered for on this node.
    buckets: HashMap<BucketId, Bucket>,
    /// Sent and not yet settled in the store.
    held: HashSet<DeliveryKey>,
    next_dispatch: u64,
    settling: JoinSet<DeliveryKey>,
    /// When a retry waiting out its backoff becomes due.
    wake_at: Option<i64>,
    dirty: bool,
}

impl Pump {
    async fn run(mut self, mut rx: mpsc::Receiver<GroupCmd>, cancel: CancellationToken) {
        let mut commits = self.state.store.commits();
        loop {
            if self.dirty {
                self.dirty = false;
                self.dispatch().await;
            }
            let timer = self.next_timer();
            tokio::select! {
                () = cancel.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
                changed = commits.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.dirty = true;
                }
                Some(done) = self.settling.join_next(), if !self.settling.is_empty() => {
                    if let Ok(key) = done {
                        self.held.remove(&key);
                    }
                    self.dirty = true;
                }
                () = tokio::time::sleep_until(timer) => self.on_timer(),
            }
            // Only once every settlement is written, so a successor pump
            // never sees a delivery this one still holds.
            if self.agents.is_empty()
                && self.settling.is_empty()
                && self.members.load(Ordering::SeqCst) == 0
                && self.state.hub.retire(&self.tenant, &self.group)
            {
                return;
            }
        }
        // Stopped without retiring (shutdown, or the store closed): take the
        // handle out of the registry so no agent joins a dead pump.
        self.state
            .hub
            .forget_pump(&self.tenant, &self.group, &self.members);
        self.release_everything();
        while self.settling.join_next().await.is_some() {}
    }

    async fn handle(&mut self, cmd: GroupCmd) {
        match cmd {
            GroupCmd::Join(slot) => self.join(slot).await,
            GroupCmd::Leave(number) => {
                if let Some(agent) = self.remove_agent(number) {
                    for (_, f) in agent.in_flight {
                        self.settle(f, None, Settle::Released);
                    }
                }
            }
            GroupCmd::Ack { agent, ack } => self.on_ack(agent, ack),
            GroupCmd::Wake => {}
        }
        self.dirty = true;
    }

    /// Registers the agent's buckets for the group. The first agent of the
    /// group on this node also starts its catch-up: deliveries pending for
    /// longer than a bucket's `catchup` expire (DESIGN §5).
    async fn join(&mut self, slot: Slot) {
        let now = store::clock::now_ms();
        let reconnect = self.agents.is_empty();
        for bucket in &slot.buckets {
            let catchup_ms =
                i64::try_from(bucket.catchup_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
            let from = now.saturating_sub(catchup_ms);
            let new = !self.buckets.contains_key(&bucket.id);
            if new {
                let registered = self
                    .state
                    .store
                    .register_group(&self.tenant, &bucket.id, &self.group, from)
                    .await;
                if let Err(err) = registered {
                    tracing::warn!(%err, bucket = %bucket.id, "could not register an agent group");
                    let refusal = proto::server_message::Kind::Error(pb::Error {
                        code: "unavailable".into(),
                        message: "the relay cannot subscribe this agent now; retry".into(),
                    });
                    let _ = slot.tx.try_send(refusal.into());
                    // Dropping the slot ends the session.
                    self.members.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                self.buckets.insert(bucket.id.clone(), bucket.clone());
            }
            if new || reconnect {
                let expired = self
                    .state
                    .store
                    .expire_deliveries(&self.tenant, &bucket.id, &self.group, from)
                    .await;
                match expired {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(bucket = %bucket.id, group = %self.group, expired = n,
                        "deliveries older than the catch-up window expired"),
                    Err(err) => tracing::warn!(%err, "could not expire old deliveries"),
                }
            }
        }
        self.agents.push(Agent {
            slot,
            in_flight: HashMap::new(),
        });
    }

    fn remove_agent(&mut self, number: u64) -> Option<Agent> {
        let at = self.agents.iter().position(|a| a.slot.number == number)?;
        self.members.fetch_sub(1, Ordering::SeqCst);
        Some(self.agents.swap_remove(at))
    }

    fn next_timer(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let lease = self
            .agents
            .iter()
            .flat_map(|a| a.in_flight.values().map(|f| f.deadline))
            .min()
            .unwrap_or(far);
        let retry = self.wake_at.map_or(far, |at| {
            let wait = at.saturating_sub(store::clock::now_ms()).max(0);
            Instant::now() + Duration::from_millis(wait.unsigned_abs())
        });
        lease.min(retry)
    }

    /// Cuts off every agent holding a delivery past its deadline: dropping
    /// its sender ends its session, and its deliveries go to the others.
    fn on_timer(&mut self) {
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
                let attempt = Attempt {
                    at,
                    status: None,
                    latency_ms: 0,
                    error: Some("the agent did not acknowledge within the timeout".into()),
                };
                let next = retry::settle_after(forward::Verdict::Retry, f.tries + 1, &f.retry, at);
                self.settle(f, Some(attempt), next);
            }
        }
    }

    fn on_ack(&mut self, number: u64, ack: pb::Ack) {
        let Some(agent) = self.agents.iter_mut().find(|a| a.slot.number == number) else {
            return;
        };
        // Unknown ids are acks of deliveries already taken back: ignored.
        let Some(f) = agent.in_flight.remove(&ack.delivery_id) else {
            return;
        };
        agent.publish_count();
        // The agent forwards an output's deliveries one after another, so
        // the clock of those still queued starts when it makes progress:
        // an agent is cut off for silence, not for a backlog.
        let now_instant = Instant::now();
        for waiting in agent.in_flight.values_mut() {
            waiting.deadline = waiting.deadline.max(now_instant + waiting.patience);
        }
        let now = store::clock::now_ms();
        let status = u16::try_from(ack.destination_status)
            .ok()
            .filter(|s| *s != 0);
        let mut error = ack.error;
        if error.len() > MAX_ERROR_LEN {
            let cut = (0..=MAX_ERROR_LEN)
                .rev()
                .find(|i| error.is_char_boundary(*i))
                .unwrap_or(0);
            error.truncate(cut);
        }
        let attempt = Attempt {
            at: now,
            status,
            latency_ms: ack.latency_ms,
            error: (!error.is_empty()).then_some(error),
        };
        if f.want_response {
            if let Some(response) = ack.response {
                crate::cluster::answer(&self.state, f.key.event, Answer::from_pb(response));
            }
        }
        let verdict = retry::verdict_of_ack(status, attempt.error.as_deref());
        let next = retry::settle_after(verdict, f.tries + 1, &f.retry, now);
        self.settle(f, Some(attempt), next);
    }

    /// Writes a settlement; the delivery stays held until it is written.
    fn settle(&mut self, f: InFlight, attempt: Option<Attempt>, next: Settle) {
        self.state.metrics.delivery_settled(next);
        let store = Arc::clone(&self.state.store);
        let mut marked = f.marked;
        let key = f.key;
        self.settling.spawn(async move {
            // A closed channel means the mark task ended: written or failed.
            let _ = marked.wait_for(|m| *m).await;
            retry::settle_with_retries(store.as_ref(), &key, attempt, next).await;
            key
        });
    }

    fn settle_unsent(&mut self, key: DeliveryKey, attempt: Option<Attempt>, next: Settle) {
        let (tx, rx) = watch::channel(true);
        drop(tx);
        let f = InFlight {
            key,
            deadline: Instant::now(),
            patience: Duration::ZERO,
            tries: 0,
            retry: RetryPolicy::default(),
            want_response: false,
            marked: rx,
        };
        self.held.insert(f.key.clone());
        self.settle(f, attempt, next);
    }

    fn release_everything(&mut self) {
        let agents = std::mem::take(&mut self.agents);
        for agent in agents {
            for (_, f) in agent.in_flight {
                self.settle(f, None, Settle::Released);
            }
        }
    }

    async fn dispatch(&mut self) {
        let now = store::clock::now_ms();
        self.wake_at = None;
        let (mark_tx, mark_rx) = watch::channel(false);
        let mut marks = Vec::new();
        let buckets: Vec<Bucket> = self.buckets.values().cloned().collect();
        for bucket in buckets {
            let free: usize = self
                .agents
                .iter()
                .filter(|a| a.serves(&bucket.id))
                .map(Agent::free)
                .sum();
            if free == 0 {
                continue;
            }
            let limit = super::due_limit(self.state.store.as_ref(), free, self.held.len());
            let batch = self
                .state
                .store
                .due_deliveries(&self.tenant, &bucket.id, Some(&self.group), now, limit)
                .await;
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(%err, "could not read due deliveries");
                    let later = now + STORE_RETRY.as_millis() as i64;
                    self.wake_by(later);
                    continue;
                }
            };
            if let Some(at) = batch.next_at {
                self.wake_by(at);
            }
            let mut due = batch.due.into_iter();
            for one in due.by_ref() {
                if self.held.contains(&one.key) {
                    continue;
                }
                match self.send(&bucket, one, &mark_rx).await {
                    Sent::Yes(key) => marks.push(key),
                    Sent::NoRoom(key) => {
                        self.release_claim(key);
                        break;
                    }
                    Sent::Skipped => {}
                }
            }
            for unsent in due {
                self.release_claim(unsent.key);
            }
        }
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

    async fn send(
        &mut self,
        bucket: &Bucket,
        due: DueDelivery,
        marked: &watch::Receiver<bool>,
    ) -> Sent {
        let Some(at) = self
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| a.serves(&bucket.id) && a.free() > 0)
            .max_by_key(|(_, a)| a.free())
            .map(|(i, _)| i)
        else {
            return Sent::NoRoom(due.key);
        };
        if matches!(due.event.body, EventBody::Undecryptable { .. }) {
            let attempt = super::public::undecryptable(store::clock::now_ms());
            self.settle_unsent(due.key, Some(attempt), Settle::Failed);
            return Sent::Skipped;
        }
        let Some(payload) = self.payload(bucket, &due) else {
            let now = store::clock::now_ms();
            let age = now - due.event.received_at;
            let shared = self.state.store.shared_dispatch();
            if age < super::EPHEMERAL_HANDOVER_MS {
                // Ingest hands the payload over just after the commit that
                // woke us: look again in a moment.
                if shared {
                    self.settle_unsent(due.key, None, Settle::RetryAt(now + 20));
                } else {
                    self.wake_by(now + 20);
                }
                return Sent::Skipped;
            }
            if shared && age < super::EPHEMERAL_HOLD_MS {
                // Another node accepted it and holds its payload: leave it
                // to that node's agents of the group while it is held.
                self.settle_unsent(due.key, None, Settle::RetryAt(now + 1_000));
                return Sent::Skipped;
            }
            // An ephemeral event whose payload is no longer in memory.
            self.settle_unsent(due.key, None, Settle::Expired);
            return Sent::Skipped;
        };
        // Only a first attempt can still have its caller waiting.
        let want_response = due.tries == 0 && self.wants_response(&due).await;
        self.next_dispatch += 1;
        let delivery_id = format!("d{}", self.next_dispatch);
        let message = message::deliver(&delivery_id, &due, payload, want_response);
        let agent = &mut self.agents[at];
        if agent.slot.tx.try_send(message).is_err() {
            return Sent::NoRoom(due.key);
        }
        let patience = Duration::from_millis(due.output.timeout_ms) + ACK_GRACE;
        agent.in_flight.insert(
            delivery_id,
            InFlight {
                key: due.key.clone(),
                deadline: Instant::now() + patience,
                patience,
                tries: due.tries,
                retry: due.output.retry,
                want_response,
                marked: marked.clone(),
            },
        );
        agent.publish_count();
        self.held.insert(due.key.clone());
        Sent::Yes(due.key)
    }

    /// The event's headers, query and body: from the store, or for an
    /// ephemeral event from memory while it is still held there.
    fn payload(&self, bucket: &Bucket, due: &DueDelivery) -> Option<message::Payload> {
        match &due.event.body {
            EventBody::Stored(body) if !bucket.ephemeral => Some(message::Payload {
                headers: due.event.headers.clone().unwrap_or_default(),
                query: due.event.query.clone().unwrap_or_default(),
                body: body.clone(),
            }),
            _ => self
                .state
                .hub
                .ephemeral
                .get(&due.event.id)
                .map(|p| message::Payload {
                    headers: p.headers.clone(),
                    query: p.query.clone(),
                    body: p.body.to_vec(),
                }),
        }
    }

    /// Looks at the store again at `at` (ms) at the latest.
    fn wake_by(&mut self, at: i64) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    /// Hands back a delivery a shared store claimed for this node and that
    /// was not sent; the embedded store claims nothing.
    fn release_claim(&mut self, key: DeliveryKey) {
        if self.state.store.shared_dispatch() && !self.held.contains(&key) {
            self.settle_unsent(key, None, Settle::Released);
        }
    }

    async fn wants_response(&self, due: &DueDelivery) -> bool {
        let route = self
            .state
            .catalog
            .by_id(self.state.store.as_ref(), &due.event.input)
            .await;
        matches!(route, Ok(Some(r)) if matches!(r.input.response, ResponsePolicy::Wait { .. }))
    }
}

enum Sent {
    Yes(DeliveryKey),
    /// No agent could take it; handed back for a claim's release.
    NoRoom(DeliveryKey),
    /// Settled without sending, or left for later.
    Skipped,
}
