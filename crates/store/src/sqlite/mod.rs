//! The embedded store: one SQLite file (`hookrelay.db`) in WAL mode in the
//! data directory, needing no other service.
//!
//! Writes go through one group-commit thread (`writer`), reads through a
//! small pool of read-only connections on tokio's blocking pool. Start with
//! [`SqliteStore::open`], then `writer` for how appends are made durable and
//! visible.
//!
//! # Layout
//! - `mod.rs`: [`SqliteStore`] and the [`Store`] impl, which
//!   only routes each call to a read or a write job.
//! - `writer`: the group-commit thread, the clock, the id mint and the
//!   visibility floor.
//! - `schema`: tables, migrations and pragmas.
//! - `reader`: the pool of read-only connections.
//! - `tenants`: SQL of tenants and tokens.
//! - `buckets`: SQL of buckets, inputs and outputs.
//! - `events`: SQL of events, deliveries and retention; the dedup rebuild.
//! - `deliveries`: SQL of dispatch: agent groups, due queues, attempts.
//! - `keys`: [`KeyMaintenance`], what `hookrelay keys` does to the file
//!   (which keys records use, re-encryption under the active key).
//! - `rows`: row decoding (opening sealed columns) and error mapping.
//! - `tests`: checks that need the store's insides (dedup visibility,
//!   panicking jobs); the rest is in `tests/sqlite/` and the conformance
//!   suite.

mod buckets;
mod deliveries;
mod events;
mod keys;
mod reader;
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
use model::{
    Attempt, Bucket, BucketId, Delivery, Event, EventBody, EventId, Input, InputId, NewEvent,
    Output, OutputId, RateLimit, Tenant, TenantId, Token, TokenKey,
};
use rusqlite::Connection;
use tokio::sync::watch;

use crate::{
    sealed, Appended, DedupSet, DeliveryKey, DueBatch, Error, EventQuery, RateDecision, Result,
    Settle, SlidingWindow, Store, TenantRecord,
};
pub use keys::{KeyMaintenance, KeyUsage, ReencryptStep};
use reader::ReadPool;
use writer::{Clock, IdMint, JobKind, Shared, Writer};

/// The database file inside the data directory.
pub const FILE_NAME: &str = "hookrelay.db";

/// Read connections. Reads are short (index range scans, `LIMIT`ed), so a
/// few connections keep up with the 2-core target; WAL lets them all read
/// while the writer commits.
const READERS: usize = 4;

