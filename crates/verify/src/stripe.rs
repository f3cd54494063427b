//! Stripe webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`,
//! HMAC-SHA256 of `{t}.{body}` keyed with the endpoint secret exactly as
//! shown, `whsec_` prefix included (the secret is used as text). Several
//! `v1` entries appear while a secret is being rolled; other schemes (`v0`)
//! are ignored. `t` is signed, so the tolerance applies. Delivery id and
//! event type from the body's `id` and `type`. Depends on the crate's shared
//! modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::signature::Candidates;
use crate::{header, json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "stripe-signature";

#[derive(Deserialize)]
struct Event {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The parts of a `Stripe-Signature` value: `t` and the `v1` signatures.
struct Header<'v> {
    t: &'v [u8],
    v1: [&'v [u8]; signature::MAX_CANDIDATES],
    count: usize,
}

fn split(value: &[u8]) -> Result<Header<'_>, Rejection> {
    let mut h = Header {
        t: &[],
        v1: [&[]; signature::MAX_CANDIDATES],
        count: 0,
    };
    for item in value.split(|&b| b == b',') {
        let item = item.trim_ascii();
        match item.split_at_checked(3) {
            Some((b"v1=", sig)) if h.count < h.v1.len() => {
                h.v1[h.count] = sig;
                h.count += 1;
            }
            _ => {
                if let Some(t) = item.strip_prefix(b"t=") {
                    if h.t.is_empty() {
                        h.t = t;
                    }
                }
            }
        }
    }
    if h.t.is_empty() {
        return Err(Rejection::InvalidSignature("missing timestamp"));
    }
    if h.count == 0 {
        return Err(Rejection::InvalidSignature("no v1 signature"));
    }
    Ok(h)
}

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let h = split(header::signature(req.headers, SIGNATURE)?)?;
    clock.check(crate::timestamp::unix_secs(h.t)?)?;
    let facts = json::object::<Event>(req.body)
        .and_then(|e| Facts::checked(e.id.as_deref(), e.kind.as_deref()));
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let h = split(header::signature(req.headers, SIGNATURE)?)?;
    let candidates = Candidates::decode(
        h.v1[..h.count].iter().copied(),
        SignatureEncoding::Hex,
        HmacAlgorithm::Sha256,
    )?;
    signature::check_keyed(
        HmacAlgorithm::Sha256,
        secrets,
        |s| Some(s.expose().as_bytes().into()),
        &[h.t, b".", req.body],
        candidates.as_slice(),
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let t = out.now_secs.to_string();
    let mac = signature::hmac(
        HmacAlgorithm::Sha256,
        secret.as_bytes(),
        &[t.as_bytes(), b".", out.body],
    );
    Ok(Signed::of(out).header(
        "Stripe-Signature",
        format!("t={t},v1={}", mac.encode(SignatureEncoding::Hex)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event","type":"invoice.paid"}"#;
    /// Stripe publishes the scheme but no fixed triple; computed
    /// independently, once, with Python's `hmac` over
    /// `b"1614556800." + BODY` keyed with `b"whsec_test_secret"`.
    const SIG: &str = "2e82b6f2b4eceed0abaaa5a1520c9c54dfd10e8c213dac0060c490877e481288";

    #[test]
    fn independent_example_with_rotation_and_unknown_schemes() {
        let value = format!("t=1614556800,v1=00{},v1={SIG},v0=abc,v2=zz", &SIG[2..]);
        let h = headers(&[(SIGNATURE, value.as_str())]);
        let parsed = run_at(&Integration::Stripe, &h, BODY, &[SECRET], 1_614_556_800).unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("evt_test_webhook"));
        assert_eq!(parsed.event_type.as_deref(), Some("invoice.paid"));
        // The secret is text: base64-decoding what follows `whsec_` fails.
        let h = headers(&[(SIGNATURE, "t=1614556800,v1=00")]);
        assert!(run_at(&Integration::Stripe, &h, BODY, &[SECRET], 1_614_556_800).is_err());
    }

    #[test]
    fn header_parts() {
        let sig = |r| Err(Rejection::InvalidSignature(r));
        for (value, want) in [
            ("v1=00", sig("missing timestamp")),
            ("t=1614556800", sig("no v1 signature")),
            ("t=1614556800,v0=00", sig("no v1 signature")),
            ("t=abc,v1=00", sig("malformed timestamp")),
            (",,,", sig("missing timestamp")),
        ] {
            let h = headers(&[(SIGNATURE, value)]);
            assert_eq!(
                run_at(&Integration::Stripe, &h, BODY, &[SECRET], 1_614_556_800).map(drop),
                want,
                "{value}"
            );
        }
    }
}
