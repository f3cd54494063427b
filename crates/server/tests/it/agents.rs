//! The agent protocol seen from a raw client speaking protobuf over the
//! WebSocket transport: what a well-behaved agent gets, and what the server
//! does with one that sends garbage, oversized frames or never acks. The
//! real agent's end-to-end tests live in `crates/agent/tests`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proto::{agent_message::Kind as Up, pb, server_message::Kind as Down};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{post, Relay};
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(15);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A bucket with an internal output and an input, plus an agent token.
struct Setup {
    relay: Relay,
    bucket: Value,
    input_url: String,
    token: String,
}

async fn setup(output: Value) -> Setup {
    setup_bucket(json!({"name": "prod"}), output).await
}

/// `setup` with the bucket created from `bucket`.
async fn setup_bucket(bucket: Value, output: Value) -> Setup {
    setup_on(Relay::spawn().await, bucket, output).await
}

/// `setup_bucket` on a relay of the test's choosing.
async fn setup_on(relay: Relay, bucket: Value, output: Value) -> Setup {
    let bucket = relay.create_bucket(bucket).await;
    let id = bucket["id"].as_str().unwrap().to_owned();
    let input = relay.create_input(&id, json!({"name": "plain"})).await;
    relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{id}/outputs"),
            Some(output),
            StatusCode::CREATED,
        )
        .await;
    let token = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "agent", "mode": "forward"})),
            StatusCode::CREATED,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    Setup {
        input_url: input["url"].as_str().unwrap().to_owned(),
        relay,
        bucket,
        token,
    }
}

fn hello(token: &str, bucket: &str, group: &str, max_in_flight: u32) -> Up {
    let (key, secret) = token.split_once('.').unwrap();
    Up::Hello(pb::Hello {
        token_key: key.into(),
        token_secret: secret.into(),
        buckets: vec![bucket.into()],
        group: group.into(),
        mode: pb::Mode::Forward as i32,
        version: "test".into(),
        max_in_flight,
        tunnel: String::new(),
    })
}

