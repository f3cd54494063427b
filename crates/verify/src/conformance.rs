//! Tests every integration shares, table-driven over all of them: a signed
//! request passes the three steps, and tampering, wrong or missing secrets,
//! stale or future timestamps and malformed headers are refused without a
//! panic. Property tests check `verify(sign(x))` and that any flipped body
//! byte fails. Provider-specific examples live in each provider's module.

use http::{HeaderMap, HeaderName, HeaderValue};
use model::{GenericHmac, HmacAlgorithm, IntegrationKind, Secret, SignatureEncoding};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::{sign, Integration, Outgoing, Parsed, Rejection, Request};

pub(crate) const NOW: i64 = 1_700_000_000;
const TOLERANCE: u64 = 300;
const URL: &str = "https://relay.example/v1/webhooks/9b1d";

/// RFC 8032 test 1 (Discord) and sendgrid-go's test key (SendGrid).
const ED25519_PRIVATE: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const P256_PRIVATE: &str = "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";

pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for &(k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

pub(crate) fn owned_headers(pairs: &[(String, String)]) -> HeaderMap {
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    headers(&borrowed)
}

/// Steps 7, 8 and 9 at [`NOW`] with the default tolerance.
pub(crate) fn run(
    integration: &Integration,
    h: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> Result<Parsed, Rejection> {
    full(integration, h, body, secrets, NOW, URL)
}

pub(crate) fn run_at(
    integration: &Integration,
    h: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
    now: i64,
) -> Result<Parsed, Rejection> {
    full(integration, h, body, secrets, now, URL)
}

pub(crate) fn run_url(
    integration: &Integration,
    h: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
    url: &str,
) -> Result<Parsed, Rejection> {
    full(integration, h, body, secrets, NOW, url)
}

fn full(
    integration: &Integration,
    h: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    url: &str,
) -> Result<Parsed, Rejection> {
    let secrets: Vec<Secret> = secrets.iter().map(|&s| s.into()).collect();
    let req = Request {
        headers: h,
        body,
        public_url: url,
    };
    let pre = integration.preflight(&req, now, TOLERANCE)?;
    integration.verify(&req, &pre, &secrets)?;
    integration.parse(&req, pre)
}

/// One row per integration: how to sign for it and what to expect.
struct Case {
    integration: Integration,
    /// What `sign` takes, and what the input holds (equal for shared secrets).
    signing: &'static str,
    verifying: String,
    /// A body it accepts; `{ts}` is replaced by the signing time in ms.
    body: &'static str,
    /// Signs a timestamp, so stale and future requests are refused.
    timestamped: bool,
    /// The signature covers every body byte (not a token scheme, not Mailgun).
    covers_body: bool,
}

fn generic() -> GenericHmac {
    GenericHmac {
        header: "X-Signature".into(),
        algorithm: HmacAlgorithm::Sha256,
        encoding: SignatureEncoding::Hex,
        prefix: Some("sha256=".into()),
    }
}

fn cases() -> Vec<Case> {
    IntegrationKind::ALL
        .iter()
        .map(|&kind| {
            let integration = Integration::new(kind, Some(&generic())).unwrap();
            let (signing, verifying) = match kind {
                IntegrationKind::Discord => (ED25519_PRIVATE, crate::public_key(&integration, ED25519_PRIVATE).unwrap()),
                IntegrationKind::Sendgrid => (P256_PRIVATE, crate::public_key(&integration, P256_PRIVATE).unwrap()),
                IntegrationKind::Standard => ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
                _ => ("s3cret", "s3cret".into()),
            };
            let body = match kind {
                IntegrationKind::Sendgrid => r#"[{"event":"delivered","sg_event_id":"x"}]"#,
                IntegrationKind::Linear => r#"{"type":"Issue","webhookTimestamp":{ts}}"#,
                IntegrationKind::Mailgun => r#"{"event-data":{"id":"m1","event":"opened"}}"#,
                IntegrationKind::Zoom => r#"{"event":"meeting.started","payload":{}}"#,
                _ => r#"{"id":"evt_1","type":"t","event_id":"e1","event":{"id":"p1","event_type":"x"}}"#,
            };
            use IntegrationKind::*;
            Case {
                timestamped: matches!(kind, Stripe | Slack | Standard | Linear | Paddle | Zoom | Twitch | Mailgun | Discord | Sendgrid),
                covers_body: !matches!(kind, Gitlab | Betterstack | Mailgun),
                integration,
                signing,
                verifying,
                body,
            }
        })
        .collect()
}

/// Signs `case`'s body as of `at`, returning the headers, body and URL.
fn signed(case: &Case, at: i64) -> (HeaderMap, Vec<u8>, String) {
    let body = case.body.replace("{ts}", &(at * 1000).to_string());
    let out = Outgoing {
        url: URL,
        content_type: "application/json",
        body: body.as_bytes(),
        event: "push",
        now_secs: at,
    };
    let s = sign(&case.integration, case.signing, &out).unwrap();
    let mut pairs = s.headers;
    pairs.push(("content-type".into(), "application/json".into()));
    (owned_headers(&pairs), s.body, s.url)
}

#[test]
fn the_keys_inputs_hold_pass_the_secret_check() {
    for case in cases() {
        assert_eq!(
            case.integration.check_secret(&case.verifying),
            Ok(()),
            "{:?}",
            case.integration.kind()
        );
    }
    for bad in ["", "whsec_", "whsec_***", "00"] {
        assert!(Integration::Standard.check_secret(bad).is_err(), "{bad}");
        assert!(Integration::Discord.check_secret(bad).is_err(), "{bad}");
        assert!(Integration::Sendgrid.check_secret(bad).is_err(), "{bad}");
    }
    // A private key where the public one belongs is refused too.
    assert!(Integration::Sendgrid.check_secret(P256_PRIVATE).is_err());
}

#[test]
fn every_integration_has_a_case() {
    assert_eq!(cases().len(), IntegrationKind::ALL.len());
    assert!(IntegrationKind::ALL.len() >= 23);
}

#[test]
fn signed_requests_pass_with_rotation_and_fail_otherwise() {
    for case in cases() {
        let name = case.integration.kind().name();
        let (h, body, url) = signed(&case, NOW);
        let good = case.verifying.as_str();
        let ok = full(
            &case.integration,
            &h,
            &body,
            &["an-older-secret", good],
            NOW,
            &url,
        );
        assert!(ok.is_ok(), "{name}: {ok:?}");
        assert_eq!(ok.unwrap().event_count, 1, "{name}");
        let wrong = full(
            &case.integration,
            &h,
            &body,
            &["an-older-secret"],
            NOW,
            &url,
        );
        assert!(
            matches!(wrong, Err(Rejection::InvalidSignature(_))),
            "{name}: {wrong:?}"
        );
        let none = full(&case.integration, &h, &body, &[], NOW, &url);
        assert!(
            matches!(none, Err(Rejection::InvalidSignature(_))),
            "{name}: {none:?}"
        );
        if case.covers_body {
            let mut tampered = body.clone();
            let last = tampered.len() - 2;
            tampered[last] ^= 0x01;
            let r = full(&case.integration, &h, &tampered, &[good], NOW, &url);
            assert!(
                matches!(r, Err(Rejection::InvalidSignature(_))),
                "{name}: {r:?}"
            );
        }
    }
}

#[test]
fn stale_and_future_timestamps() {
    for case in cases() {
        let name = case.integration.kind().name();
        let good = case.verifying.as_str();
        for at in [NOW - 301, NOW + 301, NOW - 86_400 * 365] {
            let (h, body, url) = signed(&case, at);
            let r = full(&case.integration, &h, &body, &[good], NOW, &url);
            if case.timestamped {
                assert_eq!(
                    r.map(drop),
                    Err(Rejection::StaleTimestamp),
                    "{name} at {at}"
                );
            } else {
                assert!(r.is_ok(), "{name} has no signed timestamp: {r:?}");
            }
        }
        for at in [NOW - 300, NOW + 300] {
            let (h, body, url) = signed(&case, at);
            let r = full(&case.integration, &h, &body, &[good], NOW, &url);
            assert!(r.is_ok(), "{name} at the edge {at}: {r:?}");
        }
    }
}

#[test]
fn malformed_headers_are_refused_without_panicking() {
    let enormous = "a".repeat(1 << 20);
    let values = [
        "",
        "x",
        "!!!",
        "v1=",
        "t=,v1=",
        "sha256=zz",
        "==",
        enormous.as_str(),
    ];
    for case in cases() {
        let name = case.integration.kind().name();
        let good = case.verifying.as_str();
        let (h, body, url) = signed(&case, NOW);
        let names: Vec<HeaderName> = h.keys().filter(|k| *k != "content-type").cloned().collect();
        for value in values {
            let Ok(value) = HeaderValue::from_str(value) else {
                continue;
            };
            // Every provider header at once: never accepted.
            let mut all = h.clone();
            for n in &names {
                all.insert(n.clone(), value.clone());
            }
            if !names.is_empty() {
                let r = full(&case.integration, &all, &body, &[good], NOW, &url);
                assert!(r.is_err(), "{name} with every header = {:.20?}", value);
            }
            // One at a time: whatever the answer, no panic.
            for n in &names {
                let mut one = h.clone();
                one.insert(n.clone(), value.clone());
                let _ = full(&case.integration, &one, &body, &[good], NOW, &url);
                one.remove(n);
                let _ = full(&case.integration, &one, &body, &[good], NOW, &url);
            }
        }
        if !names.is_empty() {
            let mut bare = h.clone();
            for n in &names {
                bare.remove(n);
            }
            let r = full(&case.integration, &bare, &body, &[good], NOW, &url);
            assert!(
                matches!(r, Err(Rejection::InvalidSignature(_))),
                "{name} unsigned: {r:?}"
            );
        }
    }
}

#[test]
fn garbage_bodies_and_secrets_never_panic() {
    let bodies: [&[u8]; 6] = [
        b"",
        b"{",
        b"[]",
        b"\xff\xfe",
        b"payload=%7B",
        b"{\"signature\":{\"timestamp\":1,\"token\":\"\",\"signature\":\"\"}}",
    ];
    for case in cases() {
        let (h, _, url) = signed(&case, NOW);
        for body in bodies {
            for secrets in [
                &["", "whsec_", "-----BEGIN"][..],
                &[case.verifying.as_str()],
            ] {
                let _ = full(&case.integration, &h, body, secrets, NOW, &url);
            }
        }
    }
}

fn shared_secret_integration() -> impl Strategy<Value = Integration> {
    let kinds: Vec<IntegrationKind> = IntegrationKind::ALL
        .iter()
        .copied()
        .filter(|k| !matches!(k, IntegrationKind::Mailgun))
        .collect();
    let generic = (
        prop_oneof![
            Just(HmacAlgorithm::Sha1),
            Just(HmacAlgorithm::Sha256),
            Just(HmacAlgorithm::Sha512)
        ],
        prop_oneof![
            Just(SignatureEncoding::Hex),
            Just(SignatureEncoding::Base64)
        ],
        proptest::option::of("[a-zA-Z0-9=:_-]{0,12}"),
    )
        .prop_map(|(algorithm, encoding, prefix)| GenericHmac {
            header: "X-Webhook-Sig".into(),
            algorithm,
            encoding,
            prefix,
        });
    (proptest::sample::select(kinds), generic)
        .prop_map(|(kind, cfg)| Integration::new(kind, Some(&cfg)).unwrap())
}

fn key_pair(integration: &Integration, secret: &str) -> (String, String) {
    match integration {
        Integration::Discord => (
            ED25519_PRIVATE.into(),
            crate::public_key(integration, ED25519_PRIVATE).unwrap(),
        ),
        Integration::Sendgrid => (
            P256_PRIVATE.into(),
            crate::public_key(integration, P256_PRIVATE).unwrap(),
        ),
        Integration::Standard => {
            use base64::Engine as _;
            let s = format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(secret)
            );
            (s.clone(), s)
        }
        _ => (secret.into(), secret.into()),
    }
}

fn verify_signed(
    integration: &Integration,
    signing: &str,
    verifying: &str,
    signed_body: &[u8],
    sent: &[u8],
) -> Result<(), Rejection> {
    let out = Outgoing {
        url: URL,
        content_type: "application/json",
        body: signed_body,
        event: "push",
        now_secs: NOW,
    };
    let s =
        sign(integration, signing, &out).map_err(|_| Rejection::InvalidPayload("sign failed"))?;
    let h = owned_headers(&s.headers);
    let req = Request {
        headers: &h,
        body: sent,
        public_url: &s.url,
    };
    let pre = integration.preflight(&req, NOW, TOLERANCE)?;
    integration.verify(
        &req,
        &pre,
        &[Secret::new("an older secret"), Secret::new(verifying)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn verify_of_sign_holds(
        integration in shared_secret_integration(),
        secret in "[ -~]{1,64}",
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let (signing, verifying) = key_pair(&integration, &secret);
        prop_assert_eq!(verify_signed(&integration, &signing, &verifying, &body, &body), Ok(()));
    }

    #[test]
    fn any_flipped_body_byte_fails(
        integration in shared_secret_integration(),
        secret in "[ -~]{1,64}",
        body in proptest::collection::vec(any::<u8>(), 1..2048),
        at in any::<Index>(),
        mask in 1u8..=255,
    ) {
        prop_assume!(!matches!(integration, Integration::Gitlab | Integration::Betterstack));
        let (signing, verifying) = key_pair(&integration, &secret);
        let mut tampered = body.clone();
        let i = at.index(tampered.len());
        tampered[i] ^= mask;
        let r = verify_signed(&integration, &signing, &verifying, &body, &tampered);
        prop_assert!(matches!(r, Err(Rejection::InvalidSignature(_))), "{:?}", r);
    }
}
