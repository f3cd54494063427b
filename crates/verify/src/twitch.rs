//! Twitch EventSub webhooks: `Twitch-Eventsub-Message-Signature:
//! sha256=<hex>`, HMAC-SHA256 of message id, timestamp and body
//! concatenated, with the subscription's secret. The timestamp (RFC 3339 in
//! `Twitch-Eventsub-Message-Timestamp`) is signed, so the tolerance applies;
//! the message id is the delivery id (Twitch resends with the same one).
//! Event type from `Twitch-Eventsub-Subscription-Type` (`channel.follow`).
//! JSON bodies. Depends on the crate's shared modules only.

use model::{HmacAlgorithm, Secret, SignatureEncoding};

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::{header, json, signature, timestamp, Clock, Parsed, Preflight, Rejection, Request};

const SIGNATURE: &str = "twitch-eventsub-message-signature";
const ID: &str = "twitch-eventsub-message-id";
const TIMESTAMP: &str = "twitch-eventsub-message-timestamp";
const TYPE: &str = "twitch-eventsub-subscription-type";

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let ts = header::required(req.headers, TIMESTAMP, "missing timestamp")?;
    clock.check(timestamp::rfc3339(ts)?)?;
    let id = header::token(req.headers, ID, "malformed Twitch-Eventsub-Message-Id")?;
    Ok(Preflight::new(id, Ok(Default::default())))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let id = header::required(req.headers, ID, "missing message id")?;
    let ts = header::required(req.headers, TIMESTAMP, "missing timestamp")?;
    let value = header::signature(req.headers, SIGNATURE)?;
    let hex = value
        .strip_prefix(b"sha256=")
        .ok_or(Rejection::InvalidSignature("wrong signature prefix"))?;
    signature::check_encoded(
        HmacAlgorithm::Sha256,
        SignatureEncoding::Hex,
        hex,
        secrets,
        &[id, ts, req.body],
    )
}

pub(crate) fn parse(req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    let kind = header::token(
        req.headers,
        TYPE,
        "malformed Twitch-Eventsub-Subscription-Type",
    )?;
    json::require_object(req.body)?;
    pre.finish(kind)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let id = fresh_id();
    let ts = timestamp::format_rfc3339(out.now_secs);
    let mac = signature::hmac(
        HmacAlgorithm::Sha256,
        secret.as_bytes(),
        &[id.as_bytes(), ts.as_bytes(), out.body],
    );
    Ok(Signed::of(out)
        .header("Twitch-Eventsub-Message-Id", id)
        .header("Twitch-Eventsub-Message-Timestamp", ts)
        .header("Twitch-Eventsub-Message-Type", "notification")
        .header("Twitch-Eventsub-Subscription-Type", out.event)
        .header(
            "Twitch-Eventsub-Message-Signature",
            format!("sha256={}", mac.encode(SignatureEncoding::Hex)),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// Twitch publishes no fixed triple; computed independently, once, with
    /// Python: `hmac.new(b"twitch-secret", ID + TS + BODY, sha256).hexdigest()`.
    const ID_VALUE: &str = "e76c6bd4-55c9-4987-8304-da1588d8988b";
    const TS: &str = "2019-11-16T10:11:12.634234626Z";
    const BODY: &[u8] = br#"{"subscription":{"type":"channel.follow"},"event":{}}"#;
    const SIG: &str = "sha256=2d655bd5e45de5fb123c934fffbbf15a37889737d162822f041a04e077346f40";

    #[test]
    fn independent_example() {
        let h = headers(&[
            (SIGNATURE, SIG),
            (ID, ID_VALUE),
            (TIMESTAMP, TS),
            (TYPE, "channel.follow"),
        ]);
        let parsed = run_at(
            &Integration::Twitch,
            &h,
            BODY,
            &["twitch-secret"],
            1_573_899_072,
        )
        .unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some(ID_VALUE));
        assert_eq!(parsed.event_type.as_deref(), Some("channel.follow"));
        let other_id = headers(&[(SIGNATURE, SIG), (ID, "x"), (TIMESTAMP, TS)]);
        assert_eq!(
            run_at(
                &Integration::Twitch,
                &other_id,
                BODY,
                &["twitch-secret"],
                1_573_899_072
            )
            .map(drop),
            Err(Rejection::InvalidSignature("signature mismatch"))
        );
    }
}
