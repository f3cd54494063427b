//! The shared store: Redis, for several `hookrelay serve` nodes on one
//! Redis (`--store redis://HOST:PORT/DB`, or `rediss://` for TLS over
//! rustls). Redis holds ciphertext only: payloads, input secrets and
//! bucket auth are sealed exactly as in SQLite (`crate::sealed`).
//!
//! Start with [`RedisStore::open`], then `append` (how ids stay ordered
//! across nodes), `deliveries` (claims) and `cluster` (liveness, the bus).
//!
//! # Layout
//! - `mod.rs`: [`RedisStore`], [`RedisOptions`], the connection and the
//!   [`Store`] impl, which only routes each call.
//! - `keys`: key naming; `codec`: records and replies in and out.
//! - `scripts` and `lua/`: the Lua scripts (one tenant, one slot each).
//! - `objects`: tenants, buckets, inputs, outputs, tokens.
//! - `append`: the writer task (group commit, id mint, retries).
//! - `events`: reads, resend, retention, cascading deletes.
//! - `deliveries`: agent groups, due queues and claims, settling.
//! - `cluster`: clock, liveness, sweeper, bus, signals, agents.
//!
//! # Keys
//! `{ns}` is [`RedisOptions::namespace`]; `P` is `{ns}:{<tenant>}:`.
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P t` | hash | tenant JSON, poll secret hash |
//! | `P buckets`, `P bname` | set, hash | bucket ids; name → id |
//! | `P b:<id>` | hash | bucket JSON, sealed auth, name, ephemeral flag |
//! | `P b:<id>:ins`, `P b:<id>:outs`, `P b:<id>:groups` | set, hash, set | inputs; output → internal flag; agent groups |
//! | `P i:<id>`, `P iname` | hash, hash | input JSON, sealed secrets; name → id |
//! | `P o:<id>` | hash | output JSON, bucket, created |
//! | `P k:<key>`, `P tokens` | hash, set | token JSON, hash, description, buckets; keys |
//! | `P e:<id>` | hash | event metadata JSON, sealed payload |
//! | `P ev`, `P b:<id>:ev` | zset (lex) | event ids of the tenant, of a bucket |
//! | `P last` | string | the tenant's last committed event id |
//! | `P dd:<input>:<delivery id>` | string, PX | dedup entry: expiry time |
//! | `P d:<member>`, `P ed:<event>` | hash, zset | a delivery; an event's deliveries |
//! | `P q:`, `P qr:`, `P w:`, `P pq` | zset | pending queues (see `deliveries`) |
//! | `P qc:`, `P qf:`, `P pqc:`, `P pqf:`, `P held:<node>` | zset, set | a node's claims |
//! | `P agents` | hash | agent id → node, JSON |
//! | `P rl:ingest:...` | hash, PX | an ingest rate-limit window |
//! | `{ns}:tenants` | set | tenant ids |
//! | `{ns}:input:<id>`, `{ns}:token:<key>` | string | owner tenant (lookups without a tenant) |
//! | `{ns}:admins`, `{ns}:pubt` | set | admin tokens; tenants with public outputs |
//! | `{ns}:node:<id>` | string, PX | a node's liveness |
//! | `{ns}:nodes`, `{ns}:nt:<node>` | set | nodes to watch; tenants a node may hold claims in |
//! | `{ns}:rl:<key>` | hash, PX | other rate-limit windows (`poll:<ip>`) |
//! | `{ns}:bus` | channel | commit ticks and signals |
//!
//! Durability is Redis's: run it with `appendonly yes` (and `appendfsync
//! always` for no loss at all; `everysec` may lose the last second).

