//! Issue 19: the server-wide budget of webhook bodies being read at once.
//! 200 senders post 25 MiB bodies to a GitHub-sized input at the same
//! moment (half with `Content-Length`, half chunked), against a relay
//! whose budget is its least, 128 MiB (each body counted four times: its
//! buffer, the sealed payload's plaintext and ciphertext, SQLite's copy). The relay's
//! peak RSS must stay under the budget plus 100 MiB; every answer is a 2xx
//! or a 503 `unavailable` with `Retry-After` (or a connection the relay
//! cut while the sender was still writing); every 2xx is stored. Before
//! the budget, 200 such bodies could make it hold 5 GiB.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinSet;

use super::{start_serve, Api};

const SENDERS: usize = 200;
const BODY: usize = 25 * 1024 * 1024;
const BUDGET_MIB: u64 = 128;
/// Bytes per frame of a sender's body stream.
const PIECE: usize = 256 * 1024;

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// What one sender got.
#[derive(Debug)]
enum Outcome {
    Stored,
    Busy,
    Cut,
}

async fn send_one(
    http: reqwest::Client,
    url: String,
    shared: Bytes,
    i: usize,
) -> Result<Outcome, String> {
    // A distinct first piece makes every body its own.
    let mut first = format!("{i:08}").into_bytes();
    first.resize(PIECE, b' ');
    let mut pieces = vec![Bytes::from(first)];
    let mut at = PIECE;
    while at < BODY {
        let end = (at + PIECE).min(BODY);
        pieces.push(shared.slice(at..end));
        at = end;
    }
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let mut request = http
        .post(url)
        .header("content-type", "application/octet-stream");
    if i.is_multiple_of(2) {
        request = request.header("content-length", BODY.to_string());
    }
    let Ok(answer) = request
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
    else {
        return Ok(Outcome::Cut);
    };
    let status = answer.status();
    let retry_after = answer.headers().get("retry-after").cloned();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    match status {
        s if s.is_success() => Ok(Outcome::Stored),
        StatusCode::SERVICE_UNAVAILABLE
            if body["error"] == "unavailable" && retry_after.is_some() =>
        {
            Ok(Outcome::Busy)
        }
        other => Err(format!("sender {i}: {other} {body}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_two_hundred_25_mib_bodies_at_once_stay_within_the_budget() {
    let started = Instant::now();
    super::loris::ensure_open_files(4 * SENDERS as u64 + 1_000);
    let data = tempfile::tempdir().expect("a data dir");
    let budget = BUDGET_MIB.to_string();
    let serve = start_serve(
        data.path().to_owned(),
        &["--ingest-body-budget-mib", &budget],
    )
    .await;
    let api = Api::new(&serve.url);
    let bucket = api
        .must(
            Method::POST,
            "/v1/buckets",
            Some(json!({"name": "bodies"})),
            StatusCode::CREATED,
        )
        .await;
    let bucket = bucket["id"].as_str().expect("bucket id").to_owned();
    let input = api
        .must(
            Method::POST,
            &format!("/v1/buckets/{bucket}/inputs"),
            Some(json!({"bodyLimit": BODY + 1024,
                        "rateLimit": {"requests": 100_000, "windowSeconds": 60}})),
            StatusCode::CREATED,
        )
        .await;
    let url = super::ingest_url(&serve.url, input["id"].as_str().expect("input id"));
    let rss_before = status_kib(serve.pid(), "VmRSS:");

    let shared = Bytes::from(vec![b'x'; BODY]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(240))
        .build()
        .expect("a client");
    let mut senders = JoinSet::new();
    for i in 0..SENDERS {
        senders.spawn(send_one(http.clone(), url.clone(), shared.clone(), i));
    }
    let (mut stored, mut busy, mut cut) = (0usize, 0usize, 0usize);
    while let Some(outcome) = senders.join_next().await {
        match outcome.expect("a sender task") {
            Ok(Outcome::Stored) => stored += 1,
            Ok(Outcome::Busy) => busy += 1,
            Ok(Outcome::Cut) => cut += 1,
            Err(unexpected) => panic!("{unexpected}"),
        }
    }
    let peak = status_kib(serve.pid(), "VmHWM:");
    let metrics = reqwest::get(format!("{}/metrics", serve.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let counted: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hookrelay_events_stored_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the stored events counter");
    println!(
        "faults: bodies: {SENDERS} senders x {} MiB at once against a {BUDGET_MIB} MiB budget: \
         {stored} stored, {busy} answered 503 with Retry-After, {cut} cut while sending; relay RSS \
         {:.1} MiB before, peak {:.1} MiB; {:.1} s",
        BODY >> 20,
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        started.elapsed().as_secs_f64(),
    );
    assert_eq!(counted, stored, "every 2xx is stored, nothing else");
    // Whether one of the 200 gets through while all of them compete is a
    // race (half stream without a length and are cut as the budget fills;
    // 0 and 1 stored were both seen): what must hold is that the flood
    // leaves nothing held, so the next sender is stored.
    let after = send_one(http.clone(), url.clone(), shared.clone(), 0).await;
    assert!(
        matches!(after, Ok(Outcome::Stored)),
        "a body after the flood is stored"
    );
    // Bounded against what the relay held before the load: its idle RSS
    // (a debug binary's, 37-43 MiB seen) is not the budget's to hold.
    // Measured growth: 181 and 188 MiB against 5,000 MiB offered.
    assert!(
        peak.saturating_sub(rss_before) < (BUDGET_MIB + 100) * 1024,
        "the relay's RSS grew by {} MiB (from {} MiB)",
        peak.saturating_sub(rss_before) / 1024,
        rss_before / 1024
    );
    drop(serve);
}
