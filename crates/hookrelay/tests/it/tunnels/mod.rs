//! HTTP tunnels end to end (issue 15): a real `hookrelay serve` process, real
//! `hookrelay tunnel` processes, and a real local service, all on
//! ephemeral loopback ports. `traffic`: bodies of 0 B, 1 MiB and 100 MiB
//! both ways with both processes' memory watched, chunked, SSE and
//! WebSocket answers, on both transports. `routing`: host and path
//! routing, forwarded headers, auth, crafted targets, offline and unknown
//! tunnels, refused tokens. `agents`: two agents sharing a tunnel, one
//! killed mid-request. `tls`: both transports through TLS with a private CA.
//! `operations`: `serve --tunnel-body-limit`, the tunnel metrics, and
//! `hookrelay admin tunnel`. `nodes`: three relays on one Redis, the agent
//! on the third, visitors on the others.

mod agents;
mod destination;
mod nodes;
mod operations;
mod routing;
mod tls;
mod traffic;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Serve, BIN};

pub(super) const ADMIN: &str = "tunnel-tests-admin-secret";
pub(super) const DOMAIN: &str = "tun.test";

/// A relay process with `--tunnel-domain`, and an HTTP client for it.
pub(super) struct Relay {
    pub(super) serve: Serve,
    pub(super) http: reqwest::Client,
    _data: Option<tempfile::TempDir>,
}

impl Relay {
    pub(super) fn start() -> Relay {
        Self::start_with(&[])
    }

    /// With extra `serve` flags.
    pub(super) fn start_with(extra: &[&str]) -> Relay {
        let data = tempfile::tempdir().unwrap();
        let mut args = vec!["--tunnel-domain", DOMAIN, "--admin-secret", ADMIN];
        args.extend_from_slice(extra);
        let serve = Serve::start_with(data.path(), &args, &[]);
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Relay {
            serve,
            http,
            _data: Some(data),
        }
    }

    /// A relay started by the caller (TLS), with its client.
    pub(super) fn from_parts(serve: Serve, http: reqwest::Client) -> Relay {
        Relay {
            serve,
            http,
            _data: None,
        }
    }

    pub(super) async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.serve.url))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A tunnel named `name` (with `extra` fields) and a tunnel-mode token.
    pub(super) async fn tunnel(&self, name: &str, extra: Value) -> (Value, String) {
        let mut body = json!({ "name": name });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let (status, tunnel) = self
            .admin(reqwest::Method::POST, "/v1/tunnels", Some(body))
            .await;
        assert_eq!(status, 201, "{tunnel}");
        (tunnel, self.token("tunnel").await)
    }

    pub(super) async fn token(&self, mode: &str) -> String {
        let body = json!({ "scope": "agent", "mode": mode });
        let (status, token) = self
            .admin(reqwest::Method::POST, "/v1/tokens", Some(body))
            .await;
        assert_eq!(status, 201, "{token}");
        token["token"].as_str().unwrap().to_owned()
    }

    /// `path` under tunnel `name`, by path routing.
    pub(super) fn url(&self, name: &str, path: &str) -> String {
        format!("{}/t/{name}{path}", self.serve.url)
    }
}

/// A `hookrelay tunnel` process; killed on drop.
pub(super) struct Agent {
    child: Child,
}

impl Agent {
    pub(super) fn spawn(
        relay: &Relay,
        token: &str,
        name: &str,
        destination: &str,
        transport: &str,
    ) -> Agent {
        Self::spawn_with(relay, token, name, destination, transport, &[])
    }

    pub(super) fn spawn_with(
        relay: &Relay,
        token: &str,
        name: &str,
        destination: &str,
        transport: &str,
        extra: &[&str],
    ) -> Agent {
        let child = Command::new(BIN)
            .args(["tunnel", "--server", &relay.serve.url, "--name", name])
            .args(["--destination", destination, "--transport", transport])
            .args(extra)
            .env("HOOKRELAY_TOKEN", token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hookrelay tunnel");
        Agent { child }
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub(super) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `url` answers through a connected agent (not 502).
pub(super) async fn wait_connected(relay: &Relay, url: &str) {
    testkit::wait_until(
        Duration::from_secs(20),
        "the tunnel agent connected",
        || async { matches!(relay.http.get(url).send().await, Ok(r) if r.status() != 502) },
    )
    .await;
}

/// Resident memory of a process, in bytes (Linux `/proc`).
pub(super) fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
