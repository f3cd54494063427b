//! Linear webhooks: hex HMAC-SHA256 of the raw body with the webhook's
//! signing secret in `Linear-Signature`. The signed body carries
//! `webhookTimestamp` (Unix milliseconds), which gets the tolerance (DESIGN
//! §8). Delivery id from `Linear-Delivery`; event type from `Linear-Event`
//! (`Issue`), else the body's `type`. JSON bodies. Depends on the crate's
//! shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::{header, json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "linear-signature";
const DELIVERY: &str = "linear-delivery";
const EVENT: &str = "linear-event";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(rename = "type")]
    kind: Option<String>,
    webhook_timestamp: Option<i64>,
}

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let id = header::token(req.headers, DELIVERY, "malformed Linear-Delivery")?;
    let body = json::object::<Payload>(req.body);
    // The timestamp is checked only when the body parses; a body that does
    // not is refused at step 9, after the signature.
    if let Ok(Payload {
        webhook_timestamp: Some(ms),
        ..
    }) = &body
    {
        clock.check(crate::timestamp::unix_millis_to_secs(*ms))?;
    }
    let facts = body.and_then(|p| {
        if p.webhook_timestamp.is_none() {
            return Err(Rejection::InvalidPayload("missing webhookTimestamp"));
        }
        Facts::checked(None, p.kind.as_deref())
    });
    Ok(Preflight::new(id, facts))
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
        SignatureEncoding::Hex,
        secrets,
    )
}

pub(crate) fn parse(req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    let event = header::token(req.headers, EVENT, "malformed Linear-Event")?;
    pre.finish(event)
}

/// Linear puts the timestamp in the body, which is the caller's: a body
/// without `webhookTimestamp` is sent as is and will be refused.
pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mac = signature::hmac(HmacAlgorithm::Sha256, secret.as_bytes(), &[out.body]);
    Ok(Signed::of(out)
        .header("Linear-Signature", mac.encode(SignatureEncoding::Hex))
        .header("Linear-Event", out.event)
        .header("Linear-Delivery", fresh_id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// Linear publishes no fixed triple; computed independently, once, with
    /// Python: `hmac.new(b"lin_wh_secret", BODY, sha256).hexdigest()`.
    const BODY: &[u8] =
        br#"{"action":"create","type":"Issue","data":{},"webhookTimestamp":1676056940508}"#;
    const SIG: &str = "3b13f4f40effd84f8361341a6d6da13652230db8f4469ecac6cc28e318aaefe9";
    const NOW: i64 = 1_676_056_940;

    #[test]
    fn independent_example_and_the_body_timestamp() {
        let h = headers(&[
            (SIGNATURE, SIG),
            (DELIVERY, "234d1a4e-b617-4388-90fe-adc3633d6b72"),
        ]);
        let parsed = run_at(&Integration::Linear, &h, BODY, &["lin_wh_secret"], NOW).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("Issue"));
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("234d1a4e-b617-4388-90fe-adc3633d6b72")
        );
        for now in [NOW - 301, NOW + 302] {
            assert_eq!(
                run_at(&Integration::Linear, &h, BODY, &["lin_wh_secret"], now).map(drop),
                Err(Rejection::StaleTimestamp),
                "{now}"
            );
        }
        let with_event = headers(&[(SIGNATURE, SIG), (EVENT, "IssueLabel")]);
        let parsed = run_at(
            &Integration::Linear,
            &with_event,
            BODY,
            &["lin_wh_secret"],
            NOW,
        )
        .unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("IssueLabel"));
    }

    #[test]
    fn a_signed_body_without_timestamp_is_refused() {
        let body = br#"{"type":"Issue"}"#;
        let out = Outgoing {
            now_secs: NOW,
            ..crate::sign::tests_outgoing(body)
        };
        let h = crate::conformance::owned_headers(&sign("k", &out).unwrap().headers);
        assert_eq!(
            run_at(&Integration::Linear, &h, body, &["k"], NOW).map(drop),
            Err(Rejection::InvalidPayload("missing webhookTimestamp"))
        );
    }
}
