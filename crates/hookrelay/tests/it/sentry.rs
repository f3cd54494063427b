//! Error reporting (issue 20, DESIGN §3.6): with `SENTRY_DSN` set, a store
//! failure answered 503 reaches Sentry as an error event with the release
//! and environment — and nothing of the request that met it. The stand-in
//! Sentry is a real HTTP server on loopback that records every envelope.

use std::time::Duration;

use serde_json::{json, Value};
use testkit::Destination;

use super::cluster::{PrivateRedis, MASTER_KEY};
use super::faults::ADMIN;
use super::Serve;

const PATIENCE: Duration = Duration::from_secs(30);

/// Strings the failed request carried: none may reach Sentry.
const QUERY_SECRET: &str = "qs-SECRET-7f3a";
const HEADER_SECRET: &str = "hdr-SECRET-91bc";
const BODY_SECRET: &str = "body-SECRET-c0de";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_reaches_sentry_scrubbed() {
    let sentry = Destination::spawn().await;
    let port = sentry.url.rsplit(':').next().unwrap().trim_end_matches('/');
    let dsn = format!("http://publickey123@127.0.0.1:{port}/42");
    let mut redis = PrivateRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let node = Serve::start(
        dir.path(),
        &[
            ("HOOKRELAY_STORE", url.as_str()),
            ("HOOKRELAY_MASTER_KEY", MASTER_KEY),
            ("HOOKRELAY_ADMIN_SECRET", ADMIN),
            ("SENTRY_DSN", dsn.as_str()),
            ("SENTRY_ENVIRONMENT", "ci-test"),
        ],
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let admin = |path: String, body: Value| {
        let (http, url) = (http.clone(), node.url.clone());
        async move {
            let r = http
                .post(format!("{url}{path}"))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let bucket = admin("/v1/buckets".into(), json!({"name": "prod"})).await;
    let bucket_id = bucket["id"].as_str().unwrap();
    let input = admin(format!("/v1/buckets/{bucket_id}/inputs"), json!({})).await;
    assert!(sentry.received().is_empty(), "nothing to report yet");

    redis.kill9();
    let hook = format!(
        "{}/v1/webhooks/{}?token={QUERY_SECRET}",
        node.url,
        input["id"].as_str().unwrap()
    );
    let answer = http
        .post(&hook)
        .header("x-secret", HEADER_SECRET)
        .body(BODY_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503, "ingest without its store");

    let reports = sentry.wait_for(1, PATIENCE).await;
    let report = &reports[0];
    assert_eq!(report.method, "POST");
    assert_eq!(report.target, "/api/42/envelope/");
    let auth = report.header("x-sentry-auth").unwrap_or_default();
    assert!(auth.contains("sentry_key=publickey123"), "{auth}");
    let envelope = String::from_utf8_lossy(&report.body);
    let event: Value = envelope
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("release").is_some())
        .unwrap_or_else(|| panic!("an event item in the envelope:\n{envelope}"));
    // Sentry's protocol leaves the default level, `error`, out.
    assert!(event.get("level").is_none_or(|l| l == "error"), "{event}");
    assert_eq!(event["environment"], "ci-test");
    assert!(
        event["release"]
            .as_str()
            .is_some_and(|r| r.starts_with("hookrelay@")),
        "{event}"
    );
    assert!(envelope.contains("unavailable"), "{envelope}");
    for secret in [QUERY_SECRET, HEADER_SECRET, BODY_SECRET, ADMIN, MASTER_KEY] {
        assert!(
            !envelope.contains(secret),
            "{secret} reached Sentry:\n{envelope}"
        );
    }
    assert!(event.get("request").is_none() && event.get("user").is_none());
    drop(node);
}
