//! The real agent against the real relay on `127.0.0.1:0`, forwarding to a
//! recording destination, over both transports (DESIGN §5 guarantees):
//! byte-exact delivery, nothing missed while the agent is away, groups
//! sharing work and groups each getting everything, retries, TLS, and
//! concurrency, order and isolation between outputs (`concurrency`), and
//! input and output functions (`functions`).
//!
//! - `delivery`: the DESIGN §5 guarantees over both transports;
//! - `concurrency`: in-flight limits, order and isolation between outputs;
//! - `functions`: input and output functions with a real agent;
//! - `tls`: HTTPS, gRPC and WSS with a CA made at test time.
//!
//! Every module runs once per store (`sqlite::…`, `redis::…`, see
//! `testkit::store_suites!`); the helpers here are shared by both.

// Each module twice, `sqlite::…` and `redis::…`, its relays on that store
// (issue 12): a plain `cargo test` covers both, and fails when Redis is not
// answering.
testkit::store_suites! {
    mod concurrency;
    mod delivery;
    mod functions;
    mod tls;
}

use std::time::Duration;

use agent::{AgentConfig, Transport};
use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::{post, Destination, Relay};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PATIENCE: Duration = Duration::from_secs(20);
const TRANSPORTS: [Transport; 2] = [Transport::Grpc, Transport::WebSocket];

/// A relay with bucket `prod`, a plain input and an internal output whose
/// URL is the destination's `/hook`, plus an agent token.
struct World {
    relay: Relay,
    destination: Destination,
    input_url: String,
    token: String,
}

async fn world() -> World {
    let relay = Relay::spawn().await;
    let destination = Destination::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "prod"})).await;
    let id = bucket["id"].as_str().unwrap().to_owned();
    let input = relay.create_input(&id, json!({"name": "in"})).await;
    relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{id}/outputs"),
            Some(
                json!({"url": format!("{}/hook", destination.url), "internal": true,
                        "timeoutMs": 5000, "retry": {"maxAttempts": 5, "initialDelayMs": 50}}),
            ),
            StatusCode::CREATED,
        )
        .await;
    let token = new_token(&relay).await;
    World {
        input_url: input["url"].as_str().unwrap().to_owned(),
        relay,
        destination,
        token,
    }
}

async fn new_token(relay: &Relay) -> String {
    relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "agent", "mode": "forward"})),
            StatusCode::CREATED,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn config(w: &World, transport: Transport, group: &str) -> AgentConfig {
    let (key, secret) = w.token.split_once('.').unwrap();
    AgentConfig {
        server: w.relay.url.clone(),
        token_key: key.into(),
        token_secret: secret.into(),
        buckets: vec!["prod".into()],
        group: group.into(),
        transport,
        destination: None,
        max_in_flight: 8,
        stop_grace: Duration::from_secs(5),
        ca_file: None,
    }
}

/// A running agent; `kill` drops its connection at once (no clean stop).
struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), agent::AgentError>>,
}

impl Running {
    fn start(config: AgentConfig) -> Running {
        let stop = CancellationToken::new();
        let task = tokio::spawn(agent::run(config, stop.clone(), None));
        Running { stop, task }
    }

    fn kill(self) {
        self.task.abort();
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("agent task").expect("agent ran");
    }
}

/// Waits until `n` agents are connected.
async fn agents_connected(relay: &Relay, n: usize) {
    testkit::wait_until(PATIENCE, &format!("{n} agents connected"), || async {
        let v = relay
            .admin(Method::GET, "/v1/agents", None, StatusCode::OK)
            .await;
        v["agents"].as_array().map_or(0, Vec::len) == n
    })
    .await;
}

/// Waits until every delivery of every event is `delivered`.
async fn all_delivered(relay: &Relay) {
    testkit::wait_until(PATIENCE, "every delivery settled as delivered", || async {
        let mut settled = true;
        for event in relay.events().await {
            let path = format!("/v1/events/{}", event["id"].as_str().unwrap_or_default());
            let one = relay.admin(Method::GET, &path, None, StatusCode::OK).await;
            settled &= one["deliveries"]
                .as_array()
                .is_some_and(|d| d.iter().all(|d| d["state"] == "delivered"));
        }
        settled
    })
    .await;
}

async fn send(w: &World, body: &[u8]) {
    let (status, _) = post(&w.relay.http, &w.input_url, &[], body).await;
    assert_eq!(status, StatusCode::OK);
}

fn bodies(received: &[testkit::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}
