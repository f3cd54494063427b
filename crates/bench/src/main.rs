//! `hookrelay-bench`: starts the real `hookrelay serve` binary (and real
//! `hookrelay agent` processes, or the agent library in this process where
//! hundreds of agents are needed) on 127.0.0.1 ephemeral ports, drives it
//! with correctly signed GitHub webhooks, prints a table per scenario and
//! writes them all as JSON (`--json FILE`) with the machine, the commit,
//! the date and the load average.
//!
//! `hookrelay-bench --quick suite` runs every scenario in under two
//! minutes; `hookrelay-bench suite` is the long version; each scenario is
//! also a subcommand with its own knobs. Every loop is bounded in count and
//! time, and nothing but 127.0.0.1 is ever contacted.
//!
//! # Layout
//! - `main.rs`: the command line and the quick and full presets.
//! - `relay`: the server process, admin calls, signing, RSS.
//! - `sender`: signed webhooks over one keep-alive connection; percentiles.
//! - `destination`: the recording service behind the agents.
//! - `scenarios/`: one file per scenario.
//! - `report`: machine and commit, tables, JSON and Markdown.

mod destination;
mod relay;
mod report;
mod scenarios;
mod sender;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use scenarios::Transport;

#[derive(Parser)]
#[command(about = "Benchmarks of a real hookrelay server (and agents) on loopback")]
struct Cli {
    /// The hookrelay binary [default: `hookrelay` next to this one].
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    /// The binary run as `hookrelay agent` [default: the server binary]
    /// (lets a profiler wrap the server alone).
    #[arg(long, global = true)]
    agent_bin: Option<PathBuf>,
    /// The store, passed to `serve --store`: `sqlite` or
    /// `redis://127.0.0.1:6379/N`.
    #[arg(long, global = true, default_value = "sqlite")]
    store: String,
    /// Relay processes on one Redis for `ingest` (connections spread over
    /// them) and `e2e` (POST to the first, agent on the last).
    #[arg(long, global = true, default_value_t = 1)]
    nodes: usize,
    /// Write the results (with machine, commit, date, load) here as JSON.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Also write the tables as Markdown here (for the README).
    #[arg(long, global = true)]
    markdown: Option<PathBuf>,
    /// Small counts and short runs: the whole suite in under two minutes.
    #[arg(long, global = true)]
    quick: bool,
    /// Body size in bytes of every webhook.
    #[arg(long, global = true, default_value_t = 1024)]
    body_size: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every scenario in turn, with the quick or full presets.
    Suite,
    /// Ingest throughput and latency at increasing concurrency.
    Ingest(IngestArgs),
    /// End-to-end latency through an agent: one in flight and fixed rates.
    E2e(E2eArgs),
    /// Fan-out to 1, 10 and 100 agent groups.
    Fanout(FanoutArgs),
    /// The relay's memory per idle agent.
    Idle(IdleArgs),
    /// Catch-up rate of an agent returning to N pending events.
    Catchup(CatchupArgs),
    /// Poll API throughput (`/api/events`, `/v1/events`).
    Poll(PollArgs),
    /// HTTP tunnels beside the direct path, rathole and bore.
    Tunnel(TunnelArgs),
    /// Delivery rate to a slow destination, live and from a backlog,
    /// beside the destination's own rate.
    Deliver(DeliverArgs),
    /// Ingest rate with an input function that sets a header vs none, and
    /// the per-call cost.
    Functions(FunctionsArgs),
}

#[derive(Args)]
struct DeliverArgs {
    /// Event counts to try (each at most 1000000).
    #[arg(long, value_delimiter = ',')]
    events: Option<Vec<u64>>,
    /// The destination's time per request, in ms (at most 10000).
    #[arg(long)]
    latency_ms: Option<u64>,
    /// The output's concurrency and the agent's --max-in-flight.
    #[arg(long)]
    concurrency: Option<u32>,
    /// Rounds per count, reference, live and backlog alternating.
    #[arg(long)]
    rounds: Option<usize>,
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// Events through an `ordered` output (0 leaves it out).
    #[arg(long)]
    ordered_events: Option<u64>,
}

#[derive(Args)]
struct FunctionsArgs {
    /// Concurrent connections.
    #[arg(long)]
    connections: Option<usize>,
    /// Seconds per round and input (at most 600).
    #[arg(long)]
    seconds: Option<u64>,
    /// Rounds, the two inputs alternating (medians reported).
    #[arg(long)]
    rounds: Option<usize>,
    /// `invoke` calls measured for the per-call cost (at most 100000).
    #[arg(long)]
    calls: Option<usize>,
}

