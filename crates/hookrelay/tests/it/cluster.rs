//! Three `hookrelay serve` processes on one Redis (issue 6), as a user runs
//! them behind a load balancer: agents connected to different nodes, senders
//! posting to every node, one node killed with SIGKILL mid-stream and its
//! agent reconnecting to another node. Every acknowledged webhook must reach
//! every agent group; a duplicate is possible only for what the dead node
//! had handed out and not settled (at-least-once), and is counted.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Destination;

use super::faults::{Api, ADMIN};
use super::{Serve, BIN};

/// Base64 of 32 bytes: every node must share the master key.
pub(crate) const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// Webhooks each sender posts (the one to the killed node stops early).
const PER_SENDER: usize = 120;
/// The node is killed once this many webhooks were acknowledged in all.
const KILL_AFTER: usize = 90;
const PATIENCE: Duration = Duration::from_secs(60);

struct Cluster {
    namespace: String,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            namespace: format!("hrtest-cluster-{}", std::process::id()),
            dirs: Vec::new(),
        }
    }

    fn node(&mut self) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let serve = Serve::start(dir.path(), &env);
        self.dirs.push(dir);
        serve
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOOKRELAY_STORE", testkit::redis_url()),
            ("HOOKRELAY_REDIS_NAMESPACE", self.namespace.clone()),
            ("HOOKRELAY_REDIS_NODE_TTL", "2".into()),
            ("HOOKRELAY_MASTER_KEY", MASTER_KEY.into()),
            ("HOOKRELAY_ADMIN_SECRET", ADMIN.into()),
        ]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        testkit::delete_redis_namespace(&self.namespace);
    }
}

/// A `hookrelay agent` process; killed on drop.
struct AgentProcess(Child);

