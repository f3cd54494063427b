//! Several agents serving one tunnel share its requests; when one is
//! killed mid-request, that request fails 502 and the next ones go to the
//! agent that is left.

use serde_json::{json, Value};
use std::collections::HashSet;
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

    // Requests go to the least busy agent: while one holds a request,
    // the others go to the second agent, so both are seen.
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let held = tokio::spawn(relay.http.get(relay.url("shared", "/hold")).send());
        let holder = tokio::select! {
            () = a.held.notified() => &a,
            () = b.held.notified() => &b,
        };
        let echo: Value = relay
            .http
            .get(relay.url("shared", "/echo"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.insert(echo["dest"].as_str().unwrap_or_default().to_owned());
        holder.go.notify_one();
        let _ = held.await;
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "both agents answered: {seen:?}");

    // A request held by agent A's destination; A is killed meanwhile.
    let held = loop {
        let request = tokio::spawn(relay.http.get(relay.url("shared", "/hold")).send());
        let on_a = tokio::select! {
            () = a.held.notified() => true,
            () = b.held.notified() => false,
        };
        if on_a {
            break request;
        }
        b.go.notify_one();
        let _ = request.await;
    };
    agent_a.kill9();
    let cut = held.await.unwrap().unwrap();
    assert_eq!(cut.status(), 502);
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
