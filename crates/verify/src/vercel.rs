//! Vercel webhooks: hex HMAC-SHA1 of the raw body with the webhook's secret
//! in `x-vercel-signature`. Delivery id and event type from the body's `id`
//! and `type` (`deployment.created`). JSON bodies. Depends on the crate's
//! shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};

use crate::sign::{Outgoing, SignError, Signed};
use crate::{signature, Clock, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-vercel-signature";

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    Ok(Preflight::new(None, crate::body_id_and_type(req.body)))
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
    Ok(Signed::of(out).header("x-vercel-signature", mac.encode(SignatureEncoding::Hex)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    /// Vercel publishes no fixed triple; computed independently, once, with
    /// Python: `hmac.new(b"vercel-secret", BODY, sha1).hexdigest()`.
    const BODY: &[u8] = br#"{"id":"uev_1","type":"deployment.created","payload":{}}"#;
    const SIG: &str = "ccc3d77ba43eb9a20094676a499515006635408e";

    #[test]
    fn independent_example() {
        let h = headers(&[(SIGNATURE, SIG)]);
        let parsed = run(&Integration::Vercel, &h, BODY, &["vercel-secret"]).unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("uev_1"));
        assert_eq!(parsed.event_type.as_deref(), Some("deployment.created"));
    }
}
