//! Each provider's handshake with its documented example request, the
//! exact answer, and the requests that look close but are not handshakes.

use super::*;
use crate::conformance::{headers, owned_headers, run_at};
use crate::sign::{tests_outgoing, Outgoing};

const TS: i64 = 1_700_000_000;

/// Signs `body` for `integration` at [`TS`], verifies it the way ingest
/// does, and asks for the handshake.
fn answer(
    integration: &Integration,
    body: &[u8],
    extra: &[(&str, &str)],
    secret: &str,
) -> Option<Handshake> {
    let out = Outgoing {
        now_secs: TS,
        ..tests_outgoing(body)
    };
    let mut pairs: Vec<(String, String)> = crate::sign(integration, secret, &out).unwrap().headers;
    pairs.retain(|(k, _)| !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k)));
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs.push(("content-type".into(), "application/json".into()));
    let h = owned_headers(&pairs);
    let secrets = ["older", secret];
    let parsed = run_at(integration, &h, body, &secrets, TS).unwrap();
    let req = Request {
        headers: &h,
        body,
        public_url: out.url,
    };
    let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
    integration.handshake(&req, &parsed, &secrets)
}

/// Slack's Events API documentation: the `url_verification` request and
/// its plain-text answer.
#[test]
fn slack_url_verification() {
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let hs = answer(&Integration::Slack, body, &[], "slack-secret").unwrap();
    assert_eq!(hs.status, 200);
    assert_eq!(hs.content_type, Some("text/plain"));
    assert_eq!(
        hs.body,
        b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    let event =
        br#"{"type":"event_callback","event_id":"Ev1","challenge":"x","event":{"type":"message"}}"#;
    assert_eq!(
        answer(&Integration::Slack, event, &[], "slack-secret"),
        None
    );
}

/// Zoom's "Validate your webhook endpoint" request; the encrypted token
/// computed independently with Python:
/// `hmac.new(b"zoom-token", b"qgg8vlvZRS6UYooatFL8Aw", sha256).hexdigest()`.
#[test]
fn zoom_url_validation_uses_the_secret_that_verified() {
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let hs = answer(&Integration::Zoom, body, &[], "zoom-token").unwrap();
    assert_eq!(hs.status, 200);
    assert_eq!(hs.content_type, Some("application/json"));
    assert_eq!(
        String::from_utf8(hs.body).unwrap(),
        r#"{"encryptedToken":"44dcd631760dbaa45d10468836769a2ff763dd44fe306227aee51878a6057994","plainToken":"qgg8vlvZRS6UYooatFL8Aw"}"#
    );
    let started = br#"{"event":"meeting.started","payload":{"plainToken":"x"}}"#;
    assert_eq!(answer(&Integration::Zoom, started, &[], "zoom-token"), None);
}

/// Twitch EventSub's documented challenge request: the challenge echoed as
/// text, only when the message type says so.
#[test]
fn twitch_callback_verification() {
    let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow","version":"1","cost":1,"condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z"}}"#;
    let verification = [(
        "Twitch-Eventsub-Message-Type",
        "webhook_callback_verification",
    )];
    let hs = answer(&Integration::Twitch, body, &verification, "twitch-secret").unwrap();
    assert_eq!((hs.status, hs.content_type), (200, Some("text/plain")));
    assert_eq!(hs.body, b"pogchamp-kappa-360noscope-vohiyo");
    assert_eq!(
        answer(&Integration::Twitch, body, &[], "twitch-secret"),
        None
    );
}

#[test]
fn discord_pings() {
    let pong =
        discord(br#"{"id":"1","application_id":"2","type":1,"token":"t","version":1}"#).unwrap();
    assert_eq!(
        (pong.status, pong.content_type),
        (200, Some("application/json"))
    );
    assert_eq!(pong.body, br#"{"type":1}"#);
    let ack = discord(br#"{"version":1,"application_id":"1234560123453231555","type":0}"#).unwrap();
    assert_eq!(
        (ack.status, ack.content_type, ack.body.len()),
        (204, None, 0)
    );
    // A webhook event (type 1 with an `event`) and a command are not pings.
    assert_eq!(
        discord(br#"{"version":1,"type":1,"event":{"type":"ENTITLEMENT_CREATE"}}"#),
        None
    );
    assert_eq!(discord(br#"{"type":2,"id":"1"}"#), None);
}

#[test]
fn oversized_or_missing_challenges_are_not_answered() {
    let long = format!(
        r#"{{"type":"url_verification","challenge":"{}"}}"#,
        "a".repeat(MAX_CHALLENGE_LEN + 1)
    );
    assert_eq!(answer(&Integration::Slack, long.as_bytes(), &[], "s"), None);
    assert_eq!(
        answer(
            &Integration::Slack,
            br#"{"type":"url_verification"}"#,
            &[],
            "s"
        ),
        None
    );
    assert_eq!(
        answer(
            &Integration::Slack,
            br#"{"type":"url_verification","challenge":""}"#,
            &[],
            "s"
        ),
        None
    );
    let h = headers(&[]);
    let req = Request {
        headers: &h,
        body: b"{}",
        public_url: "",
    };
    let parsed = Parsed {
        delivery_id: None,
        event_type: None,
        event_count: 1,
    };
    assert_eq!(Integration::Github.handshake(&req, &parsed, &[]), None);
}
