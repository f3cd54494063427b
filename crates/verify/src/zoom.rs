//! Zoom webhooks: `x-zm-signature: v0=<hex>`, HMAC-SHA256 of
//! `v0:{x-zm-request-timestamp}:{body}` with the app's secret token; the
//! timestamp is signed, so the tolerance applies. Event type from the
//! body's `event` (`meeting.started`); Zoom sends no delivery id. JSON
//! bodies. Zoom's `endpoint.url_validation` challenge is answered in
//! `handshake`. Depends on the crate's shared modules only.

use model::Secret;
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::{header, json, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-zm-signature";
const TIMESTAMP: &str = "x-zm-request-timestamp";

#[derive(Deserialize)]
struct Payload {
    event: Option<String>,
}

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let ts = header::required(req.headers, TIMESTAMP, "missing timestamp")?;
    clock.check(crate::timestamp::unix_secs(ts)?)?;
    let facts =
        json::object::<Payload>(req.body).and_then(|p| Facts::checked(None, p.event.as_deref()));
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    crate::slack::verify_v0(req, TIMESTAMP, SIGNATURE, secrets)
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    Ok(crate::slack::sign_v0(
        secret,
        out,
        "x-zm-request-timestamp",
        "x-zm-signature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// Zoom publishes no fixed triple; computed independently, once, with
    /// Python: `hmac.new(b"zoom-token", b"v0:1658940994:" + BODY, sha256).hexdigest()`.
    const BODY: &[u8] = br#"{"event":"meeting.started","payload":{},"event_ts":1658940994000}"#;
    const SIG: &str = "v0=b878f28b60427ec4760ba480791c43a79d3f0823ed51cfa8a409b25f8bbd28d0";

    #[test]
    fn independent_example() {
        let h = headers(&[(SIGNATURE, SIG), (TIMESTAMP, "1658940994")]);
        let parsed = run_at(&Integration::Zoom, &h, BODY, &["zoom-token"], 1_658_940_994).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("meeting.started"));
        assert_eq!(parsed.delivery_id, None);
    }
}
