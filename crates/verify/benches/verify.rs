//! Verification cost per integration on a 4 KiB body: nanoseconds per
//! step 8 (`verify`) and per steps 7 to 9 together, beside the bare
//! HMAC-SHA256 and HMAC-SHA1 of the same body, the floor of every HMAC
//! scheme. Run with `cargo bench -p verify --bench verify`; prints a table.
//! A plain timing loop (no harness): each figure is the best of five runs of
//! about 50 ms, so a busy machine shows up as noise, not as a slower scheme.

use std::hint::black_box;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use model::{GenericHmac, HmacAlgorithm, IntegrationKind, Secret, SignatureEncoding};
use verify::{Integration, Outgoing, Request};

const NOW: i64 = 1_700_000_000;
const BODY_LEN: usize = 4096;
const URL: &str = "https://relay.example/v1/webhooks/9b1d";
const ED25519_PRIVATE: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const P256_PRIVATE: &str = "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";

/// A JSON body of exactly [`BODY_LEN`] bytes with the fields each provider
/// reads, padded with a filler string.
fn body(kind: IntegrationKind) -> Vec<u8> {
    let head = match kind {
        IntegrationKind::Sendgrid => r#"[{"event":"delivered","sg_event_id":"a","pad":""#.to_owned(),
        IntegrationKind::Linear => format!(r#"{{"type":"Issue","webhookTimestamp":{},"pad":""#, NOW * 1000),
        IntegrationKind::Zoom => r#"{"event":"meeting.started","pad":""#.to_owned(),
        IntegrationKind::Mailgun => r#"{"event-data":{"id":"m1","event":"opened"},"pad":""#.to_owned(),
        _ => r#"{"id":"evt_1","type":"invoice.paid","event_id":"e1","event":{"id":"p1","event_type":"x"},"pad":""#.to_owned(),
    };
    let tail = if kind == IntegrationKind::Sendgrid {
        "\"}]"
    } else {
        "\"}"
    };
    let mut b = head.into_bytes();
    b.resize(BODY_LEN - tail.len(), b'x');
    b.extend_from_slice(tail.as_bytes());
    b
}

/// Nanoseconds per call of `f`: the best of five runs.
fn ns_per_call(mut f: impl FnMut()) -> f64 {
    let mut n = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        if start.elapsed() >= Duration::from_millis(50) {
            break;
        }
        n *= 2;
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let generic = GenericHmac {
        header: "X-Signature".into(),
        algorithm: HmacAlgorithm::Sha256,
        encoding: SignatureEncoding::Hex,
        prefix: Some("sha256=".into()),
    };
    let plain = vec![b'x'; BODY_LEN];
    let sha256 = ns_per_call(|| {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").expect("any key length");
        m.update(black_box(&plain));
        black_box(m.finalize());
    });
    let sha1 = ns_per_call(|| {
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(b"s3cret").expect("any key length");
        m.update(black_box(&plain));
        black_box(m.finalize());
    });
    println!("verification cost on a {BODY_LEN} B body (ns per call, best of 5)");
    println!("{:<14} {:>12} {:>14}", "integration", "verify", "steps 7-9");
    println!("{:<14} {:>12.0} {:>14}", "(hmac-sha256)", sha256, "-");
    println!("{:<14} {:>12.0} {:>14}", "(hmac-sha1)", sha1, "-");
    for &kind in IntegrationKind::ALL {
        let integration = Integration::new(kind, Some(&generic)).expect("generic config given");
        let (signing, verifying) = match kind {
            IntegrationKind::Discord => (
                ED25519_PRIVATE.to_owned(),
                verify::public_key(&integration, ED25519_PRIVATE),
            ),
            IntegrationKind::Sendgrid => (
                P256_PRIVATE.to_owned(),
                verify::public_key(&integration, P256_PRIVATE),
            ),
            IntegrationKind::Standard => {
                ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(), None)
            }
            _ => ("s3cret".to_owned(), None),
        };
        let verifying = verifying.unwrap_or_else(|| signing.clone());
        let payload = body(kind);
        let out = Outgoing {
            url: URL,
            content_type: "application/json",
            body: &payload,
            event: "push",
            now_secs: NOW,
        };
        let signed = verify::sign(&integration, &signing, &out).expect("bench keys are valid");
        let mut headers = http::HeaderMap::new();
        for (k, v) in &signed.headers {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("valid name"),
                http::HeaderValue::from_str(v).expect("valid value"),
            );
        }
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        let req = Request {
            headers: &headers,
            body: &signed.body,
            public_url: &signed.url,
        };
        let secrets = [Secret::new(verifying)];
        let pre = integration
            .preflight(&req, NOW, 300)
            .expect("signed request passes step 7");
        assert_eq!(integration.verify(&req, &pre, &secrets), Ok(()), "{kind:?}");
        let verify_ns = ns_per_call(|| {
            black_box(integration.verify(black_box(&req), &pre, &secrets)).expect("verifies");
        });
        let all_ns = ns_per_call(|| {
            let pre = integration
                .preflight(black_box(&req), NOW, 300)
                .expect("step 7");
            integration.verify(&req, &pre, &secrets).expect("step 8");
            black_box(integration.parse(&req, pre).expect("step 9"));
        });
        println!("{:<14} {:>12.0} {:>14.0}", kind.name(), verify_ns, all_ns);
    }
}
