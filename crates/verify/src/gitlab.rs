//! GitLab webhooks: the secret token as configured, in `X-Gitlab-Token`,
//! compared in constant time; it does not cover the body (DESIGN §8).
//! Delivery id from `Idempotency-Key` (constant across retries since GitLab
//! 17.4), else `X-Gitlab-Event-UUID`; event type from `X-Gitlab-Event`
//! (`Push Hook`). JSON bodies. Depends on the crate's shared modules only.

use model::Secret;

use crate::sign::{fresh_id, Outgoing, SignError, Signed};
use crate::{header, json, signature, Clock, Parsed, Preflight, Rejection, Request};

const TOKEN: &str = "x-gitlab-token";
const IDEMPOTENCY: &str = "idempotency-key";
const EVENT_UUID: &str = "x-gitlab-event-uuid";
const EVENT: &str = "x-gitlab-event";

pub(crate) fn preflight(req: &Request<'_>, _clock: Clock) -> Result<Preflight, Rejection> {
    let id = match header::token(req.headers, IDEMPOTENCY, "malformed Idempotency-Key")? {
        Some(id) => Some(id),
        None => header::token(req.headers, EVENT_UUID, "malformed X-Gitlab-Event-UUID")?,
    };
    Ok(Preflight::new(id, Ok(Default::default())))
}

pub(crate) fn verify(
    req: &Request<'_>,
    _pre: &Preflight,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let token = header::signature(req.headers, TOKEN)?;
    signature::check_token(token, secrets)
}

pub(crate) fn parse(req: &Request<'_>, pre: Preflight) -> Result<Parsed, Rejection> {
    let event = header::event(req.headers, EVENT, "malformed X-Gitlab-Event")?;
    json::require_object(req.body)?;
    pre.finish(event)
}

pub(crate) fn sign(secret: &str, out: &Outgoing<'_>) -> Result<Signed, SignError> {
    Ok(Signed::of(out)
        .header("X-Gitlab-Token", secret)
        .header("X-Gitlab-Event", out.event)
        .header("X-Gitlab-Event-UUID", fresh_id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{headers, run};
    use crate::Integration;

    /// GitLab publishes no signed example (the token is sent as is); this is
    /// the shape of its documented push event headers.
    #[test]
    fn token_and_headers() {
        let h = headers(&[
            (TOKEN, "s3cret"),
            (EVENT, "Push Hook"),
            (EVENT_UUID, "13792a34-cac6-4fda-95a8-c58e00a3954e"),
            (IDEMPOTENCY, "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),
        ]);
        let parsed = run(
            &Integration::Gitlab,
            &h,
            br#"{"object_kind":"push"}"#,
            &["old", "s3cret"],
        )
        .unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("Push Hook"));
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("f5e5f430-f57b-4e6e-9fac-d9128cd7232f")
        );
        let no_key = headers(&[(TOKEN, "s3cret"), (EVENT_UUID, "13792a34")]);
        let parsed = run(&Integration::Gitlab, &no_key, b"{}", &["s3cret"]).unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("13792a34"));
        let wrong = headers(&[(TOKEN, "s3cre")]);
        assert_eq!(
            run(&Integration::Gitlab, &wrong, b"{}", &["s3cret"]),
            Err(Rejection::InvalidSignature("token mismatch"))
        );
    }
}
