//! Webhook Relay's socket server (DESIGN §15, issue 20), driven by a client
//! written from Webhook Relay's published format (`relay-go`
//! `pkg/types/ws_types.go`: `ActionRequest`, `Event`, `EventMeta`): JSON
//! text frames, `auth` then `subscribe`, `webhook` frames with headers as
//! lists and `bucked_id`, pings answered with `pong`.

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Relay;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PATIENCE: Duration = Duration::from_secs(10);

struct World {
    relay: Relay,
    bucket: Value,
    input: Value,
    output: Value,
    key: String,
    secret: String,
}

async fn world(relay: Relay) -> World {
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let id = bucket["id"].as_str().unwrap();
    let input = relay.create_input(id, json!({"name": "plain"})).await;
    let output = relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{id}/outputs"),
            Some(json!({"url": "http://localhost:3000/hook"})),
            StatusCode::CREATED,
        )
        .await;
    let token = token(&relay, "forward").await;
    World {
        relay,
        bucket,
        input,
        output,
        key: token["key"].as_str().unwrap().to_owned(),
        secret: token["secret"].as_str().unwrap().to_owned(),
    }
}

async fn token(relay: &Relay, mode: &str) -> Value {
    relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "agent", "mode": mode})),
            StatusCode::CREATED,
        )
        .await
}

