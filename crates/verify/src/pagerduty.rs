//! PagerDuty v3 webhooks: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`,
//! HMAC-SHA256 of the raw body with the subscription's secret; one `v1` per
//! active secret, other versions ignored. Delivery id and event type from
//! the body's `event.id` and `event.event_type` (`incident.triggered`).
//! JSON bodies. Depends on the crate's shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::signature::Candidates;
use crate::{header, json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "x-pagerduty-signature";

#[derive(Deserialize)]
struct Payload {
    event: Option<Event>,
}

#[derive(Deserialize)]
struct Event {
    id: Option<String>,
    event_type: Option<String>,
}

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let facts = json::object::<Payload>(req.body).and_then(|p| {
        let e = p.event.unwrap_or(Event {
            id: None,
            event_type: None,
        });
        Facts::checked(e.id.as_deref(), e.event_type.as_deref())
    });
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let list = header::signature(req.headers, SIGNATURE)?;
    let v1 = list
        .split(|&b| b == b',')
        .filter_map(|s| s.trim_ascii().strip_prefix(b"v1="));
    let candidates = Candidates::decode(v1, SignatureEncoding::Hex, HmacAlgorithm::Sha256)?;
    signature::check_keyed(
        HmacAlgorithm::Sha256,
        secrets,
        |s| Some(s.expose().as_bytes().into()),
        &[req.body],
        candidates.as_slice(),
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mac = signature::hmac(HmacAlgorithm::Sha256, secret.as_bytes(), &[out.body]);
    Ok(Signed::of(out).header(
        "X-PagerDuty-Signature",
        format!("v1={}", mac.encode(SignatureEncoding::Hex)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    /// PagerDuty publishes no fixed triple; computed independently, once,
    /// with Python: `hmac.new(b"pd-secret", BODY, sha256).hexdigest()`.
    const BODY: &[u8] = br#"{"event":{"id":"01DEN3UJVFL8KJTRWJVZWCF9GV","event_type":"incident.triggered","data":{}}}"#;
    const SIG: &str = "6b008104830903eaa39a90b6cfd835d5ba1a4c37f7cbe3aa7d7c311c5d039860";

    #[test]
    fn independent_example_in_a_list() {
        let list = format!("v1=00,v2=zz, v1={SIG}");
        let h = headers(&[(SIGNATURE, &list)]);
        let parsed = run(&Integration::Pagerduty, &h, BODY, &["pd-secret"]).unwrap();
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("01DEN3UJVFL8KJTRWJVZWCF9GV")
        );
        assert_eq!(parsed.event_type.as_deref(), Some("incident.triggered"));
        let h = headers(&[(SIGNATURE, "v2=abc")]);
        assert_eq!(
            run(&Integration::Pagerduty, &h, BODY, &["pd-secret"]).map(drop),
            Err(Rejection::InvalidSignature("malformed signature"))
        );
    }
}
