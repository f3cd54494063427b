//! Standard Webhooks (and Svix, whose `svix-id` / `svix-timestamp` /
//! `svix-signature` header names are accepted when the `webhook-*` ones are
//! absent): HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the bytes
//! of the base64 that follows `whsec_` in the secret. The signature header
//! is a space-separated list of `v1,<base64>`; other versions (`v1a`, the
//! asymmetric one) are ignored. The id and timestamp are signed: the id is
//! the delivery id, the timestamp gets the tolerance. Event type: the body's
//! `type`. Depends on the crate's shared modules only.

use std::borrow::Cow;

use base64::Engine as _;
use model::{HmacAlgorithm, Secret, SignatureEncoding};
use serde::Deserialize;

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::signature::{Candidates, BASE64};
use crate::{header, json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

/// (id, timestamp, signature) header names, in order of preference.
const NAMES: [[&str; 3]; 2] = [
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
    ["svix-id", "svix-timestamp", "svix-signature"],
];

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn names(req: &Request<'_>) -> [&'static str; 3] {
    if req.headers.contains_key(NAMES[0][2]) || !req.headers.contains_key(NAMES[1][2]) {
        NAMES[0]
    } else {
        NAMES[1]
    }
}

/// The HMAC key of a secret: the base64 after `whsec_` (Svix also hands out
/// bare base64). `None` when it is not base64.
fn key(secret: &Secret) -> Option<Cow<'_, [u8]>> {
    let text = secret.expose();
    let b64 = text.strip_prefix("whsec_").unwrap_or(text);
    BASE64.decode(b64).ok().map(Cow::Owned)
}

pub(crate) fn check_secret(secret: &str) -> Result<(), &'static str> {
    key(&Secret::new(secret))
        .filter(|k| !k.is_empty())
        .map(drop)
        .ok_or("a Standard Webhooks secret is whsec_ followed by base64")
}

pub(crate) fn preflight(req: &Request<'_>, clock: Clock) -> Result<Preflight, Rejection> {
    let [id, ts, _] = names(req);
    let ts = header::required(req.headers, ts, "missing timestamp")?;
    clock.check(crate::timestamp::unix_secs(ts)?)?;
    let id = header::token(req.headers, id, "malformed webhook-id")?;
    let facts =
        json::object::<Payload>(req.body).and_then(|p| Facts::checked(None, p.kind.as_deref()));
    Ok(Preflight::new(id, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let [id, ts, sig] = names(req);
    let id = header::required(req.headers, id, "missing webhook-id")?;
    let ts = header::required(req.headers, ts, "missing timestamp")?;
    let list = header::signature(req.headers, sig)?;
    let v1 = list
        .split(|&b| b == b' ')
        .filter_map(|entry| entry.strip_prefix(b"v1,"));
    let candidates = Candidates::decode(v1, SignatureEncoding::Base64, HmacAlgorithm::Sha256)?;
    signature::check_keyed(
        HmacAlgorithm::Sha256,
        secrets,
        key,
        &[id, b".", ts, b".", req.body],
        candidates.as_slice(),
    )
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    let secret = Secret::new(secret);
    let key = key(&secret).ok_or(SignError::InvalidKey(
        "a Standard Webhooks secret is whsec_ followed by base64",
    ))?;
    let id = format!("msg_{}", fresh_id().replace('-', ""));
    let ts = out.now_secs.to_string();
    let mac = signature::hmac(
        HmacAlgorithm::Sha256,
        &key,
        &[id.as_bytes(), b".", ts.as_bytes(), b".", out.body],
    );
    Ok(Signed::of(out)
        .header("webhook-id", id)
        .header("webhook-timestamp", ts)
        .header(
            "webhook-signature",
            format!("v1,{}", mac.encode(SignatureEncoding::Base64)),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run_at};
    use crate::Integration;

    /// The example of the Standard Webhooks specification (and of Svix's
    /// libraries' tests).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specifications_example_under_both_header_names() {
        for [id, ts, sig] in NAMES {
            let h = headers(&[(id, ID), (ts, "1614265330"), (sig, SIG)]);
            let parsed = run_at(
                &Integration::Standard,
                &h,
                BODY,
                &["whsec_AAAA", SECRET],
                TS,
            )
            .unwrap();
            assert_eq!(parsed.delivery_id.as_deref(), Some(ID));
            assert_eq!(parsed.event_type, None);
        }
    }

    #[test]
    fn lists_versions_and_secrets() {
        let list = format!("v1a,AAAA v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v2,zz {SIG}");
        let h = headers(&[
            (NAMES[0][0], ID),
            (NAMES[0][1], "1614265330"),
            (NAMES[0][2], &list),
        ]);
        assert!(run_at(&Integration::Standard, &h, BODY, &[SECRET], TS).is_ok());
        // Without the prefix the same base64 is the same key.
        assert!(run_at(&Integration::Standard, &h, BODY, &[&SECRET[6..]], TS).is_ok());
        // The text of the secret is not the key.
        assert_eq!(
            run_at(
                &Integration::Standard,
                &h,
                BODY,
                &["whsec_!!not base64!!"],
                TS
            )
            .map(drop),
            Err(Rejection::InvalidSignature("signature mismatch"))
        );
        let only_unknown = headers(&[
            (NAMES[0][0], ID),
            (NAMES[0][1], "1614265330"),
            (NAMES[0][2], "v1a,AAAA v2,BBBB"),
        ]);
        assert_eq!(
            run_at(&Integration::Standard, &only_unknown, BODY, &[SECRET], TS).map(drop),
            Err(Rejection::InvalidSignature("malformed signature"))
        );
        // The id is signed: changing it breaks the signature.
        let other_id = headers(&[
            (NAMES[0][0], "msg_other"),
            (NAMES[0][1], "1614265330"),
            (NAMES[0][2], SIG),
        ]);
        assert_eq!(
            run_at(&Integration::Standard, &other_id, BODY, &[SECRET], TS).map(drop),
            Err(Rejection::InvalidSignature("signature mismatch"))
        );
        assert!(matches!(
            sign("whsec_***", &crate::sign::tests_outgoing(BODY)),
            Err(SignError::InvalidKey(_))
        ));
    }
}
