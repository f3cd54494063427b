//! Which store a test relay runs on, so one behavioural suite covers both.
//!
//! `HOOKRELAY_TEST_STORE` picks it: `sqlite` (the default) or `redis`, at
//! `HOOKRELAY_TEST_REDIS` (default `redis://127.0.0.1:6379/0`). A suite
//! runs itself a second time on Redis through [`rerun_suite_on_redis`], so
//! a plain `cargo test` exercises both stores and fails (never skips) when
//! Redis is not answering.
//!
//! On Redis each relay gets its own key namespace, derived from its data
//! directory so that a restart on the same directory finds its data again;
//! the rerun deletes every namespace of its run when it ends.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const STORE_VAR: &str = "HOOKRELAY_TEST_STORE";
const REDIS_VAR: &str = "HOOKRELAY_TEST_REDIS";
/// Names the rerun whose namespaces are deleted together at its end.
const RUN_VAR: &str = "HOOKRELAY_TEST_RUN";

/// The stores a test relay can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Redis,
}

/// The store this test process runs its relays on.
pub fn store_under_test() -> StoreKind {
    match std::env::var(STORE_VAR).as_deref() {
        Ok("redis") => StoreKind::Redis,
        Ok("sqlite") | Err(_) => StoreKind::Sqlite,
        Ok(other) => panic!("{STORE_VAR}={other}: expected sqlite or redis"),
    }
}

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var(REDIS_VAR).unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

fn run_id() -> String {
    std::env::var(RUN_VAR).unwrap_or_else(|_| format!("p{}", std::process::id()))
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

/// Runs this test binary again with every relay on Redis (all its tests but
/// `this_test` and the `skipped` ones, each with the reason it cannot run
/// there), and fails if any test fails there. On the rerun itself it does
/// nothing.
pub fn rerun_suite_on_redis(this_test: &str, skipped: &[(&str, &str)]) {
    if store_under_test() == StoreKind::Redis {
        return;
    }
    let run = format!("r{}", std::process::id());
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .env(STORE_VAR, "redis")
        .env(RUN_VAR, &run)
        .args(["--exact", "--skip", this_test]);
    for (test, why) in skipped {
        println!("not on Redis: {test} ({why})");
        command.args(["--skip", test]);
    }
    let output = command.output().expect("the test binary runs again");
    delete_namespaces(&format!("hrtest-{run}-*"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .filter(|l| l.starts_with("test result:"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("on Redis: {summary}");
    assert!(
        output.status.success(),
        "the suite failed on Redis:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let passed: usize = summary
        .split(';')
        .filter_map(|part| part.trim().strip_suffix(" passed"))
        .filter_map(|n| n.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed > 0, "the rerun on Redis ran no test: {summary}");
}

/// Deletes every key of a Redis namespace a test made.
pub fn delete_redis_namespace(namespace: &str) {
    delete_namespaces(&format!("{namespace}:*"));
}

/// Deletes every key matching `pattern` (one test run's namespaces).
pub(crate) fn delete_namespaces(pattern: &str) {
    let url = redis_url();
    // Best effort: a leftover namespace costs memory, not correctness.
    let Ok(client) = redis::Client::open(url.as_str()) else {
        return;
    };
    let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(5)) else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut con)
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("UNLINK").arg(chunk).query(&mut con);
    }
}
