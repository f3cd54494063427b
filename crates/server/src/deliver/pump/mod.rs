//! One task per agent group connected to this node: it asks the store what
//! is due for the group's buckets, hands each delivery to one agent of the
//! group within the rules (`rules`: what a delivery becomes; `gate`: how
//! many may be under way), and settles the acks.
//!
//! Nothing is dispatched twice: a delivery is `held` from the moment it is
//! sent until its settlement is written, and the store's queue only holds
//! `pending` rows. An agent that does not ack within the output's timeout
//! (plus [`ACK_GRACE`]) is cut off and what it held goes to the others.
//!
//! # Layout
//! - `mod.rs`: the pump's state, its loop, agents joining and leaving.
//! - `dispatch`: reading what is due and sending it (claims, on a shared
//!   store).
//! - `lanes`: the embedded store's reads, one cursor per output, each row
//!   read once.
//! - `acks`: acks, settlements, and the cut-off of silent agents.

mod acks;
mod dispatch;
mod lanes;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use model::{Bucket, BucketId, TenantId};
use proto::pb;
use store::{DeliveryKey, Settle, Settlement};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::gate::Gate;
use super::Slot;
use crate::state::AppState;
use acks::Agent;

/// Time an agent gets beyond the output's own timeout to ack.
pub(crate) const ACK_GRACE: Duration = Duration::from_secs(2);

/// How often a pump with agents tells the store its group is still live
/// (DESIGN §13: a group no agent has joined for longer than its bucket's
/// `catchup` is abandoned). Each renewal keeps the group live for the
/// catch-up window plus one period, so a group is abandoned between
/// `catchup` and `catchup` + this after its last agent left.
pub(crate) const GROUP_RENEWAL: Duration = Duration::from_secs(60);

/// Commands handled in one turn of the loop before it dispatches and
/// writes settlements: acks that arrived together are settled in one
/// store write.
const COMMAND_BATCH: usize = 256;

/// Commands queued per group before joins, leaves and acks wait.
const COMMAND_QUEUE: usize = 1024;

