//! Provider signature schemes and the ingest checks that depend on them
//! (DESIGN §3.1 steps 4, 7, 8 and 9; §4), as pure functions of a request's
//! headers and body, the input's secrets and the clock. No I/O, no async, no
//! logging: the server turns a [`Rejection`] into a status code and logs it.
//!
//! May depend on `model` and on small hashing and encoding crates, nothing of
//! ours that does I/O.
//!
//! # Layout
//! - this file: [`Integration`] and one `match` per ingest step, dispatching
//!   to a provider module. Start reading at [`Integration::verify`].
//! - `github`, `generic_hmac`: one module per integration, each with
//!   `preflight`, `verify`, `parse` and `sign` functions. A new provider is a
//!   new module plus one arm in each `match` here and in `sign`.
//! - `signature`: HMAC, signature decoding into stack buffers and the
//!   constant-time comparison every HMAC scheme shares.
//! - `header`: bounded reads of request headers.
//! - `media`, `form`, `json`: Content-Type comparison, form field lookup and
//!   the JSON shape check.
//! - `sign`: the sending side, for `hookrelay send`, tests and fuzzing.
//!
//! # Bounds on untrusted input
//! Signature header values longer than [`MAX_SIGNATURE_HEADER_LEN`] are
//! rejected before they are decoded, and decoding writes into fixed stack
//! buffers. Delivery ids and event types read from headers are stored and
//! used as dedup keys, so they are not truncated (two distinct ids must never
//! collapse into one key): a value that is empty, longer than [`MAX_ID_LEN`]
//! or not visible ASCII is refused with [`Rejection::InvalidPayload`]. An
//! absent header is simply `None`.

#![warn(missing_docs)]

mod form;
mod generic_hmac;
mod github;
mod header;
mod json;
mod media;
mod sign;
mod signature;

pub use form::{field as form_field, field_is_named as form_field_is_named};
pub use media::media_type;
pub use sign::sign;

use model::{GenericHmac, IntegrationKind, Secret};

/// Longest signature header value that is decoded at all. The longest
/// legitimate one is a prefixed hex SHA-512 (about 140 bytes).
pub const MAX_SIGNATURE_HEADER_LEN: usize = 1024;

/// Longest delivery id or event type accepted from a request.
pub const MAX_ID_LEN: usize = 256;

/// The parts of an ingest request that integrations look at.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Request headers as received.
    pub headers: &'a http::HeaderMap,
    /// The raw body, exactly as received: signatures cover these bytes.
    pub body: &'a [u8],
    /// The URL the provider called, rebuilt from `--public-url` plus path and
    /// query (Twilio signs it; DESIGN §8).
    pub public_url: &'a str,
}

/// A configured signature scheme: which provider, plus its settings where it
/// has any. The set is closed, so this is an enum and every step a `match`.
#[derive(Debug, Clone)]
pub enum Integration {
    /// GitHub: `X-Hub-Signature-256`, falling back to `X-Hub-Signature`.
    Github,
    /// A configurable HMAC over the raw body (DESIGN §8).
    GenericHmac(GenericHmac),
}

impl Integration {
    /// The integration of an input. `None` when `kind` is
    /// [`IntegrationKind::GenericHmac`] and `generic` is `None`; `generic` is
    /// ignored for every other kind.
    pub fn new(kind: IntegrationKind, generic: Option<&GenericHmac>) -> Option<Integration> {
        match kind {
            IntegrationKind::Github => Some(Integration::Github),
            IntegrationKind::GenericHmac => generic.cloned().map(Integration::GenericHmac),
        }
    }

    /// The name of this integration's kind.
    pub fn kind(&self) -> IntegrationKind {
        match self {
            Integration::Github => IntegrationKind::Github,
            Integration::GenericHmac(_) => IntegrationKind::GenericHmac,
        }
    }

    /// Step 4: whether a request with this `Content-Type` is acceptable.
    /// Compared by media type, case-insensitively, parameters ignored.
    ///
    /// ```
    /// # use verify::Integration;
    /// assert!(Integration::Github.accepts_content_type(Some("Application/JSON; charset=utf-8")));
    /// assert!(!Integration::Github.accepts_content_type(Some("text/plain")));
    /// assert!(!Integration::Github.accepts_content_type(None));
    /// ```
    pub fn accepts_content_type(&self, content_type: Option<&str>) -> bool {
        match self {
            Integration::Github => content_type.is_some_and(github::accepts),
            Integration::GenericHmac(_) => true,
        }
    }

    /// Step 7, the cheap part before the signature: reads the provider
    /// delivery id and, for schemes with a signed timestamp, checks it is
    /// within `tolerance_secs` of `now_secs` either way
    /// ([`Rejection::StaleTimestamp`] otherwise). The caller checks the id
    /// against its dedup set.
    ///
    /// The id is not authenticated yet: record it only after
    /// [`verify`](Self::verify) succeeds.
    pub fn preflight(
        &self,
        req: &Request<'_>,
        now_secs: i64,
        tolerance_secs: u64,
    ) -> Result<Preflight, Rejection> {
        // Neither scheme here signs a timestamp; Stripe, Slack, Standard
        // Webhooks and Linear will use these.
        let _ = (now_secs, tolerance_secs);
        match self {
            Integration::Github => github::preflight(req),
            Integration::GenericHmac(_) => Ok(Preflight::default()),
        }
    }

