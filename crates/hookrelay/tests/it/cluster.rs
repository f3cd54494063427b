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

use serde_json::{json, Value};
use testkit::Destination;

use super::{Serve, BIN};

/// Base64 of 32 bytes: every node must share the master key.
const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const ADMIN: &str = "cluster-admin-secret";
/// Webhooks each sender posts (the one to the killed node stops early).
const PER_SENDER: usize = 120;
/// The node is killed once this many webhooks were acknowledged in all.
const KILL_AFTER: usize = 90;
const PATIENCE: Duration = Duration::from_secs(60);

struct Cluster {
    namespace: String,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            namespace: format!("hrtest-cluster-{}", std::process::id()),
            _dirs: Vec::new(),
        }
    }

    fn node(&mut self) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let serve = Serve::start(dir.path(), &env);
        self._dirs.push(dir);
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

fn kill9(mut serve: Serve) {
    let mut child = serve.child.take().expect("a running node");
    child.kill().expect("SIGKILL the node");
    let _ = child.wait();
}

async fn admin(http: &reqwest::Client, node: &Serve, path: &str, body: Value) -> Value {
    let response = http
        .post(format!("{}{path}", node.url))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("the node answers");
    assert_eq!(response.status(), 201, "POST {path}");
    response.json().await.expect("JSON")
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

    let bucket = admin(&http, &a, "/v1/buckets", json!({"name": "prod"})).await;
    let bucket_id = bucket["id"].as_str().unwrap().to_owned();
    let input = admin(
        &http,
        &b,
        &format!("/v1/buckets/{bucket_id}/inputs"),
        // The limit is the cluster's, counted in Redis: above the load.
        json!({"rateLimit": {"requests": 100000, "windowSeconds": 60}}),
    )
    .await;
    let input_id = input["id"].as_str().unwrap().to_owned();
    admin(
        &http,
        &c,
        &format!("/v1/buckets/{bucket_id}/outputs"),
        json!({"url": "http://127.0.0.1:9/unused", "retry": {"initialDelayMs": 100}}),
    )
    .await;
    let token = admin(&http, &a, "/v1/tokens", json!({"scope": "agent"})).await;
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
    kill9(b);
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
    let stored = stored_bodies(&http, &a).await;
    assert!(
        acked.iter().all(|b| stored.contains(b)),
        "every acknowledged webhook is stored"
    );
}

/// Every stored event's body, through node `node`'s cursor API.
async fn stored_bodies(http: &reqwest::Client, node: &Serve) -> HashSet<String> {
    let mut bodies = HashSet::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!("{}/v1/events?limit=500", node.url);
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("the node answers")
            .json()
            .await
            .expect("JSON");
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return bodies;
        }
        for event in events {
            bodies.insert(event["body"].as_str().unwrap_or_default().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return bodies,
        }
    }
    panic!("more pages than expected");
}
