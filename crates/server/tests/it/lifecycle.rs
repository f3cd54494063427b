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
    assert!(metrics.contains("hookrelay_store_queue_depth 0"));
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
        let response = http.get(url).bearer_auth(admin).send().await?;
        let status = response.status();
        response.text().await.map(|body| (status, body))
    });
    testkit::wait_until(
        std::time::Duration::from_secs(10),
        "the long-poll is parked",
        || async { super::long_polls_waiting(&relay).await == 1 },
    )
    .await;
    let started = std::time::Instant::now();
    relay.stop().await;
    assert!(
        started.elapsed().as_secs() < 10,
        "shutdown did not wait for the 60 s long-poll"
    );
    let (status, body) = poll
        .await
        .unwrap()
        .expect("the long-poll is answered, not cut");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["events"],
        json!([])
    );
}

#[tokio::test]
async fn a_failed_store_answers_503_and_acknowledges_nothing() {
    let (relay, input) = relay_with_github_input().await;
    let url = input["url"].as_str().unwrap().to_owned();
    assert_eq!(
        post_signed(&relay, &url, b"{\"n\":1}").await.0,
        StatusCode::OK
    );
    // The real store, closed under the running server: every write fails.
    relay.store.close().await;
    let (status, body) = post_signed(&relay, &url, b"{\"n\":2}").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    let ready = relay
        .http
        .get(format!("{}/readyz", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    let dir = relay.stop().await.unwrap();
    let relay = Relay::builder().data_dir(dir.path()).spawn().await;
    let events = relay.events().await;
    assert_eq!(events.len(), 1, "only the acknowledged event was stored");
    assert_eq!(events[0]["body"], "{\"n\":1}");
}

/// Paused time: an hour of retention passes in an instant (SQLite only, as
/// Redis keeps its own clock).
#[tokio::test]
async fn retention_deletes_old_events_in_the_background() {
    let relay = Relay::builder()
        .store(testkit::StoreKind::Sqlite)
        .config(|c| c.retention_interval = std::time::Duration::from_millis(50))
        .spawn()
        .await;
    let short = relay
        .create_bucket(json!({"name": "short", "retentionSeconds": 3600, "catchupSeconds": 0}))
        .await;
    let long = relay.create_bucket(json!({"name": "long"})).await;
    let short_input = relay
        .create_input(short["id"].as_str().unwrap(), json!({}))
        .await;
    let long_input = relay
        .create_input(long["id"].as_str().unwrap(), json!({}))
        .await;
    for url in [&short_input["url"], &long_input["url"]] {
        assert_eq!(
            testkit::post(&relay.http, url.as_str().unwrap(), &[], b"x")
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(relay.events().await.len(), 2);
    testkit::advance_clock(std::time::Duration::from_secs(3_601)).await;
    testkit::wait_until(
        std::time::Duration::from_secs(10),
        "the 1 h bucket's event is purged",
        || async { relay.events().await.len() == 1 },
    )
    .await;
    assert_eq!(relay.events().await[0]["bucket"], long["id"]);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = Relay::builder()
        .config(|c| c.header_read_timeout = std::time::Duration::from_millis(300))
        .spawn()
        .await;
    let addr = relay.url.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /v1/webhooks/x HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Real senders are still served.
    assert_eq!(
        relay
            .http
            .get(format!("{}/healthz", relay.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_body_that_stalls_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = Relay::builder()
        .config(|c| c.body_read_timeout = std::time::Duration::from_millis(300))
        .spawn()
        .await;
    let (_, path) = super::plain_input(&relay).await;
    let mut slow = tokio::net::TcpStream::connect(relay.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-part");
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), slow.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"));
    assert!(relay.events().await.is_empty());
}

#[tokio::test]
async fn headers_that_are_not_utf8_do_not_break_anything() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = Relay::spawn().await;
    let (_, path) = super::plain_input(&relay).await;
    let addr = relay.url.trim_start_matches("http://").to_owned();
    for (route, auth) in [
        (path.as_str(), false),
        ("/v1/buckets", true),
        ("/api/events", true),
    ] {
        let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut request = format!(
            "POST {route} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n"
        )
        .into_bytes();
        request.extend_from_slice(b"X-Odd: \xff\xfe\x80\r\n");
        if auth {
            request.extend_from_slice(b"Authorization: Bearer \xff\xfe\r\n");
        }
        request.extend_from_slice(b"\r\n{}");
        raw.write_all(&request).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            raw.read_to_end(&mut answer),
        )
        .await
        .expect("an answer")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        let expected = match route {
            "/api/events" => "HTTP/1.1 405",
            _ if auth => "HTTP/1.1 401",
            _ => "HTTP/1.1 200",
        };
        assert!(answer.starts_with(expected), "{route}: {answer}");
        if route == "/api/events" {
            assert!(
                answer.contains("method_not_allowed"),
                "JSON error body: {answer}"
            );
        }
    }
    let events = relay.events().await;
    // Kept byte-exact (DESIGN §8): the view encodes every value in base64.
    assert_eq!(events[0]["headerEncoding"], "base64");
    assert_eq!(events[0]["headers"]["x-odd"], "//6A");
}

#[tokio::test]
async fn idle_connections_do_not_hold_a_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = Relay::builder()
        .config(|c| c.header_read_timeout = std::time::Duration::from_millis(300))
        .spawn()
        .await;
    let addr = relay.url.trim_start_matches("http://").to_owned();
    let closed_within = |mut socket: tokio::net::TcpStream, what: &'static str| async move {
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            socket.read_to_end(&mut rest),
        )
        .await;
        assert!(read.is_ok(), "the server closed the {what} connection");
        started.elapsed()
    };
    // Connects and never says anything.
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(closed_within(silent, "silent").await < std::time::Duration::from_secs(5));
    // Sends one request, then idles on the kept-alive connection.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(idle, "kept-alive").await < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn at_the_connection_bound_a_silent_connection_gives_way() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The header timeout is far beyond the test: only eviction frees slots.
    let relay = Relay::builder()
        .config(|c| {
            c.max_connections = 2;
            c.header_read_timeout = Duration::from_secs(120);
        })
        .spawn()
        .await;
    let addr = relay.url.trim_start_matches("http://").to_owned();
    let request = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    let answered = |mut conn: tokio::net::TcpStream| async move {
        conn.write_all(request).await.unwrap();
        let mut answer = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut answer))
            .await
            .expect("an answer within 10 s, not after the header timeout")
            .unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
        conn
    };
    // A kept-alive connection that has made a request: it never gives way.
    let busy = answered(tokio::net::TcpStream::connect(&addr).await.unwrap()).await;
    // Takes the last slot and says nothing.
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A newcomer at the bound is served: the silent one gave way ...
    answered(tokio::net::TcpStream::connect(&addr).await.unwrap()).await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut rest))
        .await
        .expect("the silent connection is closed")
        .unwrap();
    // ... and the busy one still works.
    answered(busy).await;
}