    /// Step 8: checks the request's signature against each secret in order
    /// (rotation), comparing in constant time. A missing or malformed
    /// signature is [`Rejection::InvalidSignature`], as is an empty
    /// `secrets` (fail closed).
    pub fn verify(&self, req: &Request<'_>, secrets: &[Secret]) -> Result<(), Rejection> {
        match self {
            Integration::Github => github::verify(req, secrets),
            Integration::GenericHmac(cfg) => generic_hmac::verify(cfg, req, secrets),
        }
    }

    /// Step 9: parses the payload of a verified request and extracts what the
    /// event records. Reuses whatever [`preflight`](Self::preflight) already
    /// read.
    pub fn parse(&self, req: &Request<'_>, preflight: Preflight) -> Result<Parsed, Rejection> {
        match self {
            Integration::Github => github::parse(req, preflight),
            Integration::GenericHmac(_) => Ok(Parsed {
                delivery_id: None,
                event_type: None,
                event_count: 1,
            }),
        }
    }
}

/// What step 7 learnt, handed on to step 9 so nothing is read twice.
///
/// Non-exhaustive so providers with a body-borne delivery id (Stripe, Vercel,
/// Slack) can keep their bounded parse here privately; build one with
/// `Preflight::default()`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Preflight {
    /// The provider's id for this delivery, the dedup key.
    pub delivery_id: Option<String>,
}

/// What an accepted payload says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The provider's id for this delivery, where it has one.
    pub delivery_id: Option<String>,
    /// The provider's event type (`push`, `invoice.paid`, ...).
    pub event_type: Option<String>,
    /// How many provider events the request carries (`eventCount`).
    pub event_count: u32,
}

/// Why a request was refused. Reasons are fixed strings: they never echo
/// request content, digests or secrets, so they are safe to log and to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Step 4, 415 `unsupported_media_type`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Step 7, 409 `replay`: the signed timestamp is outside the tolerance.
    #[error("timestamp outside the tolerance")]
    StaleTimestamp,
    /// Step 8, 401 `invalid_signature`.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// Steps 7 and 9, 400 `invalid_payload`.
    #[error("invalid payload: {0}")]
    InvalidPayload(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{HmacAlgorithm, SignatureEncoding};

    fn generic() -> GenericHmac {
        GenericHmac {
            header: "X-Signature".into(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: None,
        }
    }

    #[test]
    fn new_needs_generic_config_only_for_generic_hmac() {
        let cfg = generic();
        assert!(matches!(
            Integration::new(IntegrationKind::Github, None),
            Some(Integration::Github)
        ));
        assert!(Integration::new(IntegrationKind::GenericHmac, None).is_none());
        let i = Integration::new(IntegrationKind::GenericHmac, Some(&cfg));
        assert!(matches!(i, Some(Integration::GenericHmac(c)) if c == cfg));
    }

    #[test]
    fn kind_round_trips_every_kind() {
        let cfg = generic();
        for &kind in IntegrationKind::ALL {
            let i = Integration::new(kind, Some(&cfg));
            assert_eq!(i.map(|i| i.kind()), Some(kind));
        }
    }

    #[test]
    fn content_types() {
        let gh = Integration::Github;
        let generic = Integration::GenericHmac(generic());
        let table: &[(Option<&str>, bool, bool)] = &[
            (Some("application/json"), true, true),
            (Some("application/json; charset=utf-8"), true, true),
            (Some("Application/JSON"), true, true),
            (Some(" application/json ;charset=UTF-8"), true, true),
            (Some("application/x-www-form-urlencoded"), true, true),
            (Some("text/plain"), false, true),
            (Some("application/jsonx"), false, true),
            (Some("application/vnd.github+json"), false, true),
            (Some(""), false, true),
            (None, false, true),
        ];
        for &(ct, github_ok, generic_ok) in table {
            assert_eq!(gh.accepts_content_type(ct), github_ok, "github {ct:?}");
            assert_eq!(
                generic.accepts_content_type(ct),
                generic_ok,
                "generic {ct:?}"
            );
        }
    }

    #[test]
    fn whole_pipeline_on_a_signed_request() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let mut headers = http::HeaderMap::new();
        for (k, v) in sign(&Integration::Github, "s3cret", body, 0) {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(&v).unwrap(),
            );
        }
        headers.insert("x-github-event", "ping".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let req = Request {
            headers: &headers,
            body,
            public_url: "https://relay.example/",
        };
        let gh = Integration::Github;
        let pre = gh.preflight(&req, 1_700_000_000, 300).unwrap();
        let id = pre.delivery_id.clone();
        assert!(id.is_some());
        gh.verify(&req, &["old".into(), "s3cret".into()]).unwrap();
        let parsed = gh.parse(&req, pre).unwrap();
        assert_eq!(
            parsed,
            Parsed {
                delivery_id: id,
                event_type: Some("ping".into()),
                event_count: 1
            }
        );
    }

    #[test]
    fn rejection_messages_are_short_and_fixed() {
        assert_eq!(
            Rejection::InvalidSignature("signature mismatch").to_string(),
            "invalid signature: signature mismatch"
        );
        assert_eq!(
            Rejection::StaleTimestamp.to_string(),
            "timestamp outside the tolerance"
        );
    }
}
