//! Typeform webhooks: `Typeform-Signature: sha256=<base64>`, HMAC-SHA256 of
//! the raw body with the webhook's secret. Delivery id and event type from
//! the body's `event_id` and `event_type` (`form_response`). JSON bodies.
//! Depends on the crate's shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::{json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "typeform-signature";

#[derive(Deserialize)]
struct Payload {
    event_id: Option<String>,
    event_type: Option<String>,
}

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let facts = json::object::<Payload>(req.body)
        .and_then(|p| Facts::checked(p.event_id.as_deref(), p.event_type.as_deref()));
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    signature::check_body_mac(
        req,
        SIGNATURE,
        b"sha256=",
        HmacAlgorithm::Sha256,
        SignatureEncoding::Base64,
        secrets,
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mac = signature::hmac(HmacAlgorithm::Sha256, secret.as_bytes(), &[out.body]);
    Ok(Signed::of(out).header(
        "Typeform-Signature",
        format!("sha256={}", mac.encode(SignatureEncoding::Base64)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    /// Typeform publishes no fixed triple; computed independently, once,
    /// with Python: `base64(hmac.new(b"typeform-secret", BODY, sha256))`.
    const BODY: &[u8] =
        br#"{"event_id":"01HA5YQX3KJ","event_type":"form_response","form_response":{}}"#;
    const SIG: &str = "sha256=KZmEyhAmkIu8Ld1ZGuiBn5kQTNdua/n3MECfDop75Ek=";

    #[test]
    fn independent_example() {
        let h = headers(&[(SIGNATURE, SIG)]);
        let parsed = run(&Integration::Typeform, &h, BODY, &["typeform-secret"]).unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("01HA5YQX3KJ"));
        assert_eq!(parsed.event_type.as_deref(), Some("form_response"));
    }
}
