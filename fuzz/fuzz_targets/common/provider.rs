//! The harness every `provider_*` target shares: one integration's header
//! parsers and payload parser (steps 4, 7, 8 and 9) on arbitrary headers and
//! bodies. Asserts no panic, and that a request `verify::sign` signed always
//! passes preflight and verify (libFuzzer's malloc limit catches unbounded
//! allocation).

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use model::{GenericHmac, HmacAlgorithm, IntegrationKind, Secret, SignatureEncoding};
use verify::{sign, Integration, Outgoing, Request};

const ED25519_PRIVATE: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const P256_PRIVATE: &str = "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
const URL: &str = "https://relay.example/v1/webhooks/9b1d?x=1";
const NOW: i64 = 1_700_000_000;

/// Headers as (which of the provider's header names, value), then the
/// secret, the body, a clock offset and whether the body is a form.
pub type Input<'a> = (Vec<(u8, &'a [u8])>, &'a str, &'a [u8], i16, bool);

fn integration(kind: IntegrationKind) -> Integration {
    let generic = GenericHmac {
        header: "X-Signature".into(),
        algorithm: HmacAlgorithm::Sha256,
        encoding: SignatureEncoding::Base64,
        prefix: Some("sha256=".into()),
    };
    Integration::new(kind, Some(&generic)).expect("generic config given")
}

/// (what `sign` takes, what the input holds) for `secret`.
fn keys(integration: &Integration, secret: &str) -> (String, String) {
    match integration {
        Integration::Discord | Integration::Sendgrid => {
            let private = if matches!(integration, Integration::Discord) {
                ED25519_PRIVATE
            } else {
                P256_PRIVATE
            };
            let public = verify::public_key(integration, private).expect("a valid test key");
            (private.to_owned(), public)
        }
        Integration::Standard => {
            let key = format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(secret)
            );
            (key.clone(), key)
        }
        _ => (secret.to_owned(), secret.to_owned()),
    }
}

pub fn run(kind: IntegrationKind, (pairs, secret, body, offset, is_form): Input<'_>) {
    let integration = integration(kind);
    let content_type = if is_form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let (signing, verifying) = keys(&integration, secret);
    let secrets = [Secret::new("an older secret"), Secret::new(verifying)];
    let out = Outgoing {
        url: URL,
        content_type,
        body,
        event: "push",
        now_secs: NOW,
    };
    // The provider's own header names, learnt from its signer.
    let signed = sign(&integration, &signing, &out).ok();
    let mut names: Vec<HeaderName> = vec![HeaderName::from_static("content-type")];
    if let Some(s) = &signed {
        names.extend(
            s.headers
                .iter()
                .filter_map(|(k, _)| HeaderName::from_bytes(k.as_bytes()).ok()),
        );
    }
    names.push(HeaderName::from_static("authorization"));

    let mut headers = HeaderMap::new();
    for (which, value) in pairs {
        let name = names[usize::from(which) % names.len()].clone();
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let now = NOW + i64::from(offset);
    let req = Request {
        headers: &headers,
        body,
        public_url: URL,
    };
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok());
    let _ = integration.accepts_content_type(ct);
    if let Ok(pre) = integration.preflight(&req, now, 300) {
        let _ = integration.verify(&req, &pre, &secrets);
        let _ = integration.parse(&req, pre);
    }

    // What the signer produced verifies, as of its own clock. Inputs refuse
    // empty secrets (model validation), so the fuzzer's empty one is skipped.
    let Some(signed) = signed.filter(|_| !secret.is_empty()) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &signed.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("sign emits valid names");
        let Ok(value) = HeaderValue::from_str(value) else {
            // Only a secret that is no header value (a token scheme sends it
            // as is) gets here.
            return;
        };
        headers.insert(name, value);
    }
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if signed
        .headers
        .iter()
        .any(|(_, v)| v.len() > verify::MAX_SIGNATURE_HEADER_LEN)
    {
        return;
    }
    let req = Request {
        headers: &headers,
        body: &signed.body,
        public_url: &signed.url,
    };
    match integration.preflight(&req, NOW, 300) {
        Ok(pre) => assert_eq!(integration.verify(&req, &pre, &secrets), Ok(())),
        // Linear and Mailgun read a timestamp from the body, which is the
        // fuzzer's; any other refusal of a signed request is a bug.
        Err(verify::Rejection::StaleTimestamp) => {
            assert!(matches!(
                kind,
                IntegrationKind::Linear | IntegrationKind::Mailgun
            ))
        }
        Err(e) => panic!("{kind:?}: a signed request failed preflight: {e}"),
    }
}
