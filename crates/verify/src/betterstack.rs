//! Better Stack webhooks: a shared token in `x-betterstack-token` or
//! `Authorization: Bearer <token>`, compared in constant time; it does not
//! cover the body (DESIGN §8). No delivery id; event type from the body's
//! `data.type` (`incident`). JSON bodies. Depends on the crate's shared
//! modules only.

use http::header::AUTHORIZATION;
use model::Secret;
use serde::Deserialize;

use crate::sign::{Outgoing, SignError, Signed};
use crate::{header, json, signature, Clock, Facts, Parsed, Preflight, Rejection, Request};

const TOKEN: &str = "x-betterstack-token";

#[derive(Deserialize)]
struct Payload {
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let facts = json::object::<Payload>(req.body)
        .and_then(|p| Facts::checked(None, p.data.and_then(|d| d.kind).as_deref()));
    Ok(Preflight::new(None, facts))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let token = if req.headers.contains_key(TOKEN) {
        header::signature(req.headers, TOKEN)?
    } else {
        let value = header::signature(req.headers, AUTHORIZATION)?;
        let (scheme, token) = value
            .split_at_checked(7)
            .ok_or(Rejection::InvalidSignature("missing token"))?;
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return Err(Rejection::InvalidSignature("missing token"));
        }
        token.trim_ascii()
    };
    signature::check_token(token, secrets)
}

pub(crate) fn parse(_req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    pre.finish(None)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    Ok(Signed::of(out).header("x-betterstack-token", secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    const BODY: &[u8] =
        br#"{"data":{"id":"12345","type":"incident","attributes":{"status":"Started"}}}"#;

    /// Better Stack sends the token as configured; both places it may be.
    #[test]
    fn header_or_bearer() {
        for (name, value) in [
            (TOKEN, "tok"),
            ("authorization", "Bearer tok"),
            ("authorization", "bearer  tok "),
        ] {
            let h = headers(&[(name, value)]);
            let parsed = run(&Integration::Betterstack, &h, BODY, &["old", "tok"]).unwrap();
            assert_eq!(parsed.event_type.as_deref(), Some("incident"), "{value}");
        }
        for value in ["Basic tok", "Bearer", "tok", "Bearer tok2"] {
            let h = headers(&[("authorization", value)]);
            assert!(
                run(&Integration::Betterstack, &h, BODY, &["tok"]).is_err(),
                "{value}"
            );
        }
    }
}
