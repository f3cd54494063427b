//! Concurrency, order and isolation between outputs (DESIGN §5): what a
//! destination with real latency sees from one agent.

use std::time::Duration;

use agent::Transport;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{Destination, Relay};

use super::{agents_connected, bodies, config, send, Running, World, PATIENCE};

/// A relay with bucket `prod`, a plain input, an agent token, and one
/// internal output per `(destination, extra output fields)`.
async fn world_with(outputs: &[(&Destination, Value)]) -> World {
    world_on(Relay::spawn().await, outputs).await
}

/// `world_with` on a relay of the test's choosing.
async fn world_on(relay: Relay, outputs: &[(&Destination, Value)]) -> World {
    let bucket = relay.create_bucket(json!({"name": "prod"})).await;
    let id = bucket["id"].as_str().unwrap().to_owned();
    let input = relay
        .create_input(
            &id,
            json!({"name": "in", "rateLimit": {"requests": 100_000, "windowSeconds": 60}}),
        )
        .await;
    for (destination, extra) in outputs {
        let mut body = json!({"url": format!("{}/hook", destination.url), "internal": true,
                              "timeoutMs": 2_000, "retry": {"maxAttempts": 3, "initialDelayMs": 60_000}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let made = relay
            .admin(
                Method::POST,
                &format!("/v1/buckets/{id}/outputs"),
                Some(body),
                StatusCode::CREATED,
            )
            .await;
        for (k, v) in extra.as_object().unwrap() {
            assert_eq!(&made[k], v, "the output shows {k}");
        }
    }
    World {
        input_url: input["url"].as_str().unwrap().to_owned(),
        token: super::new_token(&relay).await,
        relay,
        destination: Destination::spawn().await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_output_overlaps_up_to_its_concurrency_and_never_more() {
    let slow = Destination::with_latency(Duration::from_millis(100)).await;
    let w = world_with(&[(&slow, json!({"concurrency": 4}))]).await;
    for i in 0..24 {
        send(&w, format!("e{i}").as_bytes()).await;
    }
    let mut c = config(&w, Transport::Grpc, "");
    c.max_in_flight = 16;
    let agent = Running::start(c);
    slow.wait_for(24, PATIENCE).await;
    assert_eq!(slow.peak_in_flight(), 4, "4 at once, never more");
    agent.stop().await;
}

/// On both stores (issue 13: on Redis a row of a full ordered output that
/// a node read and handed back used to lose its place to the next one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_output_never_overlaps_and_arrives_in_order() {
    let slow = Destination::with_latency(Duration::from_millis(20)).await;
    let w = world_with(&[(&slow, json!({"ordered": true, "concurrency": 64}))]).await;
    // A backlog, then live events while it drains.
    for i in 0..10 {
        send(&w, format!("e{i:02}").as_bytes()).await;
    }
    let mut c = config(&w, Transport::WebSocket, "");
    c.max_in_flight = 64;
    let agent = Running::start(c);
    agents_connected(&w.relay, 1).await;
    for i in 10..20 {
        send(&w, format!("e{i:02}").as_bytes()).await;
    }
    let got = slow.wait_for(20, PATIENCE).await;
    let expected: Vec<String> = (0..20).map(|i| format!("e{i:02}")).collect();
    assert_eq!(bodies(&got), expected, "in event order");
    assert_eq!(slow.peak_in_flight(), 1, "one at a time");
    agent.stop().await;
}

/// Issue 13: one dead output used to take every slot of the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_a_black_hole_output_does_not_starve_a_healthy_one() {
    let black_hole = Destination::with_latency(Duration::from_secs(3600)).await;
    let healthy = Destination::spawn().await;
    let w = world_with(&[(&black_hole, json!({})), (&healthy, json!({}))]).await;
    // The agent's defaults: 16 in flight, outputs of concurrency 16.
    let mut c = config(&w, Transport::Grpc, "");
    c.max_in_flight = 16;
    let agent = Running::start(c);
    agents_connected(&w.relay, 1).await;
    let n = 100;
    for i in 0..n {
        send(&w, format!("e{i}").as_bytes()).await;
    }
    healthy.wait_for(n, PATIENCE).await;
    assert!(
        black_hole.peak_in_flight() <= 8,
        "the dead output held {} slots of 16 with two outputs ready",
        black_hole.peak_in_flight()
    );
    agent.stop().await;
}

/// Issue 13: a backlog read in batches from a cursor, with the agent gone
/// halfway (its deliveries in flight handed back behind the cursor), still
/// arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_a_backlog_with_the_agent_killed_halfway_loses_nothing() {
    let slow = Destination::with_latency(Duration::from_millis(5)).await;
    let w = world_with(&[(&slow, json!({"concurrency": 8}))]).await;
    let n = 300;
    for i in 0..n {
        send(&w, format!("e{i:03}").as_bytes()).await;
    }
    let mut c = config(&w, Transport::Grpc, "");
    c.max_in_flight = 8;
    let first = Running::start(c.clone());
    slow.wait_for(n / 2, PATIENCE).await;
    first.kill();
    let second = Running::start(c);
    testkit::wait_until(PATIENCE, "every event of the backlog arrived", || async {
        distinct(&slow) == n
    })
    .await;
    second.stop().await;
}

fn distinct(d: &Destination) -> usize {
    let mut seen: Vec<String> = bodies(&d.received());
    seen.sort();
    seen.dedup();
    seen.len()
}
