//! Which store a test relay runs on, so one behavioural suite covers both.
//!
//! A suite lists its test modules once in [`crate::store_suites!`], which
//! compiles them twice, as `sqlite::…` and `redis::…`; a relay started by
//! a test of either module runs on that store ([`suite_store`] reads it off
//! the test's name, which libtest gives the thread running it), so a plain
//! `cargo test` exercises both stores and fails, never skips, when Redis is
//! not answering. Elsewhere `HOOKRELAY_TEST_STORE` picks it: `sqlite` (the
//! default) or `redis`. Redis is at `HOOKRELAY_TEST_REDIS` (default
//! `redis://127.0.0.1:6379/0`).
//!
//! On Redis each relay gets its own key namespace, derived from its data
//! directory so that a restart on the same directory finds its data again.
//! A relay that made its own directory deletes its namespace when dropped;
//! the first relay on Redis in a test process deletes the namespaces left
//! by test processes that have exited (restarts on a test's own directory).

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

const STORE_VAR: &str = "HOOKRELAY_TEST_STORE";
const REDIS_VAR: &str = "HOOKRELAY_TEST_REDIS";

/// The stores a test relay can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Redis,
}

/// The store a relay started on this thread runs on: the one of the
/// [`crate::store_suites!`] module whose test runs here (libtest names a
/// test's thread after its path, `redis::agents::…`); elsewhere (a test
/// outside those modules, a task on a runtime's worker thread, a benchmark)
/// the one `HOOKRELAY_TEST_STORE` names, SQLite by default.
pub fn suite_store() -> StoreKind {
    let thread = std::thread::current();
    match thread
        .name()
        .and_then(|n| n.split_once("::"))
        .map(|(m, _)| m)
    {
        Some("sqlite") => StoreKind::Sqlite,
        Some("redis") => StoreKind::Redis,
        _ => match std::env::var(STORE_VAR).as_deref() {
            Ok("redis") => StoreKind::Redis,
            Ok("sqlite") | Err(_) => StoreKind::Sqlite,
            Ok(other) => panic!("{STORE_VAR}={other}: expected sqlite or redis"),
        },
    }
}

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var(REDIS_VAR).unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Namespaces are named after the test process, so that one whose
/// process has exited can be told apart from one in use.
fn run_id() -> String {
    format!("p{}", std::process::id())
}

/// The Redis namespace of the relay whose data directory is `data_dir`.
pub fn namespace_for(data_dir: &Path) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut hasher);
    format!("hrtest-{}-{:016x}", run_id(), hasher.finish())
}

/// Opens a `kind` store for a relay living in `data_dir`.
pub(crate) async fn open(kind: StoreKind, data_dir: &Path) -> Arc<dyn store::Store> {
    let (keys, _) =
        crypto::keyfile::load_or_create(data_dir).expect("a master key in the data dir");
    let keys = crypto::Keyring::new(&keys).expect("a valid master key");
    match kind {
        StoreKind::Sqlite => Arc::new(
            store::sqlite::SqliteStore::open_with(data_dir, keys).expect("open the SQLite store"),
        ),
        StoreKind::Redis => {
            sweep_exited_runs();
            let options = store::redis::RedisOptions {
                namespace: namespace_for(data_dir),
                // A node that stops without closing hands its claims on
                // after this (restart tests), rather than after 10 s.
                node_ttl: Duration::from_secs(2),
                ..Default::default()
            };
            let url = redis_url();
            match store::redis::RedisStore::open(&url, keys, options).await {
                Ok(store) => Arc::new(store),
                Err(err) => panic!("Redis at {url} is needed by the tests on Redis: {err}"),
            }
        }
    }
}

/// Deletes, once per process, the namespaces of test processes that are
/// no longer running: what restart tests on their own data directory
/// leave behind. Namespaces of running processes are never touched.
fn sweep_exited_runs() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        // Only where a process's liveness can be read cheaply.
        if !Path::new("/proc/self").exists() {
            return;
        }
        let Some(mut con) = connect() else { return };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("hrtest-p*")
            .query(&mut con)
            .unwrap_or_default();
        let mut exited = std::collections::BTreeSet::new();
        for key in &keys {
            let pid = key["hrtest-p".len()..].split('-').next().unwrap_or("");
            if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                exited.insert(pid.to_owned());
            }
        }
        for pid in exited {
            delete_namespaces(&format!("hrtest-p{pid}-*"));
        }
    });
}

fn connect() -> Option<redis::Connection> {
    // Best effort: a leftover namespace costs memory, not correctness.
    let client = redis::Client::open(redis_url().as_str()).ok()?;
    client
        .get_connection_with_timeout(Duration::from_secs(5))
        .ok()
}

/// Deletes every key of a Redis namespace a test made.
pub fn delete_redis_namespace(namespace: &str) {
    delete_namespaces(&format!("{namespace}:*"));
}

/// Deletes every key matching `pattern` (one test run's namespaces).
pub(crate) fn delete_namespaces(pattern: &str) {
    let Some(mut con) = connect() else { return };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut con)
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("UNLINK").arg(chunk).query(&mut con);
    }
}
