//! The event log: [`EventLog`], what every accepted webhook becomes, and the
//! types of its reads ([`EventQuery`], [`Cursor`]) and appends
//! ([`Appended`]).

use async_trait::async_trait;
use model::{BucketId, Delivery, Event, EventId, InputId, NewEvent, OutputId, TenantId};

use crate::Result;

/// Where a read of events starts, and so its direction: the first three
/// read oldest first, the last two newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// From the oldest retained event.
    Start,
    /// Strictly after this event id (cursor pagination, SSE resume).
    After(EventId),
    /// Received at or after this time in ms (Radarboard `since`).
    Since(i64),
    /// From the newest event, newest first (the dashboard's first page).
    Newest,
    /// Strictly before this event id, newest first (its older pages).
    Before(EventId),
}

impl Cursor {
    /// Whether the read returns events newest first.
    pub fn newest_first(&self) -> bool {
        matches!(self, Cursor::Newest | Cursor::Before(_))
    }
}

/// A read of a tenant's events, in id order from its cursor: oldest first,
/// or newest first from [`Cursor::Newest`] and [`Cursor::Before`].
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub from: Cursor,
    /// Only these buckets; empty means every bucket of the tenant.
    pub buckets: Vec<BucketId>,
    pub limit: usize,
}

/// What [`EventLog::append`] assigned to an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub id: EventId,
    pub received_at: i64,
}

/// Accepted events, oldest first, with their dedup entries.
///
/// Guarantees:
/// - **Durability**: when [`EventLog::append`] returns `Ok`, the event, its
///   delivery rows and its dedup entry are committed and on disk (fsync),
///   or in the shared store. Concurrent appends share one commit (group
///   commit).
/// - **Dedup**: a `delivery_id` recorded by `append` makes a later `append`
///   with the same (tenant, input, delivery id) inside its window fail with
///   [`crate::Error::Duplicate`], atomically; [`EventLog::delivery_seen`] is
///   the cheap early check, and sees an id only once its event is
///   committed. The entry survives a restart; windows are honoured up to
///   one hour (longer ones are cut to an hour). A backend may keep the
///   entry with its event (the embedded store rebuilds its set from the
///   events at open): then a bucket retention shorter than the dedup window
///   means a restart forgets the delivery ids of events already purged,
///   before their window ends.
/// - **Order**: event ids are minted at commit, strictly increasing; reads
///   return events in id order, which is `receivedAt` order (descending
///   for a newest-first cursor). A newest-first read costs what an
///   oldest-first one does: `limit` events from an index, whatever the
///   log's length.
/// - **Visibility**: every event whose `receivedAt` is below
///   [`EventLog::visible_before`] (read before the query) is returned by a
///   query that starts after it.
/// - **Payloads sealed**: an event's query, headers and body reach the
///   backend only sealed. An ephemeral bucket's event has no payload at
///   all, whatever the caller passed. A payload that does not open
///   (altered, or under a key the keyring lacks) is returned as
///   [`model::EventBody::Undecryptable`] on that event alone.
/// - **Several nodes** (a shared backend): every node sees every other
///   node's commits through [`EventLog::commits`].
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Durably stores one accepted event with a `pending` delivery per output
    /// of its bucket and its dedup entry; see the trait's guarantees.
    /// [`crate::Error::NotFound`] if the bucket is not in the event's tenant.
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
    /// Deletes up to `batch` events older than their bucket's retention and
    /// expired dedup entries; returns how many events went.
    async fn purge_expired(&self, now_ms: i64, batch: usize) -> Result<usize>;
}
