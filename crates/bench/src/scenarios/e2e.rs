//! Scenario 2, end-to-end latency through a real `hookrelay agent` process:
//! from the start of the POST to the arrival of the delivery at a local
//! destination, with one request in flight (sequential) and at fixed
//! request rates (open loop: latency counts from the scheduled send time,
//! so a sender falling behind shows up in the figures).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::{patience_for, AgentProcess, Transport, PATIENCE};
use crate::destination::Destination;
use crate::relay::{Relay, RelaySpec, Signed};
use crate::report::Table;
use crate::sender::{until, Samples, Sender};

pub(crate) struct Params {
    pub(crate) transports: Vec<Transport>,
    /// Sequential round trips (one in flight).
    pub(crate) sequential: u64,
    /// Requests per second of the open-loop runs.
    pub(crate) rates: Vec<u64>,
    /// Seconds of each open-loop run.
    pub(crate) seconds: u64,
    pub(crate) body_size: usize,
    pub(crate) max_in_flight: u32,
}

/// Connections the open-loop sender spreads its requests over.
const CONNECTIONS: usize = 32;

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    // On a cluster the webhook enters at the first node and leaves through
    // an agent connected to the last: the cross-node path.
    let nodes = Relay::start_cluster(spec).await?;
    let relay = &nodes[0];
    let exit = &nodes[nodes.len() - 1];
    let destination = Destination::spawn().await?;
    let bucket = relay.bucket("bench").await?;
    let input = relay.github_input(&bucket, "e2e").await?;
    relay
        .internal_output(&bucket, &destination.for_group(0))
        .await?;
    let token = relay.agent_token().await?;
    let signed = Signed::github(p.body_size)?;
    let mut table = Table::new(
        "e2e",
        format!(
            "POST → arrival at the destination through one `hookrelay agent` process ({} B signed bodies, agent --max-in-flight {}, store {}, {})",
            p.body_size, p.max_in_flight, spec.store,
            if nodes.len() == 1 { "one node".to_owned() } else { format!("POST to node 1 of {}, agent on node {}", nodes.len(), nodes.len()) }
        ),
        vec![
            "transport",
            "load",
            "events",
            "p50 ms",
            "p99 ms",
            "max ms",
            "200 p50 ms",
            "missing",
        ],
    );
    table.header();
    let mut seq = 0u64;
    for &transport in &p.transports {
        let agent = AgentProcess::spawn(
            spec,
            exit,
            &token,
            "bench",
            transport,
            &destination.for_group(0),
            p.max_in_flight,
        )?;
        exit.wait_agents(1, PATIENCE).await?;
        // Warm the path (connections, caches) before measuring.
        sequential(relay, &destination, &input, &signed, &mut seq, 20).await?;
        phase_hook("start").await;
        let (s, answered) =
            sequential(relay, &destination, &input, &signed, &mut seq, p.sequential).await?;
        phase_hook("stop").await;
        // The reference: what one durable commit costs on this disk, in
        // the same run (a 2xx waits for one).
        let sync = fsyncs(relay.data_dir(), FSYNCS).await?;
        table.row(vec![
            json!(transport.name()),
            json!("1 in flight"),
            json!(s.len()),
            json!(s.ms(0.5)),
            json!(s.ms(0.99)),
            json!(s.max_ms()),
            json!(answered.ms(0.5)),
            json!(0),
        ]);
        table.row(vec![
            json!(format!("fsync after {}", transport.name())),
            json!("1 in flight"),
            json!(sync.len()),
            json!(sync.ms(0.5)),
            json!(sync.ms(0.99)),
            json!(sync.max_ms()),
            json!("-"),
            json!(0),
        ]);
        table.note(format!(
            "{}: e2e p50 {:.3} ms is {:+.3} ms from the disk's fsync p50 ({:.3} ms) measured right after it",
            transport.name(),
            s.ms(0.5),
            s.ms(0.5) - sync.ms(0.5),
            sync.ms(0.5)
        ));
        for &rate in &p.rates {
            let (s, missing) = open_loop(
                relay,
                &destination,
                &input,
                &signed,
                &mut seq,
                rate,
                p.seconds,
            )
            .await?;
            table.row(vec![
                json!(transport.name()),
                json!(format!("{rate}/s")),
                json!(s.len()),
                json!(s.ms(0.5)),
                json!(s.ms(0.99)),
                json!(s.max_ms()),
                json!("-"),
                json!(missing),
            ]);
        }
        agent.stop().await;
        exit.wait_agents(0, PATIENCE).await?;
    }
    let (duplicates, unparsed) = destination.anomalies();
    table.note(format!(
        "duplicates at the destination: {duplicates}; unexpected requests: {unparsed}"
    ));
    for node in nodes {
        node.stop().await;
    }
    Ok(table.finish())
}

/// Runs `$HOOKRELAY_BENCH_PHASE_HOOK start|stop` around the measured
/// one-in-flight phase (profile-e2e.sh zeroes and dumps callgrind's
/// counters with it), waiting at most 5 s for it.
pub(super) async fn phase_hook(phase: &str) {
    phase_hook_for(phase, None).await;
}

