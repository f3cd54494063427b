//! The storage seam of hookrelay: the [`Store`] trait, which every backend
//! satisfies, its embedded SQLite implementation ([`sqlite`]) and its shared
//! Redis implementation (`redis`, feature `redis`).
//!
//! Depends on `model`, and on `crypto` for encryption at rest: every
//! backend seals payloads and input secrets the same way (`sealed`), so a
//! backend only ever holds ciphertext. The server holds an `Arc<dyn Store>` and never
//! sees SQL. Start with [`Store`]: its documentation lists the guarantees a
//! backend must keep; `conformance` (feature `test-suite`) checks them.
//! [`clock`] is the one source of time for the stores and the server, which
//! tests pause and move forward.

#[cfg(feature = "test-suite")]
pub mod conformance;
// The embedded store's writer alone uses the batch half of the dedup set.
pub mod clock;
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
mod dedup;
mod limiter;
#[cfg(feature = "redis")]
pub mod redis;
// Re-encryption (`hookrelay keys`) is the embedded store's alone so far.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
mod sealed;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use async_trait::async_trait;
use model::{
    Attempt, Bucket, BucketId, Delivery, Event, EventId, Input, InputId, NewEvent, Output,
    OutputId, RateLimit, Tenant, TenantId, Token, TokenKey,
};

pub use dedup::DedupSet;
pub use limiter::SlidingWindow;

/// What went wrong in a store operation, in domain terms the server maps to
/// status codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist in this tenant.
    #[error("not found")]
    NotFound,
    /// A unique name or id is taken; the string names the field.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The event's provider delivery id was already accepted in its window.
    #[error("duplicate delivery id")]
    Duplicate,
    /// The backend cannot be reached or failed to write; nothing was stored.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back (corruption, bad schema).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Short for store results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a read of events starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// From the oldest retained event.
    Start,
    /// Strictly after this event id (cursor pagination, SSE resume).
    After(EventId),
    /// Received at or after this time in ms (Radarboard `since`).
    Since(i64),
}

/// A read of a tenant's events, oldest first.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub from: Cursor,
    /// Only these buckets; empty means every bucket of the tenant.
    pub buckets: Vec<BucketId>,
    pub limit: usize,
}

/// What [`Store::append`] assigned to an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub id: EventId,
    pub received_at: i64,
}

/// Rate-limit verdict of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Refused; the caller may retry after this many seconds (at least 1).
    Limited {
        retry_after_secs: u64,
    },
}

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

/// What [`Store::due_deliveries`] found.
#[derive(Debug, Clone, Default)]
pub struct DueBatch {
    /// Oldest event first.
    pub due: Vec<DueDelivery>,
    /// When the earliest pending delivery not yet due becomes due (a retry
    /// waiting out its backoff), so the caller knows when to look again.
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
}

/// What one node tells the others that share its store (a cluster); the
/// embedded store has one node and carries none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A destination's answer to the event's first delivery, for a `wait`
    /// caller held by whichever node accepted the event. The bytes are the
    /// server's own encoding; the store only carries them.
    Answer { event: EventId, answer: Vec<u8> },
    /// An admin write changed inputs, buckets, tenants or tokens: drop
    /// cached configuration now rather than at its expiry.
    ConfigChanged,
}

/// A tenant with its poll secret's hash (Radarboard provisioning).
#[derive(Debug, Clone)]
pub struct TenantRecord {
    pub tenant: Tenant,
    /// bcrypt hash of the tenant's poll secret, if it has one.
    pub poll_secret_hash: Option<String>,
}