#[derive(Args)]
struct IngestArgs {
    /// Concurrent connections to try, in order.
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    /// Seconds of load per level (at most 600).
    #[arg(long)]
    seconds: Option<u64>,
    /// Rounds per level, relay and baseline alternating (medians reported).
    #[arg(long)]
    rounds: Option<usize>,
    /// Leave out `hookrelay-baseline` (axum + HMAC + SQLite group commit).
    #[arg(long)]
    no_baseline: bool,
}

#[derive(Args)]
struct E2eArgs {
    #[arg(long, value_delimiter = ',', value_enum)]
    transport: Option<Vec<Transport>>,
    /// Sequential round trips (one request in flight).
    #[arg(long)]
    sequential: Option<u64>,
    /// Open-loop rates in requests per second (each at most 20000).
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<u64>>,
    /// Seconds per rate (at most 600).
    #[arg(long)]
    seconds: Option<u64>,
}

#[derive(Args)]
struct FanoutArgs {
    /// Numbers of groups to try (each at most 1000).
    #[arg(long, value_delimiter = ',')]
    groups: Option<Vec<u32>>,
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// Events of the burst (at most 100000).
    #[arg(long)]
    burst: Option<u64>,
}

#[derive(Args)]
struct IdleArgs {
    /// Idle agents to connect (at most 10000).
    #[arg(long)]
    agents: Option<usize>,
    #[arg(long, value_delimiter = ',', value_enum)]
    transport: Option<Vec<Transport>>,
    /// Also measure agents that share one group.
    #[arg(long)]
    shared_group: bool,
}

#[derive(Args)]
struct CatchupArgs {
    /// Events waiting for the agent (at most 1000000).
    #[arg(long)]
    events: Option<u64>,
    #[arg(long, value_delimiter = ',', value_enum)]
    transport: Option<Vec<Transport>>,
    /// The returning agent's --max-in-flight.
    #[arg(long)]
    max_in_flight: Option<u32>,
}

#[derive(Args)]
struct PollArgs {
    /// Events stored before polling (at most 1000000).
    #[arg(long)]
    events: Option<u64>,
    /// Seconds per route (at most 600).
    #[arg(long)]
    seconds: Option<u64>,
    /// Page size (`limit`).
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Args)]
struct TunnelArgs {
    /// Rounds (paths alternate within each; medians reported).
    #[arg(long)]
    rounds: Option<usize>,
    /// Keep-alive connections of the throughput load.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of the throughput load per path per round (at most 600).
    #[arg(long)]
    seconds: Option<u64>,
    /// Round trips with one in flight per path per round.
    #[arg(long)]
    sequential: Option<u64>,
    /// Requests on new connections per path per round.
    #[arg(long)]
    fresh: Option<u64>,
    /// MiB of the bulk download (at most 4096).
    #[arg(long)]
    bulk_mib: Option<u64>,
    #[arg(long, value_delimiter = ',', value_enum)]
    transport: Option<Vec<Transport>>,
    /// The directory holding `rathole` and `bore` [default:
    /// target/bench-tools/bin, where crates/bench/tunnel-bench.sh puts them].
    #[arg(long)]
    tools: Option<PathBuf>,
    /// Leave rathole and bore out (e.g. under a profiler).
    #[arg(long)]
    no_peers: bool,
}

/// Quick or full.
fn pick<T>(quick: bool, q: T, full: T) -> T {
    if quick {
        q
    } else {
        full
    }
}

fn ingest(cli: &Cli, a: Option<&IngestArgs>) -> anyhow::Result<scenarios::ingest::Params> {
    let q = cli.quick;
    let p = scenarios::ingest::Params {
        concurrency: a
            .and_then(|a| a.concurrency.clone())
            .unwrap_or_else(|| pick(q, vec![1, 8, 32, 128], vec![1, 8, 32, 128, 256])),
        seconds: a.and_then(|a| a.seconds).unwrap_or(pick(q, 2, 6)),
        body_size: cli.body_size,
        rounds: a.and_then(|a| a.rounds).unwrap_or(pick(q, 1, 3)),
        baseline: !a.is_some_and(|a| a.no_baseline),
    };
    anyhow::ensure!(
        p.seconds <= 600
            && (1..=20).contains(&p.rounds)
            && p.concurrency.iter().all(|&c| (1..=4096).contains(&c)),
        "--seconds at most 600, --rounds 1 to 20, --concurrency 1 to 4096"
    );
    Ok(p)
}

