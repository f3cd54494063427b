//! Regression (issue 7): a poll of `/api/t/{tenant}/events` with a wrong
//! poll secret costs the same bcrypt work whether the tenant exists or not.
//! It used to check the secret only against a tenant that exists, so a
//! known tenant cost two bcrypt checks (its poll secret, then the admin
//! secret) and an unknown one a single check: about 250 ms apart at
//! production cost, and, deterministically, twice as fast through the
//! per-client bcrypt budget (429 after half as many requests).

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::Relay;

/// Polls `tenant` with tenant `alpha`'s poll secret until the relay
/// answers 429 (at most 60 times); returns how many 401s came first.
async fn polls_before_429(tenant: &str) -> usize {
    let relay = Relay::builder()
        .config(|c| {
            c.poll_rate_limit = model::RateLimit {
                requests: 1_000,
                window_seconds: 60,
            };
        })
        .spawn()
        .await;
    let mut secret = String::new();
    for label in ["Alpha", "Bravo"] {
        let created = relay
            .admin(
                Method::POST,
                "/api/tenants",
                Some(json!({ "label": label })),
                StatusCode::CREATED,
            )
            .await;
        if label == "Alpha" {
            secret = created["pollSecret"].as_str().unwrap().to_owned();
        }
    }
    for n in 0..60 {
        let (status, body) = relay
            .call(
                Method::GET,
                &format!("/api/t/{tenant}/events"),
                &secret,
                None,
            )
            .await;
        match status {
            StatusCode::UNAUTHORIZED => assert_eq!(body["error"], "unauthorized"),
            StatusCode::TOO_MANY_REQUESTS => return n,
            other => panic!("{tenant}: {other} {body}"),
        }
    }
    panic!("{tenant}: no 429 within 60 polls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_and_unknown_tenants_cost_a_wrong_poll_secret_the_same() {
    let known = polls_before_429("bravo").await;
    let unknown = polls_before_429("nosuchtenant").await;
    println!("poll oracle: 401s before 429: known tenant {known}, unknown tenant {unknown}");
    assert_eq!(
        known, unknown,
        "the bcrypt budget tells a known tenant from an unknown one"
    );
}
