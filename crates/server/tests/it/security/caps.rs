//! Regression (issue 19, findings 2 and 5): the lists a tenant can grow are
//! capped with a 400 naming the field. An input took 100,000 secrets (one
//! unsigned request then cost 11.3 s of CPU) and the Radarboard secrets
//! body a 20,000-entry list; an output took a header value with CR/LF and
//! 50,000 headers, after which every delivery failed at once.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Relay;

/// A call that must be refused 400 `invalid_request` naming `field`.
async fn refused(relay: &Relay, method: Method, path: &str, body: Value, field: &str) {
    let (status, answer) = relay.call(method, path, &relay.admin, Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
    assert_eq!(answer["error"], "invalid_request", "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(field), "{field} not named: {message}");
}

fn secrets(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("secret-{i}")).collect()
}

#[tokio::test]
async fn r19_secrets_are_capped_per_input_and_per_integration() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "caps"})).await;
    let inputs = format!("/v1/buckets/{}/inputs", bucket["id"].as_str().unwrap());
    let input = |n: usize| json!({"integration": "github", "secrets": secrets(n)});
    let ten = relay
        .create_input(bucket["id"].as_str().unwrap(), input(10))
        .await;
    refused(&relay, Method::POST, &inputs, input(11), "secrets").await;
    refused(&relay, Method::POST, &inputs, input(100_000), "secrets").await;
    let long = json!({"integration": "github", "secrets": ["x".repeat(1025)]});
    refused(&relay, Method::POST, &inputs, long, "secrets").await;
    let one = format!("/v1/inputs/{}", ten["id"].as_str().unwrap());
    refused(
        &relay,
        Method::PATCH,
        &one,
        json!({"secrets": secrets(11)}),
        "secrets",
    )
    .await;

    let put = "/api/tenants/default/secrets";
    let list = |n: usize| json!({"webhookSecrets": {"github": secrets(n).join(",")}});
    refused(
        &relay,
        Method::PUT,
        put,
        list(20_000),
        "webhookSecrets.github",
    )
    .await;
    refused(&relay, Method::PUT, put, list(11), "webhookSecrets.github").await;
    relay
        .admin(Method::PUT, put, Some(list(10)), StatusCode::OK)
        .await;
}

#[tokio::test]
async fn r19_output_headers_must_be_few_valid_and_small() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "caps"})).await;
    let outputs = format!("/v1/buckets/{}/outputs", bucket["id"].as_str().unwrap());
    let output = |headers: Value| json!({"url": "http://127.0.0.1:9/hook", "headers": headers});
    let many: serde_json::Map<String, Value> = (0..50_000)
        .map(|i| (format!("x-{i}"), json!("v")))
        .collect();
    let sixty_five: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("x-{i}"), json!("v"))).collect();
    for headers in [
        json!({"x-a": "one\r\nx-injected: two"}),
        json!({"x-a": "bare\nline"}),
        json!({"bad name": "v"}),
        json!({"x-a:": "v"}),
        json!({"content-length": "3"}),
        json!({"x-big": "v".repeat(5000)}),
        Value::Object(sixty_five),
        Value::Object(many),
    ] {
        refused(&relay, Method::POST, &outputs, output(headers), "headers").await;
    }
    let sixty_four: serde_json::Map<String, Value> =
        (0..64).map(|i| (format!("x-{i}"), json!("v"))).collect();
    let made = relay
        .admin(
            Method::POST,
            &outputs,
            Some(output(Value::Object(sixty_four))),
            StatusCode::CREATED,
        )
        .await;
    let one = format!("/v1/outputs/{}", made["id"].as_str().unwrap());
    let patch = json!({"headers": {"x-a": "v\r\n"}});
    refused(&relay, Method::PATCH, &one, patch, "headers").await;
}

#[tokio::test]
async fn functions_are_capped_per_tenant_in_count_source_and_config() {
    let relay = Relay::spawn().await;
    let function = |i: usize| json!({"name": format!("f{i}"), "source": "r:StopForwarding()"});
    for i in 0..100 {
        relay
            .admin(
                Method::POST,
                "/v1/functions",
                Some(function(i)),
                StatusCode::CREATED,
            )
            .await;
    }
    let (status, answer) = relay
        .call(
            Method::POST,
            "/v1/functions",
            &relay.admin,
            Some(function(100)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "limit_reached");
    let config: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("K{i}"), json!("v"))).collect();
    let listed = relay
        .admin(Method::GET, "/v1/functions", None, StatusCode::OK)
        .await;
    let id = listed["functions"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/functions/{id}");
    refused(
        &relay,
        Method::PATCH,
        &path,
        json!({ "config": config }),
        "config",
    )
    .await;
    let big = json!({"K": "x".repeat(16 * 1024 + 1)});
    refused(
        &relay,
        Method::PATCH,
        &path,
        json!({ "config": big }),
        "config",
    )
    .await;
    let source = "-".repeat(64 * 1024 + 1);
    refused(
        &relay,
        Method::PATCH,
        &path,
        json!({ "source": source }),
        "source",
    )
    .await;
}