fn e2e(cli: &Cli, a: Option<&E2eArgs>) -> anyhow::Result<scenarios::e2e::Params> {
    let q = cli.quick;
    let p = scenarios::e2e::Params {
        transports: a
            .and_then(|a| a.transport.clone())
            .unwrap_or_else(|| vec![Transport::Grpc, Transport::Ws]),
        sequential: a.and_then(|a| a.sequential).unwrap_or(pick(q, 200, 2000)),
        rates: a
            .and_then(|a| a.rates.clone())
            .unwrap_or_else(|| pick(q, vec![100, 1000], vec![100, 500, 1000])),
        seconds: a.and_then(|a| a.seconds).unwrap_or(pick(q, 1, 10)),
        body_size: cli.body_size,
        max_in_flight: 64,
    };
    anyhow::ensure!(
        p.seconds <= 600
            && p.sequential <= 1_000_000
            && p.rates.iter().all(|&r| (1..=20_000).contains(&r)),
        "--seconds at most 600, --sequential at most 1000000, --rates 1 to 20000"
    );
    Ok(p)
}

fn fanout(cli: &Cli, a: Option<&FanoutArgs>) -> anyhow::Result<scenarios::fanout::Params> {
    let q = cli.quick;
    let p = scenarios::fanout::Params {
        groups: a
            .and_then(|a| a.groups.clone())
            .unwrap_or_else(|| vec![1, 10, 100]),
        transport: a.and_then(|a| a.transport).unwrap_or(Transport::Grpc),
        sequential: pick(q, 20, 200),
        burst: a.and_then(|a| a.burst).unwrap_or(pick(q, 300, 1000)),
        max_deliveries: pick(q, 5_000, 30_000),
        body_size: cli.body_size,
        max_in_flight: 64,
    };
    anyhow::ensure!(
        p.groups.iter().all(|&g| (1..=1000).contains(&g)) && p.burst <= 100_000,
        "--groups 1 to 1000, --burst at most 100000"
    );
    Ok(p)
}

fn idle(cli: &Cli, a: Option<&IdleArgs>) -> anyhow::Result<scenarios::idle::Params> {
    let p = scenarios::idle::Params {
        agents: a.and_then(|a| a.agents).unwrap_or(1000),
        transports: a
            .and_then(|a| a.transport.clone())
            .unwrap_or_else(|| vec![Transport::Grpc, Transport::Ws]),
        shared_group: a.is_some_and(|a| a.shared_group) || !cli.quick,
        // The relay lets 16 connections per address wait for their Hello
        // (`max_unauthenticated_agents_per_ip`): bigger batches from the
        // one loopback address were refused and backed off, and at 10,000
        // agents the last one was still backing off after 60 s.
        batch: 16,
    };
    anyhow::ensure!((1..=10_000).contains(&p.agents), "--agents 1 to 10000");
    Ok(p)
}

fn catchup(cli: &Cli, a: Option<&CatchupArgs>) -> anyhow::Result<scenarios::catchup::Params> {
    let p = scenarios::catchup::Params {
        events: a
            .and_then(|a| a.events)
            .unwrap_or(pick(cli.quick, 1000, 20_000)),
        transports: a
            .and_then(|a| a.transport.clone())
            .unwrap_or_else(|| vec![Transport::Grpc, Transport::Ws]),
        body_size: cli.body_size,
        max_in_flight: a
            .and_then(|a| a.max_in_flight)
            .unwrap_or(AGENT_DEFAULT_IN_FLIGHT),
    };
    anyhow::ensure!(
        (1..=1_000_000).contains(&p.events) && (1..=1024).contains(&p.max_in_flight),
        "--events 1 to 1000000, --max-in-flight 1 to 1024"
    );
    Ok(p)
}

fn tunnel(cli: &Cli, a: Option<&TunnelArgs>) -> anyhow::Result<scenarios::tunnel::Params> {
    let q = cli.quick;
    let tools = match a.and_then(|a| a.tools.clone()) {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .and_then(|release| release.parent())
            .context("the bench binary sits in target/<profile>/")?
            .join("bench-tools/bin"),
    };
    let p = scenarios::tunnel::Params {
        rounds: a.and_then(|a| a.rounds).unwrap_or(pick(q, 1, 3)),
        connections: a.map_or(64, |a| a.connections),
        seconds: a.and_then(|a| a.seconds).unwrap_or(pick(q, 2, 5)),
        sequential: a.and_then(|a| a.sequential).unwrap_or(pick(q, 300, 2000)),
        fresh: a.and_then(|a| a.fresh).unwrap_or(pick(q, 500, 3000)),
        fresh_concurrency: 8,
        bulk_bytes: a.and_then(|a| a.bulk_mib).unwrap_or(pick(q, 64, 1024)) << 20,
        transports: a
            .and_then(|a| a.transport.clone())
            .unwrap_or_else(|| vec![Transport::Grpc, Transport::Ws]),
        tools: (!a.is_some_and(|a| a.no_peers)).then_some(tools),
    };
    anyhow::ensure!(
        (1..=20).contains(&p.rounds)
            && (1..=1024).contains(&p.connections)
            && p.seconds <= 600
            && p.sequential <= 1_000_000
            && p.fresh <= 100_000
            && (1..=4096 << 20).contains(&p.bulk_bytes),
        "--rounds 1 to 20, --connections 1 to 1024, --seconds at most 600, --sequential at most 1000000, --fresh at most 100000, --bulk-mib 1 to 4096"
    );
    Ok(p)
}

