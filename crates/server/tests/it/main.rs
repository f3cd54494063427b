//! Behaviour of the real server over real HTTP on `127.0.0.1:0`, through
//! `testkit`. One binary, a module per concern:
//! - `ingest`: every pipeline step's rejection and the order of the steps;
//! - `integrations`: every provider's scheme end to end (issue 3);
//! - `admin`: the administration API's shapes and error answers;
//! - `defaults`: input limits as made and shown, and what they let through;
//! - `agents`: the agent protocol from a raw WebSocket client;
//! - `isolation`: one tenant's credentials see nothing of another's;
//! - `reading`: the Radarboard poll, cursor pagination, long-poll and SSE;
//! - `lifecycle`: operations routes, restart persistence, shutdown;
//! - `protection`: encryption at rest as the API shows it (tampered
//!   records), retention reclaiming space, token rotation;
//! - `filters`: event filters on `GET /v1/events` and the bulk resend;
//! - `functions`: function objects, `invoke`, input and output functions
//!   and their failure rules (issue 16);
//! - `openapi`: `GET /openapi.json` parses and describes every route;
//! - `security`: cross-tenant probing of every route, SSRF on public
//!   outputs, request smuggling on ingest (issue 7);
//! - `sessions`: an agent's acks are read while a send to it waits.
//!
//! Every module runs once per store (`sqlite::…`, `redis::…`, see
//! `testkit::store_suites!`); the helpers below are shared by both.

// Each module twice, `sqlite::…` and `redis::…`, its relays on that store
// (issue 12): a plain `cargo test` covers both, and fails when Redis is not
// answering. A test that cannot run on Redis starts with
// `testkit::not_on_redis!("why")`.
testkit::store_suites! {
    mod admin;
    mod agents;
    mod defaults;
    mod filters;
    mod functions;
    mod handshakes;
    mod ingest;
    mod integrations;
    mod isolation;
    mod lifecycle;
    mod openapi;
    mod protection;
    mod reading;
    mod security;
    mod sessions;
}

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Relay;

/// The GitHub secret every test input uses.
const SECRET: &str = "It's a Secret to Everybody";

/// A relay with one bucket and one GitHub input; returns (relay, input).
async fn relay_with_github_input() -> (Relay, Value) {
    let relay = Relay::spawn().await;
    let input = github_input(&relay, json!({"name": "prod"})).await;
    (relay, input)
}

/// Creates a bucket from `bucket` and a GitHub input in it.
async fn github_input(relay: &Relay, bucket: Value) -> Value {
    let bucket = relay.create_bucket(bucket).await;
    relay
        .create_input(
            bucket["id"].as_str().unwrap(),
            json!({"name": format!("gh-{}", bucket["name"].as_str().unwrap()), "integration": "github", "secrets": [SECRET]}),
        )
        .await
}

/// Posts a correctly signed GitHub `push` webhook to `url`.
async fn post_signed(relay: &Relay, url: &str, body: &[u8]) -> (StatusCode, String) {
    let mut headers = testkit::github_headers(SECRET, body, "push");
    headers.push(("content-type".into(), "application/json".into()));
    testkit::post(&relay.http, url, &headers, body).await
}

/// The `error` code of a JSON error body.
fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap_or(Value::Null)["error"]
        .as_str()
        .unwrap_or("<no error code>")
        .to_owned()
}

async fn patch(relay: &Relay, path: &str, body: Value) -> Value {
    relay
        .admin(Method::PATCH, path, Some(body), StatusCode::OK)
        .await
}

/// The relay's `hookrelay_long_polls_waiting` gauge.
async fn long_polls_waiting(relay: &Relay) -> u64 {
    let metrics = relay
        .http
        .get(format!("{}/metrics", relay.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("hookrelay_long_polls_waiting "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the long-poll gauge")
}

/// A bucket `b` with one plain input; returns the input and its URL path.
async fn plain_input(relay: &Relay) -> (Value, String) {
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let input = relay
        .create_input(bucket["id"].as_str().unwrap(), json!({}))
        .await;
    let path = input["url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&relay.url)
        .to_owned();
    (input, path)
}