mod append;
mod cluster;
mod codec;
mod deliveries;
mod events;
mod keys;
mod objects;
mod scripts;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use crypto::Keyring;
use model::{
    Attempt, Bucket, BucketId, Delivery, Event, EventId, Input, InputId, NewEvent, Output,
    OutputId, RateLimit, Tenant, TenantId, Token, TokenKey,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::{
    Appended, DeliveryKey, DueBatch, Error, EventQuery, RateDecision, Result, Settle, Signal,
    Store, TenantRecord,
};
use cluster::Clock;
use codec::unavailable;
use keys::Keys;
use scripts::Scripts;

/// How a Redis store is opened.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// First part of every key (`{namespace}:{<tenant>}:...`): several
    /// relays, or tests, can share one Redis under different namespaces.
    pub namespace: String,
    /// How long a node's liveness key lives without a refresh: a node gone
    /// for this long (plus one sweep, a fifth of it) loses its claims.
    pub node_ttl: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            namespace: "hr".into(),
            node_ttl: Duration::from_secs(10),
        }
    }
}

/// Signals a node keeps for slow listeners before they lag.
const SIGNALS: usize = 256;

/// What the store's background tasks share with it.
pub(super) struct Inner {
    /// Reconnects by itself when Redis comes back.
    conn: ConnectionManager,
    /// For the pub/sub connection.
    client: redis::Client,
    keys: Keys,
    scripts: Scripts,
    /// Seals payloads and secrets on write, opens them on read.
    crypto: Keyring,
    /// This node's random id.
    node: String,
    ttl: Duration,
    clock: Clock,
    closed: AtomicBool,
    commits: watch::Sender<u64>,
    signals: broadcast::Sender<Signal>,
    /// Appends queued for the writer and not yet sent.
    queued: AtomicUsize,
    writer: mpsc::Sender<append::Job>,
}

impl Inner {
    /// A connection, unless the store is closed.
    fn con(&self) -> Result<ConnectionManager> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("store is closed".into()));
        }
        Ok(self.conn.clone())
    }

    fn writer(&self) -> Result<&mpsc::Sender<append::Job>> {
        self.con()?;
        Ok(&self.writer)
    }
}

