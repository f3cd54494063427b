//! [`Relay`]: the real `hookrelay serve` binary on `127.0.0.1:0` with a fresh
//! data directory, plus the admin calls the scenarios need (bucket, input,
//! output, token) and the figures they read back (metrics, RSS).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

pub(crate) const ADMIN: &str = "bench-admin-secret";
/// The poll secret of the default tenant (`RELAY_POLL_SECRET`).
pub(crate) const POLL_SECRET: &str = "bench-poll-secret";
/// The GitHub secret of every input the bench creates.
pub(crate) const SECRET: &str = "bench-secret";
/// Generous, so the relay can start under valgrind.
const START_PATIENCE: Duration = Duration::from_secs(60);
/// How long a stopping process gets after SIGTERM before SIGKILL (a
/// profiler wrapping it writes its output on the way out).
const STOP_GRACE: Duration = Duration::from_secs(15);

/// How to start the relay.
#[derive(Clone, Debug)]
pub(crate) struct RelaySpec {
    pub(crate) bin: PathBuf,
    /// Run as `hookrelay agent` where a scenario uses agent processes.
    pub(crate) agent_bin: PathBuf,
    /// Passed through as `serve --store` when not `sqlite`.
    pub(crate) store: String,
    /// Relay processes on the one Redis where a scenario runs a cluster
    /// (ingest spreads its connections over them; e2e posts to the first
    /// and connects the agent to the last).
    pub(crate) nodes: usize,
}

/// The master key every node of a bench cluster shares (base64 of 32
/// bytes): nodes must read each other's sealed records.
const CLUSTER_KEY: &str = "YmVuY2gtbWFzdGVyLWtleS0wMTIzNDU2Nzg5YWJjZGU=";

impl RelaySpec {
    fn on_redis(&self) -> bool {
        self.store.starts_with("redis://") || self.store.starts_with("rediss://")
    }
}

/// A Redis key namespace of this bench process: each relay (or cluster)
/// gets its own, so scenarios never see each other's buckets.
fn fresh_namespace() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}{n}", namespace_prefix())
}

fn namespace_prefix() -> String {
    format!("hrbench-{}-", std::process::id())
}

/// Deletes every key this bench process wrote to Redis (its namespaces).
pub(crate) fn forget_namespaces(spec: &RelaySpec) -> anyhow::Result<()> {
    if !spec.on_redis() {
        return Ok(());
    }
    let client = redis::Client::open(spec.store.as_str())?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let pattern = format!("{}*", namespace_prefix());
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut con)?;
    for chunk in keys.chunks(1000) {
        let _: () = redis::cmd("UNLINK").arg(chunk).query(&mut con)?;
    }
    Ok(())
}

/// Redis's own CPU time (`INFO cpu`: user and system, all its threads) in
/// µs, when the relay runs on Redis.
pub(crate) fn redis_cpu_micros(spec: &RelaySpec) -> anyhow::Result<Option<u64>> {
    if !spec.on_redis() {
        return Ok(None);
    }
    let client = redis::Client::open(spec.store.as_str())?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let info: String = redis::cmd("INFO").arg("cpu").query(&mut con)?;
    let mut seconds = 0.0;
    for line in info.lines() {
        if let Some(v) = line
            .strip_prefix("used_cpu_sys:")
            .or_else(|| line.strip_prefix("used_cpu_user:"))
        {
            seconds += v.trim().parse::<f64>()?;
        }
    }
    Ok(Some((seconds * 1e6) as u64))
}

/// How many event ids the append script re-minted (another node's commit
/// was ahead of the proposed id, or the proposal was too old) in this
/// bench process's namespaces, when the relay runs on Redis.
pub(crate) fn redis_remints(spec: &RelaySpec) -> anyhow::Result<Option<u64>> {
    if !spec.on_redis() {
        return Ok(None);
    }
    let client = redis::Client::open(spec.store.as_str())?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let pattern = format!("{}*:remints", namespace_prefix());
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut con)?;
    let mut total = 0;
    for key in keys {
        let n: Option<u64> = redis::cmd("GET").arg(key).query(&mut con)?;
        total += n.unwrap_or(0);
    }
    Ok(Some(total))
}

/// A running relay; killed (and its data directory removed) when dropped.
pub(crate) struct Relay {
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    child: tokio::process::Child,
    pid: u32,
    _data: tempfile::TempDir,
}

impl Relay {
    /// The relay's data directory (its SQLite file, on SQLite).
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    /// One relay (on Redis, in a namespace of its own).
    pub(crate) async fn start(spec: &RelaySpec) -> anyhow::Result<Relay> {
        Self::start_in(spec, &fresh_namespace()).await
    }

    /// `spec.nodes` relays sharing one Redis namespace (one relay on SQLite).
    pub(crate) async fn start_cluster(spec: &RelaySpec) -> anyhow::Result<Vec<Relay>> {
        if spec.nodes > 1 && !spec.on_redis() {
            bail!(
                "--nodes {} needs --store redis://…: nodes share a Redis",
                spec.nodes
            );
        }
        let namespace = fresh_namespace();
        let mut nodes = Vec::with_capacity(spec.nodes);
        for _ in 0..spec.nodes.max(1) {
            nodes.push(Self::start_in(spec, &namespace).await?);
        }
        Ok(nodes)
    }

