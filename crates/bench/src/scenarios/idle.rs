//! Scenario 4, idle agents per node: connects N idle agents (agent library
//! in this process) and reads the relay's resident memory
//! (`/proc/<pid>/status`) before and after; reports KiB per idle agent.
//! Kernel socket buffers are not in the process's RSS and not counted.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{AgentProcess, LibraryAgents, Transport, PATIENCE};
use crate::relay::{rss_kib, Relay, RelaySpec};
use crate::report::Table;

pub(crate) struct Params {
    pub(crate) agents: usize,
    pub(crate) transports: Vec<Transport>,
    /// Also measure agents sharing one group (besides one group each).
    pub(crate) shared_group: bool,
    /// Agents connecting at once.
    pub(crate) batch: usize,
}

/// Time for the relay to settle after the last agent joined.
const SETTLE: Duration = Duration::from_secs(1);

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "idle",
        format!(
            "{} idle agents on one relay; the relay's RSS before and after (target < 12 KiB per agent)",
            p.agents
        ),
        vec![
            "transport",
            "groups",
            "agents",
            "RSS before MiB",
            "RSS after MiB",
            "KiB/agent",
            "anon KiB/agent",
            "RSS after stop MiB",
            "connect s",
        ],
    );
    table.header();
    let mut cases: Vec<(Transport, bool)> = p.transports.iter().map(|&t| (t, false)).collect();
    if p.shared_group {
        if let Some(&t) = p.transports.first() {
            cases.push((t, true));
        }
    }
    for (transport, shared) in cases {
        let (relay, token) = relay_for_agents(spec).await?;
        let group = |i: usize| {
            if shared {
                "shared".to_owned()
            } else {
                format!("idle-{i}")
            }
        };
        // One agent in and out first, so one-time allocations (the gRPC or
        // WebSocket service, the token cache) are in the baseline.
        let mut warm = LibraryAgents::new(&relay, &token, "bench", transport, 16)?;
        warm.start("warm".into(), None);
        relay.wait_agents(1, PATIENCE).await?;
        warm.stop().await;
        relay.wait_agents(0, PATIENCE).await?;
        tokio::time::sleep(SETTLE).await;
        let before = rss_kib(relay.pid())?;

        let t0 = Instant::now();
        let mut agents = LibraryAgents::new(&relay, &token, "bench", transport, 16)?;
        let mut i = 0;
        while i < p.agents {
            let end = (i + p.batch.max(1)).min(p.agents);
            for j in i..end {
                agents.start(group(j), None);
            }
            relay.wait_agents(end, PATIENCE).await?;
            i = end;
        }
        let connect = t0.elapsed();
        tokio::time::sleep(SETTLE).await;
        let after = rss_kib(relay.pid())?;
        agents.stop().await;
        relay.wait_agents(0, PATIENCE).await?;
        tokio::time::sleep(SETTLE).await;
        let stopped = rss_kib(relay.pid())?;
        let n = p.agents.max(1) as f64;
        let mib = |k: u64| k as f64 / 1024.0;
        table.row(vec![
            json!(transport.name()),
            json!(if shared { "1 shared" } else { "1 each" }),
            json!(p.agents),
            json!(mib(before.0)),
            json!(mib(after.0)),
            json!((after.0 as f64 - before.0 as f64) / n),
            json!((after.1 as f64 - before.1 as f64) / n),
            json!(mib(stopped.0)),
            json!(connect.as_secs_f64()),
        ]);
        relay.stop().await;
    }
    Ok(table.finish())
}

/// A fresh relay with bucket `bench`, an input and an internal output
/// nobody answers (nothing is sent), and an agent token.
async fn relay_for_agents(spec: &RelaySpec) -> anyhow::Result<(Relay, String)> {
    let relay = Relay::start(spec).await?;
    let bucket = relay.bucket("bench").await?;
    let _ = relay.github_input(&bucket, "idle").await?;
    relay
        .internal_output(&bucket, "http://127.0.0.1:9/unused")
        .await?;
    let token = relay.agent_token().await?;
    Ok((relay, token))
}

/// The idle `hookrelay agent` process itself, per transport (issue 14: at
/// most 8 MB; bore's client 4.4 MB, rathole's 8.2 MB): connected, nothing
/// to deliver, RSS read after it settled.
pub(crate) async fn agent_process(
    spec: &RelaySpec,
    transports: &[Transport],
) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "idle agent process",
        "one idle `hookrelay agent` process, connected; its own RSS (goal <= 8 MB)".into(),
        vec!["transport", "RSS MiB", "anon MiB"],
    );
    table.header();
    let (relay, token) = relay_for_agents(spec).await?;
    for &transport in transports {
        let agent = AgentProcess::spawn(
            spec,
            &relay,
            &token,
            "bench",
            transport,
            "http://127.0.0.1:9/unused",
            64,
        )?;
        relay.wait_agents(1, PATIENCE).await?;
        tokio::time::sleep(SETTLE).await;
        let pid = agent
            .pid()
            .ok_or_else(|| anyhow::anyhow!("the agent exited"))?;
        let (rss, anon) = rss_kib(pid)?;
        table.row(vec![
            json!(transport.name()),
            json!(rss as f64 / 1024.0),
            json!(anon as f64 / 1024.0),
        ]);
        agent.stop().await;
        relay.wait_agents(0, PATIENCE).await?;
    }
    relay.stop().await;
    Ok(table.finish())
}
