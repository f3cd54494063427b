//! Every integration end to end (issue 3): a request signed the way the
//! provider signs it goes to the real server, and the stored event reads
//! back `verified: true` with the provider's delivery id and event type.
//! Table-driven; the signing is `verify::sign` through `testkit::sign`.

use model::IntegrationKind;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Relay;

/// RFC 8032 test 1 (Discord) and sendgrid-go's test key (SendGrid): the
/// private halves sign, the inputs hold the public halves.
const ED25519_PRIVATE: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const P256_PRIVATE: &str = "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";

/// A rotated-out key of the right shape for each scheme, tried first.
fn older(kind: IntegrationKind) -> &'static str {
    match kind {
        // RFC 8032 test 2's public key.
        IntegrationKind::Discord => "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        // A P-256 key generated once for this test.
        IntegrationKind::Sendgrid => "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtbrinRV5FPKj5z9OiroWeHgoWVtglrazSObP5+Hhxxd3x03yV2jao4/EKVn9iGZcs1Bcn9LMzQrCmFSo45AfWw==",
        IntegrationKind::Standard => "whsec_b2xkZXIgc2VjcmV0",
        _ => "an-older-secret",
    }
}

/// Where a provider's delivery id comes from.
enum Id {
    /// A header `verify::sign` fills with a fresh value.
    Header(&'static str),
    /// A fixed value inside the body.
    Body(&'static str),
    /// The provider has none.
    Absent,
}

struct Case {
    kind: IntegrationKind,
    content_type: &'static str,
    /// The header-borne event type to send (`--event`).
    event: &'static str,
    body: String,
    id: Id,
    event_type: Option<&'static str>,
    event_count: u64,
}

fn case(kind: IntegrationKind) -> Case {
    use IntegrationKind::*;
    let now_ms = store::clock::now_ms();
    let json = "application/json";
    let (event, body, id, event_type): (&str, String, Id, Option<&str>) = match kind {
        Github => ("push", r#"{"ref":"refs/heads/main"}"#.into(), Id::Header("x-github-delivery"), Some("push")),
        Gitlab => ("Push Hook", r#"{"object_kind":"push"}"#.into(), Id::Header("x-gitlab-event-uuid"), Some("Push Hook")),
        Stripe => ("", r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}"#.into(), Id::Body("evt_1NG8Du2eZvKYlo2CUI79vXWy"), Some("invoice.paid")),
        Slack => ("", r#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}"#.into(), Id::Body("Ev08MFMKH6"), Some("app_mention")),
        Shopify => ("orders/create", r#"{"id":820982911946154508}"#.into(), Id::Header("x-shopify-webhook-id"), Some("orders/create")),
        Standard => ("", r#"{"type":"user.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{}}"#.into(), Id::Header("webhook-id"), Some("user.created")),
        Sentry => ("issue", r#"{"action":"created","data":{}}"#.into(), Id::Header("request-id"), Some("issue.created")),
        Linear => ("Issue", format!(r#"{{"action":"create","type":"Issue","data":{{}},"webhookTimestamp":{now_ms}}}"#), Id::Header("linear-delivery"), Some("Issue")),
        Vercel => ("", r#"{"id":"uev_vercel1","type":"deployment.created","payload":{}}"#.into(), Id::Body("uev_vercel1"), Some("deployment.created")),
        Betterstack => ("", r#"{"data":{"id":"1","type":"incident","attributes":{}}}"#.into(), Id::Absent, Some("incident")),
        Twilio => ("", r#"{"type":"com.twilio.messaging.message.delivered","data":{}}"#.into(), Id::Header("i-twilio-idempotency-token"), Some("com.twilio.messaging.message.delivered")),
        GenericHmac => ("", r#"{"anything":true}"#.into(), Id::Absent, None),
        Bitbucket => ("repo:push", r#"{"push":{"changes":[]}}"#.into(), Id::Header("x-request-uuid"), Some("repo:push")),
        Paddle => ("", r#"{"event_id":"evt_01h","event_type":"subscription.created","notification_id":"ntf_01h","data":{}}"#.into(), Id::Body("ntf_01h"), Some("subscription.created")),
        Intercom => ("", r#"{"type":"notification_event","id":"notif_ccd8a4d0","topic":"conversation.user.created"}"#.into(), Id::Body("notif_ccd8a4d0"), Some("conversation.user.created")),
        Typeform => ("", r#"{"event_id":"01HA5YQX3KJ","event_type":"form_response","form_response":{}}"#.into(), Id::Body("01HA5YQX3KJ"), Some("form_response")),
        Pagerduty => ("", r#"{"event":{"id":"01DEN3UJVFL8KJTRWJVZWCF9GV","event_type":"incident.triggered","data":{}}}"#.into(), Id::Body("01DEN3UJVFL8KJTRWJVZWCF9GV"), Some("incident.triggered")),
        Square => ("", r#"{"merchant_id":"6SSW7HV8K2ST5","type":"payment.updated","event_id":"6a8f5f28-54a1","data":{}}"#.into(), Id::Body("6a8f5f28-54a1"), Some("payment.updated")),
        Zoom => ("", r#"{"event":"meeting.started","payload":{}}"#.into(), Id::Absent, Some("meeting.started")),
        Twitch => ("channel.follow", r#"{"subscription":{"type":"channel.follow"},"event":{}}"#.into(), Id::Header("twitch-eventsub-message-id"), Some("channel.follow")),
        Mailgun => ("", r#"{"event-data":{"id":"CPgfbmQMTCKtHW6uIWtuVe","event":"delivered"}}"#.into(), Id::Body("CPgfbmQMTCKtHW6uIWtuVe"), Some("delivered")),
        Discord => ("", r#"{"id":"1234567890","type":2,"data":{"name":"hello"}}"#.into(), Id::Body("1234567890"), Some("application_command")),
        Sendgrid => ("", r#"[{"event":"delivered","sg_event_id":"a"},{"event":"delivered","sg_event_id":"b"}]"#.into(), Id::Absent, Some("delivered")),
    };
    Case {
        kind,
        content_type: json,
        event,
        body,
        id,
        event_type,
        event_count: if kind == Sendgrid { 2 } else { 1 },
    }
}

/// (what `sign` takes, what the input holds).
fn keys(kind: IntegrationKind) -> (String, String) {
    let integration = verify::Integration::new(kind, Some(&generic())).unwrap();
    match kind {
        IntegrationKind::Discord => (
            ED25519_PRIVATE.into(),
            verify::public_key(&integration, ED25519_PRIVATE).unwrap(),
        ),
        IntegrationKind::Sendgrid => (
            P256_PRIVATE.into(),
            verify::public_key(&integration, P256_PRIVATE).unwrap(),
        ),
        IntegrationKind::Standard => (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        ),
        _ => (
            "whsec_or-any-shared-secret".into(),
            "whsec_or-any-shared-secret".into(),
        ),
    }
}

fn generic() -> model::GenericHmac {
    serde_json::from_value(json!({"header": "X-Signature", "algorithm": "sha512", "encoding": "base64", "prefix": "v1="})).unwrap()
}

/// Creates the input, sends the signed request and returns the stored event.
async fn deliver(relay: &Relay, bucket: &str, case: &Case) -> Value {
    let name = case.kind.name();
    let (signing, verifying) = keys(case.kind);
    let mut input =
        json!({"name": name, "integration": name, "secrets": [older(case.kind), verifying]});
    if case.kind == IntegrationKind::GenericHmac {
        input["genericHmac"] = serde_json::to_value(generic()).unwrap();
    }
    let input = relay.create_input(bucket, input).await;
    let url = input["url"].as_str().unwrap();
    let integration = verify::Integration::new(case.kind, Some(&generic())).unwrap();
    let signed = testkit::sign(
        &integration,
        &signing,
        url,
        case.content_type,
        case.body.as_bytes(),
        case.event,
    );
    let mut headers = signed.headers.clone();
    headers.push(("content-type".into(), case.content_type.into()));
    let (status, answer) = testkit::post(&relay.http, &signed.url, &headers, &signed.body).await;
    assert_eq!(status, StatusCode::OK, "{name}: {answer}");

    let events = relay.events().await;
    let event = events
        .iter()
        .find(|e| e["input"] == input["id"])
        .unwrap_or_else(|| panic!("{name}: no stored event"))
        .clone();
    let want_id = match case.id {
        Id::Header(h) => Some(
            signed
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(h))
                .unwrap_or_else(|| panic!("{name}: sign sets {h}"))
                .1
                .clone(),
        ),
        Id::Body(id) => Some(id.to_owned()),
        Id::Absent => None,
    };
    assert_eq!(event["verified"], true, "{name}");
    assert_eq!(event["integration"], name, "{name}");
    assert_eq!(
        event["deliveryId"].as_str().map(str::to_owned),
        want_id,
        "{name}"
    );
    assert_eq!(event["eventType"].as_str(), case.event_type, "{name}");
    event
}

#[tokio::test]
async fn every_integration_verifies_end_to_end() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "providers"})).await;
    let bucket = bucket["id"].as_str().unwrap();
    for &kind in IntegrationKind::ALL {
        deliver(&relay, bucket, &case(kind)).await;
    }
}

#[tokio::test]
async fn form_encoded_providers_and_replays() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "forms"})).await;
    let bucket = bucket["id"].as_str().unwrap();
    let form = "application/x-www-form-urlencoded";
    // A Slack slash command and a Twilio SMS, as both really send them.
    let slack = Case {
        content_type: form,
        body: "command=%2Fdeploy&text=prod&trigger_id=1.2.3".into(),
        id: Id::Absent,
        event_type: Some("/deploy"),
        ..case(IntegrationKind::Slack)
    };
    deliver(&relay, bucket, &slack).await;
    let twilio = Case {
        content_type: form,
        body: "MessageSid=SM1&From=%2B14158675309&Body=Hi+there&SmsStatus=received".into(),
        event_type: Some("received"),
        ..case(IntegrationKind::Twilio)
    };
    deliver(&relay, bucket, &twilio).await;

    // A Stripe retry carries the same event id: refused as a replay, once
    // the first was accepted, and only a correctly signed one is stored.
    let stripe = case(IntegrationKind::Stripe);
    let first = deliver(&relay, bucket, &stripe).await;
    let integration = verify::Integration::Stripe;
    let (signing, _) = keys(IntegrationKind::Stripe);
    let input_url = format!(
        "{}/v1/webhooks/{}",
        relay.url,
        first["input"].as_str().unwrap()
    );
    let again = testkit::sign(
        &integration,
        &signing,
        &input_url,
        "application/json",
        stripe.body.as_bytes(),
        "",
    );
    let mut headers = again.headers;
    headers.push(("content-type".into(), "application/json".into()));
    let (status, body) =
        testkit::post(&relay.http, &input_url, &headers, stripe.body.as_bytes()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Stripe refuses form bodies at step 4.
    let (status, _) = testkit::post(
        &relay.http,
        &input_url,
        &[("content-type".into(), form.into())],
        b"a=b",
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let stored = relay
        .events()
        .await
        .into_iter()
        .filter(|e| e["input"] == first["input"])
        .count();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn every_fixed_scheme_works_on_radarboard_named_routes() {
    let relay = Relay::spawn().await;
    relay
        .admin(
            Method::POST,
            "/api/tenants",
            Some(json!({"label": "Acme"})),
            StatusCode::CREATED,
        )
        .await;
    let named: Vec<IntegrationKind> = IntegrationKind::ALL
        .iter()
        .copied()
        .filter(|k| *k != IntegrationKind::GenericHmac)
        .collect();
    let secrets: serde_json::Map<String, Value> = named
        .iter()
        .map(|k| {
            (
                k.name().to_owned(),
                json!(format!("{},{}", keys(*k).1, older(*k))),
            )
        })
        .collect();
    let set = relay
        .admin(
            Method::PUT,
            "/api/tenants/acme/secrets",
            Some(json!({"webhookSecrets": secrets})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(set["integrations"].as_array().unwrap().len(), named.len());
    for kind in named {
        let c = case(kind);
        let url = format!("{}/api/t/acme/webhooks/{}", relay.url, kind.name());
        let integration = verify::Integration::new(kind, None).unwrap();
        let signed = testkit::sign(
            &integration,
            &keys(kind).0,
            &url,
            c.content_type,
            c.body.as_bytes(),
            c.event,
        );
        let mut headers = signed.headers;
        headers.push(("content-type".into(), c.content_type.into()));
        let (status, body) = testkit::post(&relay.http, &signed.url, &headers, &signed.body).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", kind.name());
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            answer,
            json!({"received": true, "eventCount": c.event_count}),
            "{}",
            kind.name()
        );
    }
}

#[tokio::test]
async fn secrets_that_can_never_verify_are_refused_at_creation() {
    let relay = Relay::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "keys"})).await;
    let path = format!("/v1/buckets/{}/inputs", bucket["id"].as_str().unwrap());
    for (integration, secret) in [
        ("discord", "not-a-public-key"),
        ("sendgrid", P256_PRIVATE),
        ("standard", "whsec_***"),
    ] {
        let body = json!({"integration": integration, "secrets": [secret]});
        let (status, answer) = relay
            .call(Method::POST, &path, &relay.admin, Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{integration}: {answer}");
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .starts_with("secrets[0]"),
            "{answer}"
        );
        assert!(
            !answer.to_string().contains(secret),
            "the secret is not echoed"
        );
    }
}