async fn open(relay: &Relay) -> Socket {
    let url = format!("{}/v1/socket", relay.url.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket handshake")
        .0
}

async fn say(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("send a frame");
}

/// The next JSON frame; `None` once closed.
async fn hear(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame in time")?;
        match frame {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).expect("JSON")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Returns once the server has read every frame sent before: it answers
/// a WebSocket ping only after reading what came ahead of it (the clock
/// must not jump while a `pong` still waits to be read).
async fn heard(socket: &mut Socket) {
    socket
        .send(Message::Ping(b"sync".to_vec().into()))
        .await
        .expect("send a ping");
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a pong in time")
            .expect("open")
            .expect("a frame");
        if matches!(&frame, Message::Pong(p) if &p[..] == b"sync") {
            return;
        }
    }
}

/// Authenticates and subscribes; returns the socket and the `subscribed`
/// status.
async fn subscribe(w: &World, buckets: Option<Vec<&str>>) -> (Socket, Value) {
    let mut socket = open(&w.relay).await;
    say(
        &mut socket,
        json!({"action": "auth", "key": w.key, "secret": w.secret}),
    )
    .await;
    let authenticated = hear(&mut socket).await.expect("an answer to auth");
    assert_eq!(authenticated["type"], "status");
    assert_eq!(authenticated["status"], "authenticated", "{authenticated}");
    let mut subscribe = json!({"action": "subscribe"});
    if let Some(buckets) = buckets {
        subscribe["buckets"] = json!(buckets);
    }
    say(&mut socket, subscribe).await;
    let subscribed = hear(&mut socket).await.expect("an answer to subscribe");
    (socket, subscribed)
}

async fn post(w: &World, body: &[u8]) {
    let url = format!("{}?a=1", w.input["url"].as_str().unwrap());
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-multi".to_owned(), "one".to_owned()),
        ("x-multi".to_owned(), "two".to_owned()),
    ];
    let (status, _) = testkit::post(&w.relay.http, &url, &headers, body).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_webhook_relay_client_receives_webhooks_and_reports_results() {
    let w = world(Relay::spawn().await).await;
    let (mut socket, subscribed) = subscribe(&w, Some(vec!["b"])).await;
    assert_eq!(subscribed["type"], "status");
    assert_eq!(subscribed["status"], "subscribed", "{subscribed}");
    assert!(subscribed["message"].as_str().unwrap().contains('b'));

    post(&w, br#"{"hi":"there"}"#).await;
    let frame = hear(&mut socket).await.expect("a webhook frame");
    let event = w.relay.events().await[0].clone();
    let bucket = w.bucket["id"].as_str().unwrap();
    assert_eq!(frame["type"], "webhook");
    assert_eq!(frame["method"], "POST");
    assert_eq!(frame["query"], "a=1");
    assert_eq!(frame["body"], r#"{"hi":"there"}"#);
    assert!(frame.get("bodyEncoding").is_none());
    assert_eq!(
        frame["headers"]["Content-Type"],
        json!(["application/json"])
    );
    assert_eq!(frame["headers"]["X-Multi"], json!(["one", "two"]));
    let meta = &frame["meta"];
    assert_eq!(meta["event_id"], event["id"]);
    assert_eq!(meta["bucked_id"], bucket, "Webhook Relay's spelling");
    assert_eq!(meta["bucket_id"], bucket);
    assert_eq!(meta["bucket_name"], "b");
    assert_eq!(meta["input_id"], w.input["id"]);
    assert_eq!(meta["input_name"], "plain");
    assert_eq!(meta["output_name"], w.output["id"]);
    assert_eq!(meta["output_destination"], "http://localhost:3000/hook");
    let delivery = meta["id"].as_str().unwrap().to_owned();

    // Delivered once the frame was written; the client's report is an
    // attempt, with Webhook Relay's Basic credentials.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", w.key, w.secret));
    let report = w
        .relay
        .http
        .put(format!("{}/v1/logs/{delivery}", w.relay.url))
        .header("authorization", format!("Basic {basic}"))
        .json(&json!({"status_code": 201, "response_body": "ok", "response_headers": {"A": ["b"]}, "duration_ms": 12}))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    // The link's ack reaches the group's pump after the frame is written,
    // and its settlement commits on the pump's time: wait for it (an
    // immediate read once saw the delivery still in flight).
    let path = format!("/v1/events/{}", event["id"].as_str().unwrap());
    testkit::wait_until(PATIENCE, "the delivery is settled", || async {
        let shown = w.relay.admin(Method::GET, &path, None, StatusCode::OK).await;
        shown["deliveries"][0]["state"] == "delivered"
    })
    .await;
    let shown = w.relay.admin(Method::GET, &path, None, StatusCode::OK).await;
    let deliveries = shown["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["state"], "delivered");
    assert_eq!(deliveries[0]["group"], format!("socket:{}", w.key));
    let attempts = deliveries[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.last().unwrap()["status"], 201, "{attempts:?}");
    // The bearer form works too; another token's report is refused.
    let bearer = w
        .relay
        .http
        .put(format!("{}/v1/logs/{delivery}", w.relay.url))
        .bearer_auth(format!("{}.{}", w.key, w.secret))
        .json(&json!({"status_code": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let other = token(&w.relay, "forward").await;
    let refused = w
        .relay
        .http
        .put(format!("{}/v1/logs/{delivery}", w.relay.url))
        .bearer_auth(other["token"].as_str().unwrap())
        .json(&json!({"status_code": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let wrong = w
        .relay
        .http
        .put(format!("{}/v1/logs/{delivery}", w.relay.url))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .json(&json!({"status_code": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    // Subscribed by id, after a reconnect: what arrived meanwhile, within
    // the catch-up window, comes first.
    drop(socket);
    testkit::wait_until(PATIENCE, "the socket is gone", || async {
        let agents = w
            .relay
            .admin(Method::GET, "/v1/agents", None, StatusCode::OK)
            .await;
        agents["agents"].as_array().unwrap().is_empty()
    })
    .await;
    post(&w, br#"{"while":"away"}"#).await;
    let (mut socket, subscribed) = subscribe(&w, Some(vec![bucket])).await;
    assert_eq!(subscribed["status"], "subscribed");
    let frame = hear(&mut socket).await.expect("the missed webhook");
    assert_eq!(frame["body"], r#"{"while":"away"}"#);

    // Not UTF-8: base64, flagged.
    let url = w.input["url"].as_str().unwrap();
    let (status, _) = testkit::post(&w.relay.http, url, &[], &[0xff, 0x00]).await;
    assert_eq!(status, StatusCode::OK);
    let frame = hear(&mut socket).await.expect("a binary webhook");
    assert_eq!(frame["bodyEncoding"], "base64");
    assert_eq!(frame["body"], "/wA=");
}

#[tokio::test]
async fn wrong_secrets_tunnel_tokens_and_other_tenants_buckets_are_refused() {
    let w = world(Relay::spawn().await).await;
    let unauthorized = |frame: Option<Value>| {
        let frame = frame.expect("a status before the close");
        assert_eq!(frame["type"], "status");
        assert_eq!(frame["status"], "unauthorized", "{frame}");
    };
    let mut socket = open(&w.relay).await;
    say(
        &mut socket,
        json!({"action": "auth", "key": w.key, "secret": "wrong"}),
    )
    .await;
    unauthorized(hear(&mut socket).await);
    assert!(hear(&mut socket).await.is_none(), "closed");

    let tunnel = token(&w.relay, "tunnel").await;
    let mut socket = open(&w.relay).await;
    say(
        &mut socket,
        json!({"action": "auth", "key": tunnel["key"], "secret": tunnel["secret"]}),
    )
    .await;
    unauthorized(hear(&mut socket).await);

    let mut socket = open(&w.relay).await;
    say(
        &mut socket,
        json!({"action": "subscribe", "buckets": ["b"]}),
    )
    .await;
    unauthorized(hear(&mut socket).await);

    // Another tenant's bucket, by name and by id: refused.
    let created = w
        .relay
        .admin(
            Method::POST,
            "/api/tenants",
            Some(json!({"label": "Other"})),
            StatusCode::CREATED,
        )
        .await;
    let other = created["tenant"]["id"].as_str().unwrap();
    let theirs: Value = w
        .relay
        .http
        .post(format!("{}/v1/buckets", w.relay.url))
        .bearer_auth(&w.relay.admin)
        .header("x-hookrelay-tenant", other)
        .json(&json!({"name": "secret-bucket"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for name in ["secret-bucket", theirs["id"].as_str().unwrap()] {
        let (mut socket, answer) = subscribe(&w, Some(vec![name])).await;
        assert_eq!(answer["status"], "error", "{answer}");
        assert!(hear(&mut socket).await.is_none(), "closed");
    }
    // Subscribing to nothing named: every bucket the token may read.
    let (_, answer) = subscribe(&w, None).await;
    assert_eq!(answer["status"], "subscribed");
    assert_eq!(answer["message"], "subscribed to buckets: b");
}

/// Paused time (SQLite only, as Redis keeps its own clock): a ping every
/// 30 s, and a client that answers keeps its socket.
#[tokio::test]
async fn the_client_is_pinged_every_30_seconds_and_pongs_keep_it() {
    let relay = Relay::builder()
        .store(testkit::StoreKind::Sqlite)
        .spawn()
        .await;
    let w = world(relay).await;
    let (mut socket, _) = subscribe(&w, Some(vec!["b"])).await;
    // The session's heartbeat starts once it has joined its group, just
    // after `subscribed` is sent; it reads the socket only from then on,
    // so an answered WebSocket ping says the heartbeat runs.
    heard(&mut socket).await;
    for _ in 0..3 {
        testkit::advance_clock(Duration::from_secs(31)).await;
        let ping = hear(&mut socket).await.expect("a ping, the socket open");
        assert_eq!(ping, json!({"type": "status", "status": "ping"}));
        say(&mut socket, json!({"action": "pong"})).await;
        heard(&mut socket).await;
    }
    // Silent past the limit (45 s, three heartbeats): closed.
    testkit::advance_clock(Duration::from_secs(100)).await;
    testkit::wait_until(PATIENCE, "the silent socket left", || async {
        let agents = w
            .relay
            .admin(Method::GET, "/v1/agents", None, StatusCode::OK)
            .await;
        agents["agents"].as_array().unwrap().is_empty()
    })
    .await;
    assert!(hear(&mut socket).await.is_none(), "closed after silence");
}
