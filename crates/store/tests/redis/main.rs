//! The Redis store against a real Redis: the shared conformance suite, and
//! what only a shared store must show: several nodes on one namespace
//! (order, commit ticks, claims, a killed node's claims coming back,
//! signals, agents, dedup across nodes).
//!
//! Redis comes from `HOOKRELAY_TEST_REDIS` (default
//! `redis://127.0.0.1:6379/0`); a test fails, never skips, when it does not
//! answer. Each test uses its own namespace and deletes its keys at the end.
//!
//! `cargo test -p store --all-features --test redis`
//!
//! # Layout
//! - `main.rs`: fixtures and the conformance suite, one test per check
//!   (`conformance::<check>`).
//! - `nodes`: two stores (nodes) on one namespace: order, ticks, dedup,
//!   receive times, rate limits, the key canary, close.
//! - `claims`: claims between nodes, and their return.
//! - `private`: a private `redis-server` stopped and started again, and
//!   one serving TLS only.

mod claims;
mod nodes;
mod private;

use std::sync::Arc;
use std::time::Duration;

use store::redis::{RedisOptions, RedisStore};

pub(crate) fn url() -> String {
    std::env::var("HOOKRELAY_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A namespace no other test (or earlier run) uses.
pub(crate) fn namespace() -> String {
    format!("hrtest-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub(crate) fn keyring() -> crypto::Keyring {
    crypto::Keyring::new(&[crypto::Key::generate()]).expect("a keyring")
}

/// Opens a node; panics (fails the test) if Redis does not answer.
pub(crate) async fn open(ns: &str, keys: crypto::Keyring, ttl: Duration) -> RedisStore {
    let options = RedisOptions {
        namespace: ns.to_owned(),
        node_ttl: ttl,
        ..Default::default()
    };
    RedisStore::open(&url(), keys, options)
        .await
        .unwrap_or_else(|e| panic!("Redis at {} must answer for these tests: {e}", url()))
}

/// Deletes every key of the namespace (SCAN + DEL by its prefix).
pub(crate) async fn cleanup(ns: &str) {
    let client = redis::Client::open(url()).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for cleanup");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{ns}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await
            .expect("scan");
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut con)
                .await
                .expect("del");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// Waits for `cond` to hold, failing the test after `within`.
pub(crate) async fn wait_until<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh node on a namespace of its own, per conformance check.
async fn open_fresh() -> (Arc<dyn store::Store>, String) {
    let ns = namespace();
    let store = open(&ns, keyring(), Duration::from_secs(10)).await;
    (Arc::new(store), ns)
}

/// The conformance suite, one test per check (`conformance::<check>`).
mod conformance {
    store::conformance_tests!(open = super::open_fresh, finish = super::cleanup_owned);
}

async fn cleanup_owned(ns: String) {
    cleanup(&ns).await;
}

/// Concurrent appends share pipelines (group commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_commits() {
    let ns = namespace();
    let store = Arc::new(open(&ns, keyring(), Duration::from_secs(10)).await);
    let dyn_store: Arc<dyn store::Store> = store.clone();
    let w = store::conformance::World::create(&dyn_store, "group-commit").await;
    let before = store.commit_count();
    let started = std::time::Instant::now();
    let n: u32 = 2000;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (s, e) = (Arc::clone(&dyn_store), w.event());
            tokio::spawn(async move { s.append(e).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("append");
    }
    let elapsed = started.elapsed();
    let commits = store.commit_count() - before;
    eprintln!(
        "{n} concurrent appends in {elapsed:?} ({:.0}/s) over {commits} pipelines",
        f64::from(n) / elapsed.as_secs_f64()
    );
    assert!(
        commits < u64::from(n),
        "appends were batched: {commits} pipelines"
    );
    store::Lifecycle::close(store.as_ref()).await;
    cleanup(&ns).await;
}

/// Nothing answering at the address: opening fails `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_without_redis_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let options = RedisOptions {
        namespace: namespace(),
        node_ttl: Duration::from_secs(10),
        ..Default::default()
    };
    let opened = RedisStore::open(&format!("redis://127.0.0.1:{port}/0"), keyring(), options).await;
    assert!(matches!(opened, Err(store::Error::Unavailable(_))));
}
