//! The administration API: shapes, defaults, and error answers (DESIGN §3.4).

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::Relay;

#[tokio::test]
async fn bad_bodies_get_400_invalid_request_naming_the_field() {
    let relay = Relay::spawn().await;
    let response = relay
        .http
        .post(format!("{}/v1/buckets", relay.url))
        .bearer_auth(&relay.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let cases = [
        (json!({}), "name"),
        (json!({"name": "b", "colour": "red"}), "colour"),
        (json!({"name": "Not A Slug"}), "name"),
        (
            json!({"name": "b", "auth": {"type": "basic", "username": "u"}}),
            "password",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = relay
            .call(
                Method::POST,
                "/v1/buckets",
                &relay.admin,
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{body} → {answer}"
        );
    }
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let inputs = format!("/v1/buckets/{}/inputs", bucket["id"].as_str().unwrap());
    for (body, field) in [
        (json!({"integration": "github"}), "secrets"),
        (json!({"integration": "nope", "secrets": ["s"]}), "nope"),
        (
            json!({"integration": "generic-hmac", "secrets": ["s"]}),
            "genericHmac",
        ),
        (
            json!({"rateLimit": {"requests": 0, "windowSeconds": 1}}),
            "rateLimit",
        ),
        (
            json!({"response": {"type": "static", "status": 42}}),
            "response.status",
        ),
    ] {
        let (status, answer) = relay
            .call(Method::POST, &inputs, &relay.admin, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{body} → {answer}"
        );
    }
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401() {
    let relay = Relay::spawn().await;
    let response = relay
        .http
        .get(format!("{}/v1/buckets", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for wrong in ["nope", "tok_abc.def", "tok_.x", ""] {
        let (status, body) = relay.call(Method::GET, "/v1/buckets", wrong, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert_eq!(body["error"], "unauthorized");
    }
}

#[tokio::test]
async fn buckets_round_trip_with_defaults_patch_and_delete() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "prod"})).await;
    assert!(bucket["id"].as_str().unwrap().starts_with("bkt_"));
    assert_eq!(bucket["retentionSeconds"], 86400);
    assert_eq!(bucket["catchupSeconds"], 600);
    assert_eq!(bucket["ephemeral"], false);
    assert_eq!(bucket["auth"], json!({"type": "none"}));
    let (status, body) = relay
        .call(
            Method::POST,
            "/v1/buckets",
            &relay.admin,
            Some(json!({"name": "prod"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );

    let id = bucket["id"].as_str().unwrap();
    let patched = super::patch(
        &relay,
        &format!("/v1/buckets/{id}"),
        json!({"retentionSeconds": 3600}),
    )
    .await;
    assert_eq!(patched["retentionSeconds"], 3600);
    assert_eq!(patched["name"], "prod");
    // By name as well as by id.
    let by_name = relay
        .admin(Method::GET, "/v1/buckets/prod", None, StatusCode::OK)
        .await;
    assert_eq!(by_name["id"], bucket["id"]);
    let list = relay
        .admin(Method::GET, "/v1/buckets", None, StatusCode::OK)
        .await;
    assert_eq!(list["buckets"].as_array().unwrap().len(), 1);
    relay
        .admin(
            Method::DELETE,
            &format!("/v1/buckets/{id}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    relay
        .admin(
            Method::GET,
            &format!("/v1/buckets/{id}"),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
}

#[tokio::test]
async fn inputs_have_v4_ids_and_public_urls() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let input = relay
        .create_input(bucket["id"].as_str().unwrap(), json!({"name": "hook"}))
        .await;
    let id = input["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "UUID version 4");
    assert_eq!(input["url"], format!("{}/v1/webhooks/{id}", relay.url));
    assert_eq!(input["enabled"], true);
    assert_eq!(input["response"], json!({"type": "default"}));
    let (status, _) = relay
        .call(
            Method::POST,
            &format!("/v1/buckets/{}/inputs", bucket["id"].as_str().unwrap()),
            &relay.admin,
            Some(json!({"name": "hook"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "names are unique in a tenant");
}

#[tokio::test]
async fn outputs_and_tokens() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "b"})).await;
    let outputs = format!("/v1/buckets/{}/outputs", bucket["id"].as_str().unwrap());
    let output = relay
        .admin(
            Method::POST,
            &outputs,
            Some(json!({"url": "http://hooks.internal.example/hook"})),
            StatusCode::CREATED,
        )
        .await;
    assert!(output["id"].as_str().unwrap().starts_with("out_"));
    assert_eq!(output["internal"], true);
    assert_eq!(output["timeoutMs"], 10000);
    assert_eq!(
        output["retry"],
        json!({"maxAttempts": 8, "initialDelayMs": 5000})
    );
    let (status, _) = relay
        .call(
            Method::POST,
            &outputs,
            &relay.admin,
            Some(json!({"url": "ftp://x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let token = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "agent", "buckets": ["b"]})),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(token["mode"], "forward");
    assert_eq!(token["buckets"], json!([bucket["id"]]));
    let bearer = token["token"].as_str().unwrap();
    assert_eq!(
        bearer,
        format!(
            "{}.{}",
            token["key"].as_str().unwrap(),
            token["secret"].as_str().unwrap()
        )
    );
    let shown = relay
        .admin(
            Method::GET,
            &format!("/v1/tokens/{}", token["key"].as_str().unwrap()),
            None,
            StatusCode::OK,
        )
        .await;
    assert!(shown.get("secret").is_none() && shown.get("secretHash").is_none());
    // An agent token cannot administer: the routes do not exist for it.
    let (status, _) = relay.call(Method::GET, "/v1/buckets", bearer, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A tenant token can, and cannot mint admin tokens.
    let tenant = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "tenant"})),
            StatusCode::CREATED,
        )
        .await;
    let tenant = tenant["token"].as_str().unwrap();
    assert_eq!(
        relay.call(Method::GET, "/v1/buckets", tenant, None).await.0,
        StatusCode::OK
    );
    let (status, _) = relay
        .call(
            Method::POST,
            "/v1/tokens",
            tenant,
            Some(json!({"scope": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = relay
        .call(
            Method::POST,
            "/v1/tokens",
            tenant,
            Some(json!({"scope": "poll", "mode": "tunnel"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Deleting a token revokes it at once, cache or not.
    relay
        .admin(
            Method::DELETE,
            &format!("/v1/tokens/{}", token["key"].as_str().unwrap()),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(
        relay.call(Method::GET, "/v1/events", bearer, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn radarboard_tenant_provisioning() {
    let relay = Relay::spawn().await;
    let created = relay
        .admin(
            Method::POST,
            "/api/tenants",
            Some(json!({"label": "Acme Corp"})),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(created["tenant"]["id"], "acme-corp");
    assert_eq!(created["webhookBaseUrl"], "/api/t/acme-corp/webhooks");
    assert_eq!(created["pollUrl"], "/api/t/acme-corp/events");
    let poll_secret = created["pollSecret"].as_str().unwrap().to_owned();

    let set = relay
        .admin(
            Method::PUT,
            "/api/tenants/acme-corp/secrets",
            Some(json!({"webhookSecrets": {"github": "new,old"}})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(set, json!({"integrations": ["github"]}));
    assert!(!set.to_string().contains("new"));
    let (status, _) = relay
        .call(
            Method::PUT,
            "/api/tenants/acme-corp/secrets",
            &relay.admin,
            Some(json!({"webhookSecrets": {"nope": "x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let body = br#"{"zen":"hi"}"#;
    let mut headers = testkit::github_headers("old", body, "ping");
    headers.push(("content-type".into(), "application/json".into()));
    let url = format!("{}/api/t/acme-corp/webhooks/github", relay.url);
    assert_eq!(
        testkit::post(&relay.http, &url, &headers, body).await.0,
        StatusCode::OK
    );
    let (status, events) = relay
        .call(Method::GET, "/api/t/acme-corp/events", &poll_secret, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events.as_array().unwrap().len(), 1);

    let list = relay
        .admin(Method::GET, "/api/tenants", None, StatusCode::OK)
        .await;
    assert_eq!(list["tenants"].as_array().unwrap().len(), 2);
    relay
        .admin(
            Method::DELETE,
            "/api/tenants/acme-corp",
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    relay
        .admin(
            Method::GET,
            "/api/tenants/acme-corp",
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    assert_eq!(
        testkit::post(&relay.http, &url, &headers, body).await.0,
        StatusCode::NOT_FOUND
    );
    // Tenant routes are the administrator's only.
    let tenant = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "tenant"})),
            StatusCode::CREATED,
        )
        .await;
    let (status, _) = relay
        .call(
            Method::GET,
            "/api/tenants",
            tenant["token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_client_cannot_make_the_relay_spend_bcrypt_without_bound() {
    let relay = Relay::spawn().await;
    let token = relay
        .admin(
            Method::POST,
            "/v1/tokens",
            Some(json!({"scope": "tenant"})),
            StatusCode::CREATED,
        )
        .await;
    let wrong = format!("{}.wrong-secret", token["key"].as_str().unwrap());
    // 60 at once: the budget is counted before each check, so concurrency
    // cannot slip more than 20 checks a minute past it.
    let attempts = (0..60).map(|_| {
        let (http, url, wrong) = (
            relay.http.clone(),
            format!("{}/v1/buckets", relay.url),
            wrong.clone(),
        );
        tokio::spawn(async move {
            http.get(url)
                .bearer_auth(wrong)
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    // 20 a minute from this address, one of which the admin secret's own
    // first check (creating the token above) already used; a minute
    // boundary falling inside the test can shift the sliding window's
    // weighting by one either way.
    assert_eq!(checked + refused, 60, "{statuses:?}");
    assert!((18..=20).contains(&checked), "{statuses:?}");
    let response = relay
        .http
        .get(format!("{}/v1/buckets", relay.url))
        .bearer_auth(&wrong)
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    // The admin secret and poll secret checks share the budget.
    let (status, body) = relay
        .call(Method::GET, "/api/events", "poll-guess", None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
}

#[tokio::test]
async fn a_path_that_does_not_decode_is_a_json_404() {
    let relay = Relay::spawn().await;
    for path in [
        "/v1/buckets/%FF",
        "/v1/inputs/%FF",
        "/v1/events/%FF",
        "/api/tenants/%FF",
    ] {
        let (status, body) = relay.call(Method::GET, path, &relay.admin, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
}