async fn open(relay: &Relay) -> Socket {
    let url = format!("{}/v1/agent/ws", relay.url.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket handshake")
        .0
}

async fn send(socket: &mut Socket, kind: Up) {
    let frame = proto::encode(&proto::AgentMessage::from(kind));
    socket
        .send(Message::Binary(frame.into()))
        .await
        .expect("send a frame");
}

/// The next protocol message, skipping heartbeats; `None` once closed.
async fn next(socket: &mut Socket) -> Option<Down> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time")?;
        match frame {
            Ok(Message::Binary(bytes)) => match proto::decode_server(&bytes).expect("valid") {
                Down::Ping(_) | Down::Pong(_) => continue,
                other => return Some(other),
            },
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn connect(s: &Setup, group: &str, max_in_flight: u32) -> Socket {
    let mut socket = open(&s.relay).await;
    let bucket = s.bucket["name"].as_str().unwrap();
    send(&mut socket, hello(&s.token, bucket, group, max_in_flight)).await;
    match next(&mut socket).await {
        Some(Down::Welcome(w)) => assert_eq!(w.subscriptions.len(), 1),
        other => panic!("expected Welcome, got {other:?}"),
    }
    socket
}

async fn deliver(socket: &mut Socket) -> pb::Deliver {
    match next(socket).await {
        Some(Down::Deliver(d)) => d,
        other => panic!("expected Deliver, got {other:?}"),
    }
}

fn ack(d: &pb::Deliver, status: u32) -> Up {
    Up::Ack(pb::Ack {
        delivery_id: d.delivery_id.clone(),
        status: if (200..300).contains(&status) {
            pb::AckStatus::Delivered
        } else {
            pb::AckStatus::Failed
        } as i32,
        destination_status: status,
        latency_ms: 1,
        ..Default::default()
    })
}

async fn deliveries(relay: &Relay, event: &str) -> Vec<Value> {
    let v = relay
        .admin(
            Method::GET,
            &format!("/v1/events/{event}"),
            None,
            StatusCode::OK,
        )
        .await;
    v["deliveries"].as_array().cloned().unwrap_or_default()
}

fn internal_output(timeout_ms: u64) -> Value {
    json!({"url": "http://10.0.0.7:3000/hook", "internal": true, "timeoutMs": timeout_ms,
           "retry": {"maxAttempts": 3, "initialDelayMs": 50}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_receives_the_body_byte_exact_and_its_ack_is_recorded() {
    let s = setup(internal_output(5_000)).await;
    let mut socket = connect(&s, "", 4).await;
    let body: Vec<u8> = (0u8..=255).chain(b"{\"a\":1}".iter().copied()).collect();
    let url = format!("{}/extra/path?x=1&y=%20", s.input_url);
    let headers = [("x-custom".to_owned(), "kept".to_owned())];
    let (status, _) = post(&s.relay.http, &url, &headers, &body).await;
    assert_eq!(status, StatusCode::OK);

    let d = deliver(&mut socket).await;
    let event = d.event.clone().expect("event");
    assert_eq!(event.body, body);
    assert_eq!(event.method, "POST");
    assert_eq!(event.path, "/extra/path");
    assert_eq!(event.query, "x=1&y=%20");
    assert!(event
        .headers
        .iter()
        .any(|h| h.name == "x-custom" && h.value == "kept"));
    assert_eq!(d.url, "http://10.0.0.7:3000/hook");
    assert_eq!(d.attempt, 1);
    let relay = &s.relay;
    let in_flight = format!(
        "hookrelay_deliveries_in_flight{{output=\"{}\"}}",
        d.output_id
    );
    let metrics = metrics_text(relay).await;
    assert!(metrics.contains(&format!("{in_flight} 1")), "{metrics}");
    send(&mut socket, ack(&d, 204)).await;

    testkit::wait_until(
        PATIENCE,
        "the delivery is recorded as delivered",
        || async {
            let ds = deliveries(relay, &event.id).await;
            ds.len() == 1 && ds[0]["state"] == "delivered"
        },
    )
    .await;
    let ds = deliveries(relay, &event.id).await;
    assert_eq!(ds[0]["attempts"][0]["status"], 204);
    let metrics = metrics_text(relay).await;
    assert!(
        metrics.contains("hookrelay_deliveries_total{result=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains(&in_flight), "none under way: {metrics}");
    assert!(
        metrics.contains("# TYPE hookrelay_backlog_age_seconds gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookrelay_agents_connected 1"),
        "{metrics}"
    );

    let agents = relay
        .admin(Method::GET, "/v1/agents", None, StatusCode::OK)
        .await;
    let listed = agents["agents"].as_array().expect("agents");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["transport"], "ws");
    assert_eq!(listed[0]["group"], s.token.split('.').next().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_tunnel_tokens_are_refused() {
    let s = setup(internal_output(5_000)).await;
    let bucket = s.bucket["name"].as_str().unwrap();
    let mut socket = open(&s.relay).await;
    let wrong = format!("{}.wrong-secret", s.token.split('.').next().unwrap());
    send(&mut socket, hello(&wrong, bucket, "", 1)).await;
    match next(&mut socket).await {
        Some(Down::Error(e)) => assert_eq!(e.code, "unauthorized"),
        other => panic!("expected Error, got {other:?}"),
    }
    assert!(next(&mut socket).await.is_none(), "closed after Error");

    let tunnel = s
        .relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "agent", "mode": "tunnel"})),
            StatusCode::CREATED,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut socket = open(&s.relay).await;
    send(&mut socket, hello(&tunnel, bucket, "", 1)).await;
    match next(&mut socket).await {
        Some(Down::Error(e)) => assert_eq!(e.code, "forbidden"),
        other => panic!("expected Error, got {other:?}"),
    }

    let mut socket = open(&s.relay).await;
    send(&mut socket, hello(&s.token, "no-such-bucket", "", 1)).await;
    match next(&mut socket).await {
        Some(Down::Error(e)) => assert_eq!(e.code, "not_found"),
        other => panic!("expected Error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_end_only_that_session() {
    let s = setup(internal_output(5_000)).await;
    let mut garbage = open(&s.relay).await;
    garbage
        .send(Message::Binary(vec![0xff; 64].into()))
        .await
        .unwrap();
    match next(&mut garbage).await {
        Some(Down::Error(e)) => assert_eq!(e.code, "bad_request"),
        None => {}
        other => panic!("expected Error or close, got {other:?}"),
    }
    let mut text = connect(&s, "", 1).await;
    text.send(Message::Text("hello".into())).await.unwrap();
    match next(&mut text).await {
        Some(Down::Error(e)) => assert_eq!(e.code, "bad_request"),
        None => {}
        other => panic!("expected Error or close, got {other:?}"),
    }

    let mut big = open(&s.relay).await;
    let frame = vec![0u8; proto::MAX_MESSAGE_BYTES + 1024];
    // The server may cut the connection while the frame is still going.
    let _ = big.send(Message::Binary(frame.into())).await;
    assert!(
        !matches!(next(&mut big).await, Some(Down::Welcome(_))),
        "an oversized frame is never taken for a Hello"
    );

    // The server still serves a well-behaved agent.
    let mut good = connect(&s, "", 1).await;
    post(&s.relay.http, &s.input_url, &[], b"still here").await;
    let d = deliver(&mut good).await;
    assert_eq!(d.event.unwrap().body, b"still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_max_in_flight_and_a_silent_agent_is_cut_off() {
    // A 300 ms output timeout: an agent that holds a delivery for longer
    // (plus the server's grace) is cut off and its work goes elsewhere.
    let s = setup(internal_output(300)).await;
    let mut hoarder = connect(&s, "g", 2).await;
    for i in 0..5 {
        let (status, _) = post(&s.relay.http, &s.input_url, &[], format!("e{i}").as_bytes()).await;
        assert_eq!(status, StatusCode::OK);
    }
    let first = deliver(&mut hoarder).await;
    let second = deliver(&mut hoarder).await;
    assert_eq!(first.event.as_ref().unwrap().body, b"e0");
    assert_eq!(second.event.as_ref().unwrap().body, b"e1");
    // Never acks: the next thing it hears is the cut-off.
    match next(&mut hoarder).await {
        Some(Down::Error(e)) => assert_eq!(e.code, "too_slow"),
        None => {}
        other => panic!("expected the cut-off, got {other:?}"),
    }

    // A second agent of the group gets everything, oldest first, the two
    // taken back as their second attempt.
    let mut worker = connect(&s, "g", 8).await;
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let d = deliver(&mut worker).await;
        let body = d.event.as_ref().unwrap().body.clone();
        if body == b"e0" || body == b"e1" {
            assert_eq!(d.attempt, 2, "taken back from the silent agent");
        }
        send(&mut worker, ack(&d, 200)).await;
        seen.push(String::from_utf8(body).unwrap());
    }
    seen.sort();
    assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4"]);
}

/// The default retry policy (a first wait of 5 s ± 20 %), in paused time:
/// the wait is skipped, not slept through (SQLite only, as Redis keeps its
/// own clock).
#[tokio::test]
async fn a_failed_forward_is_retried_then_succeeds() {
    let relay = Relay::builder()
        .store(testkit::StoreKind::Sqlite)
        .spawn()
        .await;
    let output = json!({"url": "http://10.0.0.7:3000/hook", "internal": true, "timeoutMs": 5_000});
    let s = setup_on(relay, json!({"name": "prod"}), output).await;
    let mut socket = connect(&s, "", 4).await;
    post(&s.relay.http, &s.input_url, &[], b"retry me").await;
    let d1 = deliver(&mut socket).await;
    send(&mut socket, ack(&d1, 503)).await;
    let first = d1.event.as_ref().unwrap().id.clone();
    testkit::wait_until(PATIENCE, "the failed try is recorded", || async {
        deliveries(&s.relay, &first).await[0]["attempts"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    })
    .await;
    testkit::advance_clock(Duration::from_secs(7)).await;
    let d2 = deliver(&mut socket).await;
    assert_eq!(d2.attempt, 2);
    assert_eq!(d2.event.as_ref().unwrap().id, d1.event.as_ref().unwrap().id);
    send(&mut socket, ack(&d2, 200)).await;
    let event = d1.event.unwrap().id;
    let relay = &s.relay;
    testkit::wait_until(PATIENCE, "delivered on the second try", || async {
        deliveries(relay, &event).await[0]["state"] == "delivered"
    })
    .await;
    let attempts = deliveries(relay, &event).await[0]["attempts"].clone();
    assert_eq!(attempts.as_array().unwrap().len(), 2);
    assert_eq!(attempts[0]["status"], 503);

    // A 404 is not retried.
    post(&s.relay.http, &s.input_url, &[], b"gone").await;
    let d = deliver(&mut socket).await;
    send(&mut socket, ack(&d, 404)).await;
    let event = d.event.unwrap().id;
    testkit::wait_until(PATIENCE, "failed for good", || async {
        deliveries(relay, &event).await[0]["state"] == "failed"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_policy_returns_the_destinations_answer() {
    let s = setup(internal_output(5_000)).await;
    let bucket = s.bucket["id"].as_str().unwrap();
    let waiting = s
        .relay
        .create_input(
            bucket,
            json!({"name": "waits", "response": {"type": "wait", "timeoutMs": 5000, "headers": ["x-allowed"]}}),
        )
        .await;
    let mut socket = connect(&s, "", 4).await;
    let url = waiting["url"].as_str().unwrap().to_owned();
    let http = s.relay.http.clone();
    let caller = tokio::spawn(async move { http.post(url).body("ask").send().await.unwrap() });
    let d = deliver(&mut socket).await;
    assert!(d.want_response);
    send(
        &mut socket,
        Up::Ack(pb::Ack {
            delivery_id: d.delivery_id.clone(),
            status: pb::AckStatus::Delivered as i32,
            destination_status: 201,
            response: Some(pb::HttpResponse {
                status: 201,
                headers: vec![
                    pb::Header {
                        name: "x-allowed".into(),
                        value: "yes".into(),
                        ..Default::default()
                    },
                    pb::Header {
                        name: "x-secret".into(),
                        value: "no".into(),
                        ..Default::default()
                    },
                    pb::Header {
                        name: "content-type".into(),
                        value: "text/plain".into(),
                        ..Default::default()
                    },
                ],
                body: b"made it".to_vec(),
            }),
            ..Default::default()
        }),
    )
    .await;
    let answer = caller.await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert_eq!(answer.headers()["x-allowed"], "yes");
    assert!(answer.headers().get("x-secret").is_none());
    assert_eq!(answer.headers()["content-type"], "text/plain");
    assert_eq!(answer.text().await.unwrap(), "made it");

    // Nobody answers: 504, and the event is still stored.
    let quick = s
        .relay
        .create_input(
            bucket,
            json!({"name": "quick", "response": {"type": "wait", "timeoutMs": 200}}),
        )
        .await;
    drop(socket);
    let (status, body) = post(&s.relay.http, quick["url"].as_str().unwrap(), &[], b"x").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(body.contains("destination_timeout"));
}

/// Paused time: the catch-up window passes in an instant (SQLite only, as
/// Redis keeps its own clock).
#[tokio::test]
async fn deliveries_older_than_catchup_expire_and_can_be_resent() {
    let relay = Relay::builder()
        .store(testkit::StoreKind::Sqlite)
        .spawn()
        .await;
    let s = setup_on(
        relay,
        json!({"name": "brief", "catchupSeconds": 60}),
        internal_output(5_000),
    )
    .await;
    post(&s.relay.http, &s.input_url, &[], b"old").await;
    let old = s.relay.events().await[0].clone();
    testkit::advance_clock(Duration::from_secs(61)).await;
    post(&s.relay.http, &s.input_url, &[], b"young").await;

    let mut socket = connect(&s, "", 4).await;
    let d = deliver(&mut socket).await;
    assert_eq!(d.event.as_ref().unwrap().body, b"young");
    send(&mut socket, ack(&d, 200)).await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    assert_eq!(deliveries(&s.relay, &old_id).await[0]["state"], "expired");

    s.relay
        .admin(
            Method::POST,
            &format!("/v1/events/{old_id}/resend"),
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    let again = deliver(&mut socket).await;
    assert_eq!(again.event.as_ref().unwrap().body, b"old");
}

async fn public_world(allow_private: bool) -> (Relay, testkit::Destination, String) {
    let relay = Relay::builder()
        .config(move |c| c.allow_private_destinations = allow_private)
        .spawn()
        .await;
    let destination = testkit::Destination::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "pub"})).await;
    let id = bucket["id"].as_str().unwrap().to_owned();
    let input = relay.create_input(&id, json!({})).await;
    relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{id}/outputs"),
            Some(
                json!({"url": format!("{}/public", destination.url), "internal": false,
                        "headers": {"x-extra": "added"}}),
            ),
            StatusCode::CREATED,
        )
        .await;
    (
        relay,
        destination,
        input["url"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_delivers_public_outputs_itself() {
    let (relay, destination, input) = public_world(true).await;
    let url = format!("{input}/sub?q=1");
    let (status, _) = post(
        &relay.http,
        &url,
        &[("x-sig".into(), "abc".into())],
        b"\x00public\xff",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let got = destination.wait_for(1, PATIENCE).await;
    assert_eq!(got[0].target, "/public/sub?q=1");
    assert_eq!(got[0].body.as_ref(), b"\x00public\xff");
    assert_eq!(got[0].header("x-sig"), Some("abc"));
    assert_eq!(got[0].header("x-extra"), Some("added"));
    let event = relay.events().await[0]["id"].as_str().unwrap().to_owned();
    testkit::wait_until(PATIENCE, "the public delivery is recorded", || async {
        deliveries(&relay, &event).await[0]["state"] == "delivered"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_outputs_never_reach_private_addresses_by_default() {
    let (relay, destination, input) = public_world(false).await;
    let (status, _) = post(&relay.http, &input, &[], b"ssrf?").await;
    assert_eq!(status, StatusCode::OK);
    let event = relay.events().await[0]["id"].as_str().unwrap().to_owned();
    testkit::wait_until(PATIENCE, "the delivery fails for good", || async {
        deliveries(&relay, &event).await[0]["state"] == "failed"
    })
    .await;
    let d = deliveries(&relay, &event).await;
    let error = d[0]["attempts"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.starts_with(forward::NOT_PUBLIC), "{error}");
    assert_eq!(d[0]["attempts"].as_array().unwrap().len(), 1, "not retried");
    assert!(destination.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_events_go_to_connected_agents_from_memory_only() {
    let s = setup_bucket(
        json!({"name": "eph", "ephemeral": true}),
        internal_output(5_000),
    )
    .await;
    let mut socket = connect(&s, "", 4).await;
    let url = format!("{}?marker=q", s.input_url);
    post(
        &s.relay.http,
        &url,
        &[("x-marker".into(), "h".into())],
        b"ephemeral body",
    )
    .await;
    let d = deliver(&mut socket).await;
    let event = d.event.clone().unwrap();
    assert_eq!(event.body, b"ephemeral body");
    assert_eq!(event.query, "marker=q");
    assert!(event.headers.iter().any(|h| h.name == "x-marker"));
    send(&mut socket, ack(&d, 200)).await;
    let listed = s.relay.events().await;
    assert!(
        listed[0].get("body").is_none_or(Value::is_null),
        "{}",
        listed[0]
    );
    assert!(listed[0].get("headers").is_none_or(Value::is_null));
    let relay = &s.relay;
    testkit::wait_until(PATIENCE, "delivered", || async {
        deliveries(relay, &event.id).await[0]["state"] == "delivered"
    })
    .await;
}

/// Issue 12: a pump copied each bucket when its first agent joined and
/// took the copy's `ephemeral` flag for the event's, so a bucket patched
/// from ephemeral to stored while an agent stayed connected had its new
/// events settled `expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r12_a_bucket_patched_to_stored_delivers_to_agents_already_connected() {
    let s = setup_bucket(
        json!({"name": "was-ephemeral", "ephemeral": true}),
        internal_output(5_000),
    )
    .await;
    let mut socket = connect(&s, "", 4).await;
    let id = s.bucket["id"].as_str().unwrap();
    super::patch(
        &s.relay,
        &format!("/v1/buckets/{id}"),
        json!({"ephemeral": false}),
    )
    .await;
    let (status, _) = post(&s.relay.http, &s.input_url, &[], b"stored now").await;
    assert_eq!(status, StatusCode::OK);
    let stored = s.relay.events().await;
    assert_eq!(stored[0]["body"], "stored now", "the event is stored");
    let d = deliver(&mut socket).await;
    assert_eq!(d.event.as_ref().unwrap().body, b"stored now");
    send(&mut socket, ack(&d, 200)).await;
    let event = d.event.unwrap().id;
    let relay = &s.relay;
    testkit::wait_until(PATIENCE, "delivered", || async {
        deliveries(relay, &event).await[0]["state"] == "delivered"
    })
    .await;
}

async fn metrics_text(relay: &Relay) -> String {
    relay
        .http
        .get(format!("{}/metrics", relay.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
