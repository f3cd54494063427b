//! Shopify webhooks: base64 HMAC-SHA256 of the raw body with the app's
//! client secret (or the store's webhook secret) in
//! `X-Shopify-Hmac-Sha256`. Delivery id from `X-Shopify-Webhook-Id`, event
//! type from `X-Shopify-Topic` (`orders/create`). JSON bodies. Depends on
//! the crate's shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::{header, json, signature, Clock, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-shopify-hmac-sha256";
const WEBHOOK_ID: &str = "x-shopify-webhook-id";
const TOPIC: &str = "x-shopify-topic";

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let id = header::token(req.headers, WEBHOOK_ID, "malformed X-Shopify-Webhook-Id")?;
    Ok(Preflight::new(id, Ok(Default::default())))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    signature::check_body_mac(
        req,
        SIGNATURE,
        b"",
        HmacAlgorithm::Sha256,
        SignatureEncoding::Base64,
        secrets,
    )
}

pub(crate) fn parse(req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    let topic = header::token(req.headers, TOPIC, "malformed X-Shopify-Topic")?;
    json::require_object(req.body)?;
    pre.finish(topic)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mac = signature::hmac(HmacAlgorithm::Sha256, secret.as_bytes(), &[out.body]);
    Ok(Signed::of(out)
        .header(
            "X-Shopify-Hmac-Sha256",
            mac.encode(SignatureEncoding::Base64),
        )
        .header("X-Shopify-Topic", out.event)
        .header("X-Shopify-Webhook-Id", fresh_id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    /// Shopify publishes no secret/body/signature triple; the signature was
    /// computed independently, once, with Python's `hmac`:
    /// `base64(hmac.new(b"hush", b'{"id":820982911946154508}', sha256))`.
    #[test]
    fn independent_example() {
        let h = headers(&[
            (SIGNATURE, "qBvrsZF7RfB1iS6BX6IHqJTp5L911P7intnPeTPsH0I="),
            (TOPIC, "orders/create"),
            (WEBHOOK_ID, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
        ]);
        let parsed = run(
            &Integration::Shopify,
            &h,
            br#"{"id":820982911946154508}"#,
            &["hush"],
        )
        .unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("orders/create"));
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        );
    }
}
