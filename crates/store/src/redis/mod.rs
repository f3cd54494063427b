//! The shared store: Redis, for several `hookrelay serve` nodes on one
//! Redis (`--store redis://HOST:PORT/DB`, or `rediss://` for TLS over
//! rustls). Redis holds ciphertext only: payloads, input secrets and
//! bucket auth are sealed exactly as in SQLite (`crate::sealed`).
//!
//! Start with [`RedisStore::open`], then `append` (how ids stay ordered
//! across nodes), `deliveries` (claims) and `cluster` (liveness, the bus).
//!
//! # Layout
//! - `mod.rs`: [`RedisStore`], [`RedisOptions`], opening and closing
//!   ([`crate::Lifecycle`]).
//! - `keys`: key naming; `codec`: records and replies in and out.
//! - `scripts` and `lua/`: the Lua scripts (one tenant, one slot each).
//! - `tenants`: [`crate::Tenants`], tenants and tokens; `objects`:
//!   [`crate::Buckets`], buckets, inputs, outputs.
//! - `append`: the writer task (group commit, id proposal and re-mint).
//! - `events`: [`crate::EventLog`]: appends, reads, resend, retention.
//! - `deliveries`: [`crate::DeliveryQueue`]: agent groups, due queues and
//!   claims, settling.
//! - `cluster`: clock, liveness, sweeper.
//! - `bus`: [`crate::ClusterBus`]: commit ticks, signals, agents.
//! - `limiter`: [`crate::Limiter`] (counts batched like appends).
//! - `maintenance`: [`RedisKeyMaintenance`], what `hookrelay keys` does.
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
//! | `P e:<id>` | hash | event metadata JSON, sealed payload (and the id it was sealed under, if re-minted: `append`) |
//! | `P ev`, `P b:<id>:ev` | zset (lex) | event ids of the tenant, of a bucket |
//! | `P last`, `P remints` | string | the tenant's last committed event id; how many ids the append script re-minted |
//! | `P dd:<input>:<delivery id>` | string, PX | dedup entry: expiry time |
//! | `P d:<member>`, `P ed:<event>` | hash, zset | a delivery; an event's deliveries |
//! | `P gl` | zset | `<bucket>\|=<group>` by the time until which the group counts as live |
//! | `P q:`, `P qr:`, `P w:`, `P pq` | zset | pending queues (see `deliveries`) |
//! | `P qc:`, `P qf:`, `P pqc:`, `P pqf:`, `P held:<node>` | zset, set | a node's claims |
//! | `P chn:<id>`, `P chans:<bucket>` | hash, set | channel JSON and cursor; a bucket's channels |
//! | `P agents` | hash | agent id → node, JSON |
//! | `P rl:ingest:...` | hash, PX | an ingest rate-limit window |
//! | `{ns}:tenants` | set | tenant ids |
//! | `{ns}:input:<id>`, `{ns}:token:<key>` | string | owner tenant (lookups without a tenant) |
//! | `{ns}:chcap` | hash | channel capability digest → `<tenant> <id>` |
//! | `{ns}:admins`, `{ns}:pubt` | set | admin tokens; tenants with public outputs |
//! | `{ns}:node:<id>` | string, PX | a node's liveness |
//! | `{ns}:tat:<tunnel id>` | zset, PX | node URLs holding the tunnel's agents, by lapse time |
//! | `{ns}:nodes`, `{ns}:nt:<node>` | set | nodes to watch; tenants a node may hold claims in |
//! | `{ns}:rl:<key>` | hash, PX | other rate-limit windows (`poll:<ip>`) |
//! | `{ns}:canary` | string | sealed under the cluster's key: a node with another key refuses to start |
//! | `{ns}:nodekeys` | hash | node id → the key id it seals with (`hookrelay keys`) |
//! | `{ns}:bus` | channel | commit ticks and signals |
//!
//! Durability is Redis's: run it with `appendonly yes` (and `appendfsync
//! always` for no loss at all; `everysec` may lose the last second).

mod append;
mod bus;
mod channels;
mod cluster;
mod codec;
mod deliveries;
mod events;
mod functions;
mod keys;
mod limiter;
mod maintenance;
mod objects;
mod scripts;
mod tenants;
mod tunnels;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use crypto::Keyring;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::{Error, Lifecycle, Result, Signal};
use cluster::Clock;
use codec::unavailable;
use keys::Keys;
pub use maintenance::RedisKeyMaintenance;
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
    /// PEM of the CA that signed a `rediss://` server's certificate, when
    /// it is a private one; `None` trusts the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            namespace: "hr".into(),
            node_ttl: Duration::from_secs(10),
            ca_pem: None,
        }
    }
}

