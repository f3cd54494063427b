//! The github integration on arbitrary headers and bodies: preflight, verify
//! and parse never panic, and a body signed by `verify::sign` always verifies.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use model::Secret;
use verify::{sign, Integration, Outgoing, Request};

type Input<'a> = (
    Option<&'a [u8]>, // X-Hub-Signature-256
    Option<&'a [u8]>, // X-Hub-Signature
    Option<&'a [u8]>, // X-GitHub-Delivery
    Option<&'a [u8]>, // X-GitHub-Event
    Option<&'a [u8]>, // Content-Type
    &'a str,          // secret
    &'a [u8],         // body
);

fuzz_target!(|input: Input<'_>| {
    let (sig256, sig1, delivery, event, content_type, secret, body) = input;
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("x-hub-signature-256", sig256),
        ("x-hub-signature", sig1),
        ("x-github-delivery", delivery),
        ("x-github-event", event),
        ("content-type", content_type),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, value);
        }
    }
    let github = Integration::Github;
    let secrets = [Secret::new(secret)];
    let req = Request {
        headers: &headers,
        body,
        public_url: "https://relay.example/",
    };
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok());
    let _ = github.accepts_content_type(ct);
    if let Ok(preflight) = github.preflight(&req, 0, 300) {
        let _ = github.verify(&req, &preflight, &secrets);
        let _ = github.parse(&req, preflight);
    }

    let mut signed = HeaderMap::new();
    let out = Outgoing {
        url: "",
        content_type: "application/json",
        body,
        event: "push",
        now_secs: 0,
    };
    let signature = sign(&github, secret, &out).expect("github signs any body");
    for (name, value) in signature.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("sign emits valid names");
        let value = HeaderValue::from_str(&value).expect("sign emits visible ASCII");
        signed.insert(name, value);
    }
    let req = Request {
        headers: &signed,
        body,
        public_url: "",
    };
    let preflight = github
        .preflight(&req, 0, 300)
        .expect("a signed request passes step 7");
    assert_eq!(github.verify(&req, &preflight, &secrets), Ok(()));
});
