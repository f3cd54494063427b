//! The embedded store: one SQLite file (`hookrelay.db`) in WAL mode in the
//! data directory, needing no other service.
//!
//! Implements every seam of `crate` (feature `sqlite`, the default); the
//! binary opens it and `hookrelay keys` uses [`KeyMaintenance`]; the server
//! never names it, it holds an `Arc<dyn Store>`.
//!
//! Writes go through one group-commit thread (`writer`), reads through a
//! small pool of read-only connections on tokio's blocking pool. Start with
//! [`SqliteStore::open`], then `writer` for how appends are made durable and
//! visible.
//!
//! # Layout
//! - `mod.rs`: [`SqliteStore`], opening, the read and write paths every
//!   seam's impl takes, and the small seams ([`Limiter`], [`ClusterBus`],
//!   [`Lifecycle`]).
//! - `writer`: the group-commit thread, the clock, the id mint and the
//!   visibility floor.
//! - `schema`: tables, migrations and pragmas.
//! - `reader`: the pool of read-only connections.
//! - `tenants`: [`crate::Tenants`]: tenants and tokens.
//! - `buckets`: [`crate::Buckets`]: buckets, inputs and outputs.
//! - `events`: [`crate::EventLog`]: appends, reads, resends; the dedup
//!   rebuild.
//! - `retention`: purging old events, the id high-water mark.
//! - `deliveries`: [`crate::DeliveryQueue`]: agent groups, due queues,
//!   attempts.
//! - `keys`: [`KeyMaintenance`], what `hookrelay keys` does to the file
//!   (which keys records use, re-encryption under the active key).
//! - `rows`: row decoding (opening sealed columns) and error mapping.
//! - `tests`: checks that need the store's insides (dedup visibility,
//!   panicking jobs); the rest is in `tests/sqlite/` and the conformance
//!   suite.

mod buckets;
mod deliveries;
mod events;
mod functions;
mod keys;
mod reader;
mod retention;
mod rows;
mod schema;
mod tenants;
mod tunnels;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use crypto::Keyring;
use model::RateLimit;
use rusqlite::Connection;
use tokio::sync::watch;

use crate::{ClusterBus, DedupSet, Error, Lifecycle, Limiter, RateDecision, Result, SlidingWindow};
pub use keys::{KeyMaintenance, KeyUsage, ReencryptStep};
use reader::ReadPool;
use writer::{Clock, IdMint, JobKind, Shared, Writer};

/// The database file inside the data directory.
pub const FILE_NAME: &str = "hookrelay.db";

/// Read connections. Reads are short (index range scans, `LIMIT`ed), so a
/// few connections keep up with the 2-core target; WAL lets them all read
/// while the writer commits.
const READERS: usize = 4;

/// The SQLite implementation of [`crate::Store`].
pub struct SqliteStore {
    /// The only path to the write connection.
    writer: Writer,
    /// Shared with blocking read tasks, hence the `Arc`.
    readers: Arc<ReadPool>,
    /// Clock, visibility floor and commit counters, shared with the writer.
    shared: Arc<Shared>,
    /// Rate limits are per node in the embedded deployment: one node.
    limiter: SlidingWindow,
    /// Seals payloads and input secrets on write, opens them on read.
    keys: Arc<Keyring>,
    /// [`ClusterBus::config_changes`]: ticked by every object write.
    config: watch::Sender<u64>,
}

