//! Provider URL-verification handshakes through the real server (issue 16,
//! DESIGN §13, §14): each answered with the exact bytes its provider
//! documents, only once the signature verified, stored with `"handshake":
//! true` and never delivered; `"handshakes": false` turns them off.

use model::IntegrationKind;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{Destination, Relay};

/// RFC 8032 test 1: the private half signs, the input holds the public one.
const ED25519_PRIVATE: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// Slack's documented `url_verification` request.
const SLACK: &str = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
/// Zoom's documented `endpoint.url_validation` request.
const ZOOM: &str = r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
/// Twitch EventSub's documented challenge request.
const TWITCH: &str = r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow","version":"1","cost":1,"condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z"}}"#;

struct World {
    relay: Relay,
    destination: Destination,
    bucket: String,
}

/// A relay with a bucket whose one public output is a real destination.
async fn world() -> World {
    let relay = Relay::builder()
        .config(|c| c.allow_private_destinations = true)
        .spawn()
        .await;
    let destination = Destination::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "hs"})).await;
    let bucket = bucket["id"].as_str().unwrap().to_owned();
    relay
        .admin(
            reqwest::Method::POST,
            &format!("/v1/buckets/{bucket}/outputs"),
            Some(json!({"url": destination.url, "internal": false})),
            StatusCode::CREATED,
        )
        .await;
    World {
        relay,
        destination,
        bucket,
    }
}

impl World {
    async fn input(&self, kind: IntegrationKind, secret: &str, extra: Value) -> Value {
        let mut body = json!({"integration": kind.name(), "secrets": [secret]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.relay.create_input(&self.bucket, body).await
    }

    /// Posts `body` signed with `signing_key` (plus `extra` headers);
    /// answers (status, content-type, body bytes).
    async fn send(
        &self,
        input: &Value,
        kind: IntegrationKind,
        signing_key: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, Vec<u8>) {
        let integration = verify::Integration::new(kind, None).unwrap();
        let url = input["url"].as_str().unwrap();
        let signed = testkit::sign(
            &integration,
            signing_key,
            url,
            "application/json",
            body.as_bytes(),
            "channel.follow",
        );
        let mut request = self.relay.http.post(url).body(body.to_owned());
        for (k, v) in &signed.headers {
            if !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k)) {
                request = request.header(k, v);
            }
        }
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        let response = request
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let ct = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, ct, response.bytes().await.unwrap().to_vec())
    }

    /// The one stored event, read through the API with its deliveries.
    async fn only_event(&self) -> Value {
        let events = self.relay.events().await;
        assert_eq!(events.len(), 1, "{events:?}");
        let id = events[0]["id"].as_str().unwrap();
        self.relay
            .admin(
                reqwest::Method::GET,
                &format!("/v1/events/{id}"),
                None,
                StatusCode::OK,
            )
            .await
    }

    /// A handshake is stored marked and is never delivered: an ordinary
    /// event sent after it reaches the destination alone.
    async fn assert_stored_not_delivered(&self) {
        let event = self.only_event().await;
        assert_eq!(event["handshake"], true, "{event}");
        assert_eq!(event["verified"], true);
        assert_eq!(event["deliveries"], json!([]), "{event}");
        assert!(self.destination.received().is_empty());
    }
}

#[tokio::test]
async fn slack_url_verification_echoes_the_challenge_as_text() {
    let w = world().await;
    let input = w
        .input(IntegrationKind::Slack, "slack-secret", json!({}))
        .await;
    let (status, ct, body) = w
        .send(&input, IntegrationKind::Slack, "slack-secret", SLACK, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("text/plain"));
    assert_eq!(
        body,
        b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    w.assert_stored_not_delivered().await;
}

#[tokio::test]
async fn zoom_url_validation_answers_the_hmac_of_the_plain_token() {
    let w = world().await;
    let input = w
        .input(IntegrationKind::Zoom, "zoom-token", json!({}))
        .await;
    let (status, ct, body) = w
        .send(&input, IntegrationKind::Zoom, "zoom-token", ZOOM, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("application/json"));
    // hmac.new(b"zoom-token", b"qgg8vlvZRS6UYooatFL8Aw", sha256).hexdigest(), Python.
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        answer,
        json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw",
               "encryptedToken": "44dcd631760dbaa45d10468836769a2ff763dd44fe306227aee51878a6057994"})
    );
    w.assert_stored_not_delivered().await;
}

#[tokio::test]
async fn twitch_callback_verification_echoes_the_challenge_as_text() {
    let w = world().await;
    let input = w
        .input(IntegrationKind::Twitch, "twitch-secret", json!({}))
        .await;
    let kind = [(
        "Twitch-Eventsub-Message-Type",
        "webhook_callback_verification",
    )];
    let (status, ct, body) = w
        .send(
            &input,
            IntegrationKind::Twitch,
            "twitch-secret",
            TWITCH,
            &kind,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("text/plain"));
    assert_eq!(body, b"pogchamp-kappa-360noscope-vohiyo");
    w.assert_stored_not_delivered().await;
}

#[tokio::test]
async fn discord_ping_is_answered_with_a_pong() {
    let w = world().await;
    let public = verify::public_key(&verify::Integration::Discord, ED25519_PRIVATE).unwrap();
    let input = w.input(IntegrationKind::Discord, &public, json!({})).await;
    let ping = r#"{"id":"1","application_id":"2","type":1,"token":"t","version":1}"#;
    let (status, ct, body) = w
        .send(&input, IntegrationKind::Discord, ED25519_PRIVATE, ping, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(body, br#"{"type":1}"#);
    w.assert_stored_not_delivered().await;
}

#[tokio::test]
async fn an_unsigned_handshake_gets_no_answer_and_nothing_is_stored() {
    let w = world().await;
    let input = w
        .input(IntegrationKind::Zoom, "zoom-token", json!({}))
        .await;
    let (status, _, body) = w
        .send(&input, IntegrationKind::Zoom, "not-the-token", ZOOM, &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!String::from_utf8_lossy(&body).contains("encryptedToken"));
    assert!(w.relay.events().await.is_empty());
}

#[tokio::test]
async fn handshakes_false_stores_and_delivers_it_as_an_ordinary_event() {
    let w = world().await;
    let input = w
        .input(
            IntegrationKind::Slack,
            "slack-secret",
            json!({"handshakes": false}),
        )
        .await;
    assert_eq!(input["handshakes"], false);
    let (status, _, body) = w
        .send(&input, IntegrationKind::Slack, "slack-secret", SLACK, &[])
        .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b""[..]));
    let received = w
        .destination
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(received[0].body.as_ref(), SLACK.as_bytes());
    let event = w.only_event().await;
    assert!(event.get("handshake").is_none(), "{event}");
}
