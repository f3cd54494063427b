//! Which tunnel a visitor reaches, and what the destination then sees:
//! host routing before any relay route, path routing with its prefix
//! stripped, `X-Forwarded-*`, the `Host` rewrite, tunnel auth checked and
//! removed; crafted hosts and targets that must reach nothing else;
//! unknown and offline tunnels; a forward-mode token refused.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{destination, wait_connected, Agent, Relay, DOMAIN};

/// Sends `request` verbatim and answers the status and the body.
async fn raw(relay: &Relay, request: &str) -> (u16, String) {
    let addr = relay.serve.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn get(target: &str, host: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_reach_the_named_tunnel_and_nothing_else() {
    let relay = Relay::start();
    let a = destination::spawn("a").await;
    let b = destination::spawn("b").await;
    let (_, token_a) = relay
        .tunnel("app-a", json!({"hostHeader": "internal.example:3000"}))
        .await;
    let (_, token_b) = relay.tunnel("app-b", json!({})).await;
    let _agent_a = Agent::spawn(&relay, &token_a, "app-a", &a.url, "grpc");
    let _agent_b = Agent::spawn(&relay, &token_b, "app-b", &b.url, "ws");
    wait_connected(&relay, &relay.url("app-a", "/echo")).await;
    wait_connected(&relay, &relay.url("app-b", "/echo")).await;
    let relay_host = relay.serve.url.trim_start_matches("http://").to_owned();

    // Path routing: prefix stripped, forwarded headers, Host rewritten.
    let seen: Value = relay
        .http
        .get(relay.url("app-a", "/echo/x?q=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (seen["dest"].as_str(), seen["path"].as_str()),
        (Some("a"), Some("/echo/x?q=1"))
    );
    let headers = &seen["headers"];
    assert_eq!(headers["host"], "internal.example:3000");
    assert_eq!(headers["x-forwarded-prefix"], "/t/app-a");
    assert_eq!(headers["x-forwarded-host"], relay_host.as_str());
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");

    // Host routing comes first: `/v1/...` on a tunnel host is the tunnel's.
    let (status, body) = raw(&relay, &get("/echo/v1/buckets", &format!("app-b.{DOMAIN}"))).await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (seen["dest"].as_str(), seen["path"].as_str()),
        (Some("b"), Some("/echo/v1/buckets"))
    );
    assert_eq!(seen["headers"]["host"], format!("app-b.{DOMAIN}"));
    assert!(seen["headers"].get("x-forwarded-prefix").is_none());

    // Crafted targets reach no other tunnel and never the relay's API.
    let (status, body) = raw(&relay, &get("/t/app-a/../app-b/echo", &relay_host)).await;
    assert_eq!(
        status, 404,
        "dots stay inside app-a, whose service has no such path: {body}"
    );
    for target in [
        "/t/app-a%2F..%2Fapp-b/echo",
        "/t/..%2Fv1/buckets",
        "/t/%61pp-a/echo",
        "/t/app-a.x/echo",
    ] {
        let (status, body) = raw(&relay, &get(target, &relay_host)).await;
        assert_eq!(status, 404, "{target}: {body}");
        assert!(body.contains("unknown_tunnel"), "{target}: {body}");
    }
    // An absolute-form target's authority wins over the Host header.
    let absolute = format!("GET http://app-b.{DOMAIN}/echo HTTP/1.1\r\nHost: app-a.{DOMAIN}\r\nConnection: close\r\n\r\n");
    let (status, body) = raw(&relay, &absolute).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["dest"], "b");
    let (status, body) = raw(&relay, &get("/v1/buckets", &format!("x.app-a.{DOMAIN}"))).await;
    assert_eq!(
        (status, body.contains("unknown_tunnel")),
        (404, true),
        "{body}"
    );
    let (status, body) = raw(&relay, &get("/v1/buckets", &format!("nope.{DOMAIN}"))).await;
    assert_eq!(
        (status, body.contains("unknown_tunnel")),
        (404, true),
        "{body}"
    );
    // The relay's own host still serves the relay.
    let (status, _) = raw(&relay, &get("/healthz", &relay_host)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_offline_unknown_and_refused_tokens() {
    let relay = Relay::start();
    let dest = destination::spawn("a").await;
    let auth = json!({"auth": {"type": "basic", "username": "u", "password": "p"}});
    let (tunnel, token) = relay.tunnel("locked", auth).await;
    assert_eq!(tunnel["urls"][1], format!("http://locked.{DOMAIN}/"));
    assert_eq!(tunnel["auth"], json!({"type": "basic", "username": "u"}));

    // No agent yet: 502 tunnel_offline; unknown: 404 unknown_tunnel.
    let offline = relay
        .http
        .get(relay.url("locked", "/echo"))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap();
    assert_eq!(offline.status(), 502);
    assert_eq!(
        offline.json::<Value>().await.unwrap()["error"],
        "tunnel_offline"
    );
    // ... and the visitor's connection closes after it: visitors of an
    // offline tunnel hold no keep-alive connection (and its buffers).
    let addr = relay.serve.url.trim_start_matches("http://").to_owned();
    let mut visitor = tokio::net::TcpStream::connect(&addr).await.unwrap();
    visitor
        .write_all(
            format!(
                "GET /t/locked/x HTTP/1.1\r\nhost: {addr}\r\nauthorization: Basic dTpw\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        visitor.read_to_end(&mut answer),
    )
    .await
    .expect("the relay closes an offline tunnel's visitor")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    assert!(answer.contains("tunnel_offline"), "{answer}");
    let unknown = relay
        .http
        .get(relay.url("nothing-here", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"],
        "unknown_tunnel"
    );

    // A forward-mode token is refused: `forbidden`, non-zero exit.
    let forward = relay.token("forward").await;
    let out = std::process::Command::new(super::BIN)
        .args([
            "tunnel",
            "--server",
            &relay.serve.url,
            "--name",
            "locked",
            "--destination",
            &dest.url,
        ])
        .env("HOOKRELAY_TOKEN", &forward)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));

    let _agent = Agent::spawn(&relay, &token, "locked", &dest.url, "grpc");
    testkit::wait_until(
        std::time::Duration::from_secs(20),
        "the agent connected",
        || async {
            let r = relay
                .http
                .get(relay.url("locked", "/echo"))
                .basic_auth("u", Some("p"))
                .send()
                .await;
            matches!(r, Ok(r) if r.status() == 200)
        },
    )
    .await;
    let refused = relay
        .http
        .get(relay.url("locked", "/echo"))
        .basic_auth("u", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    let seen: Value = relay
        .http
        .get(relay.url("locked", "/echo"))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        seen["headers"].get("authorization").is_none(),
        "the tunnel's credential reached the agent"
    );

    // Duplicate and invalid names; the request log holds metadata only.
    let (status, body) = relay
        .admin(
            reqwest::Method::POST,
            "/v1/tunnels",
            Some(json!({"name": "locked"})),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    let (status, _) = relay
        .admin(
            reqwest::Method::POST,
            "/v1/tunnels",
            Some(json!({"name": "Not_A_Label"})),
        )
        .await;
    assert_eq!(status, 400);
    let id = tunnel["id"].as_str().unwrap();
    let (status, log) = relay
        .admin(
            reqwest::Method::GET,
            &format!("/v1/tunnels/{id}/requests"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let newest = &log["requests"][0];
    assert_eq!(
        (newest["method"].as_str(), newest["path"].as_str()),
        (Some("GET"), Some("/echo"))
    );
    assert_eq!(
        (newest["status"].as_u64(), newest["clientIp"].as_str()),
        (Some(200), Some("127.0.0.1"))
    );
    assert!(newest["bytesOut"].as_u64().unwrap() > 0);
    assert!(log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["status"] == 502));
}
