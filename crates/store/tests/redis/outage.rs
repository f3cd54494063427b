//! Redis going away and coming back, on a private `redis-server` this test
//! starts (on a free port, without persistence): calls fail `Unavailable`
//! promptly while it is down, and the store reconnects by itself, scripts
//! reloaded, when it is back.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use store::conformance::World;
use store::redis::{RedisOptions, RedisStore};
use store::{Error, Store};

use super::{keyring, namespace, wait_until};

/// A `redis-server` child, killed on drop.
struct Server(Child);

impl Server {
    fn start(port: u16) -> Server {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        Server(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    match client.get_multiplexed_async_connection().await {
        Ok(mut con) => redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .is_ok(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_a_redis_restart() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let mut server = Server::start(port);
    let patience = Duration::from_secs(15);
    wait_until(patience, "the private redis answers", || answers(&url)).await;
    let options = RedisOptions {
        namespace: namespace(),
        node_ttl: Duration::from_secs(10),
    };
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::open(&url, keyring(), options)
            .await
            .expect("open"),
    );
    let w = World::create(&store, "outage").await;
    store.append(w.event()).await.expect("append while up");

    server.kill();
    let started = tokio::time::Instant::now();
    match store.append(w.event()).await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("append while Redis is down: {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "a down Redis fails calls promptly, it took {:?}",
        started.elapsed()
    );
    assert!(matches!(store.ping().await, Err(Error::Unavailable(_))));

    // Back, empty (no persistence): the store reconnects by itself, and
    // the scripts it had loaded are loaded again.
    let _server = Server::start(port);
    wait_until(patience, "the store reconnects", || async {
        store.ping().await.is_ok()
    })
    .await;
    let w = World::create(&store, "outage-after").await;
    store
        .append(w.event())
        .await
        .expect("append after the restart");
    let (_, deliveries) = store
        .event(
            &w.tenant,
            &store.append(w.event()).await.expect("append").id,
        )
        .await
        .expect("read back");
    assert_eq!(deliveries.len(), 2);
    store.close().await;
}
