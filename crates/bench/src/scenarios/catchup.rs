//! Scenario 5, catch-up: a real `hookrelay agent` connects once (so its
//! group exists) and goes away; N webhooks are posted while it is away;
//! then it starts again and the clock runs until all N have arrived.
//! `$HOOKRELAY_BENCH_PHASE_HOOK start|stop <relay pid>` runs around the
//! catch-up (profile-catchup.sh profiles the relay with it).

use std::time::Instant;

use serde_json::json;

use super::{patience_for, post_burst, AgentProcess, Transport, PATIENCE};
use crate::destination::Destination;
use crate::relay::{Relay, RelaySpec, Signed};
use crate::report::Table;

pub(crate) struct Params {
    pub(crate) events: u64,
    pub(crate) transports: Vec<Transport>,
    pub(crate) body_size: usize,
    pub(crate) max_in_flight: u32,
}

const CONNECTIONS: usize = 8;

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "catchup",
        format!(
            "{} webhooks posted while the agent was away, then one `hookrelay agent` process (--max-in-flight {}) started: time until all arrived",
            p.events, p.max_in_flight
        ),
        vec!["transport", "events", "posted/s", "first ms", "all s", "events/s", "duplicates"],
    );
    table.header();
    let signed = Signed::github(p.body_size)?;
    for &transport in &p.transports {
        let relay = Relay::start(spec).await?;
        let destination = Destination::spawn().await?;
        let bucket = relay.bucket("bench").await?;
        let input = relay.github_input(&bucket, "catchup").await?;
        relay
            .internal_output(&bucket, &format!("{}/unused", destination.url))
            .await?;
        let token = relay.agent_token().await?;
        let start = || {
            AgentProcess::spawn(
                spec,
                &relay,
                &token,
                "bench",
                transport,
                &destination.for_group(0),
                p.max_in_flight,
            )
        };
        let agent = start()?;
        relay.wait_agents(1, PATIENCE).await?;
        agent.stop().await;
        relay.wait_agents(0, PATIENCE).await?;

        let t0 = Instant::now();
        let errors = post_burst(&relay, &input, &signed, 1..p.events + 1, CONNECTIONS).await?;
        anyhow::ensure!(errors == 0, "{errors} webhooks were not answered 200");
        let posted = t0.elapsed().as_secs_f64();

        super::e2e::phase_hook_for("start", Some(relay.pid())).await;
        let t1 = Instant::now();
        let agent = start()?;
        destination.wait_for(1, PATIENCE).await?;
        let first = t1.elapsed();
        destination
            .wait_for(p.events, patience_for(p.events))
            .await?;
        let all = t1.elapsed().as_secs_f64();
        super::e2e::phase_hook_for("stop", Some(relay.pid())).await;
        table.row(vec![
            json!(transport.name()),
            json!(p.events),
            json!(p.events as f64 / posted),
            json!(first.as_secs_f64() * 1000.0),
            json!(all),
            json!(p.events as f64 / all),
            json!(destination.anomalies().0),
        ]);
        agent.stop().await;
        relay.stop().await;
    }
    table.note(
        "all s counts from starting the agent process (connect, Hello, Welcome included); first ms is the first arrival".into(),
    );
    Ok(table.finish())
}
