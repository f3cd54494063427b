//! The storage seam of hookrelay: the traits every backend satisfies, its
//! embedded SQLite implementation ([`sqlite`]) and its shared Redis
//! implementation (`redis`, feature `redis`).
//!
//! Depends on `model`, and on `crypto` for encryption at rest: every
//! backend seals payloads and input secrets the same way (`sealed`), so a
//! backend only ever holds ciphertext. The server holds an
//! `Arc<dyn Store>` and never sees SQL; it imports [`prelude`] to call it.
//!
//! # The seams
//! [`Store`] is the whole store: nothing of its own, only the traits below,
//! each with the guarantees that apply to it written on it. Start with the
//! one that owns your change; `conformance` (feature `test-suite`) checks
//! them all against each backend.
//! - [`Tenants`]: tenants and their tokens (`objects`).
//! - [`Buckets`]: buckets and what hangs off them, inputs and outputs
//!   (`objects`).
//! - [`Channels`]: smee and gosmee channels of a bucket (`channels`).
//! - [`Functions`]: functions (DESIGN §9) (`functions`).
//! - [`EventLog`]: accepted events, dedup, reads, visibility, commit ticks,
//!   resends and retention (`event_log`).
//! - [`DeliveryQueue`]: what is due to whom: agent groups, due queries,
//!   in-flight marks, settling, expiry (`queue`).
//! - [`ClusterBus`]: what the nodes sharing a store tell each other
//!   (`bus`).
//! - [`Limiter`]: sliding-window rate limits (`limiter`).
//! - [`Lifecycle`]: reachability, queue depth, closing.
//!
//! Each backend implements each trait in the module that owns the concept
//! (`sqlite::tenants`, `redis::deliveries`, ...), not through a layer that
//! routes calls. [`clock`] is the one source of time for the stores and
//! the server, which tests pause and move forward.

pub mod bus;
mod channels;
pub mod clock;
#[cfg(feature = "test-suite")]
pub mod conformance;
// The embedded store's writer alone uses the batch half of the dedup set.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
mod dedup;
mod event_log;
mod functions;
mod limiter;
pub mod maintenance;
mod objects;
mod queue;
#[cfg(feature = "redis")]
pub mod redis;
mod sealed;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod tunnels;

use async_trait::async_trait;

pub use bus::{ClusterBus, Signal};
pub use channels::Channels;
pub use dedup::DedupSet;
pub use event_log::{Appended, Cursor, EventLog, EventQuery};
pub use functions::Functions;
pub use limiter::{Limiter, RateDecision, SlidingWindow};
pub use objects::{Buckets, TenantRecord, Tenants};
pub use queue::{
    DeliveryKey, DeliveryQueue, DueBatch, DueDelivery, LaneBatch, LaneRead, Settle, Settlement,
};
pub use tunnels::Tunnels;

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

/// The whole store, as the server holds it (`Arc<dyn Store>`): every seam
/// at once, implemented for any type that implements them all.
///
/// Guarantees every seam keeps (each trait adds its own):
/// - **Tenant isolation**: every read or write of a tenant's objects,
///   events or deliveries takes the `TenantId` first and never returns
///   another tenant's data, even for a known id. The only lookups without a
///   tenant are [`Buckets::input_by_id`] (ingest knows only the
///   unguessable input id), [`Tenants::token_by_key`] (a bearer token
///   names its key before its tenant is known) and the server's own queue,
///   [`DeliveryQueue::due_public_deliveries`].
/// - **Encryption at rest**: an event's query, headers and body, an
///   input's secrets and a bucket's auth reach the backend only sealed
///   (`sealed`: AES-256-GCM, bound to the record's id, key id beside).
/// - Each method is one transaction.
/// - After [`Lifecycle::close`], every call fails [`Error::Unavailable`].
pub trait Store:
    Tenants
    + Buckets
    + Tunnels
    + Functions
    + Channels
    + EventLog
    + DeliveryQueue
    + ClusterBus
    + Limiter
    + Lifecycle
{
}

impl<T> Store for T where
    T: Tenants
        + Buckets
        + Tunnels
        + Functions
        + Channels
        + EventLog
        + DeliveryQueue
        + ClusterBus
        + Limiter
        + Lifecycle
{
}

/// Housekeeping of the store as a whole.
#[async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// Writes queued and not yet committed (the `/metrics` queue depth).
    fn pending_writes(&self) -> usize;
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<()>;
    /// Finishes queued writes and closes; later calls fail `Unavailable`.
    async fn close(&self);
}

/// The seams in scope, to call them on an `Arc<dyn Store>`:
/// `use store::prelude::*;`. Imported anonymously, so their names clash
/// with nothing.
pub mod prelude {
    pub use crate::Buckets as _;
    pub use crate::Channels as _;
    pub use crate::ClusterBus as _;
    pub use crate::DeliveryQueue as _;
    pub use crate::EventLog as _;
    pub use crate::Functions as _;
    pub use crate::Lifecycle as _;
    pub use crate::Limiter as _;
    pub use crate::Store;
    pub use crate::Tenants as _;
    pub use crate::Tunnels as _;
}
