//! Issue 19, finding 1: nothing unauthenticated may cost the relay memory
//! on the agent endpoints. 50 HTTP/2 connections open 200 gRPC streams
//! each and 2,000 WebSocket connections upgrade, every one announcing a
//! 32 MiB message before any `Hello` and pushing its bytes as fast as flow
//! control lets it, reconnecting when cut, from 150 loopback source
//! addresses. Meanwhile a real `hookrelay agent` on each transport must
//! connect and receive a webhook, and the relay's peak RSS (`VmHWM` of
//! the `hookrelay serve` process) must stay under 100 MiB. Before the fix,
//! 20 such streams took it from 17 to 617 MiB.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use super::agents::Agent;
use super::loris::ensure_open_files;
use super::{ingest_url, start_serve, Api};

const H2_CONNECTIONS: usize = 50;
const STREAMS_PER_CONNECTION: usize = 200;
const WEBSOCKETS: usize = 2_000;
/// The message every attacker announces: the transports' old limit.
const ANNOUNCED: u32 = 32 * 1024 * 1024;
/// The relay's peak RSS must stay under this.
const RSS_BOUND_KIB: u64 = 100 * 1024;
/// How long the attack lasts at most (the agents must get through in it).
const ATTACK_AT_MOST: Duration = Duration::from_secs(90);
/// Zeros pushed per write.
const CHUNK: usize = 64 * 1024;

/// A `/proc/<pid>/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A TCP connection to `addr` from loopback source address `from`. Its
/// small send buffer keeps the attack's own CPU down: the kernel would
/// otherwise copy megabytes into every socket the relay has already cut.
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_send_buffer_size(64 * 1024)?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(addr).await
}

/// What the attackers managed, for the summary line.
#[derive(Default)]
struct Tally {
    connections: AtomicU64,
    streams: AtomicU64,
    bytes: AtomicU64,
}

/// One HTTP/2 connection, reopened when cut, keeping
/// `STREAMS_PER_CONNECTION` gRPC streams each pushing a 32 MiB message.
async fn h2_attacker(
    from: Ipv4Addr,
    addr: SocketAddr,
    until: tokio::time::Instant,
    tally: Arc<Tally>,
) {
    while tokio::time::Instant::now() < until {
        let Ok(Ok(tcp)) = timeout_at(until, connect_from(from, addr)).await else {
            continue;
        };
        let Ok(Ok((client, connection))) = timeout_at(until, h2::client::handshake(tcp)).await
        else {
            continue;
        };
        tally.connections.fetch_add(1, Ordering::Relaxed);
        let driver = tokio::spawn(connection);
        let mut streams = JoinSet::new();
        for _ in 0..STREAMS_PER_CONNECTION {
            let (client, tally) = (client.clone(), Arc::clone(&tally));
            streams.spawn(grpc_streams(client, addr, until, tally));
        }
        while let Ok(Some(_)) = timeout_at(until, streams.join_next()).await {}
        streams.abort_all();
        driver.abort();
    }
}

