//! The six scenarios of issue 7, `deliver` of issue 13 and the tunnel
//! comparison of issue 15, one module each, and what they share: the
//! agents (the real `hookrelay agent` process, or the agent library in this
//! process where many are needed) and a pool of senders.
//!
//! Every scenario starts its own relay (fresh data directory) on
//! `127.0.0.1:0`, so one cannot skew the next, and every loop is bounded
//! in count and in time.
//!
//! Uses `relay`, `sender` and `destination` of this binary; only
//! `main.rs` calls into it.

pub(crate) mod catchup;
pub(crate) mod deliver;
pub(crate) mod e2e;
pub(crate) mod fanout;
pub(crate) mod functions;
pub(crate) mod idle;
pub(crate) mod ingest;
pub(crate) mod poll;
pub(crate) mod tunnel;

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::relay::{Relay, RelaySpec, Signed};
use crate::sender::Sender;

/// How long any single wait (agents connecting, deliveries arriving) may
/// take before the scenario fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// How long waiting for `deliveries` may take: [`PATIENCE`] plus 10 ms
/// each (a floor of 100 deliveries/s), so a slow relay fails with its
/// count rather than hanging.
pub(crate) fn patience_for(deliveries: u64) -> Duration {
    PATIENCE + Duration::from_millis(10).saturating_mul(deliveries.min(1_000_000) as u32)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    Grpc,
    Ws,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Ws => "ws",
        }
    }
}

/// A real `hookrelay agent` process; killed when dropped.
pub(crate) struct AgentProcess {
    child: tokio::process::Child,
}

impl AgentProcess {
    pub(crate) fn spawn(
        spec: &RelaySpec,
        relay: &Relay,
        token: &str,
        bucket: &str,
        transport: Transport,
        destination: &str,
        max_in_flight: u32,
    ) -> anyhow::Result<AgentProcess> {
        let child = tokio::process::Command::new(&spec.agent_bin)
            .arg("agent")
            .args(["--server", &relay.url])
            .args(["--bucket", bucket])
            .args(["--transport", transport.name()])
            .args(["--destination", destination])
            .args(["--max-in-flight", &max_in_flight.to_string()])
            .env("HOOKRELAY_TOKEN", token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} agent", spec.agent_bin.display()))?;
        Ok(AgentProcess { child })
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the agent (SIGTERM: a clean stop, then SIGKILL if need be).
    pub(crate) async fn stop(mut self) {
        crate::relay::terminate(&mut self.child).await;
    }
}

/// Agents run by the agent library inside this process: cheap enough to
/// hold hundreds of connections. Each is a full agent (its own connection,
/// Hello, heartbeats, forwarding) — only the process is shared.
pub(crate) struct LibraryAgents {
    /// Every agent's configuration but its group and destination.
    base: agent::AgentConfig,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<Result<(), agent::AgentError>>>,
}

impl LibraryAgents {
    /// Agents of `relay` for `bucket`, with the agent token `key.secret`.
    pub(crate) fn new(
        relay: &Relay,
        token: &str,
        bucket: &str,
        transport: Transport,
        max_in_flight: u32,
    ) -> anyhow::Result<LibraryAgents> {
        let (key, secret) = token.split_once('.').context("token is key.secret")?;
        let base = agent::AgentConfig {
            server: relay.url.clone(),
            token_key: key.to_owned(),
            token_secret: secret.to_owned(),
            buckets: vec![bucket.to_owned()],
            group: String::new(),
            transport: match transport {
                Transport::Grpc => agent::Transport::Grpc,
                Transport::Ws => agent::Transport::WebSocket,
            },
            destination: None,
            max_in_flight,
            stop_grace: Duration::from_secs(2),
            ca_file: None,
        };
        Ok(LibraryAgents {
            base,
            stop: CancellationToken::new(),
            tasks: Vec::new(),
        })
    }

    /// Starts one more agent, of `group`, forwarding to `destination`.
    pub(crate) fn start(&mut self, group: String, destination: Option<String>) {
        let config = agent::AgentConfig {
            group,
            destination,
            ..self.base.clone()
        };
        self.tasks.push(tokio::spawn(agent::run(
            config,
            self.stop.child_token(),
            None,
        )));
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Stops every agent cleanly (bounded by their stop grace).
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Posts webhooks `seqs` to `<input>/<seq>` over `connections` keep-alive
/// connections as fast as they answer. Returns the number of non-200s.
pub(crate) async fn post_burst(
    relay: &Relay,
    input: &str,
    signed: &Signed,
    seqs: std::ops::Range<u64>,
    connections: usize,
) -> anyhow::Result<u64> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(seqs.start));
    let deadline = Instant::now() + PATIENCE;
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (next, end) = (next.clone(), seqs.end);
        let (addr, input, signed) = (relay.addr().to_owned(), input.to_owned(), signed.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = Sender::connect(&addr).await?;
            let mut errors = 0u64;
            loop {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seq >= end || Instant::now() > deadline {
                    return anyhow::Ok(errors);
                }
                let status = sender
                    .post(&format!("{input}/{seq}"), &format!("d-{seq}"), &signed)
                    .await?;
                if status != 200 {
                    errors += 1;
                }
            }
        }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += t.await??;
    }
    Ok(errors)
}
