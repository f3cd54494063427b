//! Scenario 1, ingest: signed GitHub webhooks over keep-alive connections
//! at increasing concurrency, each verified (HMAC-SHA256) and durably
//! stored before its 200; at the end the relay's stored-event counter must
//! equal the number of 200s.
//!
//! Beside the relay runs `hookrelay-baseline` (axum + the same HMAC + a
//! SQLite group commit with the same durability, nothing else): each level
//! is run `rounds` times, relay and baseline alternating under the same
//! load, and the table reports the medians and their ratio. On a shared
//! 2-core machine the baseline alone swung 32–41k/s within a day, so only
//! the ratio measured in one run means anything. CPU-µs per accepted
//! webhook (the relay's processes, from `/proc`) is the other honest unit:
//! the load generator shares the cores.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use crate::relay::{cpu_micros, redis_cpu_micros, redis_remints, Relay, RelaySpec, Signed};
use crate::report::Table;
use crate::sender::{Samples, Sender};

pub(crate) struct Params {
    pub(crate) concurrency: Vec<usize>,
    pub(crate) seconds: u64,
    pub(crate) body_size: usize,
    /// Alternations of relay and baseline per level (medians reported).
    pub(crate) rounds: usize,
    /// Run the baseline beside the relay.
    pub(crate) baseline: bool,
}

/// One timed load against one target.
pub(crate) struct Round {
    pub(crate) rate: f64,
    pub(crate) samples: Vec<Duration>,
    pub(crate) errors: u64,
    pub(crate) cpu_per_event_us: f64,
    /// Redis's CPU-µs per accepted webhook (a relay on Redis).
    pub(crate) store_cpu_per_event_us: Option<f64>,
}

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let nodes = Relay::start_cluster(spec).await?;
    let relay = &nodes[0];
    let bucket = relay.bucket("bench").await?;
    let input = relay.github_input(&bucket, "ingest").await?;
    let baseline = match p.baseline {
        true => Some(Relay::start_baseline(spec).await?),
        false => None,
    };
    let signed = Signed::github(p.body_size)?;
    let mut table = Table::new(
        "ingest",
        format!(
            "signed GitHub webhooks ({} B), verified and durably stored (store {}, {} node{}) before the 200; {} s per level and target, {} round{} alternating with the baseline, medians",
            p.body_size, spec.store, nodes.len(), if nodes.len() == 1 { "" } else { "s" },
            p.seconds, p.rounds, if p.rounds == 1 { "" } else { "s" }
        ),
        vec![
            "connections", "requests", "req/s", "baseline req/s", "ratio", "p50 ms", "p99 ms",
            "p99.9 ms", "baseline p99.9 ms", "CPU us/event", "baseline CPU us/event",
            "Redis CPU us/event", "errors",
        ],
    );
    table.header();
    let mut accepted = 0u64;
    for (level, &connections) in p.concurrency.iter().enumerate() {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..p.rounds.max(1) {
            let tag = format!("{level}-{round}");
            let r = load(
                &nodes,
                Some(spec),
                &input,
                &signed,
                connections,
                p.seconds,
                &tag,
            )
            .await?;
            accepted += r.samples.len() as u64;
            ours.push(r);
            if let Some(b) = &baseline {
                let targets = std::slice::from_ref(b);
                theirs.push(
                    load(targets, None, &input, &signed, connections, p.seconds, &tag).await?,
                );
            }
        }
        table.row(level_row(connections, &ours, &theirs));
    }
    let mut stored = 0;
    for node in &nodes {
        stored += node.metric("hookrelay_events_stored_total").await? as u64;
    }
    table.note(format!(
        "answered 200: {accepted}; stored by the relay: {stored}"
    ));
    if let Some(remints) = redis_remints(spec)? {
        table.note(format!(
            "ids re-minted by the append script (another node's commit ahead): {remints}; appends refused: the errors column"
        ));
    }
    if let Some(b) = baseline {
        b.stop().await;
    }
    for node in nodes {
        node.stop().await;
    }
    if stored != accepted {
        bail!("the relay stored {stored} events but answered 200 to {accepted}");
    }
    Ok(table.finish())
}

/// The table row of one level: medians over the rounds.
fn level_row(connections: usize, ours: &[Round], theirs: &[Round]) -> Vec<serde_json::Value> {
    let rate = median(ours.iter().map(|r| r.rate));
    let base_rate = median(theirs.iter().map(|r| r.rate));
    let pooled = |rounds: &[Round]| {
        Samples::new(
            rounds
                .iter()
                .flat_map(|r| r.samples.iter().copied())
                .collect(),
        )
    };
    let (s, b) = (pooled(ours), pooled(theirs));
    let or_null = |v: f64, has: bool| if has { json!(v) } else { json!(null) };
    let has = !theirs.is_empty();
    vec![
        json!(connections),
        json!(s.len()),
        json!(rate),
        or_null(base_rate, has),
        or_null(
            if base_rate > 0.0 {
                rate / base_rate
            } else {
                0.0
            },
            has,
        ),
        json!(s.ms(0.5)),
        json!(s.ms(0.99)),
        json!(s.ms(0.999)),
        or_null(b.ms(0.999), has),
        json!(median(ours.iter().map(|r| r.cpu_per_event_us))),
        or_null(median(theirs.iter().map(|r| r.cpu_per_event_us)), has),
        match ours.iter().all(|r| r.store_cpu_per_event_us.is_some()) {
            true => json!(median(ours.iter().filter_map(|r| r.store_cpu_per_event_us))),
            false => json!(null),
        },
        json!(ours.iter().map(|r| r.errors).sum::<u64>()),
    ]
}

pub(crate) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `connections` keep-alive senders spread over `targets` for `seconds`;
/// the targets' CPU time (and Redis's, given the targets' `store` spec)
/// is read before and after.
pub(crate) async fn load(
    targets: &[Relay],
    store: Option<&RelaySpec>,
    input: &str,
    signed: &Signed,
    connections: usize,
    seconds: u64,
    tag: &str,
) -> anyhow::Result<Round> {
    let cpu_before: u64 = targets
        .iter()
        .map(|t| cpu_micros(t.pid()).unwrap_or(0))
        .sum();
    let store_before = match store {
        Some(spec) => redis_cpu_micros(spec)?,
        None => None,
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        // Connections spread over the nodes, as a load balancer would.
        let target = &targets[c % targets.len()];
        let (addr, input, signed) = (target.addr().to_owned(), input.to_owned(), signed.clone());
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut sender = Sender::connect(&addr).await?;
            let mut latencies = Vec::with_capacity(50_000);
            let mut errors = 0u64;
            let mut seq = 0u64;
            while Instant::now() < deadline {
                seq += 1;
                let t0 = Instant::now();
                let status = sender
                    .post(&input, &format!("bench-{tag}-{c}-{seq}"), &signed)
                    .await?;
                if status == 200 {
                    latencies.push(t0.elapsed());
                } else {
                    errors += 1;
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut samples = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        samples.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after: u64 = targets
        .iter()
        .map(|t| cpu_micros(t.pid()).unwrap_or(0))
        .sum();
    let events = samples.len().max(1) as f64;
    let store_after = match store {
        Some(spec) => redis_cpu_micros(spec)?,
        None => None,
    };
    Ok(Round {
        store_cpu_per_event_us: store_before
            .zip(store_after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / events),
        rate: samples.len() as f64 / elapsed,
        cpu_per_event_us: cpu_after.saturating_sub(cpu_before) as f64 / events,
        samples,
        errors,
    })
}
