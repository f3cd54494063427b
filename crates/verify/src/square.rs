//! Square webhooks: `x-square-hmacsha256-signature`, base64 HMAC-SHA256 of
//! the notification URL followed by the raw body, with the subscription's
//! signature key. The URL is the relay's, rebuilt from `--public-url` plus
//! the request's path and query, so it must be exactly the URL registered
//! with Square. Delivery id and event type from the body's `event_id` and
//! `type` (`payment.updated`). JSON bodies. Depends on the crate's shared
//! modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::{header, json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-square-hmacsha256-signature";

#[derive(Deserialize)]
struct Event {
    event_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let facts = json::object::<Event>(req.body)
        .and_then(|e| Facts::checked(e.event_id.as_deref(), e.kind.as_deref()));
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let value = header::signature(req.headers, SIGNATURE)?;
    signature::check_encoded(
        HmacAlgorithm::Sha256,
        SignatureEncoding::Base64,
        value,
        secrets,
        &[req.public_url.as_bytes(), req.body],
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mac = signature::hmac(
        HmacAlgorithm::Sha256,
        secret.as_bytes(),
        &[out.url.as_bytes(), out.body],
    );
    Ok(Signed::of(out).header(
        "x-square-hmacsha256-signature",
        mac.encode(SignatureEncoding::Base64),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_url};
    use crate::Integration;

    /// Square's "Verify and validate an event notification" example.
    const URL: &str = "https://example.com/webhook";
    const KEY: &str = "asdf1234";
    const BODY: &[u8] = br#"{"hello":"world"}"#;
    const SIG: &str = "2kRE5qRU2tR+tBGlDwMEw2avJ7QM4ikPYD/PJ3bd9Og=";

    #[test]
    fn squares_published_example() {
        let h = headers(&[(SIGNATURE, SIG)]);
        assert!(run_url(&Integration::Square, &h, BODY, &[KEY], URL).is_ok());
        assert_eq!(
            run_url(
                &Integration::Square,
                &h,
                BODY,
                &[KEY],
                "https://example.com/webhook2"
            )
            .map(drop),
            Err(Rejection::InvalidSignature("signature mismatch")),
            "the URL is signed"
        );
        let out = Outgoing {
            url: URL,
            ..crate::sign::tests_outgoing(BODY)
        };
        assert_eq!(sign(KEY, &out).unwrap().headers[0].1, SIG);
    }

    #[test]
    fn ids_from_the_body() {
        let body = br#"{"merchant_id":"6SSW7HV8K2ST5","type":"payment.updated","event_id":"6a8f5f28-54a1-4eb0-a98a-3111513fd4fc","data":{}}"#;
        let out = Outgoing {
            url: URL,
            ..crate::sign::tests_outgoing(body)
        };
        let h = crate::conformance::owned_headers(&sign(KEY, &out).unwrap().headers);
        let parsed = run_url(&Integration::Square, &h, body, &[KEY], URL).unwrap();
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("6a8f5f28-54a1-4eb0-a98a-3111513fd4fc")
        );
        assert_eq!(parsed.event_type.as_deref(), Some("payment.updated"));
    }
}
