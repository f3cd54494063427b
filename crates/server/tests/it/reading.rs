//! Reading events back: the Radarboard poll, cursor pagination, long-poll
//! and the SSE stream (DESIGN §3.2, §8).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Relay;

const POLL_SECRET: &str = "poll-secret";

async fn poll(relay: &Relay, query: &str, credential: &str) -> (StatusCode, Value, Option<i64>) {
    let response = relay
        .http
        .get(format!("{}/api/events{query}", relay.url))
        .bearer_auth(credential)
        .header("origin", "https://dash.example")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let stamp = response
        .headers()
        .get("x-relay-timestamp")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    if status == StatusCode::OK {
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://dash.example"
        );
    }
    (status, response.json().await.unwrap_or(Value::Null), stamp)
}

async fn poll_relay() -> (Relay, Value) {
    let relay = Relay::builder()
        .config(|c| {
            c.poll_secret = Some(model::Secret::new(POLL_SECRET));
            c.allowed_origin = Some("https://dash.example".into());
        })
        .spawn()
        .await;
    relay.create_bucket(json!({"name": "b"})).await;
    let input = relay.create_input("b", json!({})).await;
    (relay, input)
}

#[tokio::test]
async fn the_radarboard_poll_returns_events_since_with_the_next_timestamp() {
    let (relay, input) = poll_relay().await;
    let url = input["url"].as_str().unwrap();
    for i in 0..3 {
        assert_eq!(
            testkit::post(&relay.http, url, &[], format!("{i}").as_bytes())
                .await
                .0,
            StatusCode::OK
        );
    }
    // A shared store's horizon lags the clock by the cluster's skew bound
    // (under a second); the stamps below are checked once it has passed
    // these events, as it has at once on the embedded store.
    let newest = relay.events().await[2]["receivedAt"].as_i64().unwrap();
    testkit::wait_until(Duration::from_secs(10), "the horizon passes", || async {
        relay.store.visible_before() > newest
    })
    .await;
    let (status, events, stamp) = poll(&relay, "", POLL_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    let events = events.as_array().unwrap().clone();
    assert_eq!(events.len(), 3);
    let bodies: Vec<_> = events.iter().map(|e| e["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["0", "1", "2"], "oldest first");
    let stamp = stamp.expect("X-Relay-Timestamp");
    assert!(events
        .iter()
        .all(|e| e["receivedAt"].as_i64().unwrap() <= stamp));

    // Polling from the stamp misses nothing that comes later.
    assert_eq!(
        testkit::post(&relay.http, url, &[], b"3").await.0,
        StatusCode::OK
    );
    let (_, later, _) = poll(&relay, &format!("?since={stamp}"), POLL_SECRET).await;
    let later: Vec<_> = later
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(later.contains(&"3".to_owned()), "{later:?}");
    assert!(!later.contains(&"0".to_owned()));

    // A page cut short by `limit` stamps its last event, so paging by the
    // stamp walks through every event (the boundary one twice).
    let (_, limited, cut) = poll(&relay, "?limit=2", POLL_SECRET).await;
    let limited = limited.as_array().unwrap().clone();
    assert_eq!(limited.len(), 2);
    assert_eq!(Some(limited[1]["receivedAt"].as_i64().unwrap()), cut);
    let (_, rest, _) = poll(&relay, &format!("?since={}", cut.unwrap()), POLL_SECRET).await;
    let rest: Vec<_> = rest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        rest.ends_with(&["2".to_owned(), "3".to_owned()]),
        "{rest:?}"
    );
    let (_, capped, _) = poll(&relay, "?limit=100000", POLL_SECRET).await;
    assert_eq!(
        capped.as_array().unwrap().len(),
        4,
        "a big limit is capped, not refused"
    );
    let (_, future, _) = poll(
        &relay,
        &format!("?since={}", stamp + 3_600_000),
        POLL_SECRET,
    )
    .await;
    assert_eq!(future, json!([]));
    let (status, body, _) = poll(&relay, "", "wrong").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    // A poll token works too.
    let token = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "poll"})),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        poll(&relay, "", token["token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_poll_has_its_own_rate_limit_and_cors() {
    let (relay, _) = poll_relay().await;
    // Six polls were allowed above in other tests' relays; here we count 20.
    for _ in 0..20 {
        assert_eq!(poll(&relay, "", POLL_SECRET).await.0, StatusCode::OK);
    }
    let (status, body, _) = poll(&relay, "", POLL_SECRET).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );

    let preflight = relay
        .http
        .request(Method::OPTIONS, format!("{}/api/events", relay.url))
        .header("origin", "https://dash.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let foreign = relay
        .http
        .request(Method::OPTIONS, format!("{}/api/events", relay.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(foreign
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn cursor_pages_return_every_event_once_in_order() {
    let (relay, input) = poll_relay().await;
    let url = input["url"].as_str().unwrap();
    for i in 0..7 {
        assert_eq!(
            testkit::post(&relay.http, url, &[], format!("{i}").as_bytes())
                .await
                .0,
            StatusCode::OK
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/events?bucket=b&limit=3&after={a}"),
            None => "/v1/events?bucket=b&limit=3".to_owned(),
        };
        let page = relay.admin(Method::GET, &path, None, StatusCode::OK).await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            assert_eq!(
                page["next"].as_str(),
                after.as_deref(),
                "an empty page keeps the cursor"
            );
            break;
        }
        seen.extend(
            events
                .iter()
                .map(|e| e["body"].as_str().unwrap().to_owned()),
        );
        after = page["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, ["0", "1", "2", "3", "4", "5", "6"]);
    let (status, _) = relay
        .call(Method::GET, "/v1/events?after=garbage", &relay.admin, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_long_poll_wakes_on_the_next_event() {
    let (relay, input) = poll_relay().await;
    let first = relay
        .admin(Method::GET, "/v1/events", None, StatusCode::OK)
        .await;
    assert_eq!(first["next"], Value::Null);
    let waiting = {
        let http = relay.http.clone();
        let url = format!("{}/v1/events?wait=30", relay.url);
        let admin = relay.admin.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let page: Value = http
                .get(url)
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (page, started.elapsed())
        })
    };
    testkit::wait_until(
        std::time::Duration::from_secs(10),
        "the long-poll is parked",
        || async { super::long_polls_waiting(&relay).await == 1 },
    )
    .await;
    assert_eq!(
        testkit::post(&relay.http, input["url"].as_str().unwrap(), &[], b"wake")
            .await
            .0,
        StatusCode::OK
    );
    let (page, elapsed) = waiting.await.unwrap();
    assert_eq!(page["events"][0]["body"], "wake");
    assert!(
        elapsed.as_secs() < 30,
        "woken by the event, not the timeout"
    );
}

/// Reads SSE lines until `count` events arrived; returns their ids and data.
async fn read_sse(response: reqwest::Response, count: usize) -> Vec<(String, Value)> {
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while events.len() < count {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("SSE events arrive in time")
            .expect("stream open")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .map(str::to_owned);
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned);
            if let (Some(id), Some(data)) = (id, data) {
                events.push((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_sse_stream_is_live_and_resumes_from_last_event_id() {
    let (relay, input) = poll_relay().await;
    let url = input["url"].as_str().unwrap().to_owned();
    assert_eq!(
        testkit::post(&relay.http, &url, &[], b"before").await.0,
        StatusCode::OK
    );
    let stream = relay
        .http
        .get(format!("{}/v1/buckets/b/stream", relay.url))
        .bearer_auth(&relay.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    for body in ["live-1", "live-2"] {
        assert_eq!(
            testkit::post(&relay.http, &url, &[], body.as_bytes())
                .await
                .0,
            StatusCode::OK
        );
    }
    let live = read_sse(stream, 2).await;
    let bodies: Vec<_> = live
        .iter()
        .map(|(_, e)| e["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["live-1", "live-2"],
        "starts at the present, in order"
    );
    assert_eq!(live[0].0, live[0].1["id"].as_str().unwrap());

    assert_eq!(
        testkit::post(&relay.http, &url, &[], b"live-3").await.0,
        StatusCode::OK
    );
    let resumed = relay
        .http
        .get(format!("{}/v1/buckets/b/stream", relay.url))
        .bearer_auth(&relay.admin)
        .header("last-event-id", &live[0].0)
        .send()
        .await
        .unwrap();
    let resumed = read_sse(resumed, 2).await;
    let bodies: Vec<_> = resumed
        .iter()
        .map(|(_, e)| e["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["live-2", "live-3"]);
}

#[tokio::test]
async fn removing_relay_poll_secret_revokes_it() {
    let (relay, _) = poll_relay().await;
    assert_eq!(poll(&relay, "", POLL_SECRET).await.0, StatusCode::OK);
    let dir = relay.stop().await.unwrap();
    let relay = Relay::builder().data_dir(dir.path()).spawn().await;
    let (status, _) = relay
        .call(Method::GET, "/api/events", POLL_SECRET, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
