//! Scenario 1, ingest: signed GitHub webhooks over keep-alive connections
//! at increasing concurrency, each verified (HMAC-SHA256) and durably
//! stored before its 200; at the end the relay's stored-event counter must
//! equal the number of 200s.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use crate::relay::{Relay, RelaySpec, Signed};
use crate::report::Table;
use crate::sender::{Samples, Sender};

pub(crate) struct Params {
    pub(crate) concurrency: Vec<usize>,
    pub(crate) seconds: u64,
    pub(crate) body_size: usize,
}

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let nodes = Relay::start_cluster(spec).await?;
    let relay = &nodes[0];
    let bucket = relay.bucket("bench").await?;
    let input = relay.github_input(&bucket, "ingest").await?;
    let signed = Signed::github(p.body_size)?;
    let mut table = Table::new(
        "ingest",
        format!(
            "signed GitHub webhooks ({} B), verified and durably stored (store {}, {} node{}) before the 200; {} s per level",
            p.body_size, spec.store, nodes.len(), if nodes.len() == 1 { "" } else { "s" }, p.seconds
        ),
        vec!["connections", "requests", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"],
    );
    table.header();
    let mut accepted = 0u64;
    for (level, &connections) in p.concurrency.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(p.seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..connections {
            // Connections spread over the nodes, as a load balancer would.
            let node = &nodes[c % nodes.len()];
            let (addr, input, signed) = (node.addr().to_owned(), input.clone(), signed.clone());
            tasks.push(tokio::spawn(async move {
                let mut sender = Sender::connect(&addr).await?;
                let mut latencies = Vec::with_capacity(50_000);
                let mut errors = 0u64;
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    seq += 1;
                    let t0 = Instant::now();
                    let status = sender
                        .post(&input, &format!("bench-{level}-{c}-{seq}"), &signed)
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
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await??;
            all.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let s = Samples::new(all);
        accepted += s.len() as u64;
        table.row(vec![
            json!(connections),
            json!(s.len()),
            json!(s.len() as f64 / elapsed),
            json!(s.ms(0.5)),
            json!(s.ms(0.99)),
            json!(s.ms(0.999)),
            json!(errors),
        ]);
    }
    let mut stored = 0;
    for node in &nodes {
        stored += node.metric("hookrelay_events_stored_total").await? as u64;
    }
    table.note(format!(
        "answered 200: {accepted}; stored by the relay: {stored}"
    ));
    for node in nodes {
        node.stop().await;
    }
    if stored != accepted {
        bail!("the relay stored {stored} events but answered 200 to {accepted}");
    }
    Ok(table.finish())
}
