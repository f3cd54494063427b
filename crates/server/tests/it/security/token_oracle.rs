//! Regression (issue 19, finding 4): a wrong secret costs the same time
//! whether its token key exists or not. A known key cost a bcrypt check
//! (387 ms at cost 12) and an unknown one none (0.7 ms), so keys could be
//! found by timing. Now an unknown key is checked against a decoy hash, as
//! poll secrets of unknown tenants already were.

use std::net::IpAddr;
use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::Relay;

/// Samples of each kind, alternating.
const SAMPLES: usize = 96;
/// Requests per source address, under the 20 a minute bcrypt budget.
const PER_ADDRESS: usize = 12;

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_known_and_unknown_token_keys_take_the_same_time() {
    // Cost 6: the check dominates the request, as in production.
    let relay = Relay::builder().config(|c| c.bcrypt_cost = 6).spawn().await;
    let mut keys = Vec::new();
    for _ in 0..2 {
        let token = relay
            .admin(
                Method::POST,
                "/v1/tokens",
                Some(json!({"scope": "tenant"})),
                StatusCode::CREATED,
            )
            .await;
        keys.push(token["key"].as_str().expect("a token key").to_owned());
    }
    // A real key, deleted: well formed, and known to nobody any more.
    let (known, unknown) = (keys[0].clone(), keys[1].clone());
    let path = format!("/v1/tokens/{unknown}");
    relay
        .admin(Method::DELETE, &path, None, StatusCode::NO_CONTENT)
        .await;
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for i in 0..2 * SAMPLES {
        let from: IpAddr = format!("127.0.4.{}", 1 + i / PER_ADDRESS).parse().unwrap();
        let client = reqwest::Client::builder()
            .local_address(from)
            .build()
            .expect("a client");
        let key = if i % 2 == 0 { &known } else { &unknown };
        let started = Instant::now();
        let answer = client
            .get(format!("{}/v1/buckets", relay.url))
            .bearer_auth(format!("{key}.wrong-secret"))
            .send()
            .await
            .expect("an answer");
        let took = started.elapsed();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        if i % 2 == 0 {
            known_times.push(took);
        } else {
            unknown_times.push(took);
        }
    }
    // Each unknown-key request against the known-key one just before it:
    // the machine's load changes slowly, so a pair shares it.
    let pairs: Vec<f64> = known_times
        .iter()
        .zip(&unknown_times)
        .map(|(k, u)| u.as_secs_f64() / k.as_secs_f64())
        .collect();
    let paired = median(pairs);
    let (known, unknown) = (median(known_times), median(unknown_times));
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    println!(
        "token oracle: median wrong-secret answer, known key {known:?}, unknown key {unknown:?} \
         (ratio {ratio:.2}); median ratio of back-to-back pairs {paired:.2}"
    );
    // Before the decoy the ratio was about 0.002 (0.7 ms against 387 ms).
    // Server-side, the two paths take the same time (12.6 ms each at cost 6
    // in a debug build, timed inside `verify_token`); what the client sees
    // on a loaded 2-core machine is that plus scheduling delays in steps of
    // ~4 ms, so the ratio of two medians of 48 swung 0.79–1.15 when they
    // fell on different steps, and 1.36 once at a load average of 6 (the
    // unknown key the slower). The median of back-to-back pairs moves much
    // less (0.94–1.08 over ten runs of 48, some beside a fuzz build; within
    // 10 % in the same loaded run): it is the one held, to the issue's
    // 10 %, over 96 pairs. The ratio of medians is printed, not held.
    assert!(
        (0.9..=1.1).contains(&paired),
        "known key vs unknown key, back to back: ratio {paired:.2}; the key's existence shows"
    );
}
