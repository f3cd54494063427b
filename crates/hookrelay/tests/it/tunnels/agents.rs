//! Several agents serving one tunnel share its requests; when one is
//! killed mid-request, that request fails 502 and the next ones go to the
//! agent that is left.

use serde_json::{json, Value};
use std::time::Duration;

use super::{destination, Agent, Relay};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_share_requests_and_a_killed_one_fails_only_its_own() {
    let relay = Relay::start();
    let a = destination::spawn("a").await;
    let b = destination::spawn("b").await;
    let (tunnel, token) = relay.tunnel("shared", json!({})).await;
    let show = format!("/v1/tunnels/{}", tunnel["id"].as_str().unwrap());
    let agent_a = Agent::spawn(&relay, &token, "shared", &a.url, "grpc");
    let _agent_b = Agent::spawn(&relay, &token, "shared", &b.url, "ws");
    testkit::wait_until(Duration::from_secs(20), "both agents connected", || async {
        relay.admin(reqwest::Method::GET, &show, None).await.1["agents"] == 2
    })
    .await;

    // Requests go to the least busy agent: while one agent's destination
    // holds a request, the next goes to the other agent.
    let first = tokio::spawn(relay.http.get(relay.url("shared", "/hold")).send());
    let first_on_a = tokio::select! {
        () = a.held.notified() => true,
        () = b.held.notified() => false,
    };
    let second = tokio::spawn(relay.http.get(relay.url("shared", "/hold")).send());
    if first_on_a {
        b.held.notified().await;
    } else {
        a.held.notified().await;
    }
    let (on_a, on_b) = if first_on_a {
        (first, second)
    } else {
        (second, first)
    };

    // Agent A is killed while it holds its request: that one fails 502,
    // B's completes, and new requests go to B.
    agent_a.kill9();
    let cut = on_a.await.unwrap().unwrap();
    assert_eq!(cut.status(), 502);
    b.go.notify_one();
    let kept = on_b.await.unwrap().unwrap();
    assert_eq!(kept.text().await.unwrap(), "released by b");
    for _ in 0..5 {
        let echo: Value = relay
            .http
            .get(relay.url("shared", "/echo"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(echo["dest"], "b");
    }
}
