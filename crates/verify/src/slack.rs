//! Slack request signing: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 of
//! `v0:{X-Slack-Request-Timestamp}:{body}` with the app's signing secret;
//! the timestamp is signed, so the tolerance applies. Events API bodies are
//! JSON (delivery id `event_id`, event type `event.type`, else `type` such
//! as `url_verification`); slash commands and interactivity are
//! form-encoded (event type: the `command` field, else the `type` of the
//! `payload` field's JSON). Depends on the crate's shared modules only.

use http::header::CONTENT_TYPE;
use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::{
    form, header, json, media, signature, Clock, Facts, Parsed, Preflight, Rejection, Request,
};

const SIGNATURE: &str = "x-slack-signature";
const TIMESTAMP: &str = "x-slack-request-timestamp";

#[derive(Deserialize)]
struct Envelope {
    event_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    event: Option<Inner>,
}

#[derive(Deserialize)]
struct Inner {
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn is_form(req: &Request<'_>) -> bool {
    req.headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| media::is(ct, media::FORM))
}

fn facts(req: &Request<'_>) -> Result<Facts, Rejection> {
    if is_form(req) {
        if let Some(command) = form::field(req.body, "command") {
            let command = String::from_utf8(command)
                .map_err(|_| Rejection::InvalidPayload("command is not UTF-8"))?;
            return Facts::checked(None, Some(&command));
        }
        let payload = form::field(req.body, "payload")
            .ok_or(Rejection::InvalidPayload("neither command nor payload"))?;
        let inner = json::object::<Inner>(&payload)?;
        return Facts::checked(None, inner.kind.as_deref());
    }
    let e = json::object::<Envelope>(req.body)?;
    let kind = e.event.and_then(|i| i.kind).or(e.kind);
    Facts::checked(e.event_id.as_deref(), kind.as_deref())
}

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let ts = header::required(req.headers, TIMESTAMP, "missing timestamp")?;
    clock.check(crate::timestamp::unix_secs(ts)?)?;
    Ok(Preflight::new(None, facts(req)))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    verify_v0(req, TIMESTAMP, SIGNATURE, secrets)
}

/// Slack's `v0` scheme, which Zoom uses too under its own header names:
/// `{signature}: v0=<hex>`, HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub(crate) fn verify_v0(
    req: &Request<'_>,
    timestamp: &str,
    signature: &str,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let ts = header::required(req.headers, timestamp, "missing timestamp")?;
    let value = header::signature(req.headers, signature)?;
    let hex = value
        .strip_prefix(b"v0=")
        .ok_or(Rejection::InvalidSignature("wrong signature prefix"))?;
    signature::check_encoded(
        HmacAlgorithm::Sha256,
        SignatureEncoding::Hex,
        hex,
        secrets,
        &[b"v0:", ts, b":", req.body],
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    Ok(sign_v0(
        secret,
        out,
        "X-Slack-Request-Timestamp",
        "X-Slack-Signature",
    ))
}

/// The sending side of [`verify_v0`].
pub(crate) fn sign_v0(
    secret: &str,
    out: &Outgoing<'_>,
    timestamp: &str,
    signature: &str,
) -> Signed {
    let ts = out.now_secs.to_string();
    let mac = signature::hmac(
        HmacAlgorithm::Sha256,
        secret.as_bytes(),
        &[b"v0:", ts.as_bytes(), b":", out.body],
    );
    Signed::of(out).header(timestamp, ts).header(
        signature,
        format!("v0={}", mac.encode(SignatureEncoding::Hex)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// Slack's "Verifying requests from Slack" walk-through: a slash
    /// command, form-encoded.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1_531_420_618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_published_example() {
        let h = headers(&[
            (SIGNATURE, SIG),
            (TIMESTAMP, "1531420618"),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        let parsed = run_at(&Integration::Slack, &h, BODY, &["rotated", SECRET], TS).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("/webhook-collect"));
        assert_eq!(parsed.delivery_id, None);
        let out = Outgoing {
            now_secs: TS,
            content_type: "application/x-www-form-urlencoded",
            ..crate::sign::tests_outgoing(BODY)
        };
        let signed = sign(SECRET, &out).unwrap();
        assert!(signed
            .headers
            .contains(&("X-Slack-Signature".into(), SIG.into())));
    }

    #[test]
    fn events_api_and_interactivity_bodies() {
        let json =
            br#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}"#;
        let out = Outgoing {
            now_secs: TS,
            ..crate::sign::tests_outgoing(json)
        };
        let mut pairs: Vec<(String, String)> = sign("s", &out).unwrap().headers;
        pairs.push(("content-type".into(), "application/json".into()));
        let h = crate::conformance::owned_headers(&pairs);
        let parsed = run_at(&Integration::Slack, &h, json, &["s"], TS).unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("Ev08MFMKH6"));
        assert_eq!(parsed.event_type.as_deref(), Some("app_mention"));

        let challenge = br#"{"type":"url_verification","challenge":"3eZbrw1a"}"#;
        let out = Outgoing {
            now_secs: TS,
            ..crate::sign::tests_outgoing(challenge)
        };
        let mut pairs = sign("s", &out).unwrap().headers;
        pairs.push(("content-type".into(), "application/json".into()));
        let h = crate::conformance::owned_headers(&pairs);
        let parsed = run_at(&Integration::Slack, &h, challenge, &["s"], TS).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("url_verification"));

        let interactive = b"payload=%7B%22type%22%3A%22block_actions%22%7D";
        let out = Outgoing {
            now_secs: TS,
            ..crate::sign::tests_outgoing(interactive)
        };
        let mut pairs = sign("s", &out).unwrap().headers;
        pairs.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        let h = crate::conformance::owned_headers(&pairs);
        let parsed = run_at(&Integration::Slack, &h, interactive, &["s"], TS).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("block_actions"));
        assert_eq!(
            run_at(&Integration::Slack, &h, b"", &["s"], TS).map(drop),
            Err(Rejection::InvalidSignature("signature mismatch"))
        );
    }
}