    async fn start_in(spec: &RelaySpec, namespace: &str) -> anyhow::Result<Relay> {
        let data = tempfile::tempdir()?;
        let mut command = tokio::process::Command::new(&spec.bin);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data.path())
            .env("HOOKRELAY_ADMIN_SECRET", ADMIN)
            .env("RELAY_POLL_SECRET", POLL_SECRET)
            .env("RUST_LOG", "warn")
            // `idle --agents 10000` plus the bench's own connections: the
            // default bound (10,000) held the last agent back. An env
            // variable, which a relay from before the flag ignores.
            .env("HOOKRELAY_MAX_CONNECTIONS", "12000")
            // The poll bench spreads its requests over client addresses
            // (X-Forwarded-For) so the per-IP poll limit (20/min) does not
            // turn it into a 429 benchmark.
            .arg("--trusted-proxy")
            .arg("127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if spec.store != "sqlite" {
            command.arg("--store").arg(&spec.store);
        }
        if spec.on_redis() {
            command
                .env("HOOKRELAY_REDIS_NAMESPACE", namespace)
                .env("HOOKRELAY_MASTER_KEY", CLUSTER_KEY);
        }
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {} (build it with cargo build --release -p hookrelay)",
                spec.bin.display()
            )
        })?;
        let pid = child.id().context("the relay has a pid")?;
        let stderr = drain_stderr(&mut child)?;
        let url = match listening_url(&mut child).await {
            Ok(url) => url,
            Err(err) => {
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let said = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                bail!(
                    "{err}; `hookrelay serve --store {}` {}; its stderr:\n{}",
                    spec.store,
                    match status {
                        Ok(Ok(s)) => format!("exited with {s}"),
                        _ => "did not exit".to_owned(),
                    },
                    said.trim_end()
                );
            }
        };
        let relay = Relay {
            url,
            http: reqwest::Client::new(),
            child,
            pid,
            _data: data,
        };
        relay.wait_ready().await?;
        // On stderr, for attaching a profiler (perf record -p, strace -p).
        eprintln!("  (relay pid {pid} at {})", relay.url);
        Ok(relay)
    }

    /// The ingest baseline (`hookrelay-baseline`, beside the relay binary)
    /// on a fresh data directory; driven like a relay, with the same secret.
    pub(crate) async fn start_baseline(spec: &RelaySpec) -> anyhow::Result<Relay> {
        let data = tempfile::tempdir()?;
        let bin = spec.bin.with_file_name("hookrelay-baseline");
        let mut child = tokio::process::Command::new(&bin)
            .arg("--data-dir")
            .arg(data.path())
            .arg("--secret")
            .arg(SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it with cargo build --release -p bench)",
                    bin.display()
                )
            })?;
        let pid = child.id().context("the baseline has a pid")?;
        let _stderr = drain_stderr(&mut child)?;
        let url = listening_url(&mut child).await?;
        let baseline = Relay {
            url,
            http: reqwest::Client::new(),
            child,
            pid,
            _data: data,
        };
        baseline.wait_ready().await?;
        Ok(baseline)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_PATIENCE;
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the relay did not become ready within {START_PATIENCE:?}")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// `host:port`.
    pub(crate) fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// An admin call answering `expect`, its JSON body (or `null`).
    pub(crate) async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        if status != expect {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A bucket named `name`; its id.
    pub(crate) async fn bucket(&self, name: &str) -> anyhow::Result<String> {
        let v = self
            .admin(
                reqwest::Method::POST,
                "/v1/buckets",
                Some(json!({"name": name})),
                201,
            )
            .await?;
        Ok(v["id"].as_str().context("bucket id")?.to_owned())
    }

    /// A GitHub input of `bucket` without a practical rate limit; the path
    /// of its `/v1/webhooks/{id}` URL.
    pub(crate) async fn github_input(&self, bucket: &str, name: &str) -> anyhow::Result<String> {
        let v = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/buckets/{bucket}/inputs"),
                Some(json!({
                    "name": name,
                    "integration": "github",
                    "secrets": [SECRET],
                    "rateLimit": {"requests": 4_000_000_000u32, "windowSeconds": 1}
                })),
                201,
            )
            .await?;
        Ok(format!(
            "/v1/webhooks/{}",
            v["id"].as_str().context("input id")?
        ))
    }

    /// An internal output of `bucket` (agents deliver it).
    pub(crate) async fn internal_output(&self, bucket: &str, url: &str) -> anyhow::Result<()> {
        self.admin(
            reqwest::Method::POST,
            &format!("/v1/buckets/{bucket}/outputs"),
            Some(json!({"url": url, "internal": true, "timeoutMs": 10000})),
            201,
        )
        .await?;
        Ok(())
    }

    /// An internal output with this `concurrency` and `ordered`.
    pub(crate) async fn output_with(
        &self,
        bucket: &str,
        url: &str,
        concurrency: u32,
        ordered: bool,
    ) -> anyhow::Result<()> {
        let body = json!({"url": url, "internal": true, "timeoutMs": 10000,
                          "concurrency": concurrency, "ordered": ordered});
        self.admin(
            reqwest::Method::POST,
            &format!("/v1/buckets/{bucket}/outputs"),
            Some(body),
            201,
        )
        .await?;
        Ok(())
    }

    /// A forward-mode agent token for every bucket: `key.secret`.
    pub(crate) async fn agent_token(&self) -> anyhow::Result<String> {
        let v = self
            .admin(
                reqwest::Method::POST,
                "/v1/tokens",
                Some(json!({"scope": "agent", "mode": "forward"})),
                201,
            )
            .await?;
        Ok(v["token"].as_str().context("token")?.to_owned())
    }

    /// One sample of the Prometheus text: the value of the first line
    /// starting with `name` (including labels, e.g. `x{a="b"}`).
    pub(crate) async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await?
            .text()
            .await?;
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("metric {name}"))?;
        Ok(value.trim().parse()?)
    }

    /// Waits until `n` agents are connected to this node.
    pub(crate) async fn wait_agents(&self, n: usize, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            let connected = self.metric("hookrelay_agents_connected").await? as usize;
            if connected == n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{connected} agents connected, not {n}, after {patience:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn stop(mut self) {
        terminate(&mut self.child).await;
    }
}

/// SIGTERM (through `kill`, as this crate has no unsafe code), then
/// SIGKILL if the process is still there after [`STOP_GRACE`].
pub(crate) async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Collects the relay's stderr (to explain a refusal) and keeps the pipe
/// drained so it never fills.
fn drain_stderr(
    child: &mut tokio::process::Child,
) -> anyhow::Result<std::sync::Arc<std::sync::Mutex<String>>> {
    let stderr = child.stderr.take().context("piped stderr")?;
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let keep = said.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut s) = keep.lock() {
                if s.len() < 16 * 1024 {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        }
    });
    Ok(said)
}

