//! Tunnels across nodes (DESIGN §10): three `hookrelay serve` processes on
//! one Redis namespace, the tunnel's agent connected to the third. Visitors
//! on the first and second get the service's own answers (a GET, a POST of
//! 1 MiB, a chunked answer), carried node to node over HTTP/2; the node key
//! never reaches the service; a request to the node route without the
//! cluster's key is refused; and once the agent is gone every node answers
//! 502 `tunnel_offline`.

use std::time::Duration;

use serde_json::{json, Value};

use super::{destination, Agent, Relay, ADMIN};
use crate::Serve;

const MIB: usize = 1024 * 1024;

/// Deletes the namespace's keys when the test ends, passed or not.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        testkit::delete_redis_namespace(&self.0);
    }
}

async fn get(relay: &Relay, url: &str) -> (u16, Value) {
    let res = relay.http.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_on_any_node_reach_the_agent_on_the_third() {
    let namespace = Namespace(format!("hrtest-tunnel-nodes-{}", std::process::id()));
    let env = [
        ("HOOKRELAY_STORE", testkit::redis_url()),
        ("HOOKRELAY_REDIS_NAMESPACE", namespace.0.clone()),
        (
            "HOOKRELAY_MASTER_KEY",
            crate::cluster::MASTER_KEY.to_owned(),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<Relay> = dirs
        .iter()
        .map(|dir| {
            let serve = Serve::start_with(dir.path(), &["--admin-secret", ADMIN], &env);
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            Relay::from_parts(serve, http)
        })
        .collect();
    let service = destination::spawn("service").await;
    let (tunnel, token) = nodes[0].tunnel("across", json!({})).await;
    let id = tunnel["id"].as_str().unwrap().to_owned();
    let agent = Agent::spawn(&nodes[2], &token, "across", &service.url, "grpc");
    testkit::wait_until(
        Duration::from_secs(20),
        "the first node reaches the agent on the third",
        || async { get(&nodes[0], &nodes[0].url("across", "/echo")).await.0 == 200 },
    )
    .await;

    for visitor in &nodes[..2] {
        let (status, echo) = get(visitor, &visitor.url("across", "/echo/a?b=1")).await;
        assert_eq!(status, 200, "{echo}");
        assert_eq!(echo["dest"], "service");
        assert_eq!(echo["path"], "/echo/a?b=1");
        assert_eq!(echo["headers"]["x-forwarded-prefix"], "/t/across");
        let host = visitor.serve.url.trim_start_matches("http://");
        assert_eq!(
            echo["headers"]["host"], host,
            "the visitor's Host, not a node's"
        );
        let headers = echo["headers"].as_object().unwrap();
        assert!(
            headers.keys().all(|k| !k.starts_with("x-hookrelay")),
            "node headers reached the service: {headers:?}"
        );

        let upload = visitor
            .http
            .post(visitor.url("across", "/echo"))
            .body(vec![7u8; MIB])
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), 200);
        let upload: Value = upload.json().await.unwrap();
        assert_eq!(upload["method"], "POST");
        assert_eq!(upload["len"], MIB);

        let chunked = visitor
            .http
            .get(visitor.url("across", "/chunked"))
            .send()
            .await
            .unwrap();
        assert_eq!(chunked.status(), 200);
        assert_eq!(chunked.text().await.unwrap(), "one,two,three");

        // The visitor's node logs the request, as for its own agents.
        let (status, log) = visitor
            .admin(
                reqwest::Method::GET,
                &format!("/v1/tunnels/{id}/requests"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{log}");
        let logged = log["requests"].as_array().map_or(0, Vec::len);
        assert!(logged >= 3, "{log}");
    }

    // The node route is for the cluster's nodes only.
    let direct = format!("{}/v1/tunnel/node/{id}/echo", nodes[2].serve.url);
    for key in [None, Some("bm90IHRoZSBrZXk=")] {
        let mut req = nodes[2].http.get(&direct);
        if let Some(key) = key {
            req = req.header("x-hookrelay-node-key", key);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }

    agent.kill9();
    testkit::wait_until(
        Duration::from_secs(20),
        "the agent's node released the tunnel",
        || async {
            let (status, body) = get(&nodes[0], &nodes[0].url("across", "/echo")).await;
            status == 502 && body["error"] == "tunnel_offline"
        },
    )
    .await;
    for node in &nodes {
        let (status, body) = get(node, &node.url("across", "/echo")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (502, Some("tunnel_offline"))
        );
    }
}
