//! Scenario `tunnel` (issue 15): the same local service reached directly,
//! through a hookrelay tunnel (a real `hookrelay serve` and one real
//! `hookrelay tunnel` per transport), through rathole and through bore,
//! side by side in one run: keep-alive GETs at 64 connections, round trips
//! with one in flight, a new connection per request, one bulk download,
//! and the tunnel client's idle memory. Rounds alternate the paths (each
//! load runs on every path before the next load, in an order rotated per
//! round); the table shows medians over rounds and the notes the ratios.
//!
//! rathole and bore are looked for in `--tools DIR` (where
//! `crates/bench/tunnel-bench.sh` installs them); a missing one is left
//! out with a note. The load generator, the service and every process
//! share this machine's cores.
//!
//! # Layout
//! - `mod.rs`: the rounds, medians and table.
//! - `paths`: starting each path's processes.
//! - `load`: the service and the loads.

mod load;
mod paths;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::Transport;
use crate::relay::{Relay, RelaySpec};
use crate::report::Table;
use load::Service;
use paths::{tool, Path};

pub(crate) struct Params {
    /// Rounds; medians are reported.
    pub(crate) rounds: usize,
    /// Keep-alive connections of the throughput load.
    pub(crate) connections: usize,
    /// Seconds of the throughput load per path per round.
    pub(crate) seconds: u64,
    /// Round trips with one in flight per path per round.
    pub(crate) sequential: u64,
    /// Requests on new connections per path per round.
    pub(crate) fresh: u64,
    /// New-connection requests in flight at once.
    pub(crate) fresh_concurrency: usize,
    /// Bytes of the bulk download.
    pub(crate) bulk_bytes: u64,
    pub(crate) transports: Vec<Transport>,
    /// Where rathole and bore are; `None` leaves them out.
    pub(crate) tools: Option<PathBuf>,
}

/// One path's figures, one entry per round.
#[derive(Default)]
struct Figures {
    keep_alive: Vec<f64>,
    errors: u64,
    p50: Vec<f64>,
    p99: Vec<f64>,
    fresh: Vec<f64>,
    bulk: Vec<f64>,
}

pub(crate) async fn run(spec: &RelaySpec, p: &Params) -> anyhow::Result<Table> {
    let service = Service::spawn().await?;
    let relay = Relay::start(spec).await?;
    let mut table = Table::new(
        "tunnel",
        format!(
            "GET through each path to one local service: {} keep-alive connections for {} s, {} round trips one in flight, {} requests on new connections ({} at once), {} MiB bulk download; medians of {} rounds",
            p.connections,
            p.seconds,
            p.sequential,
            p.fresh,
            p.fresh_concurrency,
            p.bulk_bytes >> 20,
            p.rounds
        ),
        vec![
            "path",
            "req/s keep-alive",
            "p50 ms",
            "p99 ms",
            "req/s new conn",
            "bulk MiB/s",
            "client RSS MiB idle",
            "client RSS MiB after",
            "server RSS MiB after",
        ],
    );
    let mut paths = vec![Path::direct(service.port)];
    for &t in &p.transports {
        paths.push(Path::hookrelay(spec, &relay, t, service.port).await?);
    }
    for (name, start) in [("rathole", 0), ("bore", 1)] {
        let Some(bin) = p.tools.as_deref().and_then(|dir| tool(dir, name)) else {
            table.note(format!(
                "{name} left out: not found (crates/bench/tunnel-bench.sh installs it)"
            ));
            continue;
        };
        paths.push(if start == 0 {
            Path::rathole(&bin, service.port).await?
        } else {
            Path::bore(&bin, service.port).await?
        });
    }
    let idle: Vec<Option<u64>> = paths.iter().map(Path::agent_rss_kib).collect();
    table.header();
    // Warm every path (pools, connections, caches) before measuring.
    for path in &paths {
        load::round_trips(&path.public, 50).await?;
    }
    let mut figures: Vec<Figures> = paths.iter().map(|_| Figures::default()).collect();
    super::e2e::phase_hook("start").await;
    for round in 0..p.rounds {
        let order: Vec<usize> = (0..paths.len())
            .map(|i| (i + round) % paths.len())
            .collect();
        for &i in &order {
            let (rate, errors) = load::keep_alive(
                &paths[i].public,
                p.connections,
                Duration::from_secs(p.seconds),
            )
            .await?;
            figures[i].keep_alive.push(rate);
            figures[i].errors += errors;
        }
        for &i in &order {
            let samples = load::round_trips(&paths[i].public, p.sequential).await?;
            figures[i].p50.push(samples.ms(0.50));
            figures[i].p99.push(samples.ms(0.99));
        }
        for &i in &order {
            let rate =
                load::fresh_connections(&paths[i].public, p.fresh, p.fresh_concurrency).await?;
            figures[i].fresh.push(rate);
        }
        for &i in &order {
            figures[i]
                .bulk
                .push(load::bulk(&paths[i].public, p.bulk_bytes).await?);
        }
        eprintln!("  (round {} of {} done)", round + 1, p.rounds);
    }
    super::e2e::phase_hook("stop").await;
    let mib = |kib: Option<u64>| kib.map_or(json!("-"), |k| json!(k as f64 / 1024.0));
    let mut medians = Vec::new();
    for ((path, f), idle) in paths.iter().zip(&mut figures).zip(&idle) {
        let m = [
            median(&mut f.keep_alive),
            median(&mut f.p50),
            median(&mut f.p99),
            median(&mut f.fresh),
            median(&mut f.bulk),
        ];
        table.row(vec![
            json!(path.name),
            json!(m[0].round()),
            json!(m[1]),
            json!(m[2]),
            json!(m[3].round()),
            json!(m[4].round()),
            mib(*idle),
            mib(path.agent_rss_kib()),
            mib(path.server_rss_kib()),
        ]);
        if f.errors > 0 {
            table.note(format!(
                "{}: {} keep-alive GETs not 200",
                path.name, f.errors
            ));
        }
        medians.push((path.name.clone(), m));
    }
    for note in ratios(&medians) {
        table.note(note);
    }
    for path in paths {
        path.stop().await;
    }
    relay.stop().await;
    Ok(table.finish())
}

/// Each tunnel against rathole (throughputs as ×) and against direct
/// (latency added, in ms).
fn ratios(medians: &[(String, [f64; 5])]) -> Vec<String> {
    let find = |name: &str| medians.iter().find(|(n, _)| n == name).map(|(_, m)| *m);
    let Some(direct) = find("direct") else {
        return Vec::new();
    };
    let rathole = find("rathole");
    let mut notes = Vec::new();
    for (name, m) in medians.iter().filter(|(n, _)| n != "direct") {
        let mut note = format!(
            "{name}: p50 +{:.3} ms, p99 +{:.3} ms over direct; keep-alive {:.2}× direct",
            m[1] - direct[1],
            m[2] - direct[2],
            m[0] / direct[0]
        );
        if let Some(r) = rathole.filter(|_| name != "rathole") {
            note += &format!(
                "; vs rathole: keep-alive {:.2}×, new connections {:.2}×, bulk {:.2}×",
                m[0] / r[0],
                m[3] / r[3],
                m[4] / r[4]
            );
        }
        notes.push(note);
    }
    notes
}

/// The median (the mean of the middle two for an even count); 0 if empty.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}