/// The URL the server printed once bound; the rest of stdout is drained.
async fn listening_url(child: &mut tokio::process::Child) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("piped stdout")?;
    let (found, url) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut found = Some(found);
        while let Ok(Some(line)) = lines.next_line().await {
            // `hookrelay listening on URL`, `hookrelay-baseline listening on URL`.
            if let Some((_, url)) = line.split_once(" listening on ") {
                if let Some(found) = found.take() {
                    let _ = found.send(url.trim().to_owned());
                }
            }
        }
    });
    match tokio::time::timeout(START_PATIENCE, url).await {
        Ok(Ok(url)) => Ok(url),
        Ok(Err(_)) => bail!("the relay exited before it was listening"),
        Err(_) => bail!("the relay did not start listening within {START_PATIENCE:?}"),
    }
}

/// The relay binary: `--server-bin`, else `hookrelay` beside this binary.
pub(crate) fn default_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(bin) => Ok(bin.to_owned()),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("the bench binary has a directory")?
            .join("hookrelay")),
    }
}

/// A correctly signed GitHub webhook: its body and `X-Hub-Signature-256`.
#[derive(Clone)]
pub(crate) struct Signed {
    pub(crate) body: Bytes,
    pub(crate) signature: String,
}

impl Signed {
    pub(crate) fn github(body_size: usize) -> anyhow::Result<Signed> {
        let body = Bytes::from(payload(body_size));
        let integration =
            verify::Integration::new(model::IntegrationKind::Github, None).context("github")?;
        let out = verify::Outgoing {
            url: "",
            content_type: "application/json",
            body: &body,
            event: "push",
            now_secs: 0,
        };
        let signature = verify::sign(&integration, SECRET, &out)?
            .headers
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-hub-signature-256"))
            .context("a sha256 signature")?
            .1;
        Ok(Signed { body, signature })
    }
}

/// A GitHub-push-like JSON body of about `size` bytes.
fn payload(size: usize) -> Vec<u8> {
    let head = r#"{"ref":"refs/heads/main","repository":{"full_name":"octo/hello"},"pusher":{"name":"octocat"},"padding":""#;
    let mut body = head.as_bytes().to_vec();
    body.resize(size.saturating_sub(2).max(head.len()), b'x');
    body.extend_from_slice(b"\"}");
    body
}

/// Resident memory of a process: (`VmRSS`, `RssAnon`) in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("RssAnon:")))
}

/// CPU time (user + system, every thread) a process has used so far, in
/// microseconds, from `/proc/PID/stat` at the kernel's tick resolution.
pub(crate) fn cpu_micros(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which may itself hold spaces: utime
    // and stime are the 14th and 15th of the line, the 12th and 13th here.
    let rest = stat.rsplit_once(')').context("a /proc stat line")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).context("utime")?.parse::<u64>()?
        + fields.get(12).context("stime")?.parse::<u64>()?;
    Ok(ticks * 1_000_000 / clock_ticks_per_second())
}

/// `getconf CLK_TCK` (100 on Linux unless the kernel says otherwise).
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}
