//! Mailgun webhooks: the signature travels inside the JSON body, as
//! `signature: {timestamp, token, signature}`, where `signature` is the hex
//! HMAC-SHA256 of `timestamp` followed by `token`, keyed with the HTTP
//! webhook signing key. It does not cover `event-data`: that is Mailgun's
//! design, and a replayed `signature` object with altered event data would
//! verify; the tolerance on the signed timestamp and dedup on the event id
//! bound the window. Delivery id and event type from `event-data.id` and
//! `event-data.event` (`delivered`). Depends on the crate's shared modules
//! only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::json::Scalar;
use crate::sign::{Outgoing, SignError, Signed};
use crate::{json, signature, timestamp, Clock, Facts, Parsed, Preflight, Rejection, Request};

/// The signed fields of a Mailgun body, as received.
#[derive(Debug, Clone)]
pub(crate) struct BodySignature {
    timestamp: String,
    token: String,
    signature: String,
}

#[derive(Deserialize)]
struct Payload {
    signature: Option<RawSignature>,
    #[serde(rename = "event-data")]
    event_data: Option<EventData>,
}

#[derive(Deserialize)]
struct RawSignature {
    timestamp: Scalar,
    token: String,
    signature: String,
}

#[derive(Deserialize)]
struct EventData {
    id: Option<String>,
    event: Option<String>,
}

const MISSING: Rejection = Rejection::InvalidSignature("missing signature");

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let facts = json::object::<Payload>(req.body).and_then(|p| {
        let data = p.event_data.unwrap_or(EventData {
            id: None,
            event: None,
        });
        let mut facts = Facts::checked(data.id.as_deref(), data.event.as_deref())?;
        facts.mailgun = p.signature.map(|s| BodySignature {
            timestamp: match s.timestamp {
                Scalar::Text(t) => t,
                Scalar::Number(n) => n.to_string(),
            },
            token: s.token,
            signature: s.signature,
        });
        Ok(facts)
    });
    if let Ok(Facts {
        mailgun: Some(sig), ..
    }) = &facts
    {
        clock.check(timestamp::unix_secs(sig.timestamp.as_bytes())?)?;
    }
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    _req: &Request<'_>,
    pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let sig = match &pre.body.0 {
        Ok(facts) => facts.mailgun.as_ref().ok_or(MISSING)?,
        Err(_) => return Err(MISSING),
    };
    if sig.token.is_empty() || sig.token.len() > crate::MAX_ID_LEN {
        return Err(Rejection::InvalidSignature("malformed token"));
    }
    signature::check_encoded(
        HmacAlgorithm::Sha256,
        SignatureEncoding::Hex,
        sig.signature.as_bytes(),
        secrets,
        &[sig.timestamp.as_bytes(), sig.token.as_bytes()],
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

/// The payload's `signature` object is set (replaced if present). A body
/// without `event-data` is taken as the event data itself and wrapped.
pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let mut root: Map<String, Value> = match serde_json::from_slice(out.body) {
        Ok(Value::Object(map)) if map.contains_key("event-data") => map,
        Ok(Value::Object(event)) => {
            Map::from_iter([("event-data".to_owned(), Value::Object(event))])
        }
        _ => return Err(SignError::Payload("a Mailgun payload is a JSON object")),
    };
    let ts = out.now_secs.to_string();
    let token = crate::sign::fresh_id().replace('-', "");
    let mac = signature::hmac(
        HmacAlgorithm::Sha256,
        secret.as_bytes(),
        &[ts.as_bytes(), token.as_bytes()],
    );
    root.insert(
        "signature".to_owned(),
        serde_json::json!({
            "timestamp": ts,
            "token": token,
            "signature": mac.encode(SignatureEncoding::Hex),
        }),
    );
    let mut signed = Signed::of(out);
    signed.body = serde_json::to_vec(&Value::Object(root))
        .map_err(|_| SignError::Payload("cannot serialise the payload"))?;
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// Mailgun's docs show the scheme but no key for their sample; computed
    /// independently, once, with Python:
    /// `hmac.new(b"key-mailgun", b"1529006854" + b"a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0", sha256).hexdigest()`.
    fn body(sig: &str) -> Vec<u8> {
        format!(
            r#"{{"signature":{{"timestamp":"1529006854","token":"a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0","signature":"{sig}"}},"event-data":{{"id":"CPgfbmQMTCKtHW6uIWtuVe","event":"delivered"}}}}"#
        )
        .into_bytes()
    }
    const SIG: &str = "4b85c3571bb0c3c16ab88b8921f8a55087cf0348e3bb3bcca7683c80606696cf";

    #[test]
    fn independent_example() {
        let h = headers(&[]);
        let parsed = run_at(
            &Integration::Mailgun,
            &h,
            &body(SIG),
            &["key-mailgun"],
            1_529_006_854,
        )
        .unwrap();
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("CPgfbmQMTCKtHW6uIWtuVe")
        );
        assert_eq!(parsed.event_type.as_deref(), Some("delivered"));
        assert_eq!(
            run_at(
                &Integration::Mailgun,
                &h,
                &body(&SIG.replace('a', "b")),
                &["key-mailgun"],
                1_529_006_854
            )
            .map(drop),
            Err(Rejection::InvalidSignature("signature mismatch"))
        );
        assert_eq!(
            run_at(
                &Integration::Mailgun,
                &h,
                &body(SIG),
                &["key-mailgun"],
                1_529_006_854 + 301
            )
            .map(drop),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            run_at(
                &Integration::Mailgun,
                &h,
                br#"{"event-data":{}}"#,
                &["key-mailgun"],
                1_529_006_854
            )
            .map(drop),
            Err(MISSING)
        );
        assert_eq!(
            run_at(
                &Integration::Mailgun,
                &h,
                b"not json",
                &["key-mailgun"],
                1_529_006_854
            )
            .map(drop),
            Err(MISSING)
        );
    }

    #[test]
    fn sign_wraps_or_fills_the_payload() {
        let out = crate::sign::tests_outgoing(br#"{"id":"e1","event":"opened"}"#);
        let signed = sign("k", &out).unwrap();
        let parsed = run_at(
            &Integration::Mailgun,
            &headers(&[]),
            &signed.body,
            &["k"],
            out.now_secs,
        )
        .unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("e1"));
        assert!(sign("k", &crate::sign::tests_outgoing(b"[1]")).is_err());
    }
}
