//! The delivery queue: [`DeliveryQueue`], what is due to whom, and the
//! names of its entries ([`DeliveryKey`]) and moves ([`Settle`]).

use async_trait::async_trait;
use model::{Attempt, BucketId, Event, EventId, Output, OutputId, TenantId};

use crate::Result;

/// Names one delivery: an event's state for one output and, for an
/// internal output, one agent group (`None`: the server delivers it itself,
/// or no agent group has subscribed to the bucket yet).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub tenant: TenantId,
    pub event: EventId,
    pub output: OutputId,
    pub group: Option<String>,
}

/// A delivery that is due now, with what sending it takes.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub key: DeliveryKey,
    /// With its payload, except for ephemeral events (`EventBody::Omitted`):
    /// those are delivered from memory or not at all.
    pub event: Event,
    pub output: Output,
    /// Tries already made in this round (a resend starts a new round).
    pub tries: u32,
}

/// What [`DeliveryQueue::due_deliveries`] found.
#[derive(Debug, Clone, Default)]
pub struct DueBatch {
    /// Oldest event first.
    pub due: Vec<DueDelivery>,
    /// When the earliest pending delivery not yet due becomes due (a retry
    /// waiting out its backoff), so the caller knows when to look again.
    pub next_at: Option<i64>,
}

/// What [`DeliveryQueue::due_lanes`] reads of one output's lane.
#[derive(Debug, Clone)]
pub struct LaneRead {
    pub output: OutputId,
    /// Fresh rows (never tried in this round, never released) are read
    /// after this event only: the reader's cursor.
    pub after: Option<EventId>,
    /// Whether to read rows due again as well (false while the reader
    /// still holds some it read before, which would come back first).
    pub again: bool,
    pub limit: usize,
}

/// One lane's read.
#[derive(Debug, Clone, Default)]
pub struct LaneBatch {
    /// Rows due again (released, or a retry whose backoff ended), earliest
    /// due first, then fresh rows in event order.
    pub due: Vec<DueDelivery>,
    /// How many of `due` (its first ones) were due again.
    pub again: usize,
    /// The last fresh row read (even one skipped because its output or
    /// event is gone): where the next read starts.
    pub cursor: Option<EventId>,
    /// Fewer rows than asked for: nothing more is due in the lane now.
    pub exhausted: bool,
    /// When the lane's earliest row in retry backoff becomes due.
    pub next_at: Option<i64>,
}

/// Where a delivery goes after an attempt (or instead of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Delivered,
    /// Given up: a non-retryable answer or the last allowed try.
    Failed,
    /// Pending again, due at this time (ms).
    RetryAt(i64),
    /// Pending again at once, without counting a try: its agent went away.
    Released,
    /// Not delivered and no longer pending: older than the catch-up window
    /// when its group came back, or an ephemeral payload no longer held.
    Expired,
    /// Not delivered and no longer pending: the output's function stopped
    /// it (DESIGN §9).
    Skipped,
}

/// One settlement of a [`DeliveryQueue::settle_batch`].
#[derive(Debug, Clone)]
pub struct Settlement {
    pub key: DeliveryKey,
    pub attempt: Option<Attempt>,
    pub next: Settle,
}

