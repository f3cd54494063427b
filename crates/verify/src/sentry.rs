//! Sentry integration webhooks: hex HMAC-SHA256 of the raw body with the
//! integration's client secret in `Sentry-Hook-Signature`. Sentry's
//! `Sentry-Hook-Timestamp` is not covered by the signature, so it is never
//! trusted (DESIGN §8). Delivery id from `Request-ID`; event type
//! `{Sentry-Hook-Resource}.{action}` (`issue.created`), or the resource
//! alone when the body has no `action`. JSON bodies. Depends on the crate's
//! shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::{header, json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "sentry-hook-signature";
const RESOURCE: &str = "sentry-hook-resource";
const REQUEST_ID: &str = "request-id";

#[derive(Deserialize)]
struct Payload {
    action: Option<String>,
}

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let id = header::token(req.headers, REQUEST_ID, "malformed Request-ID")?;
    let facts = json::object::<Payload>(req.body).and_then(|p| {
        let resource = header::token(req.headers, RESOURCE, "malformed Sentry-Hook-Resource")?;
        let kind = match (resource, p.action) {
            (Some(r), Some(a)) => Some(format!("{r}.{a}")),
            (Some(r), None) => Some(r.to_owned()),
            (None, a) => a,
        };
        Facts::checked(None, kind.as_deref())
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

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mac = signature::hmac(HmacAlgorithm::Sha256, secret.as_bytes(), &[out.body]);
    Ok(Signed::of(out)
        .header("Sentry-Hook-Signature", mac.encode(SignatureEncoding::Hex))
        .header("Sentry-Hook-Resource", out.event)
        .header("Sentry-Hook-Timestamp", out.now_secs.to_string())
        .header("Request-ID", fresh_id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    /// Sentry publishes no fixed triple; computed independently, once, with
    /// Python: `hmac.new(b"sentry-client-secret", BODY, sha256).hexdigest()`.
    const BODY: &[u8] = br#"{"action":"created","data":{"issue":{"id":"1"}}}"#;
    const SIG: &str = "470f21240b712f2fa53ab6505fdf65dd15092bf0bb89145f7e6849a12bf8be4c";

    #[test]
    fn independent_example_and_the_unsigned_timestamp() {
        // A timestamp years off is ignored: Sentry does not sign it.
        let h = headers(&[
            (SIGNATURE, SIG),
            (RESOURCE, "issue"),
            (REQUEST_ID, "f9a1dd7e-1c44-4b6f-a1a8-6d08bb3a4d00"),
            ("sentry-hook-timestamp", "1"),
        ]);
        let parsed = run(&Integration::Sentry, &h, BODY, &["sentry-client-secret"]).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("issue.created"));
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("f9a1dd7e-1c44-4b6f-a1a8-6d08bb3a4d00")
        );
    }
}
