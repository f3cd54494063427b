//! Fault tests (issue 7): standing evidence that nothing acknowledged is
//! ever lost, against the real `hookrelay serve` (and `hookrelay agent`)
//! processes on ephemeral loopback ports over a real SQLite file.
//!
//! - `kill`: `serve` SIGKILLed at 20 random moments under steady load and
//!   restarted on the same data dir; every 2xx is stored and delivered.
//! - `agents`: the agent process SIGKILLed and restarted under load; every
//!   2xx reaches the destination.
//! - `disk`: a full tmpfs data dir makes ingest answer 503 and never a 2xx
//!   for an event that is not stored; freeing space recovers it.
//! - `loris`: 10,000 idle connections and slow-loris clients do not
//!   starve real senders.
//! - `bcrypt` (issue 19): a credential flood from one network does not
//!   starve a caller from another in the bcrypt pool.
//! - `bodies` (issue 19): 200 senders of 25 MiB bodies at once leave the
//!   relay's RSS under its body budget plus 100 MiB; every 2xx is stored.
//! - `preauth` (issue 19): a flood of unauthenticated gRPC streams and
//!   WebSockets announcing 32 MiB messages leaves the relay's RSS under
//!   100 MiB while real agents connect and receive.
//!
//! Each test prints one `faults:` summary line (`cargo test -- --nocapture`
//! shows it). Shared here (the cluster tests use the admin client too): the admin API client, the load generator that
//! records which markers were acknowledged, and the tallies.

mod agents;
mod bcrypt;
mod bodies;
mod disk;
mod kill;
mod loris;
mod preauth;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Serve;

/// The admin secret of every fault-test server (given on the command line,
/// so it survives restarts).
pub(super) const ADMIN: &str = "admin-faults";

/// Starts `serve` on `dir` with the admin secret and `extra` flags, off the
/// async runtime (it blocks until the process prints its address).
async fn start_serve(dir: PathBuf, extra: &[&str]) -> Serve {
    let mut args = vec!["--admin-secret".to_owned(), ADMIN.to_owned()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Serve::start_with(&dir, &args, &[])
    })
    .await
    .expect("start serve")
}

/// The admin API of one server.
#[derive(Clone)]
pub(super) struct Api {
    base: String,
    http: reqwest::Client,
}

/// A bucket with one plain input (no rate limit to speak of) and one output.
struct Setup {
    bucket: String,
    input: String,
}

impl Api {
    pub(super) fn new(base: &str) -> Api {
        Api {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the admin API answers");
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub(super) async fn must(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: StatusCode,
    ) -> Value {
        let (status, value) = self.call(method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path} answered {value}");
        value
    }

    /// Bucket `name` with a plain input and the output `output` (JSON of
    /// `POST /v1/buckets/{id}/outputs`), if any.
    async fn setup(&self, name: &str, output: Option<Value>) -> Setup {
        let bucket = self
            .must(
                Method::POST,
                "/v1/buckets",
                Some(json!({"name": name})),
                StatusCode::CREATED,
            )
            .await;
        let bucket = bucket["id"].as_str().expect("bucket id").to_owned();
        // Every sender is 127.0.0.1: lift the per-IP ingest limit.
        let input = self
            .must(
                Method::POST,
                &format!("/v1/buckets/{bucket}/inputs"),
                Some(json!({"name": format!("{name}-in"),
                            "rateLimit": {"requests": 100_000_000, "windowSeconds": 60}})),
                StatusCode::CREATED,
            )
            .await;
        let input = input["id"].as_str().expect("input id").to_owned();
        if let Some(output) = output {
            self.must(
                Method::POST,
                &format!("/v1/buckets/{bucket}/outputs"),
                Some(output),
                StatusCode::CREATED,
            )
            .await;
        }
        Setup { bucket, input }
    }

    /// Every event of `bucket`, oldest first, through `GET /v1/events`
    /// cursor pagination.
    pub(super) async fn all_events(&self, bucket: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        // Bounded: 2,000 pages of 500 is far beyond any test's volume.
        for _ in 0..2_000 {
            let mut path = format!("/v1/events?bucket={bucket}&limit=500");
            if let Some(after) = &after {
                path.push_str(&format!("&after={after}"));
            }
            let page = self.must(Method::GET, &path, None, StatusCode::OK).await;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                return all;
            }
            after = page["next"].as_str().map(str::to_owned);
            all.extend(events);
        }
        panic!("more than 2,000 pages of events");
    }

    /// The markers stored in `bucket`.
    async fn stored_markers(&self, bucket: &str) -> HashSet<String> {
        self.all_events(bucket)
            .await
            .iter()
            .filter_map(|e| e["body"].as_str().and_then(|b| marker_of(b.as_bytes())))
            .collect()
    }
}

fn ingest_url(base: &str, input: &str) -> String {
    format!("{base}/v1/webhooks/{input}")
}

/// The marker of a body the load sent: `{"marker": "..."}`.
fn marker_of(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value["marker"].as_str().map(str::to_owned)
}

/// How often each marker arrived at the destination.
fn arrivals(received: &[testkit::Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in received {
        if let Some(marker) = marker_of(&request.body) {
            *counts.entry(marker).or_insert(0) += 1;
        }
    }
    counts
}

/// Deliveries beyond the first of each marker.
fn duplicates(counts: &HashMap<String, usize>) -> usize {
    counts.values().map(|n| n - 1).sum()
}

/// A small xorshift generator: the kill moments vary per round and per run;
/// the seed is printed so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("HOOKRELAY_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        Rng(seed | 1)
    }

