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
        (Method::GET, format!("/v1/buckets/{bucket}/outputs")),
        (Method::POST, format!("/v1/buckets/{bucket}/outputs")),
        (Method::GET, format!("/v1/outputs/{output_id}")),
        (Method::PATCH, format!("/v1/outputs/{output_id}")),
        (Method::DELETE, format!("/v1/outputs/{output_id}")),
        (Method::GET, format!("/v1/tokens/{key}")),
        (Method::PATCH, format!("/v1/tokens/{key}")),
        (Method::DELETE, format!("/v1/tokens/{key}")),
        (Method::POST, format!("/v1/tokens/{key}/rotate")),
        (Method::GET, format!("/v1/events/{event}")),
        (Method::POST, format!("/v1/events/{event}/resend")),
        (Method::GET, format!("/v1/events?bucket={bucket}")),
        (Method::GET, format!("/v1/buckets/{bucket}/stream")),
    ];
    // Every probed path exists for its owner (so a 404 below is isolation,
    // not a typo); the SSE stream is left out as it never ends.
    for (method, path) in &probes {
        if *method == Method::GET && !path.ends_with("/stream") {
            let (status, answer) = relay.call(Method::GET, path, &relay.admin, None).await;
            assert_eq!(status, StatusCode::OK, "owner: GET {path} → {answer}");
        }
    }
    for (method, path) in probes {
        // Valid bodies, so a 404 cannot come from body validation.
        let body = match method {
            Method::POST if path.ends_with("/outputs") => {
                Some(json!({"url": "http://hooks.internal.example/y"}))
            }
            Method::PATCH | Method::POST => Some(json!({})),
            _ => None,
        };
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

#[tokio::test]
async fn tenants_cannot_poll_each_other_or_touch_admin_tokens() {
    let relay = testkit::Relay::spawn().await;
    let acme = relay
        .admin(
            Method::POST,
            "/api/tenants",
            Some(json!({"label": "Acme"})),
            StatusCode::CREATED,
        )
        .await;
    let acme_poll = acme["pollSecret"].as_str().unwrap();
    // Acme's poll secret on the default tenant's poll routes, and back.
    for path in ["/api/events", "/api/t/default/events"] {
        let (status, _) = relay.call(Method::GET, path, acme_poll, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, _) = relay
        .call(Method::GET, "/api/t/acme/events", acme_poll, None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // An admin token filed under `default` is invisible to a tenant token.
    let admin_token = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "admin"})),
            StatusCode::CREATED,
        )
        .await;
    let tenant = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "tenant"})),
            StatusCode::CREATED,
        )
        .await;
    let tenant = tenant["token"].as_str().unwrap();
    let (_, listed) = relay.call(Method::GET, "/v1/tokens", tenant, None).await;
    assert!(
        !listed
            .to_string()
            .contains(admin_token["key"].as_str().unwrap()),
        "{listed}"
    );
    let path = format!("/v1/tokens/{}", admin_token["key"].as_str().unwrap());
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = relay.call(method.clone(), &path, tenant, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
    }
    let rotate = format!("{path}/rotate");
    let (status, _) = relay.call(Method::POST, &rotate, tenant, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a tenant cannot rotate the admin's token"
    );
    let (status, _) = relay
        .call(
            Method::GET,
            "/v1/buckets",
            admin_token["token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the admin token still works");
}
