//! GitHub webhooks: HMAC-SHA256 of the raw body in
//! `X-Hub-Signature-256: sha256=<hex>`, with the legacy
//! `X-Hub-Signature: sha1=<hex>` accepted only when the former is absent.
//! Delivery id from `X-GitHub-Delivery`, event type from `X-GitHub-Event`;
//! the body is JSON, or a form whose `payload` field is JSON.
//!
//! The delivery id header is not covered by the signature, so dedup on it
//! stops honest redeliveries, not a replayer who rewrites it. Depends on the
//! crate's shared modules only.

use http::header::CONTENT_TYPE;
use model::{HmacAlgorithm, Secret, SignatureEncoding};

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::{form, header, json, media, signature, Clock, Parsed, Preflight, Rejection, Request};

const SIGNATURE_256: &str = "x-hub-signature-256";
const SIGNATURE_1: &str = "x-hub-signature";
const DELIVERY: &str = "x-github-delivery";
const EVENT: &str = "x-github-event";

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let delivery_id = header::token(req.headers, DELIVERY, "malformed X-GitHub-Delivery")?;
    Ok(Preflight::new(delivery_id, Ok(Default::default())))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    // A present but bad SHA-256 header never falls back to SHA-1: a stripped
    // or mangled strong signature must not open the weaker path.
    let (algorithm, value, prefix) = if let Some(v) = req.headers.get(SIGNATURE_256) {
        (HmacAlgorithm::Sha256, v, &b"sha256="[..])
    } else if let Some(v) = req.headers.get(SIGNATURE_1) {
        (HmacAlgorithm::Sha1, v, &b"sha1="[..])
    } else {
        return Err(Rejection::InvalidSignature("missing signature header"));
    };
    let value = header::signature_value(value)?;
    let hex = value
        .strip_prefix(prefix)
        .ok_or(Rejection::InvalidSignature("wrong signature prefix"))?;
    let expected = signature::decode(hex, SignatureEncoding::Hex, algorithm)?;
    signature::check(algorithm, secrets, &[req.body], &expected)
}

pub(crate) fn parse(req: &Request<'_>, preflight: Preflight) -> Result<Parsed, Rejection> {
    let event_type = header::token(req.headers, EVENT, "malformed X-GitHub-Event")?;
    let is_form = req
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| media::is(ct, media::FORM));
    if is_form {
        let payload = form::field(req.body, "payload")
            .ok_or(Rejection::InvalidPayload("missing payload form field"))?;
        json::require_object(&payload)?;
    } else {
        json::require_object(req.body)?;
    }
    Ok(Parsed {
        delivery_id: preflight.delivery_id,
        event_type: event_type.map(str::to_owned),
        event_count: 1,
    })
}