    fn seed(&self) -> u64 {
        self.0
    }

    /// Uniform-ish in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo).max(1)
    }
}

/// What the senders saw.
#[derive(Default)]
struct Ledger {
    /// Markers answered 2xx: the relay promised to keep these.
    acked: Mutex<Vec<String>>,
    /// Requests that got no answer (connection refused or cut by a kill).
    unanswered: AtomicU64,
    /// Answers that were not 2xx, by status.
    refused: Mutex<HashMap<u16, u64>>,
}

impl Ledger {
    fn acked(&self) -> Vec<String> {
        self.acked.lock().expect("ledger lock").clone()
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().expect("ledger lock").len()
    }
}

/// A few concurrent senders posting `{"marker": "<sender>-<n>"}` to the
/// ingest URL in `url` (which a restart changes) until stopped.
struct Load {
    url: watch::Sender<String>,
    ledger: Arc<Ledger>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// How long a sender waits for a new server after a failed request.
const NEW_SERVER_WAIT: Duration = Duration::from_secs(60);
/// Requests per sender at most: a bound, far above any test's volume.
const MAX_REQUESTS_PER_SENDER: u64 = 1_000_000;

impl Load {
    fn start(senders: usize, url: String) -> Load {
        let (url, _) = watch::channel(url);
        let ledger = Arc::new(Ledger::default());
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("an HTTP client");
        for id in 0..senders {
            tasks.spawn(send(
                id,
                http.clone(),
                url.subscribe(),
                Arc::clone(&ledger),
                stop.clone(),
            ));
        }
        Load {
            url,
            ledger,
            stop,
            tasks,
        }
    }

    /// Points every sender at a new ingest URL.
    fn retarget(&self, url: String) {
        self.url.send_replace(url);
    }

    /// Stops the senders and waits for their last answers.
    async fn finish(mut self) -> Arc<Ledger> {
        self.stop.cancel();
        let all = async { while self.tasks.join_next().await.is_some() {} };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("senders stop within 60 s");
        Arc::clone(&self.ledger)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn send(
    id: usize,
    http: reqwest::Client,
    mut url: watch::Receiver<String>,
    ledger: Arc<Ledger>,
    stop: CancellationToken,
) {
    for n in 0..MAX_REQUESTS_PER_SENDER {
        if stop.is_cancelled() {
            return;
        }
        let target = url.borrow_and_update().clone();
        let marker = format!("s{id}-{n}");
        let answer = http
            .post(&target)
            .header("content-type", "application/json")
            .body(json!({ "marker": marker }).to_string())
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {
                ledger.acked.lock().expect("ledger lock").push(marker);
            }
            Ok(r) => {
                let mut refused = ledger.refused.lock().expect("ledger lock");
                *refused.entry(r.status().as_u16()).or_insert(0) += 1;
            }
            Err(_) => {
                // The server is down: wait for the next one (a changed
                // URL), not in a tight loop.
                ledger.unanswered.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    () = stop.cancelled() => return,
                    changed = url.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(NEW_SERVER_WAIT) => return,
                }
            }
        }
    }
}

/// Waits until every marker of `want` arrived at `destination`; on timeout
/// panics naming a few missing ones.
async fn wait_delivered(
    destination: &testkit::Destination,
    want: &HashSet<String>,
    deadline: Duration,
) -> HashMap<String, usize> {
    let end = Instant::now() + deadline;
    loop {
        let counts = arrivals(&destination.received());
        let missing: Vec<&String> = want.iter().filter(|m| !counts.contains_key(*m)).collect();
        if missing.is_empty() {
            return counts;
        }
        assert!(
            Instant::now() < end,
            "{} of {} events never reached the destination within {deadline:?}, e.g. {:?}",
            missing.len(),
            want.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