fn deliver(cli: &Cli, a: Option<&DeliverArgs>) -> anyhow::Result<scenarios::deliver::Params> {
    let q = cli.quick;
    let p = scenarios::deliver::Params {
        events: a
            .and_then(|a| a.events.clone())
            .unwrap_or_else(|| pick(q, vec![2000], vec![2000, 10_000])),
        latency: std::time::Duration::from_millis(a.and_then(|a| a.latency_ms).unwrap_or(20)),
        concurrency: a.and_then(|a| a.concurrency).unwrap_or(64),
        rounds: a.and_then(|a| a.rounds).unwrap_or(pick(q, 1, 3)),
        transport: a.and_then(|a| a.transport).unwrap_or(Transport::Grpc),
        body_size: cli.body_size,
        ordered_events: a.and_then(|a| a.ordered_events).unwrap_or(pick(q, 50, 200)),
    };
    anyhow::ensure!(
        p.events.iter().all(|&e| (1..=1_000_000).contains(&e))
            && p.latency <= std::time::Duration::from_secs(10)
            && (1..=1024).contains(&p.concurrency)
            && (1..=20).contains(&p.rounds)
            && p.ordered_events <= 10_000,
        "--events 1 to 1000000, --latency-ms at most 10000, --concurrency 1 to 1024, --rounds 1 to 20, --ordered-events at most 10000"
    );
    Ok(p)
}

/// `hookrelay agent`'s own default `--max-in-flight`.
const AGENT_DEFAULT_IN_FLIGHT: u32 = 16;

fn functions(cli: &Cli, a: Option<&FunctionsArgs>) -> anyhow::Result<scenarios::functions::Params> {
    let q = cli.quick;
    let p = scenarios::functions::Params {
        connections: a.and_then(|a| a.connections).unwrap_or(32),
        seconds: a.and_then(|a| a.seconds).unwrap_or(pick(q, 2, 6)),
        body_size: cli.body_size,
        rounds: a.and_then(|a| a.rounds).unwrap_or(pick(q, 2, 5)),
        calls: a.and_then(|a| a.calls).unwrap_or(pick(q, 200, 2000)),
    };
    anyhow::ensure!(
        p.seconds <= 600
            && (1..=20).contains(&p.rounds)
            && (1..=4096).contains(&p.connections)
            && (1..=100_000).contains(&p.calls),
        "--seconds at most 600, --rounds 1 to 20, --connections 1 to 4096, --calls 1 to 100000"
    );
    Ok(p)
}