/// [`phase_hook`], telling the hook the relay's pid (as its second
/// argument) so it can attach to it (profile-catchup.sh runs `perf`).
pub(super) async fn phase_hook_for(phase: &str, relay_pid: Option<u32>) {
    let Some(hook) = std::env::var_os("HOOKRELAY_BENCH_PHASE_HOOK").filter(|h| !h.is_empty())
    else {
        return;
    };
    let mut command = tokio::process::Command::new(&hook);
    command.arg(phase);
    if let Some(pid) = relay_pid {
        command.arg(pid.to_string());
    }
    let run = command.status();
    if tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .is_err()
    {
        eprintln!("  (the phase hook {phase} still runs after 5 s; going on)");
    }
}

/// Appends-and-fsyncs timed for the reference row.
const FSYNCS: usize = 200;

/// `n` writes of 4 KiB to a file in `dir`, each followed by `fdatasync`,
/// one at a time: what a WAL commit costs at the least. The file is
/// written in full and synced first and then overwritten in place, as a
/// WAL in steady state is (appending to a growing file would time the
/// file system's metadata journal too, which a WAL commit does not pay).
async fn fsyncs(dir: &std::path::Path, n: usize) -> anyhow::Result<Samples> {
    const BLOCK: usize = 4096;
    const BLOCKS: usize = 256;
    let path = dir.join("bench-fsync.probe");
    let samples = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Duration>> {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        file.write_all(&vec![0_u8; BLOCK * BLOCKS])?;
        file.sync_all()?;
        let block = [0x5a_u8; BLOCK];
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let t0 = Instant::now();
            file.seek(SeekFrom::Start(((i % BLOCKS) * BLOCK) as u64))?;
            file.write_all(&block)?;
            file.sync_data()?;
            samples.push(t0.elapsed());
        }
        drop(file);
        std::fs::remove_file(&path)?;
        Ok(samples)
    })
    .await??;
    Ok(Samples::new(samples))
}

/// `rounds` webhooks one after the other, each waiting for its arrival:
/// the latencies until arrival, and until the relay's 200.
async fn sequential(
    relay: &Relay,
    destination: &Destination,
    input: &str,
    signed: &Signed,
    seq: &mut u64,
    rounds: u64,
) -> anyhow::Result<(Samples, Samples)> {
    let mut sender = Sender::connect(relay.addr()).await?;
    let mut samples = Vec::with_capacity(rounds as usize);
    let mut answers = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        *seq += 1;
        let before = destination.count();
        let t0 = Instant::now();
        let status = sender
            .post(&format!("{input}/{seq}"), &format!("e-{seq}"), signed)
            .await?;
        answers.push(t0.elapsed());
        if status != 200 {
            bail!("webhook {seq} answered {status}");
        }
        destination.wait_for(before + 1, PATIENCE).await?;
        let at = destination
            .last_arrival(*seq, 1)
            .ok_or_else(|| anyhow::anyhow!("webhook {seq} did not arrive (another did)"))?;
        samples.push(at - t0);
    }
    Ok((Samples::new(samples), Samples::new(answers)))
}

/// `rate` webhooks per second for `seconds`, each sent at its scheduled
/// time (or at once if the sender is behind); the latencies from the
/// scheduled time, and how many never arrived within [`PATIENCE`].
async fn open_loop(
    relay: &Relay,
    destination: &Destination,
    input: &str,
    signed: &Signed,
    seq: &mut u64,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<(Samples, u64)> {
    let n = rate * seconds;
    let first = *seq + 1;
    *seq += n;
    let before = destination.count();
    let start = Instant::now() + Duration::from_millis(50);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let scheduled = Arc::new(
        (0..n)
            .map(|i| start + interval * i as u32)
            .collect::<Vec<_>>(),
    );
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS.min(n as usize) {
        let (addr, input, signed, scheduled) = (
            relay.addr().to_owned(),
            input.to_owned(),
            signed.clone(),
            scheduled.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut sender = Sender::connect(&addr).await?;
            let mut errors = 0u64;
            for i in (c..scheduled.len()).step_by(CONNECTIONS) {
                until(scheduled[i]).await;
                let s = first + i as u64;
                if sender
                    .post(&format!("{input}/{s}"), &format!("e-{s}"), &signed)
                    .await?
                    != 200
                {
                    errors += 1;
                }
            }
            anyhow::Ok(errors)
        }));
    }
    let mut errors = 0;
    for t in tasks {
        errors += t.await??;
    }
    if errors > 0 {
        bail!("{errors} of {n} webhooks at {rate}/s were not answered 200");
    }
    let _ = destination.wait_for(before + n, patience_for(n)).await;
    let mut samples = Vec::with_capacity(n as usize);
    let mut missing = 0;
    for (i, at) in scheduled.iter().enumerate() {
        match destination.last_arrival(first + i as u64, 1) {
            Some(arrived) => samples.push(arrived.saturating_duration_since(*at)),
            None => missing += 1,
        }
    }
    Ok((Samples::new(samples), missing))
}