/// The deliveries of each event, one per output (and agent group), from
/// `pending` to a final state. [`crate::EventLog::append`] makes them.
///
/// Guarantees:
/// - **Durability**: bookkeeping ([`DeliveryQueue::mark_in_flight`],
///   [`DeliveryQueue::settle`]) is committed before it returns but may wait
///   for the next durable commit to reach the disk: a machine crash (never
///   a process crash) can forget the latest settlements, and those
///   deliveries are made again.
/// - **Several nodes** ([`crate::ClusterBus::shared_dispatch`] true): the
///   due queries hand each delivery to one node at a time (a claim that
///   lasts until it is settled or released, or until the claiming node
///   stops renewing its liveness, when another node takes it back).
#[async_trait]
pub trait DeliveryQueue: Send + Sync + 'static {
    /// Records that agent `group` subscribes to the bucket and counts as
    /// live until `live_until_ms` at least (a later call may move that
    /// later, never earlier). The first time a group does so (or the first
    /// time after [`DeliveryQueue::abandon_groups`] ended its
    /// registration), it gets a pending delivery per internal output for
    /// every event received at or after `catchup_from_ms` that has none
    /// for it (the first group of a bucket takes over the deliveries that
    /// were waiting for any group instead). Later events get a delivery per
    /// registered group.
    async fn register_group(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        catchup_from_ms: i64,
        live_until_ms: i64,
    ) -> Result<()>;
    /// Ends the registration of every agent group, in every tenant, whose
    /// live-until time is before `now_ms` (DESIGN §13, abandoned groups):
    /// later events get no delivery for it, and its pending deliveries
    /// (retries in backoff too) become `expired` (visible, resendable by
    /// hand). Deliveries in flight are left to their settlement. Returns
    /// how many groups it abandoned.
    async fn abandon_groups(&self, now_ms: i64) -> Result<usize>;
    /// Marks `expired` the group's pending deliveries of the bucket that
    /// have been pending since before `before_ms`, except those waiting out
    /// a retry's backoff; returns how many.
    async fn expire_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        before_ms: i64,
    ) -> Result<usize>;
    /// Up to `limit` pending deliveries of the bucket for the group (`None`:
    /// none is an agent's) that are due at `now_ms`, oldest event first.
    /// When [`crate::ClusterBus::shared_dispatch`] is true they are claimed
    /// for this node, which must settle (or release) every one it is given;
    /// until it marks them in flight, this node's later calls return them
    /// again (and a claim never marked goes back to the queue after a
    /// lease).
    async fn due_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: Option<&str>,
        now_ms: i64,
        limit: usize,
    ) -> Result<DueBatch>;
    /// Reads agent group `group`'s due deliveries of the bucket per output
    /// (a lane each), without claiming them: rows due again first, then
    /// fresh ones after each lane's cursor. A read costs what it returns,
    /// whatever the backlog. Only stores whose dispatch is not shared read
    /// lanes (a reader's cursor cannot see another node's claims); the
    /// others answer `Unavailable` and are read with
    /// [`DeliveryQueue::due_deliveries`].
    async fn due_lanes(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        now_ms: i64,
        lanes: &[LaneRead],
    ) -> Result<Vec<LaneBatch>> {
        let _ = (tenant, bucket, group, now_ms, lanes);
        Err(crate::Error::Unavailable(
            "this store's dispatch is shared: it claims, it has no lanes".into(),
        ))
    }
    /// Up to `limit` due deliveries to public outputs (the server's own),
    /// across tenants: the server's delivery worker is tenant-blind. Claimed
    /// like [`DeliveryQueue::due_deliveries`] when dispatch is shared.
    async fn due_public_deliveries(&self, now_ms: i64, limit: usize) -> Result<DueBatch>;
    /// Marks pending deliveries `in_flight`. The embedded backend resets
    /// every `in_flight` delivery to `pending` when it opens: whoever held
    /// them is gone. A shared backend turns this node's claims into
    /// in-flight marks, and gives a node's marks back when its liveness
    /// lapses.
    async fn mark_in_flight(&self, keys: &[DeliveryKey]) -> Result<()>;
    /// Records an attempt (if one was made) and moves the delivery on.
    /// [`Settle::Released`] applies only to a delivery still in flight, so
    /// a late release can never undo another settlement or a resend.
    async fn settle(&self, key: &DeliveryKey, attempt: Option<Attempt>, next: Settle)
        -> Result<()>;
    /// Settles each delivery exactly as [`DeliveryQueue::settle`] would, in
    /// one write (one transaction; on a shared store one script call per
    /// tenant), so that the cost of bookkeeping is per batch of acks, not
    /// per ack. A delivery that is not found is skipped. On an error some
    /// may be written and some not: the caller tries the whole batch again.
    async fn settle_batch(&self, batch: &[Settlement]) -> Result<()> {
        for s in batch {
            match self.settle(&s.key, s.attempt.clone(), s.next).await {
                Ok(()) | Err(crate::Error::NotFound) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}