/// Large payloads are boxed: the command channel's first block holds 32
/// commands, allocated per agent group (4 KiB of it per idle group
/// unboxed, massif).
pub(crate) enum GroupCmd {
    Join(Box<Slot>),
    Leave(u64),
    Ack {
        agent: u64,
        ack: Box<pb::Ack>,
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
            buckets: HashSet::new(),
            held: HashSet::new(),
            gate: Gate::default(),
            lanes: lanes::Lanes::default(),
            waiting_since: None,
            next_dispatch: 0,
            settling: JoinSet::new(),
            to_settle: Vec::new(),
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

struct Pump {
    state: AppState,
    tenant: TenantId,
    group: String,
    members: Arc<AtomicUsize>,
    agents: Vec<Agent>,
    /// Buckets the group is registered for on this node (ids only: a
    /// bucket's settings are read where they apply, never from a copy).
    buckets: HashSet<BucketId>,
    /// Sent and not yet settled in the store.
    held: HashSet<DeliveryKey>,
    /// Deliveries under way per output, across the group's agents here.
    gate: Gate,
    /// What the embedded store's lanes read and did not send yet.
    lanes: lanes::Lanes,
    /// The oldest event read and left unsent in the last look (claims).
    waiting_since: Option<i64>,
    next_dispatch: u64,
    /// Settlement writes under way, each a batch.
    settling: JoinSet<Vec<DeliveryKey>>,
    /// Settlements not yet handed to a write, with their mark's signal.
    to_settle: Vec<(watch::Receiver<bool>, Settlement)>,
    /// When a retry waiting out its backoff becomes due (store time, ms).
    wake_at: Option<i64>,
    dirty: bool,
}

impl Pump {
    async fn run(mut self, mut rx: mpsc::Receiver<GroupCmd>, cancel: CancellationToken) {
        let mut commits = self.state.store.commits();
        let mut renewal = tokio::time::interval_at(Instant::now() + GROUP_RENEWAL, GROUP_RENEWAL);
        renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.dirty {
                self.dirty = false;
                self.dispatch().await;
            }
            let timer = self.next_timer();
            tokio::select! {
                () = cancel.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        self.handle(cmd).await;
                        for _ in 1..COMMAND_BATCH {
                            let Ok(cmd) = rx.try_recv() else { break };
                            self.handle(cmd).await;
                        }
                    }
                    None => break,
                },
                changed = commits.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.lanes.touch_all();
                    self.dirty = true;
                }
                Some(done) = self.settling.join_next(), if !self.settling.is_empty() => {
                    for key in done.unwrap_or_default() {
                        self.lanes.touch(&key.output);
                        self.held.remove(&key);
                    }
                    self.dirty = true;
                }
                _ = renewal.tick() => self.renew().await,
                () = tokio::time::sleep_until(timer) => {
                    self.lanes.touch_all();
                    self.on_timer();
                }
            }
            self.flush_settlements();
            // Only once every settlement is written, so a successor pump
            // never sees a delivery this one still holds.
            if self.agents.is_empty()
                && self.settling.is_empty()
                && self.members.load(Ordering::SeqCst) == 0
                && self.state.hub.retire(&self.tenant, &self.group)
            {
                self.state
                    .metrics
                    .backlog_oldest(&self.tenant, &self.group, None);
                return;
            }
        }
        // Stopped without retiring (shutdown, or the store closed): take the
        // handle out of the registry so no agent joins a dead pump.
        self.state
            .hub
            .forget_pump(&self.tenant, &self.group, &self.members);
        self.release_everything();
        self.flush_settlements();
        self.state
            .metrics
            .backlog_oldest(&self.tenant, &self.group, None);
        while self.settling.join_next().await.is_some() {}
    }

    async fn handle(&mut self, cmd: GroupCmd) {
        match cmd {
            GroupCmd::Join(slot) => self.join(*slot).await,
            GroupCmd::Leave(number) => {
                if let Some(agent) = self.remove_agent(number) {
                    for (_, f) in agent.in_flight {
                        self.settle(f, None, Settle::Released);
                    }
                }
                if self.agents.is_empty() {
                    // What the lanes read may expire before the next agent.
                    self.lanes.clear();
                }
            }
            GroupCmd::Ack { agent, ack } => self.on_ack(agent, *ack),
            GroupCmd::Wake => self.lanes.touch_all(),
        }
        self.dirty = true;
    }

    /// Registers the agent's buckets for the group. The first agent of the
    /// group on this node also starts its catch-up: deliveries pending for
    /// longer than a bucket's `catchup` expire (DESIGN §5).
    async fn join(&mut self, slot: Slot) {
        let now = store::clock::now_ms();
        let reconnect = self.agents.is_empty();
        if reconnect {
            self.lanes.clear();
        }
        for bucket in &slot.buckets {
            let from = now.saturating_sub(catchup_ms(bucket));
            let new = !self.buckets.contains(&bucket.id);
            if new {
                let registered = self
                    .state
                    .store
                    .register_group(
                        &self.tenant,
                        &bucket.id,
                        &self.group,
                        from,
                        live_until(bucket, now),
                    )
                    .await;
                if let Err(err) = registered {
                    tracing::warn!(%err, bucket = %bucket.id, "could not register an agent group");
                    let refusal = proto::server_message::Kind::Error(pb::Error {
                        code: "unavailable".into(),
                        message: "the relay cannot subscribe this agent now; retry".into(),
                    });
                    let _ = slot.tx.try_send(Box::new(refusal.into()));
                    // Dropping the slot ends the session.
                    self.members.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                self.buckets.insert(bucket.id.clone());
            }
            if new || reconnect {
                self.expire_older_than(&bucket.id, from).await;
            }
        }
        self.agents.push(Agent::new(slot));
    }

    /// Keeps the group live in the store while it has agents here, so
    /// that it is never taken for abandoned (and, were it abandoned while
    /// the store could not be reached, registers it again).
    async fn renew(&self) {
        if self.agents.is_empty() {
            return;
        }
        let now = store::clock::now_ms();
        for id in &self.buckets {
            let bucket = match self.state.store.bucket(&self.tenant, id).await {
                Ok(bucket) => bucket,
                Err(store::Error::NotFound) => continue,
                Err(err) => {
                    tracing::warn!(%err, bucket = %id, "could not renew an agent group");
                    continue;
                }
            };
            let from = now.saturating_sub(catchup_ms(&bucket));
            let renewed = self
                .state
                .store
                .register_group(
                    &self.tenant,
                    id,
                    &self.group,
                    from,
                    live_until(&bucket, now),
                )
                .await;
            if let Err(err) = renewed {
                tracing::warn!(%err, bucket = %id, "could not renew an agent group");
            }
        }
    }

    async fn expire_older_than(&self, bucket: &BucketId, from: i64) {
        let expired = self
            .state
            .store
            .expire_deliveries(&self.tenant, bucket, &self.group, from)
            .await;
        match expired {
            Ok(0) => {}
            Ok(n) => tracing::info!(%bucket, group = %self.group, expired = n,
                "deliveries older than the catch-up window expired"),
            Err(err) => tracing::warn!(%err, "could not expire old deliveries"),
        }
    }

    fn remove_agent(&mut self, number: u64) -> Option<Agent> {
        let at = self.agents.iter().position(|a| a.slot.number == number)?;
        self.members.fetch_sub(1, Ordering::SeqCst);
        Some(self.agents.swap_remove(at))
    }

    fn release_everything(&mut self) {
        let agents = std::mem::take(&mut self.agents);
        for agent in agents {
            for (_, f) in agent.in_flight {
                self.settle(f, None, Settle::Released);
            }
        }
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

    /// Looks at the store again at `at` (ms) at the latest.
    fn wake_by(&mut self, at: i64) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

/// Until when a renewal at `now` keeps the group live: its bucket's
/// catch-up window after the next renewal is due.
fn live_until(bucket: &Bucket, now: i64) -> i64 {
    let period = i64::try_from(GROUP_RENEWAL.as_millis()).unwrap_or(i64::MAX);
    now.saturating_add(period)
        .saturating_add(catchup_ms(bucket))
}

/// A bucket's catch-up window in ms.
fn catchup_ms(bucket: &Bucket) -> i64 {
    i64::try_from(bucket.catchup_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}
