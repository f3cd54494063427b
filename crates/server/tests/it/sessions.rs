//! An agent session's two halves (issue 12): the relay reads an agent's
//! acks while a send to that agent waits on a full socket, over real
//! sockets. Before the split, one loop did both, so a slow reader on the
//! agent's side held its own acks unread until the send timed out.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proto::{agent_message::Kind as Up, pb, server_message::Kind as Down};
use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::{post, Relay};
use tokio_tungstenite::tungstenite::Message;

/// Under `proto::SILENCE_LIMIT` (45 s), after which a blocked send ends
/// the session and a single loop would read the ack at last; generous
/// within that, for a loaded test machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// Bodies large enough that [`PILE`] of them overflow the socket buffers
/// between the relay and an agent reading through a 4 KiB receive buffer
/// (the relay's send buffer grows to `tcp_wmem`'s 4 MiB at most), and
/// small enough that a store under load takes each within its timeouts.
const LARGE: usize = 2 * 1024 * 1024;

/// Large deliveries piled up behind the small one.
const PILE: u64 = 4;

fn encode(kind: Up) -> Message {
    Message::Binary(proto::encode(&proto::AgentMessage::from(kind)).into())
}

/// The next protocol message, skipping heartbeats.
async fn next<S>(down: &mut S) -> Down
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(PATIENCE, down.next())
            .await
            .expect("a message in time")
            .expect("the stream is open")
            .expect("a frame");
        if let Message::Binary(bytes) = frame {
            match proto::decode_server(&bytes).unwrap() {
                Down::Ping(_) | Down::Pong(_) => continue,
                other => return other,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_read_while_a_send_to_the_agent_is_blocked() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "prod"})).await;
    let id = bucket["id"].as_str().unwrap().to_owned();
    let input = relay
        .create_input(
            &id,
            json!({"name": "in", "bodyLimit": 32 * 1024 * 1024,
                   "rateLimit": {"requests": 1000, "windowSeconds": 60}}),
        )
        .await;
    let input_url = input["url"].as_str().unwrap().to_owned();
    // A timeout far beyond the test, so the pump never cuts the agent off
    // for the large deliveries it cannot read.
    relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{id}/outputs"),
            Some(json!({"url": "http://10.0.0.7/hook", "internal": true, "timeoutMs": 300000})),
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

    // A small receive buffer, set before connecting so that the window
    // stays small: the relay's sends block once its own buffer is full.
    let addr = relay.url.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/v1/agent/ws");
    let (socket, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("websocket handshake");
    let (mut up, mut down) = socket.split();
    let (key, secret) = token.split_once('.').unwrap();
    let hello = Up::Hello(pb::Hello {
        token_key: key.into(),
        token_secret: secret.into(),
        buckets: vec!["prod".into()],
        group: String::new(),
        mode: pb::Mode::Forward as i32,
        version: "test".into(),
        max_in_flight: 8,
        tunnel: String::new(),
    });
    up.send(encode(hello)).await.unwrap();
    assert!(matches!(next(&mut down).await, Down::Welcome(_)));

    let (status, _) = post(&relay.http, &input_url, &[], b"small").await;
    assert_eq!(status, StatusCode::OK);
    let Down::Deliver(first) = next(&mut down).await else {
        panic!("expected the small delivery first");
    };
    // From here on the agent reads nothing: the large deliveries pile up
    // in the relay's send.
    let body = vec![b'x'; LARGE];
    for _ in 0..PILE {
        let (status, answer) = post(&relay.http, &input_url, &[], &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    testkit::wait_until(PATIENCE, "the large deliveries handed to the session", || async {
        let v = relay
            .admin(Method::GET, "/v1/agents", None, StatusCode::OK)
            .await;
        v["agents"][0]["inFlight"] == PILE + 1
    })
    .await;

    let ack = Up::Ack(pb::Ack {
        delivery_id: first.delivery_id.clone(),
        status: pb::AckStatus::Delivered as i32,
        destination_status: 200,
        latency_ms: 1,
        ..Default::default()
    });
    up.send(encode(ack)).await.unwrap();
    let event = first.event.as_ref().expect("the event").id.clone();
    testkit::wait_until(PATIENCE, "the small delivery settled by its ack", || async {
        let v = relay
            .admin(
                Method::GET,
                &format!("/v1/events/{event}"),
                None,
                StatusCode::OK,
            )
            .await;
        v["deliveries"][0]["state"] == "delivered"
    })
    .await;
    let v = relay
        .admin(Method::GET, "/v1/agents", None, StatusCode::OK)
        .await;
    assert_eq!(v["agents"][0]["inFlight"], PILE, "the ack freed its place");
}
