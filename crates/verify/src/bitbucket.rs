//! Bitbucket webhooks (Cloud and Data Center): `X-Hub-Signature:
//! sha256=<hex>`, HMAC-SHA256 of the raw body with the webhook's secret.
//! Delivery id from `X-Request-UUID` (Cloud), else `X-Request-Id` (Data
//! Center); event type from `X-Event-Key` (`repo:push`). JSON bodies.
//! Depends on the crate's shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::{header, json, signature, Clock, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-hub-signature";
const UUID: &str = "x-request-uuid";
const REQUEST_ID: &str = "x-request-id";
const EVENT: &str = "x-event-key";

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let id = match header::token(req.headers, UUID, "malformed X-Request-UUID")? {
        Some(id) => Some(id),
        None => header::token(req.headers, REQUEST_ID, "malformed X-Request-Id")?,
    };
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
        b"sha256=",
        HmacAlgorithm::Sha256,
        SignatureEncoding::Hex,
        secrets,
    )
}

pub(crate) fn parse(req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    let event = header::token(req.headers, EVENT, "malformed X-Event-Key")?;
    json::require_object(req.body)?;
    pre.finish(event)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mac = signature::hmac(HmacAlgorithm::Sha256, secret.as_bytes(), &[out.body]);
    Ok(Signed::of(out)
        .header(
            "X-Hub-Signature",
            format!("sha256={}", mac.encode(SignatureEncoding::Hex)),
        )
        .header("X-Event-Key", out.event)
        .header("X-Request-UUID", fresh_id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    /// Bitbucket publishes no fixed triple; computed independently, once,
    /// with Python: `hmac.new(b"bb-secret", BODY, sha256).hexdigest()`.
    const BODY: &[u8] = br#"{"push":{"changes":[]}}"#;
    const SIG: &str = "sha256=2b7638acf5dc51584501f797f9ce374b1f0bc588e62e5a339eb2d725189ff41f";

    #[test]
    fn independent_example() {
        let h = headers(&[
            (SIGNATURE, SIG),
            (EVENT, "repo:push"),
            (REQUEST_ID, "d1b5a6f0"),
        ]);
        let parsed = run(&Integration::Bitbucket, &h, BODY, &["bb-secret"]).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("repo:push"));
        assert_eq!(parsed.delivery_id.as_deref(), Some("d1b5a6f0"));
        let sha1 = headers(&[(SIGNATURE, "sha1=00")]);
        assert_eq!(
            run(&Integration::Bitbucket, &sha1, BODY, &["bb-secret"]).map(drop),
            Err(Rejection::InvalidSignature("wrong signature prefix"))
        );
    }
}
