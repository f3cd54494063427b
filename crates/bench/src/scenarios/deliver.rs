//! Scenario 7, delivery at line rate (issue 13): a local destination that
//! takes `latency` per request, one real `hookrelay agent` with
//! `--max-in-flight` = the output's `concurrency`, and N webhooks
//!
//! - `live`: posted while the agent is connected, timed from the first
//!   POST to the last arrival;
//! - `backlog`: posted while no agent is connected, timed from the first
//!   arrival to the last once the agent starts (the catch-up's own rate).
//!
//! Beside each, the reference measured in the same round: the
//! destination's own rate from a direct keep-alive client with the same
//! number of requests in flight. Rounds alternate reference, live and
//! backlog; the table reports medians and the ratio to the reference. An
//! `ordered` output (one request at a time) is measured once at the end.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{patience_for, post_burst, AgentProcess, Transport, PATIENCE};
use crate::destination::Destination;
use crate::relay::{Relay, RelaySpec, Signed};
use crate::report::Table;
use crate::sender::Sender;

pub(crate) struct Params {
    /// Event counts to try, each a row per mode.
    pub(crate) events: Vec<u64>,
    pub(crate) latency: Duration,
    /// The output's `concurrency` and the agent's `--max-in-flight`.
    pub(crate) concurrency: u32,
    pub(crate) rounds: usize,
    pub(crate) transport: Transport,
    pub(crate) body_size: usize,
    /// Events through the `ordered` output (0: leave it out).
    pub(crate) ordered_events: u64,
}

/// Connections posting the webhooks to the relay.
const POSTERS: usize = 16;

/// Groups (the destination's `/g<n>` path) used per round and count; the
/// reference uses its own.
const MODES: u32 = 3;

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let mut table = Table::new(
        "deliver",
        format!(
            "a destination taking {} ms per request; one `hookrelay agent` ({}, --max-in-flight {c}), output concurrency {c}; store {}; {} round{} alternating reference, live and backlog, medians",
            p.latency.as_millis(), p.transport.name(), spec.store, p.rounds,
            if p.rounds == 1 { "" } else { "s" }, c = p.concurrency
        ),
        vec!["mode", "events", "events/s", "reference/s", "ratio", "rounds", "duplicates"],
    );
    table.header();
    let signed = Signed::github(p.body_size)?;
    let relay = Relay::start(spec).await?;
    let destination = Destination::spawn_with_latency(p.latency).await?;
    let bucket = relay.bucket("bench").await?;
    let input = relay.github_input(&bucket, "deliver").await?;
    relay
        .output_with(
            &bucket,
            &format!("{}/unused", destination.url),
            p.concurrency,
            false,
        )
        .await?;
    let token = relay.agent_token().await?;
    let agent = |group: u32| {
        AgentProcess::spawn(
            spec,
            &relay,
            &token,
            "bench",
            p.transport,
            &destination.for_group(group),
            p.concurrency,
        )
    };
    // The agent group exists from here on: webhooks posted while no agent
    // is connected wait for it.
    let first = agent(0)?;
    relay.wait_agents(1, PATIENCE).await?;
    first.stop().await;
    relay.wait_agents(0, PATIENCE).await?;

    let mut group = 1u32;
    let mut seq = 0u64;
    for &events in &p.events {
        let (mut reference, mut live, mut backlog) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..p.rounds.max(1) {
            let g = group;
            group += MODES;
            reference.push(direct(&destination, g, events, p.concurrency, &signed).await?);

            let running = agent(g + 1)?;
            relay.wait_agents(1, PATIENCE).await?;
            let t0 = Instant::now();
            post(&relay, &input, &signed, &mut seq, events).await?;
            let last = wait_group(&destination, g + 1, events).await?;
            live.push(events as f64 / last.2.duration_since(t0).as_secs_f64());
            running.stop().await;
            relay.wait_agents(0, PATIENCE).await?;

            post(&relay, &input, &signed, &mut seq, events).await?;
            let running = agent(g + 2)?;
            let (_, from, to) = wait_group(&destination, g + 2, events).await?;
            backlog.push(rate(events, from, to));
            running.stop().await;
            relay.wait_agents(0, PATIENCE).await?;
        }
        let base = median(&reference);
        let duplicates = destination.anomalies().0;
        for (mode, rates) in [("live", &live), ("backlog", &backlog)] {
            let r = median(rates);
            table.row(vec![
                json!(mode),
                json!(events),
                json!(r),
                json!(base),
                json!(if base > 0.0 { r / base } else { 0.0 }),
                json!(rates.len()),
                json!(duplicates),
            ]);
        }
    }
    if p.ordered_events > 0 {
        let ordered_bucket = relay.bucket("ordered").await?;
        let ordered_input = relay.github_input(&ordered_bucket, "ordered").await?;
        relay
            .output_with(
                &ordered_bucket,
                &format!("{}/unused", destination.url),
                1,
                true,
            )
            .await?;
        let g = group;
        let running = AgentProcess::spawn(
            spec,
            &relay,
            &token,
            "ordered",
            p.transport,
            &destination.for_group(g),
            p.concurrency,
        )?;
        relay.wait_agents(1, PATIENCE).await?;
        let t0 = Instant::now();
        post(&relay, &ordered_input, &signed, &mut seq, p.ordered_events).await?;
        let last = wait_group(&destination, g, p.ordered_events).await?;
        let r = p.ordered_events as f64 / last.2.duration_since(t0).as_secs_f64();
        let ideal = 1.0 / p.latency.as_secs_f64().max(1e-3);
        table.row(vec![
            json!("ordered live"),
            json!(p.ordered_events),
            json!(r),
            json!(ideal),
            json!(r / ideal),
            json!(1),
            json!(destination.anomalies().0),
        ]);
        running.stop().await;
        table.note("ordered live's reference is 1 / latency: one request at a time".into());
    }
    table.note(
        "live: first POST to last arrival; backlog: first to last arrival after the agent starts; reference: the same number of requests straight to the destination over as many keep-alive connections as the concurrency".into(),
    );
    relay.stop().await;
    Ok(table.finish())
}

