//! An input's default limits (DESIGN §13, issue 18): filled in at creation
//! and shown, Radarboard's numbers for provisioned inputs, provider-sized
//! ones for inputs made through `/v1`; and a limit that counts only refused
//! requests lets a provider's burst through while it cuts a forged flood.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Relay;

use super::*;

/// The input's `(bodyLimit, rateLimit)` as the API shows it on create and
/// on GET.
async fn limits(relay: &Relay, created: &Value) -> (Value, Value) {
    let path = format!("/v1/inputs/{}", created["id"].as_str().unwrap());
    let shown = relay.admin(Method::GET, &path, None, StatusCode::OK).await;
    assert_eq!(
        (&created["bodyLimit"], &created["rateLimit"]),
        (&shown["bodyLimit"], &shown["rateLimit"]),
        "create and GET show the same limits"
    );
    (shown["bodyLimit"].clone(), shown["rateLimit"].clone())
}

#[tokio::test]
async fn defaults_are_filled_in_at_creation_and_shown() {
    let relay = Relay::spawn().await;
    let open = relay.create_bucket(json!({"name": "open"})).await;
    let guarded = relay
        .create_bucket(json!({"name": "guarded", "auth": {"type": "token", "token": "t"}}))
        .await;
    let open = open["id"].as_str().unwrap();
    let refused = json!({"requests": 100, "windowSeconds": 60, "count": "refused"});

    let github = github_input(&relay, json!({"name": "gh"})).await;
    assert_eq!(
        limits(&relay, &github).await,
        (json!(26_214_400), refused.clone())
    );
    let stripe = relay
        .create_input(
            open,
            json!({"integration": "stripe", "secrets": ["whsec_x"]}),
        )
        .await;
    assert_eq!(
        limits(&relay, &stripe).await,
        (json!(1_048_576), refused.clone())
    );
    let plain = relay.create_input(open, json!({})).await;
    assert_eq!(
        limits(&relay, &plain).await,
        (
            json!(1_048_576),
            json!({"requests": 6000, "windowSeconds": 60, "count": "all"})
        )
    );
    let behind_auth = relay
        .create_input(guarded["id"].as_str().unwrap(), json!({}))
        .await;
    assert_eq!(
        limits(&relay, &behind_auth).await,
        (json!(1_048_576), refused)
    );

    // Radarboard provisioning keeps Radarboard's numbers exactly.
    relay
        .admin(
            Method::PUT,
            "/api/tenants/default/secrets",
            Some(json!({"webhookSecrets": {"github": "s"}})),
            StatusCode::OK,
        )
        .await;
    let list = relay
        .admin(
            Method::GET,
            "/v1/buckets/default/inputs",
            None,
            StatusCode::OK,
        )
        .await;
    let provisioned = &list["inputs"][0];
    assert_eq!(provisioned["name"], "github");
    assert_eq!(
        limits(&relay, provisioned).await,
        (
            json!(262_144),
            json!({"requests": 100, "windowSeconds": 60, "count": "all"})
        )
    );

    // A limit given at creation is kept, and a patch of something else
    // leaves the limits alone.
    let mine = relay
        .create_input(
            open,
            json!({"bodyLimit": 2048, "rateLimit": {"requests": 7, "windowSeconds": 10}}),
        )
        .await;
    let path = format!("/v1/inputs/{}", mine["id"].as_str().unwrap());
    patch(&relay, &path, json!({"enabled": false})).await;
    assert_eq!(
        limits(&relay, &mine).await,
        (
            json!(2048),
            json!({"requests": 7, "windowSeconds": 10, "count": "all"})
        )
    );
}

#[tokio::test]
async fn a_github_input_takes_bodies_up_to_githubs_maximum_and_a_plain_one_up_to_1_mib() {
    let (relay, github) = relay_with_github_input().await;
    // 2 MiB: eight times Radarboard's 256 KiB, well within GitHub's 25 MiB.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (status, _) = post_signed(&relay, github["url"].as_str().unwrap(), big.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    let stored = relay.events().await;
    assert_eq!(stored[0]["body"].as_str().unwrap().len(), big.len());

    let (_, path) = plain_input(&relay).await;
    let url = format!("{}{path}", relay.url);
    let at_limit = vec![b'a'; 1024 * 1024];
    assert_eq!(
        testkit::post(&relay.http, &url, &[], &at_limit).await.0,
        StatusCode::OK
    );
    let over = vec![b'a'; 1024 * 1024 + 1];
    let (status, body) = testkit::post(&relay.http, &url, &[], &over).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "payload_too_large");
}

/// Issue 18: 100 requests a minute counted per address gave 33 of 130
/// GitHub deliveries a 429, and GitHub does not retry by itself.
#[tokio::test]
async fn r18_a_providers_burst_all_lands_while_a_forged_flood_is_cut_at_the_limit() {
    let (relay, github) = relay_with_github_input().await;
    let url = github["url"].as_str().unwrap();
    for i in 0..130 {
        let body = format!("{{\"n\":{i}}}");
        let (status, answer) = post_signed(&relay, url, body.as_bytes()).await;
        assert_eq!(status, StatusCode::OK, "delivery {i}: {answer}");
    }

    // The same address now floods forged deliveries: 100 refusals a minute
    // are answered for what they are, then step 5 cuts the rest.
    let mut answers = Vec::new();
    for i in 0..120 {
        let mut headers = testkit::github_headers("not the secret", b"{}", "push");
        headers.push(("content-type".into(), "application/json".into()));
        let (status, body) = testkit::post(&relay.http, url, &headers, b"{}").await;
        answers.push((status, error_code(&body), i));
    }
    let refused = answers
        .iter()
        .filter(|(s, code, _)| *s == StatusCode::UNAUTHORIZED && code == "invalid_signature")
        .count();
    let cut = answers
        .iter()
        .filter(|(s, code, _)| *s == StatusCode::TOO_MANY_REQUESTS && code == "rate_limited")
        .count();
    assert_eq!((refused, cut), (100, 20), "{answers:?}");
    assert!(
        answers[..100]
            .iter()
            .all(|(s, _, _)| *s == StatusCode::UNAUTHORIZED),
        "the first 100 are refused, not cut"
    );
    assert_eq!(relay.events().await.len(), 130, "nothing forged stored");

    // Once cut, the address waits out the window, whatever it sends.
    let (status, _) = post_signed(&relay, url, b"{\"late\":true}").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
