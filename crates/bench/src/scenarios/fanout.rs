//! Scenario 3, fan-out: one agent in each of N groups (every group gets
//! every event), run by the agent library in this process so 100 groups
//! cost 100 connections rather than 100 processes. Measures the latency
//! until the last group has an event (one in flight), then a burst: events
//! per second delivered to all groups.

use std::time::Instant;

use serde_json::json;

use super::{patience_for, post_burst, LibraryAgents, Transport, PATIENCE};
use crate::destination::Destination;
use crate::relay::{Relay, RelaySpec, Signed};
use crate::report::Table;
use crate::sender::{Samples, Sender};

pub(crate) struct Params {
    pub(crate) groups: Vec<u32>,
    pub(crate) transport: Transport,
    /// Sequential events for the last-group latency.
    pub(crate) sequential: u64,
    /// Events of the burst.
    pub(crate) burst: u64,
    /// The burst shrinks so that groups × events stays under this.
    pub(crate) max_deliveries: u64,
    pub(crate) body_size: usize,
    pub(crate) max_in_flight: u32,
}

/// Connections posting the burst.
const CONNECTIONS: usize = 8;

/// The output's `concurrency` (its default, DESIGN §5): with it, each
/// group has at most this many requests at the destination at once.
const OUTPUT_CONCURRENCY: u32 = 16;

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "fanout",
        format!(
            "one {} agent per group (agent library in the bench process); latency until the last group has the event (one in flight), then a burst of {} events (at most {} deliveries) posted over {CONNECTIONS} connections",
            p.transport.name(), p.burst, p.max_deliveries
        ),
        vec![
            "groups",
            "last-group p50 ms",
            "last-group p99 ms",
            "burst events",
            "events/s",
            "deliveries/s",
            "reference/s",
            "ratio",
            "all delivered s",
        ],
    );
    table.header();
    let signed = Signed::github(p.body_size)?;
    for &groups in &p.groups {
        // A fresh relay per level: groups of a previous level would keep
        // collecting deliveries for their return.
        let relay = Relay::start(spec).await?;
        let destination = Destination::spawn().await?;
        let bucket = relay.bucket("bench").await?;
        let input = relay.github_input(&bucket, "fanout").await?;
        relay
            .internal_output(&bucket, &format!("{}/unused", destination.url))
            .await?;
        let token = relay.agent_token().await?;
        let mut agents = LibraryAgents::new(&relay, &token, "bench", p.transport, p.max_in_flight)?;
        for g in 0..groups {
            agents.start(format!("group-{g}"), Some(destination.for_group(g)));
        }
        relay.wait_agents(agents.len(), PATIENCE).await?;

        let mut sender = Sender::connect(relay.addr()).await?;
        let mut latencies = Vec::new();
        let n = u64::from(groups);
        for seq in 1..=p.sequential {
            let before = destination.count();
            let t0 = Instant::now();
            let status = sender
                .post(&format!("{input}/{seq}"), &format!("f-{seq}"), &signed)
                .await?;
            anyhow::ensure!(status == 200, "webhook {seq} answered {status}");
            destination.wait_for(before + n, PATIENCE).await?;
            if let Some(at) = destination.last_arrival(seq, groups) {
                latencies.push(at - t0);
            }
        }
        let seq_lat = Samples::new(latencies);

        let burst = p.burst.min(p.max_deliveries / n).max(1);
        // The reference: as many requests straight to the destination, with
        // as many in flight as all the groups may have together.
        let concurrency = groups * p.max_in_flight.min(OUTPUT_CONCURRENCY);
        let reference =
            super::deliver::direct(&destination, groups, n * burst, concurrency, &signed).await?;
        let first = p.sequential + 1;
        let before = destination.count();
        let t0 = Instant::now();
        let errors = post_burst(&relay, &input, &signed, first..first + burst, CONNECTIONS).await?;
        anyhow::ensure!(errors == 0, "{errors} burst webhooks were not answered 200");
        let posted = t0.elapsed();
        destination
            .wait_for(before + n * burst, patience_for(n * burst))
            .await?;
        let mut last = t0;
        for seq in first..first + burst {
            if let Some(at) = destination.last_arrival(seq, groups) {
                last = last.max(at);
            }
        }
        let elapsed = (last - t0).as_secs_f64().max(1e-9);
        table.row(vec![
            json!(groups),
            json!(seq_lat.ms(0.5)),
            json!(seq_lat.ms(0.99)),
            json!(burst),
            json!(burst as f64 / elapsed),
            json!((n * burst) as f64 / elapsed),
            json!(reference),
            json!((n * burst) as f64 / elapsed / reference.max(1e-9)),
            json!(elapsed),
        ]);
        table.note(format!(
            "{groups} groups: burst posted in {:.3} s, all delivered after {elapsed:.3} s; reference: {} requests straight to the destination over {concurrency} keep-alive connections, first to last arrival; duplicates {}",
            posted.as_secs_f64(),
            n * burst,
            destination.anomalies().0
        ));
        agents.stop().await;
        relay.stop().await;
    }
    Ok(table.finish())
}
