//! `hookrelay-retention-load`: shows that the SQLite file does not grow
//! without bound under a steady load when retention is short (issue 4).
//!
//! Starts the real `hookrelay serve` on 127.0.0.1:0 with a fresh data
//! directory and a short retention sweep interval, creates a bucket with a
//! short retention, sends plain webhooks at a fixed rate for a fixed time,
//! and samples the size of `hookrelay.db` and its WAL as it goes. Prints a
//! Markdown table. Only ever targets 127.0.0.1; bounded in count and time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Steady load against a short retention; prints the store's file size over time")]
struct Args {
    /// The hookrelay binary [default: `hookrelay` next to this one].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Seconds of load (at most 3600).
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Webhooks per second (at most 5000).
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 4096)]
    body_size: usize,
    /// The bucket's retention in seconds.
    #[arg(long, default_value_t = 20)]
    retention: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    sample: u64,
}

const ADMIN: &str = "retention-admin-secret";
/// Connections sending in parallel; each paces itself to `rate / WORKERS`.
const WORKERS: u64 = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.seconds > 3600 || args.rate == 0 || args.rate > 5000 {
        bail!("--seconds must be at most 3600 and --rate between 1 and 5000");
    }
    let bin = match &args.server_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the binary has a directory")?
            .join("hookrelay"),
    };
    let data = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(&bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--retention-interval",
            "1",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("HOOKRELAY_ADMIN_SECRET", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let base = listening_url(&mut child).await?;
    let result = run(&base, data.path(), &args).await;
    let _ = child.kill().await;
    result
}

async fn listening_url(child: &mut tokio::process::Child) -> anyhow::Result<String> {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().context("piped stdout")?;
    let (found, url) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut found = Some(found);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("hookrelay listening on ") {
                if let Some(found) = found.take() {
                    let _ = found.send(url.trim().to_owned());
                }
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(20), url).await {
        Ok(Ok(url)) => Ok(url),
        _ => bail!("the relay did not start listening within 20 s"),
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn run(base: &str, data: &Path, args: &Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let bucket: serde_json::Value = http
        .post(format!("{base}/v1/buckets"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "short", "retentionSeconds": args.retention,
                      "catchupSeconds": args.retention.min(600)}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let input: serde_json::Value = http
        .post(format!(
            "{base}/v1/buckets/{}/inputs",
            bucket["id"].as_str().context("bucket id")?
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"rateLimit": {"requests": 4_000_000_000u32, "windowSeconds": 1}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let url = input["url"].as_str().context("input url")?.to_owned();
    let body = bytes::Bytes::from(vec![b'x'; args.body_size]);
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let period = Duration::from_secs_f64(WORKERS as f64 / args.rate as f64);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        let (sent, failed) = (sent.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while Instant::now() < end {
                ticker.tick().await;
                let ok = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let counter = if ok { &sent } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let (db, wal) = (data.join("hookrelay.db"), data.join("hookrelay.db-wal"));
    println!(
        "load: {} webhooks/s of {} bytes for {} s, bucket retention {} s, sweep every 1 s\n",
        args.rate, args.body_size, args.seconds, args.retention
    );
    println!("| t (s) | accepted | db (MiB) | wal (MiB) | total (MiB) |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let start = Instant::now();
    let mut peak = 0;
    let mut ticker = tokio::time::interval(Duration::from_secs(args.sample.max(1)));
    loop {
        ticker.tick().await;
        let (d, w) = (size(&db), size(&wal));
        peak = peak.max(d + w);
        println!(
            "| {:.0} | {} | {:.1} | {:.1} | {:.1} |",
            start.elapsed().as_secs_f64(),
            sent.load(Ordering::Relaxed),
            mib(d),
            mib(w),
            mib(d + w)
        );
        if Instant::now() >= end {
            break;
        }
    }
    for w in workers {
        w.await?;
    }
    let accepted = sent.load(Ordering::Relaxed);
    println!(
        "\naccepted {accepted}, failed {}; peak db+wal {:.1} MiB; {:.1} MiB of bodies sent in all",
        failed.load(Ordering::Relaxed),
        mib(peak),
        mib(accepted * args.body_size as u64)
    );
    Ok(())
}
