//! Tests on a private `redis-server` they start (on a free port, without
//! persistence): Redis going away and coming back (calls fail
//! `Unavailable` promptly while it is down; the store reconnects by itself,
//! scripts reloaded, when it is back), and `rediss://` with a private CA.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use store::conformance::World;
use store::prelude::*;
use store::redis::{RedisOptions, RedisStore};
use store::Error;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::{keyring, namespace, wait_until};

/// A `redis-server` child, killed on drop.
struct Server(Child);

impl Server {
    fn start(port: u16) -> Server {
        Self::with_args(&["--port", &port.to_string()])
    }

    fn with_args(args: &[&str]) -> Server {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
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
        ..Default::default()
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

/// A CA and a certificate it signed for 127.0.0.1: (CA, cert, key) PEMs.
fn pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// `rediss://` over rustls, trusting a private CA; a node trusting
/// another CA cannot connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca() {
    let (ca, cert, key) = pki();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert).expect("write cert");
    std::fs::write(&key_file, key).expect("write key");
    let port = free_port();
    let _server = Server::with_args(&[
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        &cert_file.to_string_lossy(),
        "--tls-key-file",
        &key_file.to_string_lossy(),
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{port}/0");
    let options = |ca: &str| RedisOptions {
        namespace: namespace(),
        ca_pem: Some(ca.as_bytes().to_vec()),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let store = loop {
        match RedisStore::open(&url, keyring(), options(&ca)).await {
            Ok(store) => break store,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "rediss:// never answered: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let w = World::create(&store, "tls").await;
    store.append(w.event()).await.expect("append over TLS");
    let (stranger, _, _) = pki();
    let refused = RedisStore::open(&url, keyring(), options(&stranger)).await;
    assert!(matches!(refused, Err(Error::Unavailable(_))));
    store.close().await;
}