/// Streams on one connection, one after another while the connection lives.
async fn grpc_streams(
    mut client: h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    until: tokio::time::Instant,
    tally: Arc<Tally>,
) {
    while tokio::time::Instant::now() < until {
        let Ok(Ok(mut ready)) = timeout_at(until, client.clone().ready()).await else {
            return;
        };
        let request = http::Request::post(format!("http://{addr}/hookrelay.v1.Agent/Connect"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("a request");
        let Ok((_answer, mut body)) = ready.send_request(request, false) else {
            return;
        };
        client = ready;
        tally.streams.fetch_add(1, Ordering::Relaxed);
        let mut prefix = vec![0u8];
        prefix.extend(ANNOUNCED.to_be_bytes());
        if body.send_data(Bytes::from(prefix), false).is_err() {
            continue;
        }
        let zeros = Bytes::from(vec![0u8; CHUNK]);
        let mut sent = 0usize;
        while sent < ANNOUNCED as usize {
            body.reserve_capacity(CHUNK);
            let capacity = std::future::poll_fn(|cx| body.poll_capacity(cx));
            let n = match timeout_at(until, capacity).await {
                Ok(Some(Ok(n))) if n > 0 => n.min(CHUNK),
                _ => break,
            };
            if body.send_data(zeros.slice(..n), false).is_err() {
                break;
            }
            sent += n;
            tally.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// One WebSocket, reopened when cut, pushing a 32 MiB binary frame.
async fn ws_attacker(
    from: Ipv4Addr,
    addr: SocketAddr,
    until: tokio::time::Instant,
    tally: Arc<Tally>,
) {
    let zeros = vec![0u8; CHUNK];
    while tokio::time::Instant::now() < until {
        let attempt = async {
            let mut tcp = connect_from(from, addr).await.ok()?;
            let upgrade = format!(
                "GET /v1/agent/ws HTTP/1.1\r\nhost: {addr}\r\nconnection: upgrade\r\n\
                 upgrade: websocket\r\nsec-websocket-version: 13\r\n\
                 sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            );
            tcp.write_all(upgrade.as_bytes()).await.ok()?;
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 4096 {
                let n = tcp.read(&mut buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                head.extend_from_slice(&buf[..n]);
            }
            if !head.starts_with(b"HTTP/1.1 101") {
                return None;
            }
            tally.connections.fetch_add(1, Ordering::Relaxed);
            // FIN + binary; masked, 64-bit length; the mask key.
            let mut frame = vec![0x82, 0x80 | 127];
            frame.extend(u64::from(ANNOUNCED).to_be_bytes());
            frame.extend([1, 2, 3, 4]);
            tcp.write_all(&frame).await.ok()?;
            let mut sent = 0usize;
            while sent < ANNOUNCED as usize {
                tcp.write_all(&zeros).await.ok()?;
                sent += zeros.len();
                tally.bytes.fetch_add(zeros.len() as u64, Ordering::Relaxed);
            }
            Some(())
        };
        let _ = timeout_at(until, attempt).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_unauthenticated_agent_streams_cannot_exhaust_memory() {
    let started = Instant::now();
    ensure_open_files((H2_CONNECTIONS + 2 * WEBSOCKETS + 1_000) as u64);
    let data = tempfile::tempdir().expect("a data dir");
    let destination = testkit::Destination::spawn().await;
    let serve = start_serve(data.path().to_owned(), &[]).await;
    let api = Api::new(&serve.url);
    let setup = api
        .setup(
            "preauth",
            Some(json!({"url": format!("{}/hook", destination.url), "internal": true})),
        )
        .await;
    let token = api
        .must(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "agent", "mode": "forward"})),
            StatusCode::CREATED,
        )
        .await;
    let token = token["token"].as_str().expect("agent token").to_owned();
    let addr: SocketAddr = serve
        .url
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .expect("a loopback address");
    let rss_before = status_kib(serve.pid(), "VmRSS:");

    let until = tokio::time::Instant::now() + ATTACK_AT_MOST;
    let tally = Arc::new(Tally::default());
    let mut attack = JoinSet::new();
    for i in 0..H2_CONNECTIONS {
        let from = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
        attack.spawn(h2_attacker(from, addr, until, Arc::clone(&tally)));
    }
    for i in 0..WEBSOCKETS {
        let from = Ipv4Addr::new(127, 0, 1, 1 + (i % 100) as u8);
        attack.spawn(ws_attacker(from, addr, until, Arc::clone(&tally)));
    }
    // The agents meet the attack at full strength: every WebSocket has
    // been cut at least once and half the gRPC streams have been tried.
    testkit::wait_until(
        ATTACK_AT_MOST / 3,
        "the attack reaches full strength",
        || async {
            tally.streams.load(Ordering::Relaxed)
                >= (H2_CONNECTIONS * STREAMS_PER_CONNECTION / 2) as u64
                && tally.connections.load(Ordering::Relaxed) >= (H2_CONNECTIONS + WEBSOCKETS) as u64
        },
    )
    .await;

    // A legitimate agent on each transport connects and receives.
    let agents = [
        Agent::start_with(
            &serve.url,
            &token,
            &["--bucket", "preauth", "--group", "grpc"],
        ),
        Agent::start_with(
            &serve.url,
            &token,
            &["--bucket", "preauth", "--group", "ws", "--transport", "ws"],
        ),
    ];
    let joined = Instant::now();
    testkit::wait_until(
        ATTACK_AT_MOST / 2,
        "both agents connect under attack",
        || async {
            let (_, list) = api.call(Method::GET, "/v1/agents", None).await;
            list["agents"].as_array().is_some_and(|a| a.len() == 2)
        },
    )
    .await;
    let connected_in = joined.elapsed();
    let sent = reqwest::Client::new()
        .post(ingest_url(&serve.url, &setup.input))
        .json(&json!({"marker": "through-the-flood"}))
        .send()
        .await
        .expect("ingest answers");
    assert_eq!(sent.status(), StatusCode::OK);
    let received = destination.wait_for(2, ATTACK_AT_MOST / 2).await;
    let delivered_in = joined.elapsed();
    assert!(
        tokio::time::Instant::now() < until,
        "the attack was over before the agents got through"
    );
    let rss_during = status_kib(serve.pid(), "VmRSS:");
    attack.abort_all();
    while attack.join_next().await.is_some() {}
    let peak = status_kib(serve.pid(), "VmHWM:");

    println!(
        "faults: preauth: {H2_CONNECTIONS} h2 connections x {STREAMS_PER_CONNECTION} streams and \
         {WEBSOCKETS} WebSockets announcing {} MiB before Hello: {} connections, {} gRPC streams \
         opened, {} MiB written by them; relay RSS {:.1} MiB before, {:.1} MiB during, peak {:.1} MiB; \
         agents connected in {:.1} s, delivered in {:.1} s; {:.1} s",
        ANNOUNCED >> 20,
        tally.connections.load(Ordering::Relaxed),
        tally.streams.load(Ordering::Relaxed),
        tally.bytes.load(Ordering::Relaxed) >> 20,
        rss_before as f64 / 1024.0,
        rss_during as f64 / 1024.0,
        peak as f64 / 1024.0,
        connected_in.as_secs_f64(),
        delivered_in.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert_eq!(received.len(), 2, "each agent group received the webhook");
    assert!(
        peak < RSS_BOUND_KIB,
        "the relay's peak RSS was {} MiB under the unauthenticated flood",
        peak / 1024
    );
    drop(agents);
    drop(serve);
}
