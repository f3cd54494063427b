//! `hookrelay-bench`: starts the real `hookrelay serve` binary on loopback
//! with a fresh data directory, creates a GitHub input, and drives it with
//! correctly signed webhooks over keep-alive HTTP/1.1 connections at
//! increasing concurrency. Every request is verified (HMAC-SHA256) and
//! durably stored (group commit, fsync) before its 200.
//!
//! Prints a table (requests/s, p50/p99/p99.9 latency) and checks that the
//! relay's stored-event counter matches the number of 200s it gave.
//! Only ever targets 127.0.0.1; every run is bounded in time.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Ingest benchmark of a real hookrelay server on loopback")]
struct Args {
    /// The hookrelay binary [default: `hookrelay` next to this one].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Concurrent connections to try, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    concurrency: Vec<usize>,
    /// Seconds of load per concurrency level.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Body size in bytes of each webhook.
    #[arg(long, default_value_t = 1024)]
    body_size: usize,
}

const SECRET: &str = "bench-secret";
const ADMIN: &str = "bench-admin-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match args.server_bin {
        Some(bin) => bin,
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has a directory")?
            .join("hookrelay"),
    };
    let data = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(&bin)
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data.path())
        .env("HOOKRELAY_ADMIN_SECRET", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with cargo build --release)",
                bin.display()
            )
        })?;
    let base = listening_url(&mut child).await?;
    let result = run(&base, &args.concurrency, args.seconds, args.body_size).await;
    let _ = child.kill().await;
    result
}

/// The URL the server printed once it was bound to its ephemeral port. The
/// rest of its stdout keeps being drained so the pipe never fills or breaks.
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
        Ok(Err(_)) => bail!("the relay exited before it was listening"),
        Err(_) => bail!("the relay did not start listening within 20 s"),
    }
}

async fn run(base: &str, levels: &[usize], seconds: u64, body_size: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    wait_ready(&http, base).await?;
    let bucket: serde_json::Value = http
        .post(format!("{base}/v1/buckets"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let input: serde_json::Value = http
        .post(format!(
            "{base}/v1/buckets/{}/inputs",
            bucket["id"].as_str().context("bucket id")?
        ))
        .bearer_auth(ADMIN)
        .json(&json!({
            "integration": "github",
            "secrets": [SECRET],
            "rateLimit": {"requests": 4_000_000_000u32, "windowSeconds": 1}
        }))
        .send()
        .await?
        .json()
        .await?;
    let path = format!("/v1/webhooks/{}", input["id"].as_str().context("input id")?);
    let body = Bytes::from(payload(body_size));
    let integration =
        verify::Integration::new(model::IntegrationKind::Github, None).context("github")?;
    let out = verify::Outgoing {
        url: "",
        content_type: "application/json",
        body: &body,
        event: "push",
        now_secs: 0,
    };
    let signature = verify::sign(&integration, SECRET, &out)?
        .headers
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-hub-signature-256"))
        .context("a sha256 signature")?
        .1;

    println!("hookrelay ingest benchmark: signed GitHub webhooks ({body_size} B), verified and fsynced before 200");
    println!(
        "machine: {} cores; {seconds} s per level; server and load generator share the machine",
        cores()
    );
    println!(
        "{:>11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "connections", "requests", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"
    );
    let mut accepted = 0u64;
    for (level, &connections) in levels.iter().enumerate() {
        let addr = base.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (addr, path, body, signature) =
                (addr.clone(), path.clone(), body.clone(), signature.clone());
            tasks.push(tokio::spawn(async move {
                drive(addr, path, body, signature, (level, c), deadline).await
            }));
        }
        let started = Instant::now();
        let mut latencies = Vec::new();
        let mut errors = 0u64;
        for task in tasks {
            let (l, e) = task.await??;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        accepted += latencies.len() as u64;
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let i = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
            latencies[i] as f64 / 1000.0
        };
        println!(
            "{:>11} {:>10} {:>10.0} {:>10.3} {:>10.3} {:>10.3} {:>8}",
            connections,
            latencies.len(),
            latencies.len() as f64 / elapsed,
            pct(0.50),
            pct(0.99),
            pct(0.999),
            errors
        );
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let stored: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hookrelay_events_stored_total "))
        .context("events stored metric")?
        .trim()
        .parse()?;
    println!("accepted (200): {accepted}; stored by the relay: {stored}");
    if stored != accepted {
        bail!("the relay stored {stored} events but answered 200 to {accepted}");
    }
    Ok(())
}

/// One keep-alive connection sending webhooks back to back until the
/// deadline. Returns the latencies (µs) of 200s and the count of others.
async fn drive(
    addr: String,
    path: String,
    body: Bytes,
    signature: String,
    (level, connection): (usize, usize),
    deadline: Instant,
) -> anyhow::Result<(Vec<u32>, u64)> {
    let stream = tokio::net::TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(100_000);
    let mut errors = 0;
    let mut seq = 0u64;
    while Instant::now() < deadline {
        seq += 1;
        let request = hyper::Request::post(path.as_str())
            .header("host", addr.as_str())
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header(
                "x-github-delivery",
                format!("bench-{level}-{connection}-{seq}"),
            )
            .header("x-hub-signature-256", signature.as_str())
            .body(Full::new(body.clone()))?;
        let started = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        if status == hyper::StatusCode::OK {
            latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        } else {
            errors += 1;
        }
    }
    Ok((latencies, errors))
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the relay did not become ready within 20 s")
}

/// A GitHub-push-like JSON body of about `size` bytes.
fn payload(size: usize) -> Vec<u8> {
    let head = r#"{"ref":"refs/heads/main","repository":{"full_name":"octo/hello"},"pusher":{"name":"octocat"},"padding":""#;
    let mut body = head.as_bytes().to_vec();
    body.resize(size.saturating_sub(2).max(head.len()), b'x');
    body.extend_from_slice(b"\"}");
    body
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