impl SqliteStore {
    /// Opens the store with the keys of the key file in `data_dir`
    /// (`crypto::keyfile`), creating the file with a fresh key at first
    /// start. The binary resolves `HOOKRELAY_MASTER_KEY` first and calls
    /// [`SqliteStore::open_with`].
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        let (keys, _) = crypto::keyfile::load_or_create(data_dir)
            .map_err(|e| Error::Unavailable(format!("master key: {e}")))?;
        let keys =
            Keyring::new(&keys).map_err(|e| Error::Unavailable(format!("master key: {e}")))?;
        Self::open_with(data_dir, keys)
    }

    /// Opens (creating if needed) `data_dir/hookrelay.db`, migrates its
    /// schema and starts the writer thread. Payloads and input secrets are
    /// sealed under `keys`' active key and opened under any of them. The
    /// active key id is recorded in the file (`meta.active_key`), so that
    /// `hookrelay keys retire` refuses a key a server still encrypts with.
    pub fn open_with(data_dir: &Path, keys: Keyring) -> Result<SqliteStore> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::Unavailable(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(FILE_NAME);
        let conn = schema::open_writer(&path)?;
        keys::record_active(&conn, keys.active())?;
        // Seeding both from the newest id ever handed out (the newest
        // stored event, or the high-water mark left by deletes) keeps ids
        // strictly increasing across a restart even if the system clock
        // went back, and even if the newest events were deleted.
        let newest = retention::newest(&conn)?;
        let newest_ms = newest.map_or(0, |id| {
            i64::try_from(id.ulid().timestamp_ms()).unwrap_or(i64::MAX)
        });
        let shared = Arc::new(Shared {
            clock: Clock::starting_at(newest_ms),
            floor: AtomicI64::new(i64::MAX),
            commits: watch::channel(0).0,
            commit_count: AtomicU64::new(0),
            dedup: DedupSet::new(),
        });
        let now = shared.clock.now();
        for (tenant, input, delivery_id, expires) in events::live_delivery_ids(&conn, now)? {
            shared
                .dedup
                .insert(&tenant, &input, &delivery_id, now, expires);
        }
        let released = deliveries::release_all_in_flight(&conn)?;
        if released > 0 {
            tracing::info!(
                released,
                "in-flight deliveries of the last run are pending again"
            );
        }
        let readers = Arc::new(ReadPool::open(&path, READERS)?);
        let writer = Writer::spawn(conn, IdMint::after(newest), Arc::clone(&shared))?;
        Ok(SqliteStore {
            writer,
            readers,
            shared,
            limiter: SlidingWindow::new(),
            keys: Arc::new(keys),
            config: watch::channel(0).0,
        })
    }

    /// How many transactions the writer has committed since open. Under
    /// concurrent load this grows much slower than the number of writes.
    pub fn commit_count(&self) -> u64 {
        self.shared.commit_count.load(Ordering::SeqCst)
    }

    fn closed() -> Error {
        Error::Unavailable("store is closed".into())
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        if self.writer.is_closed() {
            return Err(Self::closed());
        }
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| Error::Unavailable(format!("read task failed: {e}")))?
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.writer
            .call(JobKind::Durable, move |cx| f(cx.conn))
            .await
    }

    /// A write of an admin object ([`crate::Tenants`], [`crate::Buckets`]):
    /// durable like any write, then ticks [`ClusterBus::config_changes`]
    /// so that caches of configuration drop what they hold.
    async fn write_object<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let written = self.write(f).await?;
        self.config.send_modify(|n| *n = n.wrapping_add(1));
        Ok(written)
    }

    /// A write of delivery bookkeeping: committed in order with the rest,
    /// without an fsync of its own (see [`JobKind::Bookkeeping`]).
    async fn write_bookkeeping<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.writer
            .call(JobKind::Bookkeeping, move |cx| f(cx.conn))
            .await
    }
}

/// Rate limits are per node in the embedded deployment: one node.
#[async_trait]
impl Limiter for SqliteStore {
    async fn rate_limit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision> {
        if self.writer.is_closed() {
            return Err(Self::closed());
        }
        Ok(self.limiter.hit(key, limit, now_ms))
    }
}

/// One node: nothing to tell, nothing to hear, no one to share dispatch
/// with; only its own object writes change its configuration.
impl ClusterBus for SqliteStore {
    fn config_changes(&self) -> watch::Receiver<u64> {
        self.config.subscribe()
    }
}

#[async_trait]
impl Lifecycle for SqliteStore {
    fn pending_writes(&self) -> usize {
        self.writer.queued()
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(rows::db_err)
        })
        .await
    }

    async fn close(&self) {
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests;
