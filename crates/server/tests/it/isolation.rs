//! Tenant isolation: one tenant's credentials see nothing of another's, and
//! every probe answers 404 (never 403, so existence does not leak).

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_tenant_token_sees_nothing_of_another_tenant() {
    let (relay, input) = relay_with_github_input().await;
    assert_eq!(
        post_signed(&relay, input["url"].as_str().unwrap(), b"{}")
            .await
            .0,
        StatusCode::OK
    );
    let event = relay.events().await[0]["id"].as_str().unwrap().to_owned();
    let bucket = input["bucket"].as_str().unwrap().to_owned();
    let output = relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{bucket}/outputs"),
            Some(json!({"url": "http://hooks.internal.example/x"})),
            StatusCode::CREATED,
        )
        .await;
    let default_token = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "poll"})),
            StatusCode::CREATED,
        )
        .await;

    relay
        .admin(
            Method::POST,
            "/api/tenants",
            Some(json!({"label": "Other"})),
            StatusCode::CREATED,
        )
        .await;
    let (status, other) = relay
        .http
        .post(format!("{}/v1/tokens", relay.url))
        .bearer_auth(&relay.admin)
        .header("x-hookrelay-tenant", "other")
        .json(&json!({"scope": "tenant"}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let other: serde_json::Value = other.json().await.unwrap();
    let other = other["token"].as_str().unwrap();

    let input_id = input["id"].as_str().unwrap();
    let output_id = output["id"].as_str().unwrap();
    let key = default_token["key"].as_str().unwrap();
    let probes = [
        (Method::GET, format!("/v1/buckets/{bucket}")),
        (Method::GET, "/v1/buckets/prod".to_owned()),
        (Method::PATCH, format!("/v1/buckets/{bucket}")),
        (Method::DELETE, format!("/v1/buckets/{bucket}")),
        (Method::GET, format!("/v1/buckets/{bucket}/inputs")),
        (Method::POST, format!("/v1/buckets/{bucket}/inputs")),
        (Method::GET, format!("/v1/inputs/{input_id}")),
        (Method::PATCH, format!("/v1/inputs/{input_id}")),
        (Method::DELETE, format!("/v1/inputs/{input_id}")),
        (Method::GET, format!("/v1/outputs/{output_id}")),
        (Method::DELETE, format!("/v1/outputs/{output_id}")),
        (Method::GET, format!("/v1/tokens/{key}")),
        (Method::DELETE, format!("/v1/tokens/{key}")),
        (Method::GET, format!("/v1/events/{event}")),
        (Method::POST, format!("/v1/events/{event}/resend")),
        (Method::GET, format!("/v1/events?bucket={bucket}")),
        (Method::GET, format!("/v1/buckets/{bucket}/stream")),
    ];
    for (method, path) in probes {
        let body = matches!(method, Method::PATCH | Method::POST).then(|| json!({}));
        let (status, answer) = relay.call(method.clone(), &path, other, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path} → {answer}");
    }
    let (_, list) = relay.call(Method::GET, "/v1/events", other, None).await;
    assert_eq!(list["events"], json!([]));
    let (_, list) = relay.call(Method::GET, "/v1/buckets", other, None).await;
    assert_eq!(list["buckets"], json!([]));
    // The default tenant's poll route refuses the other tenant's token.
    let (status, _) = relay.call(Method::GET, "/api/events", other, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // And everything still exists for its owner.
    relay
        .admin(
            Method::GET,
            &format!("/v1/inputs/{input_id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(relay.events().await.len(), 1);
}
