//! Paddle Billing webhooks: `Paddle-Signature: ts=<unix>;h1=<hex>`,
//! HMAC-SHA256 of `{ts}:{body}` with the notification destination's secret
//! key as text (`pdl_ntfset_...`); several `h1` appear while a key is being
//! rotated, unknown schemes are ignored. `ts` is signed, so the tolerance
//! applies. Delivery id: the body's `notification_id` (kept across
//! retries), else `event_id`; event type `event_type`. JSON bodies. Depends
//! on the crate's shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::signature::Candidates;
use crate::{header, json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "paddle-signature";

#[derive(Deserialize)]
struct Notification {
    notification_id: Option<String>,
    event_id: Option<String>,
    event_type: Option<String>,
}

fn ts_and_h1(value: &[u8]) -> Result<(&[u8], impl Iterator<Item = &[u8]>), Rejection> {
    let parts = || value.split(|&b| b == b';').map(<[u8]>::trim_ascii);
    let ts = parts()
        .find_map(|p| p.strip_prefix(b"ts="))
        .ok_or(Rejection::InvalidSignature("missing timestamp"))?;
    Ok((ts, parts().filter_map(|p| p.strip_prefix(b"h1="))))
}

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let (ts, _) = ts_and_h1(header::signature(req.headers, SIGNATURE)?)?;
    clock.check(crate::timestamp::unix_secs(ts)?)?;
    let facts = json::object::<Notification>(req.body).and_then(|n| {
        let id = n.notification_id.or(n.event_id);
        Facts::checked(id.as_deref(), n.event_type.as_deref())
    });
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let (ts, h1) = ts_and_h1(header::signature(req.headers, SIGNATURE)?)?;
    let candidates = Candidates::decode(h1, SignatureEncoding::Hex, HmacAlgorithm::Sha256)?;
    signature::check_keyed(
        HmacAlgorithm::Sha256,
        secrets,
        |s| Some(s.expose().as_bytes().into()),
        &[ts, b":", req.body],
        candidates.as_slice(),
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let ts = out.now_secs.to_string();
    let mac = signature::hmac(
        HmacAlgorithm::Sha256,
        secret.as_bytes(),
        &[ts.as_bytes(), b":", out.body],
    );
    Ok(Signed::of(out).header(
        "Paddle-Signature",
        format!("ts={ts};h1={}", mac.encode(SignatureEncoding::Hex)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// Paddle publishes no fixed triple; computed independently, once, with
    /// Python: `hmac.new(b"pdl_ntfset_01gkpjp8bkm3tm53kdgkx6sms7_6h3qd3uFSi9YCD3OLYAShQI90XTI5vEI", b"1671552777:" + BODY, sha256).hexdigest()`.
    const SECRET: &str = "pdl_ntfset_01gkpjp8bkm3tm53kdgkx6sms7_6h3qd3uFSi9YCD3OLYAShQI90XTI5vEI";
    const BODY: &[u8] = br#"{"event_id":"evt_01gks14ge726w50ce2fwhxmqz4","event_type":"subscription.created","notification_id":"ntf_01gks14gfxp3m0vbnv0j8b1sz1","data":{}}"#;
    const SIG: &str = "452556776a2f50321d7e1ad29b52e3f4c093d12b80386227bae502deaf485f58";

    #[test]
    fn independent_example_with_rotation() {
        let value = format!("ts=1671552777;h1=00;h1={SIG};h2=zz");
        let h = headers(&[(SIGNATURE, &value)]);
        let parsed = run_at(&Integration::Paddle, &h, BODY, &[SECRET], 1_671_552_777).unwrap();
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("ntf_01gks14gfxp3m0vbnv0j8b1sz1")
        );
        assert_eq!(parsed.event_type.as_deref(), Some("subscription.created"));
        let h = headers(&[(SIGNATURE, "h1=00")]);
        assert_eq!(
            run_at(&Integration::Paddle, &h, BODY, &[SECRET], 1_671_552_777).map(drop),
            Err(Rejection::InvalidSignature("missing timestamp"))
        );
    }
}
