//! Agents killed and restarted during load: one `serve`, a bucket with an
//! internal output pointing at a recording destination on 127.0.0.1, and
//! the real `hookrelay agent` process, SIGKILLed at a random moment of
//! each round and started again while two senders keep posting. Every
//! marker answered 2xx must reach the destination (at least once).

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{ingest_url, start_serve, wait_delivered, Api, Load, Rng};
use crate::BIN;

const KILLS: usize = 15;
/// Two senders: one agent forwards an output's deliveries one after
/// another (about 25 to 50 a second in a debug build on a busy 2-core
/// machine), so more would only grow a backlog the test then waits out.
const SENDERS: usize = 2;
/// Deliveries each round waits for before its random delay, so every kill
/// lands on an agent that is forwarding.
const DELIVERIES_BEFORE_KILL: usize = 20;
const KILL_DELAY_MS: (u64, u64) = (0, 250);

/// A `hookrelay agent` child process; SIGKILLed and reaped on drop.
pub(super) struct Agent(Option<Child>);

impl Agent {
    fn start(server: &str, token: &str) -> Agent {
        Agent::start_with(server, token, &["--bucket", "agents"])
    }

    /// An agent with `args` after its server and token.
    pub(super) fn start_with(server: &str, token: &str, args: &[&str]) -> Agent {
        let child = Command::new(BIN)
            .args(["agent", "--server", server, "--token", token])
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("HOOKRELAY_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hookrelay agent");
        Agent(Some(child))
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.0.take() {
            child.kill().expect("SIGKILL the agent");
            child.wait().expect("reap the agent");
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The ids of the agents connected now.
async fn agent_ids(api: &Api) -> HashSet<String> {
    let (status, list) = api.call(Method::GET, "/v1/agents", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["agents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_killed_under_load_lose_nothing_acknowledged() {
    let started = Instant::now();
    let data = tempfile::tempdir().expect("a data dir");
    let destination = testkit::Destination::spawn().await;
    let serve = start_serve(data.path().to_owned(), &[]).await;
    let api = Api::new(&serve.url);
    let setup = api
        .setup(
            "agents",
            Some(json!({
                "url": format!("{}/hook", destination.url),
                "internal": true,
                "timeoutMs": 5000,
                "retry": {"maxAttempts": 100, "initialDelayMs": 20},
            })),
        )
        .await;
    let token: Value = api
        .must(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "agent", "mode": "forward"})),
            StatusCode::CREATED,
        )
        .await;
    let token = token["token"].as_str().expect("agent token").to_owned();
    let mut rng = Rng::from_env_or_clock();
    let seed = rng.seed();
    let load = Load::start(SENDERS, ingest_url(&serve.url, &setup.input));

    let mut seen: HashSet<String> = HashSet::new();
    let mut agent = Agent::start(&serve.url, &token);
    for round in 0..KILLS {
        // This round's agent is connected (an id not seen before) ...
        testkit::wait_until(
            Duration::from_secs(30),
            &format!("round {round}: the agent connects"),
            || async { agent_ids(&api).await.iter().any(|id| !seen.contains(id)) },
        )
        .await;
        seen.extend(agent_ids(&api).await);
        // ... and forwarding.
        let before = destination.received().len();
        testkit::wait_until(
            Duration::from_secs(30),
            &format!("round {round}: {DELIVERIES_BEFORE_KILL} deliveries through the agent"),
            || async { destination.received().len() >= before + DELIVERIES_BEFORE_KILL },
        )
        .await;
        let delay = rng.range(KILL_DELAY_MS.0, KILL_DELAY_MS.1);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        agent.kill9();
        agent = Agent::start(&serve.url, &token);
    }
    let before = load.ledger.acked_count();
    testkit::wait_until(
        Duration::from_secs(30),
        "more requests acknowledged after the last restart",
        || async { load.ledger.acked_count() > before },
    )
    .await;
    let ledger = load.finish().await;
    let stopped = Instant::now();
    let arrived_at_stop = super::arrivals(&destination.received()).len();

    let acked: HashSet<String> = ledger.acked().into_iter().collect();
    let counts = wait_delivered(&destination, &acked, Duration::from_secs(120)).await;
    let caught_up = stopped.elapsed().as_secs_f64();
    let duplicates = super::duplicates(&counts);
    let lost = acked.iter().filter(|m| !counts.contains_key(*m)).count();
    println!(
        "faults: agent kill -9: {KILLS} kill points (seed {seed}), {} events acknowledged, \
         {lost} lost, {} delivered, {duplicates} duplicates delivered (all in {caught_up:.1} s after the load stopped, {} to go then), other answers {:?}, {:.1} s",
        acked.len(),
        counts.len(),
        counts.len().saturating_sub(arrived_at_stop),
        ledger.refused.lock().expect("ledger lock"),
        started.elapsed().as_secs_f64(),
    );
    assert_eq!(lost, 0);
    drop(agent);
    drop(serve);
}