fn poll(cli: &Cli, a: Option<&PollArgs>) -> anyhow::Result<scenarios::poll::Params> {
    let q = cli.quick;
    let p = scenarios::poll::Params {
        events: a.and_then(|a| a.events).unwrap_or(pick(q, 2000, 20_000)),
        seconds: a.and_then(|a| a.seconds).unwrap_or(pick(q, 2, 10)),
        connections: 8,
        limit: a.and_then(|a| a.limit).unwrap_or(100),
        body_size: cli.body_size,
    };
    anyhow::ensure!(
        (1..=1_000_000).contains(&p.events) && p.seconds <= 600 && (1..=500).contains(&p.limit),
        "--events 1 to 1000000, --seconds at most 600, --limit 1 to 500"
    );
    Ok(p)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let bin = relay::default_bin(cli.server_bin.as_deref())?;
    let spec = relay::RelaySpec {
        agent_bin: cli.agent_bin.clone().unwrap_or_else(|| bin.clone()),
        bin,
        store: cli.store.clone(),
        nodes: cli.nodes,
    };
    anyhow::ensure!((1..=16).contains(&cli.nodes), "--nodes 1 to 16");
    let info = report::run_info();
    println!(
        "hookrelay-bench{}: {}",
        if cli.quick { " --quick" } else { "" },
        report::describe(&info)
    );
    println!("the relay, the agents and the load generator share this machine's cores");
    let started = std::time::Instant::now();
    let mut out = Outputs {
        cli: &cli,
        info,
        server_bin: spec.bin.display().to_string(),
        started,
        tables: Vec::new(),
    };
    let result = run(&cli, &spec, &mut out).await;
    if let Err(err) = relay::forget_namespaces(&spec) {
        eprintln!("could not delete the bench's Redis keys: {err:#}");
    }
    out.write(result.as_ref().err())?;
    for path in cli.json.iter().chain(&cli.markdown) {
        println!("wrote {}", path.display());
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    if let Err(err) = result {
        // The message says what failed (e.g. `serve` refusing `--store`);
        // a backtrace of the bench would only bury it.
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// The run so far: written (JSON, Markdown) after every scenario, so an
/// interrupted suite keeps what it measured.
struct Outputs<'a> {
    cli: &'a Cli,
    info: serde_json::Value,
    server_bin: String,
    started: std::time::Instant,
    tables: Vec<report::Table>,
}

impl Outputs<'_> {
    fn push(&mut self, table: report::Table) -> anyhow::Result<()> {
        self.tables.push(table);
        self.write(None)
    }

    fn write(&self, error: Option<&anyhow::Error>) -> anyhow::Result<()> {
        let cli = self.cli;
        let mut out = self.info.clone();
        out["quick"] = cli.quick.into();
        out["store"] = cli.store.clone().into();
        out["nodes"] = cli.nodes.into();
        out["body_size"] = cli.body_size.into();
        out["server_bin"] = self.server_bin.clone().into();
        out["seconds"] = self.started.elapsed().as_secs_f64().into();
        out["loadavg_end"] = report::loadavg().to_vec().into();
        out["scenarios"] = self
            .tables
            .iter()
            .map(report::Table::json)
            .collect::<Vec<_>>()
            .into();
        if let Some(err) = error {
            out["error"] = format!("{err:#}").into();
        }
        if let Some(path) = &cli.json {
            std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(path) = &cli.markdown {
            let md: Vec<String> = self.tables.iter().map(report::Table::markdown).collect();
            let head = format!("{}\n\n", report::describe(&out));
            std::fs::write(path, head + &md.join("\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

async fn run(cli: &Cli, spec: &relay::RelaySpec, out: &mut Outputs<'_>) -> anyhow::Result<()> {
    match &cli.command {
        Command::Suite => {
            out.push(scenarios::ingest::run(spec, &ingest(cli, None)?).await?)?;
            out.push(scenarios::e2e::run(spec, &e2e(cli, None)?).await?)?;
            out.push(scenarios::fanout::run(spec, &fanout(cli, None)?).await?)?;
            let params = idle(cli, None)?;
            out.push(scenarios::idle::run(spec, &params).await?)?;
            out.push(scenarios::idle::agent_process(spec, &params.transports).await?)?;
            out.push(scenarios::catchup::run(spec, &catchup(cli, None)?).await?)?;
            out.push(scenarios::poll::run(spec, &poll(cli, None)?).await?)?;
            out.push(scenarios::tunnel::run(spec, &tunnel(cli, None)?).await?)?;
            out.push(scenarios::functions::run(spec, &functions(cli, None)?).await?)?;
            out.push(scenarios::deliver::run(spec, &deliver(cli, None)?).await?)?;
        }
        Command::Ingest(a) => {
            out.push(scenarios::ingest::run(spec, &ingest(cli, Some(a))?).await?)?
        }
        Command::E2e(a) => out.push(scenarios::e2e::run(spec, &e2e(cli, Some(a))?).await?)?,
        Command::Fanout(a) => {
            out.push(scenarios::fanout::run(spec, &fanout(cli, Some(a))?).await?)?
        }
        Command::Idle(a) => {
            let params = idle(cli, Some(a))?;
            out.push(scenarios::idle::run(spec, &params).await?)?;
            out.push(scenarios::idle::agent_process(spec, &params.transports).await?)?;
        }
        Command::Catchup(a) => {
            out.push(scenarios::catchup::run(spec, &catchup(cli, Some(a))?).await?)?
        }
        Command::Poll(a) => out.push(scenarios::poll::run(spec, &poll(cli, Some(a))?).await?)?,
        Command::Tunnel(a) => {
            out.push(scenarios::tunnel::run(spec, &tunnel(cli, Some(a))?).await?)?
        }
        Command::Deliver(a) => {
            out.push(scenarios::deliver::run(spec, &deliver(cli, Some(a))?).await?)?
        }
        Command::Functions(a) => {
            out.push(scenarios::functions::run(spec, &functions(cli, Some(a))?).await?)?
        }
    }
    Ok(())
}