/// The SQLite implementation of [`Store`].
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
        let newest = events::newest(&conn)?;
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

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, record: &TenantRecord) -> Result<()> {
        let record = record.clone();
        self.write(move |c| tenants::create_tenant(c, &record))
            .await
    }

    async fn tenant(&self, id: &TenantId) -> Result<TenantRecord> {
        let id = id.clone();
        self.read(move |c| tenants::tenant(c, &id)).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let records = self.read(|c| tenants::list_tenants(c)).await?;
        Ok(records.into_iter().map(|r| r.tenant).collect())
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        let tenant = tenant.clone();
        self.write(move |c| tenants::update_tenant(c, &tenant))
            .await
    }

    async fn set_poll_secret(&self, id: &TenantId, hash: Option<&str>) -> Result<()> {
        let (id, hash) = (id.clone(), hash.map(str::to_owned));
        self.write(move |c| tenants::set_poll_secret(c, &id, hash.as_deref()))
            .await
    }

    async fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        let gone = id.clone();
        self.write(move |c| tenants::delete_tenant(c, &gone))
            .await?;
        self.shared.dedup.forget_tenant(id);
        Ok(())
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<()> {
        let (bucket, keys) = (bucket.clone(), Arc::clone(&self.keys));
        self.write(move |c| buckets::create_bucket(c, &bucket, &keys))
            .await
    }

    async fn bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<Bucket> {
        let (tenant, id, keys) = (tenant.clone(), id.clone(), Arc::clone(&self.keys));
        self.read(move |c| buckets::bucket(c, &tenant, &id, &keys))
            .await
    }

    async fn bucket_by_name(&self, tenant: &TenantId, name: &str) -> Result<Bucket> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        let keys = Arc::clone(&self.keys);
        self.read(move |c| buckets::bucket_by_name(c, &tenant, &name, &keys))
            .await
    }

    async fn list_buckets(&self, tenant: &TenantId) -> Result<Vec<Bucket>> {
        let (tenant, keys) = (tenant.clone(), Arc::clone(&self.keys));
        self.read(move |c| buckets::list_buckets(c, &tenant, &keys))
            .await
    }

    async fn update_bucket(&self, bucket: &Bucket) -> Result<()> {
        let (bucket, keys) = (bucket.clone(), Arc::clone(&self.keys));
        self.write(move |c| buckets::update_bucket(c, &bucket, &keys))
            .await
    }

    async fn delete_bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write(move |c| buckets::delete_bucket(c, &tenant, &id))
            .await
    }

    async fn create_input(&self, input: &Input) -> Result<()> {
        let (input, keys) = (input.clone(), Arc::clone(&self.keys));
        self.write(move |c| buckets::create_input(c, &input, &keys))
            .await
    }

    async fn input(&self, tenant: &TenantId, id: &InputId) -> Result<Input> {
        let (tenant, id, keys) = (tenant.clone(), *id, Arc::clone(&self.keys));
        self.read(move |c| buckets::input(c, &tenant, &id, &keys))
            .await
    }

    async fn input_by_id(&self, id: &InputId) -> Result<Input> {
        let (id, keys) = (*id, Arc::clone(&self.keys));
        self.read(move |c| buckets::input_by_id(c, &id, &keys))
            .await
    }

    async fn input_by_name(&self, tenant: &TenantId, name: &str) -> Result<Input> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        let keys = Arc::clone(&self.keys);
        self.read(move |c| buckets::input_by_name(c, &tenant, &name, &keys))
            .await
    }

    async fn list_inputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Input>> {
        let (tenant, bucket) = (tenant.clone(), bucket.clone());
        let keys = Arc::clone(&self.keys);
        self.read(move |c| buckets::list_inputs(c, &tenant, &bucket, &keys))
            .await
    }

    async fn update_input(&self, input: &Input) -> Result<()> {
        let (input, keys) = (input.clone(), Arc::clone(&self.keys));
        self.write(move |c| buckets::update_input(c, &input, &keys))
            .await
    }

    async fn delete_input(&self, tenant: &TenantId, id: &InputId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), *id);
        self.write(move |c| buckets::delete_input(c, &tenant, &id))
            .await
    }

    async fn create_output(&self, output: &Output) -> Result<()> {
        let output = output.clone();
        self.write(move |c| buckets::create_output(c, &output))
            .await
    }

    async fn output(&self, tenant: &TenantId, id: &OutputId) -> Result<Output> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |c| buckets::output(c, &tenant, &id)).await
    }

    async fn list_outputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Output>> {
        let (tenant, bucket) = (tenant.clone(), bucket.clone());
        self.read(move |c| buckets::list_outputs(c, &tenant, &bucket))
            .await
    }

    async fn update_output(&self, output: &Output) -> Result<()> {
        let output = output.clone();
        self.write(move |c| buckets::update_output(c, &output))
            .await
    }

    async fn delete_output(&self, tenant: &TenantId, id: &OutputId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write(move |c| buckets::delete_output(c, &tenant, &id))
            .await
    }

    async fn create_token(&self, token: &Token) -> Result<()> {
        let token = token.clone();
        self.write(move |c| tenants::create_token(c, &token)).await
    }

    async fn token_by_key(&self, key: &TokenKey) -> Result<Token> {
        let key = key.clone();
        self.read(move |c| tenants::token_by_key(c, &key)).await
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<Token>> {
        let tenant = tenant.clone();
        self.read(move |c| tenants::list_tokens(c, &tenant)).await
    }

    async fn update_token(&self, token: &Token) -> Result<()> {
        let token = token.clone();
        self.write(move |c| tenants::update_token(c, &token)).await
    }

    async fn rotate_token_secret(
        &self,
        tenant: &TenantId,
        key: &TokenKey,
        secret_hash: &str,
    ) -> Result<()> {
        let (tenant, key, hash) = (tenant.clone(), key.clone(), secret_hash.to_owned());
        self.write(move |c| tenants::set_token_secret(c, &tenant, &key, &hash))
            .await
    }

    async fn delete_token(&self, tenant: &TenantId, key: &TokenKey) -> Result<()> {
        let (tenant, key) = (tenant.clone(), key.clone());
        self.write(move |c| tenants::delete_token(c, &tenant, &key))
            .await
    }

    async fn has_admin_token(&self) -> Result<bool> {
        self.read(|c| tenants::has_admin_token(c)).await
    }

    async fn append(&self, event: NewEvent) -> Result<Appended> {
        let plaintext = match &event.body {
            EventBody::Stored(body) => {
                let headers_json = rows::to_json(&event.headers).map_err(rows::append_error)?;
                Some(sealed::event_plaintext(&event.query, &headers_json, body)?)
            }
            EventBody::Omitted { .. } | EventBody::Undecryptable { .. } => None,
        };
        let keys = Arc::clone(&self.keys);
        self.writer
            .call(JobKind::Append, move |cx| {
                events::append(cx, &event, plaintext.as_deref(), &keys)
            })
            .await
            .map_err(rows::append_error)
    }

    async fn delivery_seen(
        &self,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
    ) -> Result<bool> {
        Ok(self.shared.dedup.seen(tenant, input, delivery_id, now_ms))
    }

    async fn event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)> {
        let (tenant, id, keys) = (tenant.clone(), *id, Arc::clone(&self.keys));
        self.read(move |c| events::event(c, &tenant, &id, &keys))
            .await
    }

    async fn events(&self, tenant: &TenantId, query: &EventQuery) -> Result<Vec<Event>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        let keys = Arc::clone(&self.keys);
        self.read(move |c| events::events(c, &tenant, &query, &keys))
            .await
    }

    fn visible_before(&self) -> i64 {
        // Clock FIRST, floor second: the writer publishes its floor before
        // assigning any received_at, so this order guarantees that a batch
        // in flight either shows up as the floor or assigns times at or
        // above `now` (see `writer::Thread::commit`). Reversed, a batch
        // starting between the two loads could assign a time below `now`
        // that a poller using this answer as `since` would skip.
        let now = self.shared.clock.now();
        let floor = self.shared.floor.load(Ordering::SeqCst);
        now.min(floor)
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.shared.commits.subscribe()
    }

    async fn reset_deliveries(
        &self,
        tenant: &TenantId,
        event: &EventId,
        output: Option<&OutputId>,
    ) -> Result<usize> {
        let (tenant, event, output) = (tenant.clone(), *event, output.cloned());
        let now = self.shared.clock.now();
        self.write(move |c| events::reset_deliveries(c, &tenant, &event, output.as_ref(), now))
            .await
    }

    async fn register_group(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        catchup_from_ms: i64,
    ) -> Result<()> {
        let (tenant, bucket, group) = (tenant.clone(), bucket.clone(), group.to_owned());
        let now = self.shared.clock.now();
        self.write(move |c| {
            deliveries::register_group(c, &tenant, &bucket, &group, catchup_from_ms, now)
        })
        .await
    }

    async fn expire_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        before_ms: i64,
    ) -> Result<usize> {
        let (tenant, bucket, group) = (tenant.clone(), bucket.clone(), group.to_owned());
        let now = self.shared.clock.now();
        self.write(move |c| deliveries::expire(c, &tenant, &bucket, &group, before_ms, now))
            .await
    }

    async fn due_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: Option<&str>,
        now_ms: i64,
        limit: usize,
    ) -> Result<DueBatch> {
        let (tenant, bucket) = (tenant.clone(), bucket.clone());
        let group = group.map(str::to_owned);
        let keys = Arc::clone(&self.keys);
        self.read(move |c| {
            deliveries::due(c, &tenant, &bucket, group.as_deref(), now_ms, limit, &keys)
        })
        .await
    }

    async fn due_public_deliveries(&self, now_ms: i64, limit: usize) -> Result<DueBatch> {
        let keys = Arc::clone(&self.keys);
        self.read(move |c| deliveries::due_public(c, now_ms, limit, &keys))
            .await
    }

    async fn mark_in_flight(&self, keys: &[DeliveryKey]) -> Result<()> {
        let keys = keys.to_vec();
        let now = self.shared.clock.now();
        self.write_bookkeeping(move |c| deliveries::mark_in_flight(c, &keys, now))
            .await
    }

    async fn settle(
        &self,
        key: &DeliveryKey,
        attempt: Option<Attempt>,
        next: Settle,
    ) -> Result<()> {
        let key = key.clone();
        let now = self.shared.clock.now();
        self.write_bookkeeping(move |c| deliveries::settle(c, &key, attempt.as_ref(), next, now))
            .await
    }

    async fn rate_limit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision> {
        if self.writer.is_closed() {
            return Err(Self::closed());
        }
        Ok(self.limiter.hit(key, limit, now_ms))
    }

    async fn purge_expired(&self, now_ms: i64, batch: usize) -> Result<usize> {
        self.shared.dedup.purge(now_ms);
        self.write(move |c| events::purge(c, now_ms, batch)).await
    }

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