/// Posts `events` webhooks (the next sequence numbers).
async fn post(
    relay: &Relay,
    input: &str,
    signed: &Signed,
    seq: &mut u64,
    events: u64,
) -> anyhow::Result<()> {
    let from = *seq + 1;
    *seq += events;
    let errors = post_burst(relay, input, signed, from..from + events, POSTERS).await?;
    anyhow::ensure!(errors == 0, "{errors} webhooks were not answered 200");
    Ok(())
}

/// Waits until group `g` has `events` distinct deliveries; its span.
async fn wait_group(
    destination: &Destination,
    g: u32,
    events: u64,
) -> anyhow::Result<(u64, Instant, Instant)> {
    let deadline = Instant::now() + patience_for(events);
    let mut changes = destination.changes();
    loop {
        if let Some(span) = destination.group_span(g).filter(|s| s.0 >= events) {
            return Ok(span);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        anyhow::ensure!(
            !left.is_zero(),
            "group {g}: only {} of {events} deliveries arrived",
            destination.group_span(g).map_or(0, |s| s.0)
        );
        let _ = tokio::time::timeout(left, changes.changed()).await;
    }
}

/// The destination's own rate: `events` requests over `concurrency`
/// keep-alive connections.
pub(super) async fn direct(
    destination: &Destination,
    g: u32,
    events: u64,
    concurrency: u32,
    signed: &Signed,
) -> anyhow::Result<f64> {
    let addr = destination.url.trim_start_matches("http://").to_owned();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (addr, next, signed) = (addr.clone(), next.clone(), signed.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = Sender::connect(&addr).await?;
            loop {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seq >= events {
                    return anyhow::Ok(());
                }
                sender
                    .post(&format!("/g{g}/{seq}"), "direct", &signed)
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    // Timed like the relay's modes: first to last arrival.
    let (_, from, to) = wait_group(destination, g, events).await?;
    Ok(rate(events, from, to))
}

fn rate(events: u64, from: Instant, to: Instant) -> f64 {
    // One delivery has no span: count the first as taking no time.
    let span = to.duration_since(from).as_secs_f64();
    if span <= 0.0 {
        return 0.0;
    }
    (events.saturating_sub(1)) as f64 / span
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