/// The storage seam.
///
/// Guarantees every implementation keeps:
/// - **Tenant isolation**: every read or write of a tenant's objects takes the
///   `TenantId` first and never returns another tenant's data, even for a
///   known id. The only lookups without a tenant are [`Store::input_by_id`]
///   (ingest knows only the unguessable input id) and [`Store::token_by_key`]
///   (a bearer token names its key before its tenant is known).
/// - **Durability**: when [`Store::append`] returns `Ok`, the event, its
///   delivery rows and its dedup entry are committed and on disk (fsync), or
///   in the shared store. Concurrent appends share one commit (group commit).
///   Delivery bookkeeping ([`Store::mark_in_flight`], [`Store::settle`]) is
///   committed before it returns but may wait for the next durable commit
///   to reach the disk: a machine crash (never a process crash) can forget
///   the latest settlements, and those deliveries are made again.
/// - **Dedup**: a `delivery_id` recorded by `append` makes a later `append`
///   with the same (tenant, input, delivery id) inside its window fail with
///   [`Error::Duplicate`], atomically; [`Store::delivery_seen`] is the cheap
///   early check, and sees an id only once its event is committed. The
///   entry survives a restart; windows are honoured up to one hour (longer
///   ones are cut to an hour). A backend may keep the entry with its event
///   (the embedded store rebuilds its set from the events at open): then a
///   bucket retention shorter than the dedup window means a restart forgets
///   the delivery ids of events already purged, before their window ends.
/// - **Order**: event ids are minted at commit, strictly increasing; reads
///   return events in id order, which is `receivedAt` order.
/// - **Visibility**: every event whose `receivedAt` is below
///   [`Store::visible_before`] (read before the query) is returned by a query
///   that starts after it.
/// - **Encryption at rest**: an event's query, headers and body and an
///   input's secrets reach the backend only sealed (`sealed`: AES-256-GCM,
///   bound to the record's id, key id beside). An ephemeral bucket's event
///   has no payload at all, whatever the caller passed. A payload that does
///   not open (altered, or under a key the keyring lacks) is returned as
///   [`model::EventBody::Undecryptable`] on that event alone; secrets that
///   do not open fail the read with [`Error::Corrupt`].
/// - Each method is one transaction.
/// - **Several nodes** (a shared backend, [`Store::shared_dispatch`] true):
///   every node sees every other node's commits through [`Store::commits`],
///   and the due queries hand each delivery to one node at a time (a claim
///   that lasts until it is settled or released, or until the claiming
///   node stops renewing its liveness, when another node takes it back).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- tenants ----
    /// Creates a tenant. [`Error::Conflict`] if the id is taken.
    async fn create_tenant(&self, record: &TenantRecord) -> Result<()>;
    async fn tenant(&self, id: &TenantId) -> Result<TenantRecord>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;
    /// Replaces the tenant's label and kill switch.
    async fn update_tenant(&self, tenant: &Tenant) -> Result<()>;
    /// Sets (or clears) the tenant's poll secret hash.
    async fn set_poll_secret(&self, id: &TenantId, hash: Option<&str>) -> Result<()>;
    /// Deletes the tenant and every byte it owns: buckets, inputs, outputs,
    /// tokens, events, deliveries, dedup entries.
    async fn delete_tenant(&self, id: &TenantId) -> Result<()>;

    // ---- buckets ----
    /// [`Error::Conflict`] if the name is taken in the tenant,
    /// [`Error::NotFound`] if the tenant does not exist.
    async fn create_bucket(&self, bucket: &Bucket) -> Result<()>;
    async fn bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<Bucket>;
    async fn bucket_by_name(&self, tenant: &TenantId, name: &str) -> Result<Bucket>;
    async fn list_buckets(&self, tenant: &TenantId) -> Result<Vec<Bucket>>;
    async fn update_bucket(&self, bucket: &Bucket) -> Result<()>;
    /// Deletes the bucket with its inputs, outputs, events and deliveries.
    async fn delete_bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<()>;

    // ---- inputs ----
    /// [`Error::Conflict`] if the name is taken in the tenant,
    /// [`Error::NotFound`] if its bucket is not in its tenant.
    async fn create_input(&self, input: &Input) -> Result<()>;
    async fn input(&self, tenant: &TenantId, id: &InputId) -> Result<Input>;
    /// Ingest routing: the input with this id in whatever tenant owns it.
    async fn input_by_id(&self, id: &InputId) -> Result<Input>;
    async fn input_by_name(&self, tenant: &TenantId, name: &str) -> Result<Input>;
    async fn list_inputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Input>>;
    async fn update_input(&self, input: &Input) -> Result<()>;
    async fn delete_input(&self, tenant: &TenantId, id: &InputId) -> Result<()>;

    // ---- outputs ----
    /// [`Error::NotFound`] if its bucket is not in its tenant.
    async fn create_output(&self, output: &Output) -> Result<()>;
    async fn output(&self, tenant: &TenantId, id: &OutputId) -> Result<Output>;
    async fn list_outputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Output>>;
    async fn update_output(&self, output: &Output) -> Result<()>;
    async fn delete_output(&self, tenant: &TenantId, id: &OutputId) -> Result<()>;

    // ---- tokens ----
    /// [`Error::Conflict`] if the key is taken, [`Error::NotFound`] if the
    /// tenant does not exist.
    async fn create_token(&self, token: &Token) -> Result<()>;
    /// Authentication: the token with this key in whatever tenant owns it.
    async fn token_by_key(&self, key: &TokenKey) -> Result<Token>;
    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<Token>>;
    /// Replaces the description and bucket list only: scope and mode are
    /// fixed at creation, and the secret hash is never taken from an update.
    async fn update_token(&self, token: &Token) -> Result<()>;
    /// Replaces the token's secret hash (a lost secret is replaced, never
    /// recovered). [`Error::NotFound`] outside its tenant.
    async fn rotate_token_secret(
        &self,
        tenant: &TenantId,
        key: &TokenKey,
        secret_hash: &str,
    ) -> Result<()>;
    async fn delete_token(&self, tenant: &TenantId, key: &TokenKey) -> Result<()>;
    /// True if any admin-scope token exists (first-start bootstrap).
    async fn has_admin_token(&self) -> Result<bool>;

    // ---- events ----
    /// Durably stores one accepted event with a `pending` delivery per output
    /// of its bucket and its dedup entry; see the trait's guarantees.
    /// [`Error::NotFound`] if the bucket is not in the event's tenant.
    async fn append(&self, event: NewEvent) -> Result<Appended>;
    /// Whether `delivery_id` was accepted for this input within its window.
    async fn delivery_seen(
        &self,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
    ) -> Result<bool>;
    async fn event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)>;
    async fn events(&self, tenant: &TenantId, query: &EventQuery) -> Result<Vec<Event>>;
    /// A time in ms such that every event received before it is visible to
    /// a query started after this call (the poll's `X-Relay-Timestamp`).
    fn visible_before(&self) -> i64;
    /// Ticks after every commit of new events and every resend (long-poll,
    /// SSE and pump wake-up), on a shared backend also those of other nodes.
    fn commits(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Sets the event's deliveries (all, or one output's) back to `pending`
    /// for a manual resend; returns how many were reset. A delivery in
    /// flight is left to finish.
    async fn reset_deliveries(
        &self,
        tenant: &TenantId,
        event: &EventId,
        output: Option<&OutputId>,
    ) -> Result<usize>;

    // ---- deliveries ----
    /// Records that agent `group` subscribes to the bucket. The first time
    /// a group does so, it gets a pending delivery per internal output for
    /// every event received at or after `catchup_from_ms` (the first group
    /// of a bucket takes over the deliveries that were waiting for any
    /// group). Later events get a delivery per registered group.
    async fn register_group(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        catchup_from_ms: i64,
    ) -> Result<()>;
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
    /// When [`Store::shared_dispatch`] is true they are claimed for this
    /// node, which must settle (or release) every one it is given; until it
    /// marks them in flight, this node's later calls return them again
    /// (and a claim never marked goes back to the queue after a lease).
    async fn due_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: Option<&str>,
        now_ms: i64,
        limit: usize,
    ) -> Result<DueBatch>;
    /// Up to `limit` due deliveries to public outputs (the server's own),
    /// across tenants: the server's delivery worker is tenant-blind. Claimed
    /// like [`Store::due_deliveries`] when dispatch is shared.
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

    // ---- nodes sharing the store ----
    /// True when several nodes may dispatch from this store: the due
    /// queries then claim what they return (see the trait's guarantees).
    /// The embedded store has one node, whose pumps keep their own record
    /// of what they hold.
    fn shared_dispatch(&self) -> bool {
        false
    }
    /// Sends `signal` to every other node sharing the store (best effort:
    /// a node that misses a signal falls back on timeouts and expiry).
    async fn broadcast(&self, _signal: Signal) -> Result<()> {
        Ok(())
    }
    /// Signals from other nodes; `None` when there are none to hear.
    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<Signal>> {
        None
    }
    /// Announces (or refreshes) an agent connected to this node, as the
    /// JSON `GET /v1/agents` shows, so every node can list it.
    async fn announce_agent(
        &self,
        _tenant: &TenantId,
        _agent_id: &str,
        _info: &serde_json::Value,
    ) -> Result<()> {
        Ok(())
    }
    /// Withdraws an agent announced by this node.
    async fn withdraw_agent(&self, _tenant: &TenantId, _agent_id: &str) -> Result<()> {
        Ok(())
    }
    /// The tenant's agents on every live node, as announced; `None` when
    /// the store knows only this node (the caller lists its own).
    async fn cluster_agents(&self, _tenant: &TenantId) -> Result<Option<Vec<serde_json::Value>>> {
        Ok(None)
    }

    // ---- limits and housekeeping ----
    /// Counts one request against `key`'s sliding window.
    async fn rate_limit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision>;
    /// Deletes up to `batch` events older than their bucket's retention and
    /// expired dedup entries; returns how many events went.
    async fn purge_expired(&self, now_ms: i64, batch: usize) -> Result<usize>;
    /// Writes queued and not yet committed (the `/metrics` queue depth).
    fn pending_writes(&self) -> usize;
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<()>;
    /// Finishes queued writes and closes; later calls fail `Unavailable`.
    async fn close(&self);
}