/// The Redis implementation of [`Store`]; one per node.
pub struct RedisStore {
    inner: Arc<Inner>,
    /// The writer, liveness, sweeper and bus tasks: aborted on drop (a
    /// dropped store is a dead node: its claims wait for the sweepers of
    /// the others) and on close.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://` or `rediss://`), announces this node
    /// and starts its background tasks. Payloads and secrets are sealed
    /// under `keys`' active key, as the embedded store does (the binary
    /// resolves the keyring the same way for both).
    pub async fn open(url: &str, keys: Keyring, options: RedisOptions) -> Result<RedisStore> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(unavailable)?;
        let scripts = Scripts::new();
        {
            // The writer pipelines EVALSHA, which needs the script loaded.
            let mut con = conn.clone();
            let _: String = scripts
                .append
                .prepare_invoke()
                .load_async(&mut con)
                .await
                .map_err(unavailable)?;
        }
        let (writer, jobs) = mpsc::channel(append::QUEUE);
        let inner = Arc::new(Inner {
            conn,
            client,
            keys: Keys::new(&options.namespace),
            scripts,
            crypto: keys,
            node: ulid::Ulid::new().to_string().to_lowercase(),
            ttl: options.node_ttl,
            clock: Clock::default(),
            closed: AtomicBool::new(false),
            commits: watch::channel(0).0,
            signals: broadcast::channel(SIGNALS).0,
            queued: AtomicUsize::new(0),
            writer,
        });
        inner.refresh().await?;
        let pubsub = cluster::subscribe(&inner).await?;
        let tasks = vec![
            tokio::spawn(append::writer(Arc::clone(&inner), jobs)),
            tokio::spawn(cluster::liveness(Arc::clone(&inner))),
            tokio::spawn(cluster::sweeper(Arc::clone(&inner))),
            tokio::spawn(cluster::listen(Arc::clone(&inner), pubsub)),
        ];
        tracing::info!(node = %inner.node, namespace = %options.namespace, "redis store open");
        Ok(RedisStore {
            inner,
            tasks: Mutex::new(tasks),
        })
    }

    /// This node's id (liveness key, claim owner).
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    fn stop_tasks(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create_tenant(&self, record: &TenantRecord) -> Result<()> {
        self.inner.create_tenant(record).await
    }

    async fn tenant(&self, id: &TenantId) -> Result<TenantRecord> {
        self.inner.tenant(id).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.inner.list_tenants().await
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.inner.update_tenant(tenant).await
    }

    async fn set_poll_secret(&self, id: &TenantId, hash: Option<&str>) -> Result<()> {
        self.inner.set_poll_secret(id, hash).await
    }

    async fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        self.inner.delete_tenant(id).await
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<()> {
        self.inner.put_bucket(bucket, "bucket.create").await
    }

    async fn bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<Bucket> {
        self.inner.bucket(tenant, id).await
    }

    async fn bucket_by_name(&self, tenant: &TenantId, name: &str) -> Result<Bucket> {
        self.inner.bucket_by_name(tenant, name).await
    }

    async fn list_buckets(&self, tenant: &TenantId) -> Result<Vec<Bucket>> {
        self.inner.list_buckets(tenant).await
    }

    async fn update_bucket(&self, bucket: &Bucket) -> Result<()> {
        self.inner.put_bucket(bucket, "bucket.update").await
    }

    async fn delete_bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<()> {
        self.inner.delete_bucket(tenant, id).await
    }

    async fn create_input(&self, input: &Input) -> Result<()> {
        self.inner.create_input(input).await
    }

    async fn input(&self, tenant: &TenantId, id: &InputId) -> Result<Input> {
        self.inner.input(tenant, id).await
    }

    async fn input_by_id(&self, id: &InputId) -> Result<Input> {
        self.inner.input_by_id(id).await
    }

    async fn input_by_name(&self, tenant: &TenantId, name: &str) -> Result<Input> {
        self.inner.input_by_name(tenant, name).await
    }

    async fn list_inputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Input>> {
        self.inner.list_inputs(tenant, bucket).await
    }

    async fn update_input(&self, input: &Input) -> Result<()> {
        self.inner.update_input(input).await
    }

    async fn delete_input(&self, tenant: &TenantId, id: &InputId) -> Result<()> {
        self.inner.delete_input(tenant, id).await
    }

    async fn create_output(&self, output: &Output) -> Result<()> {
        self.inner.put_output(output, true).await
    }

    async fn output(&self, tenant: &TenantId, id: &OutputId) -> Result<Output> {
        self.inner.output(tenant, id).await
    }

    async fn list_outputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Output>> {
        self.inner.list_outputs(tenant, bucket).await
    }

    async fn update_output(&self, output: &Output) -> Result<()> {
        self.inner.put_output(output, false).await
    }

    async fn delete_output(&self, tenant: &TenantId, id: &OutputId) -> Result<()> {
        // Its queued rows are dropped by the due queries as they meet them.
        self.inner
            .object_op(tenant, &[b"output.delete", id.as_str().as_bytes()])
            .await
    }

    async fn create_token(&self, token: &Token) -> Result<()> {
        self.inner.create_token(token).await
    }

    async fn token_by_key(&self, key: &TokenKey) -> Result<Token> {
        self.inner.token_by_key(key).await
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<Token>> {
        self.inner.list_tokens(tenant).await
    }

    async fn update_token(&self, token: &Token) -> Result<()> {
        self.inner.update_token(token).await
    }

    async fn rotate_token_secret(
        &self,
        tenant: &TenantId,
        key: &TokenKey,
        secret_hash: &str,
    ) -> Result<()> {
        let suffix = format!("k:{}", key.as_str());
        let args: [&[u8]; 4] = [b"set", suffix.as_bytes(), b"hash", secret_hash.as_bytes()];
        self.inner.object_op(tenant, &args).await
    }

    async fn delete_token(&self, tenant: &TenantId, key: &TokenKey) -> Result<()> {
        self.inner.delete_token(tenant, key).await
    }

    async fn has_admin_token(&self) -> Result<bool> {
        self.inner.has_admin_token().await
    }

    async fn append(&self, event: NewEvent) -> Result<Appended> {
        self.inner.append(event).await
    }

    async fn delivery_seen(
        &self,
        tenant: &TenantId,
        input: &InputId,
        delivery_id: &str,
        now_ms: i64,
    ) -> Result<bool> {
        self.inner
            .delivery_seen(tenant, input, delivery_id, now_ms)
            .await
    }

    async fn event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)> {
        self.inner.event(tenant, id).await
    }

    async fn events(&self, tenant: &TenantId, query: &EventQuery) -> Result<Vec<Event>> {
        self.inner.events(tenant, query).await
    }

    fn visible_before(&self) -> i64 {
        self.inner.clock.visible_before()
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }

    async fn reset_deliveries(
        &self,
        tenant: &TenantId,
        event: &EventId,
        output: Option<&OutputId>,
    ) -> Result<usize> {
        self.inner.reset_deliveries(tenant, event, output).await
    }

    async fn register_group(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        catchup_from_ms: i64,
    ) -> Result<()> {
        self.inner
            .register_group(tenant, bucket, group, catchup_from_ms)
            .await
    }

    async fn expire_deliveries(
        &self,
        tenant: &TenantId,
        bucket: &BucketId,
        group: &str,
        before_ms: i64,
    ) -> Result<usize> {
        self.inner
            .expire_deliveries(tenant, bucket, group, before_ms)
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
        self.inner
            .due_deliveries(tenant, bucket, group, now_ms, limit)
            .await
    }

    async fn due_public_deliveries(&self, now_ms: i64, limit: usize) -> Result<DueBatch> {
        self.inner.due_public_deliveries(now_ms, limit).await
    }

    async fn mark_in_flight(&self, keys: &[DeliveryKey]) -> Result<()> {
        self.inner.mark_in_flight(keys).await
    }

    async fn settle(
        &self,
        key: &DeliveryKey,
        attempt: Option<Attempt>,
        next: Settle,
    ) -> Result<()> {
        self.inner.settle(key, attempt, next).await
    }

    fn shared_dispatch(&self) -> bool {
        true
    }

    async fn broadcast(&self, signal: Signal) -> Result<()> {
        self.inner.broadcast(signal).await
    }

    fn signals(&self) -> Option<broadcast::Receiver<Signal>> {
        Some(self.inner.signals.subscribe())
    }

    async fn announce_agent(
        &self,
        tenant: &TenantId,
        agent_id: &str,
        info: &serde_json::Value,
    ) -> Result<()> {
        self.inner.announce_agent(tenant, agent_id, info).await
    }

    async fn withdraw_agent(&self, tenant: &TenantId, agent_id: &str) -> Result<()> {
        self.inner.withdraw_agent(tenant, agent_id).await
    }

    async fn cluster_agents(&self, tenant: &TenantId) -> Result<Option<Vec<serde_json::Value>>> {
        self.inner.cluster_agents(tenant).await.map(Some)
    }

    async fn rate_limit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision> {
        let mut con = self.inner.con()?;
        let window_ms = i64::from(limit.window_seconds.max(1)) * 1000;
        let wait: i64 = self
            .inner
            .scripts
            .rate_limit
            .key(self.inner.keys.rate(key))
            .arg(limit.requests)
            .arg(window_ms)
            .arg(now_ms)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(if wait <= 0 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after_secs: u64::try_from((wait + 999) / 1000).unwrap_or(1).max(1),
            }
        })
    }

    async fn purge_expired(&self, now_ms: i64, batch: usize) -> Result<usize> {
        // Dedup entries expire by their own TTL.
        self.inner.purge_expired(now_ms, batch).await
    }

    fn pending_writes(&self) -> usize {
        self.inner.queued.load(Ordering::SeqCst)
    }

    async fn ping(&self) -> Result<()> {
        let mut con = self.inner.con()?;
        redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Stops the tasks, gives this node's claims back and removes its
    /// liveness key; appends already queued fail `Unavailable`.
    async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.stop_tasks();
        let inner = &self.inner;
        match inner.release_node(&inner.node).await {
            Ok(n) if n > 0 => tracing::info!(released = n, "claims given back at close"),
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "could not give claims back at close"),
        }
        let mut con = inner.conn.clone();
        let gone = redis::pipe()
            .cmd("DEL")
            .arg(inner.keys.node(&inner.node))
            .cmd("SREM")
            .arg(inner.keys.nodes())
            .arg(&inner.node)
            .query_async::<()>(&mut con)
            .await;
        if let Err(err) = gone {
            tracing::warn!(%err, "could not remove this node's liveness key");
        }
    }
}