/// A client for `url` and a connection that reconnects by itself.
async fn connect(url: &str, options: &RedisOptions) -> Result<(redis::Client, ConnectionManager)> {
    let client = match &options.ca_pem {
        Some(ca) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            },
        ),
        None => redis::Client::open(url),
    }
    .map_err(unavailable)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2);
    let conn = ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(unavailable)?;
    Ok((client, conn))
}

/// How long `close` waits for queued appends.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

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
    /// Tenants this node noted in `nt:<node>` lately (`deliveries`).
    noted: deliveries::Noted,
    closed: AtomicBool,
    commits: watch::Sender<u64>,
    /// [`crate::ClusterBus::config_changes`]: this node's object writes and
    /// those heard on the bus.
    config: watch::Sender<u64>,
    signals: broadcast::Sender<Signal>,
    /// Appends queued for the writer and not yet sent.
    queued: AtomicUsize,
    /// Pipelines the writer has sent (each one group commit).
    pipelines: AtomicU64,
    /// Held by the writer while it handles a batch (`close` waits on it).
    busy: tokio::sync::Mutex<()>,
    writer: mpsc::Sender<append::Job>,
    /// Rate-limit requests for the counting task (`limiter`).
    hits: mpsc::Sender<limiter::Hit>,
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

/// The Redis implementation of [`crate::Store`]; one per node.
pub struct RedisStore {
    inner: Arc<Inner>,
    /// The writer, rate-limit counter, liveness, sweeper and bus tasks: aborted on drop (a
    /// dropped store is a dead node: its claims wait for the sweepers of
    /// the others) and on close.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://` or `rediss://`), announces this node
    /// and starts its background tasks. Payloads and secrets are sealed
    /// under `keys`' active key, as the embedded store does (the binary
    /// resolves the keyring the same way for both).
    pub async fn open(url: &str, keys: Keyring, options: RedisOptions) -> Result<RedisStore> {
        let (client, conn) = connect(url, &options).await?;
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
        let (hits, counted) = mpsc::channel(limiter::QUEUE);
        let inner = Arc::new(Inner {
            conn,
            client,
            keys: Keys::new(&options.namespace),
            scripts,
            crypto: keys,
            node: ulid::Ulid::new().to_string().to_lowercase(),
            ttl: options.node_ttl,
            clock: Clock::default(),
            noted: deliveries::Noted::default(),
            closed: AtomicBool::new(false),
            commits: watch::channel(0).0,
            config: watch::channel(0).0,
            signals: broadcast::channel(SIGNALS).0,
            queued: AtomicUsize::new(0),
            pipelines: AtomicU64::new(0),
            busy: tokio::sync::Mutex::new(()),
            writer,
            hits,
        });
        inner.check_keys().await?;
        inner.refresh().await?;
        let pubsub = bus::subscribe(&inner).await?;
        let tasks = vec![
            tokio::spawn(append::writer(Arc::clone(&inner), jobs)),
            tokio::spawn(limiter::counter(Arc::clone(&inner), counted)),
            tokio::spawn(cluster::liveness(Arc::clone(&inner))),
            tokio::spawn(cluster::sweeper(Arc::clone(&inner))),
            tokio::spawn(bus::listen(Arc::clone(&inner), pubsub)),
        ];
        tracing::info!(node = %inner.node, namespace = %options.namespace, "redis store open");
        Ok(RedisStore {
            inner,
            tasks: Mutex::new(tasks),
        })
    }

    /// How many append pipelines (group commits) this store has sent.
    /// Under concurrent load this grows much slower than the appends.
    pub fn commit_count(&self) -> u64 {
        self.inner.pipelines.load(Ordering::SeqCst)
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
impl Lifecycle for RedisStore {
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

    /// Refuses new calls, finishes the queued appends (within
    /// five seconds), stops the tasks, gives this node's claims back and
    /// removes its liveness key.
    async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.drain(CLOSE_GRACE).await;
        self.stop_tasks();
        let inner = &self.inner;
        match inner.release_node(&inner.node, None).await {
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
            .cmd("HDEL")
            .arg(inner.keys.node_keys())
            .arg(&inner.node)
            .query_async::<()>(&mut con)
            .await;
        if let Err(err) = gone {
            tracing::warn!(%err, "could not remove this node's liveness key");
        }
    }
}
