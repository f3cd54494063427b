//! Operations routes, restart persistence, and graceful shutdown.

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::Relay;

use super::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let relay = Relay::spawn().await;
    for path in ["/api/health", "/healthz"] {
        let body: serde_json::Value = relay
            .http
            .get(format!("{}{path}", relay.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "ok");
        assert!(body["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }
    let ready = relay
        .http
        .get(format!("{}/readyz", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let input = github_input(&relay, json!({"name": "m"})).await;
    post_signed(&relay, input["url"].as_str().unwrap(), b"{}").await;
    let metrics = relay
        .http
        .get(format!("{}/metrics", relay.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "hookrelay_http_requests_total{route=\"/v1/webhooks/{input_id}\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("hookrelay_events_stored_total 1"));
    assert!(metrics.contains("hookrelay_ingest_duration_seconds_count 1"));
    let missing = relay
        .http
        .get(format!("{}/no/such/route", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<serde_json::Value>().await.unwrap()["error"],
        "not_found"
    );
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let (relay, input) = relay_with_github_input().await;
    let url = input["url"].as_str().unwrap().to_owned();
    for i in 0..5 {
        let body = format!("{{\"n\":{i}}}");
        assert_eq!(
            post_signed(&relay, &url, body.as_bytes()).await.0,
            StatusCode::OK
        );
    }
    let before = relay.events().await;
    let dir = relay
        .stop()
        .await
        .expect("the relay's own temporary directory");

    let relay = Relay::builder().data_dir(dir.path()).spawn().await;
    assert_eq!(relay.events().await, before);
    let bucket = relay
        .admin(Method::GET, "/v1/buckets/prod", None, StatusCode::OK)
        .await;
    assert_eq!(bucket["id"], input["bucket"]);
    // The input still verifies with the secret given before the restart.
    let new_url = url.replace(&url[..url.find("/v1/").unwrap()], &relay.url);
    assert_eq!(
        post_signed(&relay, &new_url, b"{\"n\":5}").await.0,
        StatusCode::OK
    );
    assert_eq!(relay.events().await.len(), 6);
    drop(dir);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_long_poll_end_promptly() {
    let relay = Relay::spawn().await;
    let http = relay.http.clone();
    let url = format!("{}/v1/events?wait=60", relay.url);
    let admin = relay.admin.clone();
    let poll = tokio::spawn(async move {
        http.get(url)
            .bearer_auth(admin)
            .send()
            .await
            .map(|r| r.status())
    });
    // Wait until the long-poll is in flight: the request counter only moves
    // when it answers, so watch the connection instead via a second request.
    testkit::wait_until(
        std::time::Duration::from_secs(5),
        "the relay answers",
        || async {
            relay
                .http
                .get(format!("{}/healthz", relay.url))
                .send()
                .await
                .is_ok()
        },
    )
    .await;
    let started = std::time::Instant::now();
    relay.stop().await;
    assert!(
        started.elapsed().as_secs() < 10,
        "shutdown did not wait for the 60 s long-poll"
    );
    let status = poll.await.unwrap();
    assert!(status.map(|s| s == StatusCode::OK).unwrap_or(true));
}
