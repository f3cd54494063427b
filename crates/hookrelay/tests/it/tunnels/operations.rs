//! Running tunnels: `serve --tunnel-body-limit` (a declared larger body
//! answers 413 before the agent is asked, a streamed one is cut both
//! ways), the tunnel figures in `/metrics`, and `hookrelay admin tunnel`.

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{destination, wait_connected, Agent, Relay, ADMIN};

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_cuts_both_ways_and_metrics_count_requests() {
    let relay = Relay::start_with(&["--tunnel-body-limit", "1MiB"]);
    let dest = destination::spawn("a").await;
    let (tunnel, token) = relay.tunnel("lim", json!({})).await;
    let _agent = Agent::spawn(&relay, &token, "lim", &dest.url, "grpc");
    let echo = relay.url("lim", "/echo");
    wait_connected(&relay, &echo).await;

    let small: Value = relay
        .http
        .post(&echo)
        .body(vec![1u8; MIB / 2])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(small["len"].as_u64(), Some((MIB / 2) as u64));

    let declared = head_only_answer(&echo, 2 * MIB).await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(declared.contains("payload_too_large"), "{declared}");

    // Streamed without a length: cut once past the limit, so the service
    // never answers for the whole body.
    let chunks =
        futures_util::stream::iter(0..8).map(|_| Ok::<_, std::io::Error>(vec![2u8; MIB / 4]));
    let streamed = relay
        .http
        .put(&echo)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(answer) = streamed {
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(
            status != 200 || body["len"].as_u64() != Some(2 * MIB as u64),
            "a 2 MiB upload passed a 1 MiB limit: {status} {body}"
        );
    }

    // The download starts (200) and ends early, at most a frame past it.
    let down = relay
        .http
        .get(relay.url("lim", &format!("/bytes/{}", 4 * MIB)))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 200);
    let mut stream = down.bytes_stream();
    let (mut received, mut failed) = (0usize, false);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received += bytes.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed && received <= MIB + 64 * 1024,
        "received {received} bytes, failed {failed}"
    );

    let metrics = relay
        .http
        .get(format!("{}/metrics", relay.serve.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{prefix} missing in\n{metrics}"))
    };
    // wait_connected's probe, the small echo and the download at least.
    assert!(value("hookrelay_tunnel_requests_total{class=\"2xx\"}") >= 3.0);
    assert!(value("hookrelay_tunnel_request_duration_seconds_count") >= 3.0);
    assert!(value("hookrelay_tunnel_bytes_total{direction=\"in\"}") >= (MIB / 2) as f64);
    assert!(value("hookrelay_tunnel_bytes_total{direction=\"out\"}") >= MIB as f64);
    let id = tunnel["id"].as_str().unwrap();
    assert_eq!(
        value(&format!("hookrelay_tunnel_agents{{tunnel=\"{id}\"}}")),
        1.0
    );
}

#[tokio::test]
async fn admin_tunnel_manages_tunnels_from_the_command_line() {
    let relay = Relay::start();
    let serve = &relay.serve;
    let created = crate::cli_json(
        serve,
        ADMIN,
        &[
            "admin",
            "--json",
            "tunnel",
            "create",
            "cli-app",
            "--host-header",
            "localhost:3000",
        ],
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "cli-app");
    assert_eq!(created["hostHeader"], "localhost:3000");
    assert!(
        created["urls"][0]
            .as_str()
            .unwrap()
            .ends_with("/t/cli-app/"),
        "{created}"
    );
    let (ok, table, _) = crate::cli(serve, ADMIN, &["admin", "tunnel", "list"]);
    assert!(
        ok && table.contains("cli-app") && table.contains(&id),
        "{table}"
    );
    // The relay caches tunnels by name: a change must still apply at once.
    let visit = || async {
        relay
            .http
            .get(relay.url("cli-app", "/"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(visit().await, 502, "no agent yet: tunnel_offline");
    let updated = crate::cli_json(
        serve,
        ADMIN,
        &[
            "admin",
            "--json",
            "tunnel",
            "update",
            &id,
            "--enabled",
            "false",
            "--no-host-header",
        ],
    );
    assert_eq!(updated["enabled"], false);
    assert_eq!(visit().await, 503, "disabled at once");
    assert_eq!(updated["hostHeader"], Value::Null);
    let requests = crate::cli_json(
        serve,
        ADMIN,
        &["admin", "--json", "tunnel", "requests", &id],
    );
    let logged = requests["requests"].as_array().unwrap();
    assert_eq!(logged.len(), 1, "{requests}");
    assert_eq!(logged[0]["status"], 502, "{requests}");
    let (ok, _, _) = crate::cli(serve, ADMIN, &["admin", "tunnel", "delete", &id]);
    assert!(ok);
    assert_eq!(visit().await, 404, "deleted at once: unknown_tunnel");
    let (ok, _, stderr) = crate::cli(serve, ADMIN, &["admin", "tunnel", "show", &id]);
    assert!(!ok && stderr.contains("not_found"), "{stderr}");
}

/// Sends only a request head declaring `length` body bytes and reads the
/// answer, which must come from the head alone. A client that also sent
/// the body could lose the 413 to a reset: the relay closes a connection
/// whose body it will not read, and the upload then meets a closed socket
/// (seen once in the full suite).
async fn head_only_answer(url: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = url::Url::parse(url).expect("a URL");
    let host = url.host_str().expect("a host");
    let port = url.port_or_known_default().expect("a port");
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .expect("connect to the relay");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n",
        url.path()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer to the head alone")
    .expect("read the answer");
    String::from_utf8_lossy(&answer).into_owned()
}
