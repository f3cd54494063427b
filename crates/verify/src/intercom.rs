//! Intercom webhooks: `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the raw
//! body with the app's client secret. Delivery id and event type from the
//! body's `id` (`notif_...`) and `topic`. JSON bodies. Depends on the
//! crate's shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::{json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-hub-signature";

#[derive(Deserialize)]
struct Notification {
    id: Option<String>,
    topic: Option<String>,
}

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let facts = json::object::<Notification>(req.body)
        .and_then(|n| Facts::checked(n.id.as_deref(), n.topic.as_deref()));
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
        b"sha1=",
        HmacAlgorithm::Sha1,
        SignatureEncoding::Hex,
        secrets,
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mac = signature::hmac(HmacAlgorithm::Sha1, secret.as_bytes(), &[out.body]);
    Ok(Signed::of(out).header(
        "X-Hub-Signature",
        format!("sha1={}", mac.encode(SignatureEncoding::Hex)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    /// Intercom publishes no fixed triple; computed independently, once,
    /// with Python: `hmac.new(b"intercom-secret", BODY, sha1).hexdigest()`.
    const BODY: &[u8] = br#"{"type":"notification_event","id":"notif_ccd8a4d0","topic":"conversation.user.created"}"#;
    const SIG: &str = "sha1=c0bd0c9d6ae113af91c101b2d9efb44c67cc2b0b";

    #[test]
    fn independent_example() {
        let h = headers(&[(SIGNATURE, SIG)]);
        let parsed = run(&Integration::Intercom, &h, BODY, &["intercom-secret"]).unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("notif_ccd8a4d0"));
        assert_eq!(
            parsed.event_type.as_deref(),
            Some("conversation.user.created")
        );
    }
}
