//! The ingest pipeline, DESIGN §3.1: each step's rejection, the order of the
//! steps, the no-poisoning rule, and what an accepted event looks like.

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::Relay;

use super::*;

const PAYLOAD: &[u8] = br#"{"ref":"refs/heads/main","zen":"Keep it logically awesome."}"#;

#[tokio::test]
async fn a_signed_github_webhook_is_stored_byte_exact_and_verified() {
    let (relay, input) = relay_with_github_input().await;
    let url = input["url"].as_str().unwrap();
    let mut headers = testkit::github_headers(SECRET, PAYLOAD, "push");
    headers.push((
        "content-type".into(),
        "application/json; charset=utf-8".into(),
    ));
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case("x-github-delivery"));
    headers.push((
        "x-github-delivery".into(),
        "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
    ));
    let (status, body) = testkit::post(&relay.http, url, &headers, PAYLOAD).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));

    let events = relay.events().await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert!(e["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(e["verified"], true);
    assert_eq!(e["integration"], "github");
    assert_eq!(e["eventType"], "push");
    assert_eq!(e["deliveryId"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(e["body"].as_str().unwrap().as_bytes(), PAYLOAD);
    assert_eq!(e["bodyEncoding"], "utf8");
    assert_eq!(e["method"], "POST");
    assert_eq!(e["input"], input["id"]);
    assert_eq!(e["headers"]["x-github-event"], "push");
}

#[tokio::test]
async fn a_tampered_body_is_refused_and_nothing_is_stored() {
    let (relay, input) = relay_with_github_input().await;
    let mut headers = testkit::github_headers(SECRET, PAYLOAD, "push");
    headers.push(("content-type".into(), "application/json".into()));
    let (status, body) = testkit::post(
        &relay.http,
        input["url"].as_str().unwrap(),
        &headers,
        b"{\"evil\":1}",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_signature");
    assert!(relay.events().await.is_empty());
}

#[tokio::test]
async fn unknown_inputs_answer_like_known_ones_and_store_nothing() {
    let relay = Relay::spawn().await;
    for path in [
        "/v1/webhooks/3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        "/v1/webhooks/not-a-uuid",
        "/v1/webhooks/3f2504e0-4f89-41d3-9a0c-0305e82c3301/extra",
        "/v1/webhooks/%FF",
        "/v1/webhooks/%FF/x",
    ] {
        let (status, body) =
            testkit::post(&relay.http, &format!("{}{path}", relay.url), &[], b"x").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, ""), "{path}");
    }
    assert!(relay.events().await.is_empty());
}

#[tokio::test]
async fn a_disabled_input_answers_503_before_checking_its_signature() {
    let (relay, input) = relay_with_github_input().await;
    patch(
        &relay,
        &format!("/v1/inputs/{}", input["id"].as_str().unwrap()),
        json!({"enabled": false}),
    )
    .await;
    let (status, body) = testkit::post(
        &relay.http,
        input["url"].as_str().unwrap(),
        &[],
        b"unsigned",
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body), "disabled");
}

#[tokio::test]
async fn bucket_tenant_and_server_kill_switches() {
    let (relay, input) = relay_with_github_input().await;
    let url = input["url"].as_str().unwrap();
    let bucket = format!("/v1/buckets/{}", input["bucket"].as_str().unwrap());
    patch(&relay, &bucket, json!({"enabled": false})).await;
    assert_eq!(
        post_signed(&relay, url, PAYLOAD).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    patch(&relay, &bucket, json!({"enabled": true})).await;
    assert_eq!(post_signed(&relay, url, PAYLOAD).await.0, StatusCode::OK);

    patch(&relay, "/api/tenants/default", json!({"enabled": false})).await;
    assert_eq!(
        post_signed(&relay, url, PAYLOAD).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A disabled tenant's events stay readable.
    assert_eq!(relay.events().await.len(), 1);

    let off = Relay::builder().config(|c| c.enabled = false).spawn().await;
    let input = github_input(&off, json!({"name": "b"})).await;
    let (status, body) = post_signed(&off, input["url"].as_str().unwrap(), PAYLOAD).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "disabled")
    );
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_with_or_without_a_length() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let input = relay
        .create_input(bucket["id"].as_str().unwrap(), json!({"bodyLimit": 100}))
        .await;
    let url = input["url"].as_str().unwrap();
    let (status, body) = testkit::post(&relay.http, url, &[], &[b'a'; 101]).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    // Chunked: no Content-Length, the limit is enforced while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(vec![b'a'; 60]), Ok(vec![b'a'; 60])];
    let stream = futures_util::stream::iter(chunks);
    let response = relay
        .http
        .post(url)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        testkit::post(&relay.http, url, &[], &[b'a'; 100]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_body_limit_is_checked_before_the_content_type() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let input = relay
        .create_input(
            bucket["id"].as_str().unwrap(),
            json!({"integration": "github", "secrets": [SECRET], "bodyLimit": 10}),
        )
        .await;
    let url = input["url"].as_str().unwrap();
    let text = vec![("content-type".to_owned(), "text/plain".to_owned())];
    assert_eq!(
        testkit::post(&relay.http, url, &text, &[b'a'; 11]).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (status, body) = testkit::post(&relay.http, url, &text, b"{}").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
}

#[tokio::test]
async fn plain_inputs_take_any_content_and_keep_binary_bodies() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let input = relay
        .create_input(bucket["id"].as_str().unwrap(), json!({}))
        .await;
    let url = format!("{}/extra/path?a=1&b=two", input["url"].as_str().unwrap());
    let body = [0xff, 0x00, 0xfe, b'x'];
    let headers = vec![(
        "content-type".to_owned(),
        "application/octet-stream".to_owned(),
    )];
    assert_eq!(
        testkit::post(&relay.http, &url, &headers, &body).await.0,
        StatusCode::OK
    );
    let events = relay.events().await;
    let e = &events[0];
    assert_eq!(e["bodyEncoding"], "base64");
    assert_eq!(e["body"], "/wD+eA==");
    assert_eq!(e["path"], "/extra/path");
    assert_eq!(e["query"], "a=1&b=two");
    assert_eq!(e["verified"], false);
    assert_eq!(e["integration"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_before_bucket_auth() {
    let relay = Relay::spawn().await;
    let bucket = relay
        .create_bucket(json!({"name": "b", "auth": {"type": "token", "token": "bucket-token"}}))
        .await;
    let input = relay
        .create_input(
            bucket["id"].as_str().unwrap(),
            json!({"rateLimit": {"requests": 2, "windowSeconds": 60}}),
        )
        .await;
    let url = format!("{}?token=bucket-token", input["url"].as_str().unwrap());
    for _ in 0..2 {
        assert_eq!(
            testkit::post(&relay.http, &url, &[], b"x").await.0,
            StatusCode::OK
        );
    }
    // Third request, and with bad credentials: the rate limit (step 5)
    // answers before bucket auth (step 6).
    let response = relay
        .http
        .post(input["url"].as_str().unwrap())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(error_code(&response.text().await.unwrap()), "rate_limited");
}

#[tokio::test]
async fn bucket_basic_and_token_auth() {
    let relay = Relay::spawn().await;
    let basic = relay
        .create_bucket(
            json!({"name": "basic", "auth": {"type": "basic", "username": "u", "password": "p"}}),
        )
        .await;
    assert_eq!(
        basic["auth"],
        json!({"type": "basic", "username": "u"}),
        "password never shown"
    );
    let input = relay
        .create_input(basic["id"].as_str().unwrap(), json!({}))
        .await;
    let url = input["url"].as_str().unwrap();
    let response = relay
        .http
        .post(url)
        .basic_auth("u", Some("wrong"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(error_code(&response.text().await.unwrap()), "unauthorized");
    let response = relay
        .http
        .post(url)
        .basic_auth("u", Some("p"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stored = relay.events().await;
    assert!(
        stored[0]["headers"].get("authorization").is_none(),
        "the bucket credential is not stored"
    );

    let token = relay
        .create_bucket(json!({"name": "tok", "auth": {"type": "token", "token": "t0k"}}))
        .await;
    let input = relay
        .create_input(token["id"].as_str().unwrap(), json!({}))
        .await;
    let url = input["url"].as_str().unwrap();
    assert_eq!(
        testkit::post(&relay.http, url, &[], b"x").await.0,
        StatusCode::UNAUTHORIZED
    );
    let bearer = vec![("authorization".to_owned(), "Bearer t0k".to_owned())];
    assert_eq!(
        testkit::post(&relay.http, url, &bearer, b"x").await.0,
        StatusCode::OK
    );
    let with_query = format!("{url}?a=1&token=t0k");
    assert_eq!(
        testkit::post(&relay.http, &with_query, &[], b"x").await.0,
        StatusCode::OK
    );
    let events = relay.events().await;
    assert_eq!(
        events.last().unwrap()["query"],
        "a=1",
        "the token parameter is not stored"
    );
}

#[tokio::test]
async fn a_repeated_delivery_id_is_a_replay() {
    let (relay, input) = relay_with_github_input().await;
    let url = input["url"].as_str().unwrap();
    let mut headers = testkit::github_headers(SECRET, PAYLOAD, "push");
    headers.push(("content-type".into(), "application/json".into()));
    assert_eq!(
        testkit::post(&relay.http, url, &headers, PAYLOAD).await.0,
        StatusCode::OK
    );
    let (status, body) = testkit::post(&relay.http, url, &headers, PAYLOAD).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::CONFLICT, "replay")
    );
    assert_eq!(relay.events().await.len(), 1);
}

#[tokio::test]
async fn a_badly_signed_request_cannot_poison_the_dedup_set() {
    let (relay, input) = relay_with_github_input().await;
    let url = input["url"].as_str().unwrap();
    let mut good = testkit::github_headers(SECRET, PAYLOAD, "push");
    good.push(("content-type".into(), "application/json".into()));
    let delivery = good
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-github-delivery"))
        .unwrap()
        .1
        .clone();
    // An attacker who saw the delivery id sends it first with a bad signature.
    let forged = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-github-delivery".to_owned(), delivery),
        ("x-github-event".to_owned(), "push".to_owned()),
        (
            "x-hub-signature-256".to_owned(),
            format!("sha256={}", "0".repeat(64)),
        ),
    ];
    assert_eq!(
        testkit::post(&relay.http, url, &forged, PAYLOAD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        testkit::post(&relay.http, url, &good, PAYLOAD).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_signed_but_unparseable_payload_is_400() {
    let (relay, input) = relay_with_github_input().await;
    let (status, body) = post_signed(&relay, input["url"].as_str().unwrap(), b"not json").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_payload")
    );
}

#[tokio::test]
async fn rotation_accepts_the_older_secret() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let input = relay
        .create_input(
            bucket["id"].as_str().unwrap(),
            json!({"integration": "github", "secrets": ["newest", SECRET]}),
        )
        .await;
    assert_eq!(
        input["secrets"],
        json!(["newest", SECRET]),
        "shown once, at creation"
    );
    let shown = relay
        .admin(
            Method::GET,
            &format!("/v1/inputs/{}", input["id"].as_str().unwrap()),
            None,
            StatusCode::OK,
        )
        .await;
    assert!(shown.get("secrets").is_none(), "never shown again");
    assert_eq!(
        post_signed(&relay, input["url"].as_str().unwrap(), PAYLOAD)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn static_responses_and_the_radarboard_answer() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let input = relay
        .create_input(
            bucket["id"].as_str().unwrap(),
            json!({"name": "shop", "response": {"type": "static", "status": 202, "headers": {"x-a": "b"}, "body": "ok"}}),
        )
        .await;
    let response = relay
        .http
        .post(input["url"].as_str().unwrap())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-a"], "b");
    assert_eq!(response.text().await.unwrap(), "ok");

    let named = github_input(&relay, json!({"name": "radar"})).await;
    let url = format!(
        "{}/api/webhooks/{}",
        relay.url,
        named["name"].as_str().unwrap()
    );
    let (status, body) = post_signed(&relay, &url, PAYLOAD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"received": true, "eventCount": 1})
    );
    let tenant_url = format!(
        "{}/api/t/default/webhooks/{}",
        relay.url,
        named["name"].as_str().unwrap()
    );
    assert_eq!(
        post_signed(&relay, &tenant_url, PAYLOAD).await.0,
        StatusCode::OK
    );

    let (status, body) =
        post_signed(&relay, &format!("{}/api/webhooks/nope", relay.url), PAYLOAD).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::NOT_FOUND, "unknown_integration")
    );
    let (status, body) = post_signed(
        &relay,
        &format!("{}/api/t/nobody/webhooks/radar", relay.url),
        PAYLOAD,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::NOT_FOUND, "unknown_integration")
    );
    let response = relay.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        error_code(&response.text().await.unwrap()),
        "method_not_allowed"
    );
}

#[tokio::test]
async fn ephemeral_buckets_keep_only_metadata() {
    let relay = Relay::spawn().await;
    let input = github_input(&relay, json!({"name": "eph", "ephemeral": true})).await;
    let url = format!("{}?secret-query=1", input["url"].as_str().unwrap());
    assert_eq!(post_signed(&relay, &url, PAYLOAD).await.0, StatusCode::OK);
    let events = relay.events().await;
    let e = &events[0];
    for absent in ["body", "headers", "query", "bodyEncoding"] {
        assert!(e.get(absent).is_none(), "{absent} must not be kept: {e}");
    }
    assert_eq!(e["size"], PAYLOAD.len());
    assert_eq!(e["eventType"], "push");
}