/// Both signature headers, as GitHub sends them, the event type and a
/// fresh delivery id.
pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let key = secret.as_bytes();
    let sha256 = signature::hmac(HmacAlgorithm::Sha256, key, &[out.body]);
    let sha1 = signature::hmac(HmacAlgorithm::Sha1, key, &[out.body]);
    Ok(Signed::of(out)
        .header(
            "X-Hub-Signature-256",
            format!("sha256={}", sha256.encode(SignatureEncoding::Hex)),
        )
        .header(
            "X-Hub-Signature",
            format!("sha1={}", sha1.encode(SignatureEncoding::Hex)),
        )
        .header("X-GitHub-Delivery", fresh_id())
        .header("X-GitHub-Event", out.event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    /// GitHub's "Validating webhook deliveries" example.
    const SECRET: &str = "It's a Secret to Everybody";
    const PAYLOAD: &[u8] = b"Hello, World!";
    const SIG_256: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    const SIG_1: &str = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for &(k, v) in pairs {
            h.append(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn check(h: &HeaderMap, body: &[u8], secrets: &[&str]) -> Result<(), Rejection> {
        let secrets: Vec<Secret> = secrets.iter().map(|&s| s.into()).collect();
        verify(
            &Request {
                headers: h,
                body,
                public_url: "",
            },
            &Preflight::default(),
            &secrets,
        )
    }

    fn sig(reason: &'static str) -> Result<(), Rejection> {
        Err(Rejection::InvalidSignature(reason))
    }

    #[test]
    fn githubs_published_example() {
        let out = crate::sign::tests_outgoing(PAYLOAD);
        let sign = sign(SECRET, &out).unwrap().headers;
        assert_eq!(sign[0].1, SIG_256);
        assert_eq!(sign[1].1, SIG_1);
        assert_eq!(
            check(&headers(&[(SIGNATURE_256, SIG_256)]), PAYLOAD, &[SECRET]),
            Ok(())
        );
    }

    #[test]
    fn body_and_secret_failures() {
        let good = headers(&[(SIGNATURE_256, SIG_256)]);
        let mismatch = sig("signature mismatch");
        assert_eq!(check(&good, b"Hello, World?", &[SECRET]), mismatch);
        assert_eq!(check(&good, PAYLOAD, &["wrong"]), mismatch);
        assert_eq!(check(&good, PAYLOAD, &["old", SECRET]), Ok(()), "rotation");
        assert_eq!(check(&good, PAYLOAD, &[]), sig("no secret configured"));
        assert_eq!(
            check(&headers(&[]), PAYLOAD, &[SECRET]),
            sig("missing signature header")
        );
    }

    #[test]
    fn header_value_failures() {
        let upper = format!("sha256={}", SIG_256[7..].to_ascii_uppercase());
        let enormous = format!("sha256={}", "a".repeat(1 << 20));
        let table = [
            (upper.as_str(), Ok(())),
            ("", sig("empty signature header")),
            ("sha256=", sig("malformed signature")),
            (&SIG_256.replace('7', "z"), sig("malformed signature")),
            (&SIG_256[..SIG_256.len() - 2], sig("malformed signature")),
            (&format!("{SIG_256}00"), sig("malformed signature")),
            (
                &SIG_256.replace("sha256=", "sha1="),
                sig("wrong signature prefix"),
            ),
            (
                &SIG_256.replace("sha256=", "SHA256="),
                sig("wrong signature prefix"),
            ),
            (&SIG_256[7..], sig("wrong signature prefix")),
            (&enormous, sig("signature header too long")),
        ];
        for (value, want) in table {
            let h = headers(&[(SIGNATURE_256, value)]);
            assert_eq!(check(&h, PAYLOAD, &[SECRET]), want, "{value:.40}");
        }
    }

    #[test]
    fn sha1_only_when_sha256_is_absent() {
        let sha1 = headers(&[(SIGNATURE_1, SIG_1)]);
        assert_eq!(check(&sha1, PAYLOAD, &[SECRET]), Ok(()));
        assert_eq!(
            check(&sha1, b"tampered", &[SECRET]),
            sig("signature mismatch")
        );
        let bad_sha1 = headers(&[(SIGNATURE_1, &SIG_1.replace("sha1=", "sha256="))]);
        assert_eq!(
            check(&bad_sha1, PAYLOAD, &[SECRET]),
            sig("wrong signature prefix")
        );
        // A broken SHA-256 header must not be rescued by a valid SHA-1 one.
        let both = headers(&[(SIGNATURE_256, "sha256=00"), (SIGNATURE_1, SIG_1)]);
        assert_eq!(check(&both, PAYLOAD, &[SECRET]), sig("malformed signature"));
    }

    fn request_parse(h: &HeaderMap, body: &[u8]) -> Result<Parsed, Rejection> {
        let req = Request {
            headers: h,
            body,
            public_url: "",
        };
        let clock = Clock {
            now: 0,
            tolerance: 0,
        };
        let pre = preflight(&req, clock)?;
        parse(&req, pre)
    }

    #[test]
    fn parses_json_and_form_payloads() {
        let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
        let want = Parsed {
            delivery_id: Some(id.into()),
            event_type: Some("push".into()),
            event_count: 1,
        };
        let json = headers(&[
            (DELIVERY, id),
            (EVENT, "push"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(
            request_parse(&json, br#"{"ref":"refs/heads/main"}"#),
            Ok(want.clone())
        );
        let form = headers(&[
            (DELIVERY, id),
            (EVENT, "push"),
            (
                "content-type",
                "Application/X-WWW-Form-Urlencoded; charset=utf-8",
            ),
        ]);
        let body = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%2C%22n%22%3A+1%7D";
        assert_eq!(request_parse(&form, body), Ok(want));
        let bare = Parsed {
            delivery_id: None,
            event_type: None,
            event_count: 1,
        };
        assert_eq!(request_parse(&headers(&[]), b"{}"), Ok(bare));
    }

    #[test]
    fn payload_failures() {
        let payload = |r: &'static str| Err(Rejection::InvalidPayload(r));
        let json = headers(&[("content-type", "application/json")]);
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(
            request_parse(&json, b"{\"a\":"),
            payload("body is not valid JSON")
        );
        assert_eq!(
            request_parse(&json, b"[1,2]"),
            payload("body is not a JSON object")
        );
        assert_eq!(
            request_parse(&json, b"payload=%7B%7D"),
            payload("body is not a JSON object")
        );
        assert_eq!(
            request_parse(&form, b"{}"),
            payload("missing payload form field")
        );
        assert_eq!(
            request_parse(&form, b"payload=%5B%5D"),
            payload("body is not a JSON object")
        );
        assert_eq!(
            request_parse(&form, b"payload=%7B"),
            payload("body is not valid JSON")
        );
        let long_id = "x".repeat(crate::MAX_ID_LEN + 1);
        let h = headers(&[(DELIVERY, long_id.as_str())]);
        assert_eq!(
            request_parse(&h, b"{}"),
            payload("malformed X-GitHub-Delivery")
        );
        let h = headers(&[(EVENT, "pull request")]);
        assert_eq!(
            request_parse(&h, b"{}"),
            payload("malformed X-GitHub-Event")
        );
    }
}