impl AgentProcess {
    fn start(node: &Serve, token: &str, group: &str, transport: &str, dest: &str) -> Self {
        let child = Command::new(BIN)
            .args(["agent", "--server", &node.url, "--token", token])
            .args([
                "--bucket",
                "prod",
                "--group",
                group,
                "--transport",
                transport,
            ])
            .args(["--destination", dest])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hookrelay agent");
        AgentProcess(child)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A create through `node`'s admin API; the created object.
async fn admin(node: &Serve, path: &str, body: Value) -> Value {
    Api::new(&node.url)
        .must(Method::POST, path, Some(body), StatusCode::CREATED)
        .await
}

async fn agents_listed(http: &reqwest::Client, node: &Serve) -> Vec<Value> {
    let Ok(response) = http
        .get(format!("{}/v1/agents", node.url))
        .bearer_auth(ADMIN)
        .send()
        .await
    else {
        return Vec::new();
    };
    let listed: Value = response.json().await.unwrap_or_default();
    listed["agents"].as_array().cloned().unwrap_or_default()
}

/// Posts `PER_SENDER` webhooks to `url` one after another (stopping at the
/// first refused connection: its node is gone); returns the bodies that
/// were answered 200.
async fn send(
    http: reqwest::Client,
    url: String,
    tag: &'static str,
    acked_total: Arc<AtomicUsize>,
) -> Vec<String> {
    let mut acked = Vec::new();
    let mut unavailable = 0;
    for i in 0..PER_SENDER {
        let body = format!("{tag}-{i}");
        match http.post(&url).body(body.clone()).send().await {
            Ok(r) if r.status() == 200 => {
                acked.push(body);
                acked_total.fetch_add(1, Ordering::SeqCst);
            }
            // Not acknowledged, so a provider sends it again later; a
            // loaded machine may see a few (an append that could not
            // commit in time).
            Ok(r) if r.status() == 503 && unavailable < PER_SENDER / 10 => unavailable += 1,
            Ok(r) => panic!(
                "{tag}: a live node answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(_) => break,
        }
    }
    if unavailable > 0 {
        println!("cluster: sender {tag}: {unavailable} answered 503");
    }
    acked
}

/// How often each body arrived.
fn arrivals(destination: &Destination) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in destination.received() {
        *seen
            .entry(String::from_utf8_lossy(&r.body).into_owned())
            .or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_lose_nothing_when_one_is_killed() {
    let mut cluster = Cluster::new();
    let a = cluster.node();
    let b = cluster.node();
    let c = cluster.node();
    let http = reqwest::Client::new();

    let bucket = admin(&a, "/v1/buckets", json!({"name": "prod"})).await;
    let bucket_id = bucket["id"].as_str().unwrap().to_owned();
    let input = admin(
        &b,
        &format!("/v1/buckets/{bucket_id}/inputs"),
        // The limit is the cluster's, counted in Redis: above the load.
        json!({"rateLimit": {"requests": 100000, "windowSeconds": 60}}),
    )
    .await;
    let input_id = input["id"].as_str().unwrap().to_owned();
    admin(
        &c,
        &format!("/v1/buckets/{bucket_id}/outputs"),
        json!({"url": "http://127.0.0.1:9/unused", "retry": {"initialDelayMs": 100}}),
    )
    .await;
    let token = admin(&a, "/v1/tokens", json!({"scope": "agent"})).await;
    let token = token["token"].as_str().unwrap().to_owned();

    let blue = Destination::spawn().await;
    let green = Destination::spawn().await;
    let blue_hook = format!("{}/hook", blue.url);
    let green_hook = format!("{}/hook", green.url);
    let _blue_a = AgentProcess::start(&a, &token, "blue", "grpc", &blue_hook);
    let blue_b = AgentProcess::start(&b, &token, "blue", "ws", &blue_hook);
    let _green_c = AgentProcess::start(&c, &token, "green", "grpc", &green_hook);

    // Every node lists the whole cluster's agents.
    for node in [&a, &b, &c] {
        testkit::wait_until(PATIENCE, "every node lists the 3 agents", || async {
            agents_listed(&http, node).await.len() == 3
        })
        .await;
    }

    let acked_total = Arc::new(AtomicUsize::new(0));
    let url_of = |node: &Serve| format!("{}/v1/webhooks/{input_id}", node.url);
    let senders = [("a", url_of(&a)), ("b", url_of(&b)), ("c", url_of(&c))]
        .map(|(tag, url)| tokio::spawn(send(http.clone(), url, tag, Arc::clone(&acked_total))));
    testkit::wait_until(PATIENCE, "the load is under way", || async {
        acked_total.load(Ordering::SeqCst) >= KILL_AFTER
    })
    .await;
    b.kill9();
    // The dead node's agent reconnects elsewhere, as through a balancer.
    drop(blue_b);
    let _blue_b_again = AgentProcess::start(&c, &token, "blue", "ws", &blue_hook);

    let mut acked = Vec::new();
    for sender in senders {
        acked.extend(sender.await.expect("a sender"));
    }
    let acked_set: HashSet<&String> = acked.iter().collect();
    assert_eq!(acked_set.len(), acked.len(), "bodies are unique");

    for (group, destination) in [("blue", &blue), ("green", &green)] {
        testkit::wait_until(
            PATIENCE,
            &format!("group {group} received every acknowledged webhook"),
            || async {
                let seen = arrivals(destination);
                acked.iter().all(|body| seen.contains_key(body))
            },
        )
        .await;
    }
    let mut duplicates = HashMap::new();
    for (group, destination) in [("blue", &blue), ("green", &green)] {
        let seen = arrivals(destination);
        let extra: usize = seen.values().map(|n| n - 1).sum();
        let strays = seen.keys().filter(|b| !acked_set.contains(b)).count();
        println!(
            "cluster: group {group}: {} acknowledged, {} arrived, 0 lost, {extra} duplicates, \
             {strays} unacknowledged arrivals (requests cut by the kill)",
            acked.len(),
            seen.len()
        );
        duplicates.insert(group, extra);
    }
    // At-least-once: only what the killed node had handed to its agent and
    // not yet settled can come twice (its agent's max_in_flight, plus acks
    // it had read and not written), and only to that agent's group.
    assert_eq!(
        duplicates["green"], 0,
        "green had no agent on the killed node"
    );
    assert!(
        duplicates["blue"] <= 4 * proto::DEFAULT_MAX_IN_FLIGHT as usize,
        "{} duplicates in blue",
        duplicates["blue"]
    );
    let stored: HashSet<String> = Api::new(&a.url)
        .all_events(&bucket_id)
        .await
        .iter()
        .filter_map(|e| e["body"].as_str().map(str::to_owned))
        .collect();
    assert!(
        acked.iter().all(|b| stored.contains(b)),
        "every acknowledged webhook is stored"
    );
}

/// A private `redis-server` with `appendonly yes` and `appendfsync
/// always` on a loopback port, killed on drop. Its AOF survives a kill.
pub(crate) struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    pub(crate) fn start() -> PrivateRedis {
        // An ephemeral port the kernel just handed out (redis-server takes
        // a number, not a bound socket).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut redis = PrivateRedis {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.restart();
        redis
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (DESIGN §6: the shared store)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !self.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "the private redis-server answers within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL redis-server");
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Issue 18: a node whose master key is not the cluster's refuses to start
/// with exit code 64, as the README promises for configuration mistakes
/// (it exited 1), naming the variable and never printing a key.
#[test]
fn r18_a_node_with_another_master_key_exits_64() {
    let mut cluster = Cluster::new();
    let first = cluster.node();
    let dir = tempfile::tempdir().unwrap();
    let other_key = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .envs(
            cluster
                .env()
                .into_iter()
                .filter(|(k, _)| *k != "HOOKRELAY_MASTER_KEY"),
        )
        .env("HOOKRELAY_MASTER_KEY", other_key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("HOOKRELAY_MASTER_KEY"), "{err}");
    assert!(
        !err.contains(other_key) && !err.contains(MASTER_KEY),
        "{err}"
    );
    drop(first);
}

async fn status_of(http: &reqwest::Client, url: &str) -> Option<u16> {
    http.get(url).send().await.ok().map(|r| r.status().as_u16())
}

/// Posts one webhook; its status, or `None` if the node did not answer.
async fn post_one(http: &reqwest::Client, url: &str, body: &str) -> Option<u16> {
    let sent = http.post(url).body(body.to_owned()).send().await;
    sent.ok().map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_load_loses_nothing_acknowledged() {
    let mut redis = PrivateRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let env = [
        ("HOOKRELAY_STORE", url.as_str()),
        ("HOOKRELAY_MASTER_KEY", MASTER_KEY),
        ("HOOKRELAY_ADMIN_SECRET", ADMIN),
    ];
    let node = Serve::start(dir.path(), &env);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let bucket = admin(&node, "/v1/buckets", json!({"name": "prod"})).await;
    let bucket_id = bucket["id"].as_str().unwrap().to_owned();
    let input = admin(
        &node,
        &format!("/v1/buckets/{bucket_id}/inputs"),
        json!({"rateLimit": {"requests": 100000, "windowSeconds": 60}}),
    )
    .await;
    let hook = format!("{}/v1/webhooks/{}", node.url, input["id"].as_str().unwrap());
    admin(
        &node,
        &format!("/v1/buckets/{bucket_id}/outputs"),
        json!({"url": "http://127.0.0.1:9/unused", "retry": {"initialDelayMs": 100}}),
    )
    .await;
    let token = admin(&node, "/v1/tokens", json!({"scope": "agent"})).await;
    let destination = Destination::spawn().await;
    let _agent = AgentProcess::start(
        &node,
        token["token"].as_str().unwrap(),
        "blue",
        "grpc",
        &format!("{}/hook", destination.url),
    );
    testkit::wait_until(PATIENCE, "the agent is connected", || async {
        agents_listed(&http, &node).await.len() == 1
    })
    .await;
    let agent_id = agents_listed(&http, &node).await[0]["id"].clone();

    let mut acked = Vec::new();
    for i in 0..40 {
        let body = format!("before-{i}");
        assert_eq!(post_one(&http, &hook, &body).await, Some(200));
        acked.push(body);
    }
    // A sender that keeps going through the kill and the restart: what
    // it gets 200 for must arrive; 503s and cut connections are its to
    // retry, as a provider would.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = tokio::spawn({
        let (http, hook, stop) = (http.clone(), hook.clone(), Arc::clone(&stop));
        async move {
            let mut acked = Vec::new();
            for i in 0..5_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let body = format!("live-{i}");
                if post_one(&http, &hook, &body).await == Some(200) {
                    acked.push(body);
                }
            }
            acked
        }
    });
    redis.kill9();
    // While Redis is down: ingest refuses (the sender retries later), the
    // node is not ready, and nothing is acknowledged.
    let mut refused = 0;
    for i in 0..20 {
        match post_one(&http, &hook, &format!("down-{i}")).await {
            Some(503) => refused += 1,
            other => panic!("ingest without its store answered {other:?}"),
        }
    }
    assert_eq!(
        status_of(&http, &format!("{}/readyz", node.url)).await,
        Some(503)
    );
    redis.restart();
    testkit::wait_until(PATIENCE, "the node is ready again", || async {
        status_of(&http, &format!("{}/readyz", node.url)).await == Some(200)
    })
    .await;
    for i in 0..40 {
        let body = format!("after-{i}");
        let mut answered = None;
        // The first requests may meet the reconnection.
        for _ in 0..50 {
            answered = post_one(&http, &hook, &body).await;
            if answered == Some(200) {
                break;
            }
        }
        assert_eq!(answered, Some(200), "{body}");
        acked.push(body);
    }
    stop.store(true, Ordering::SeqCst);
    let live = background.await.expect("the background sender");
    assert!(!live.is_empty(), "the background sender got answers");
    acked.extend(live);
    testkit::wait_until(PATIENCE, "every acknowledged webhook arrived", || async {
        let seen = arrivals(&destination);
        acked.iter().all(|b| seen.contains_key(b))
    })
    .await;
    let seen = arrivals(&destination);
    assert!(
        seen.keys().all(|b| !b.starts_with("down-")),
        "a refused webhook was delivered"
    );
    let listed = agents_listed(&http, &node).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], agent_id, "the agent stayed connected");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "redis restart: {} acknowledged, 0 lost, {refused} refused 503 while down, {duplicates} duplicates",
        acked.len()
    );
}
