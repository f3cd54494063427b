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
//! - one module per provider (`github`, `stripe`, `slack`, ... `sendgrid`,
//!   `generic_hmac`), each with `preflight`, `verify`, `parse` and `sign`
//!   functions and its provider's published example as a unit test. A new
//!   provider is a new module plus one arm in each `match` here and in
//!   `sign`; `conformance` then tests it with all the others.
//! - `signature`: HMAC, signature decoding into stack buffers (one or a
//!   list of candidates) and the constant-time comparisons every HMAC and
//!   token scheme shares. Discord (Ed25519) and SendGrid (ECDSA P-256) use
//!   `ed25519-dalek` and `p256` in their own modules.
//! - `header`, `timestamp`: bounded reads of request headers, and the
//!   timestamp forms and tolerance of step 7.
//! - `media`, `form`, `json`: Content-Type comparison, form fields and the
//!   one bounded JSON parse of a body.
//! - `handshake`: the answers to provider URL-verification handshakes
//!   (Slack, Zoom, Twitch, Discord), asked only after the signature verified.
//! - `sign`: the sending side, for `hookrelay send`, tests, fuzzing and the
//!   benchmark (`benches/verify.rs`).
//!
//! # Bounds on untrusted input
//! Signature header values longer than [`MAX_SIGNATURE_HEADER_LEN`] are
//! rejected before they are decoded, decoding writes into fixed stack
//! buffers, and a list of signatures is read up to eight entries. Bodies are
//! parsed at most once, without keeping unknown fields, and are already
//! bounded by the input's body limit (step 3). Delivery ids and event types read from headers are stored and
//! used as dedup keys, so they are not truncated (two distinct ids must never
//! collapse into one key): a value that is empty, longer than [`MAX_ID_LEN`]
//! or not visible ASCII is refused with [`Rejection::InvalidPayload`]. An
//! absent header is simply `None`.

#![warn(missing_docs)]

mod betterstack;
mod bitbucket;
#[cfg(test)]
mod conformance;
mod discord;
mod form;
mod generic_hmac;
mod github;
mod gitlab;
mod handshake;
mod header;
mod intercom;
mod json;
mod linear;
mod mailgun;
mod media;
mod paddle;
mod pagerduty;
mod sendgrid;
mod sentry;
mod shopify;
mod sign;
mod signature;
mod slack;
mod square;
mod standard;
mod stripe;
mod timestamp;
mod twilio;
mod twitch;
mod typeform;
mod vercel;
mod zoom;

pub use form::{field as form_field, field_is_named as form_field_is_named};
pub use handshake::{Handshake, MAX_CHALLENGE_LEN};
pub use media::media_type;
pub use sign::{public_key, sign, Outgoing, SignError, Signed};

use model::{GenericHmac, IntegrationKind, Secret};

/// Longest signature header value that is decoded at all. The longest
/// legitimate one is a Standard Webhooks list during a rotation (a few
/// `v1,<base64>` entries, about 50 bytes each).
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
    /// The URL the provider called, rebuilt as `--public-url` plus the
    /// request's path and query (Twilio and Square sign it; DESIGN §8).
    pub public_url: &'a str,
}

/// A configured signature scheme: which provider, plus its settings where it
/// has any. The set is closed, so this is an enum and every step a `match`.
#[derive(Debug, Clone)]
pub enum Integration {
    /// GitHub: `X-Hub-Signature-256`, falling back to `X-Hub-Signature`.
    Github,
    /// GitLab: the secret token in `X-Gitlab-Token`.
    Gitlab,
    /// Stripe: `Stripe-Signature: t=..,v1=..`.
    Stripe,
    /// Slack: `X-Slack-Signature` over `v0:{timestamp}:{body}`.
    Slack,
    /// Shopify: base64 `X-Shopify-Hmac-Sha256`.
    Shopify,
    /// Standard Webhooks (and Svix): `webhook-signature` over `{id}.{timestamp}.{body}`.
    Standard,
    /// Sentry: `Sentry-Hook-Signature`.
    Sentry,
    /// Linear: `Linear-Signature`, `webhookTimestamp` in the body.
    Linear,
    /// Vercel: HMAC-SHA1 in `x-vercel-signature`.
    Vercel,
    /// Better Stack: a shared token in `x-betterstack-token` or `Authorization: Bearer`.
    Betterstack,
    /// Twilio: `X-Twilio-Signature` over the public URL and the form parameters.
    Twilio,
    /// Bitbucket: `X-Hub-Signature: sha256=..`.
    Bitbucket,
    /// Paddle Billing: `Paddle-Signature: ts=..;h1=..`.
    Paddle,
    /// Intercom: `X-Hub-Signature: sha1=..`.
    Intercom,
    /// Typeform: base64 `Typeform-Signature: sha256=..`.
    Typeform,
    /// PagerDuty (v3): `X-PagerDuty-Signature: v1=..[,v1=..]`.
    Pagerduty,
    /// Square: base64 `x-square-hmacsha256-signature` over the notification URL and body.
    Square,
    /// Zoom: `x-zm-signature` over `v0:{timestamp}:{body}`.
    Zoom,
    /// Twitch EventSub: `Twitch-Eventsub-Message-Signature` over id, timestamp and body.
    Twitch,
    /// Mailgun: the `signature` object inside the JSON body.
    Mailgun,
    /// Discord: Ed25519 `X-Signature-Ed25519`, public key in the secrets.
    Discord,
    /// SendGrid: ECDSA P-256 `X-Twilio-Email-Event-Webhook-Signature`, public key in the secrets.
    Sendgrid,
    /// A configurable HMAC over the raw body (DESIGN §8).
    GenericHmac(GenericHmac),
}

/// The clock of step 7: now, and how far a signed timestamp may be from it
/// either way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) now: i64,
    pub(crate) tolerance: u64,
}

impl Clock {
    pub(crate) fn check(self, ts: i64) -> Result<(), Rejection> {
        timestamp::within(ts, self.now, self.tolerance)
    }
}

impl Integration {
    /// The integration of an input. `None` when `kind` is
    /// [`IntegrationKind::GenericHmac`] and `generic` is `None`; `generic` is
    /// ignored for every other kind.
    pub fn new(kind: IntegrationKind, generic: Option<&GenericHmac>) -> Option<Integration> {
        Some(match kind {
            IntegrationKind::Github => Integration::Github,
            IntegrationKind::Gitlab => Integration::Gitlab,
            IntegrationKind::Stripe => Integration::Stripe,
            IntegrationKind::Slack => Integration::Slack,
            IntegrationKind::Shopify => Integration::Shopify,
            IntegrationKind::Standard => Integration::Standard,
            IntegrationKind::Sentry => Integration::Sentry,
            IntegrationKind::Linear => Integration::Linear,
            IntegrationKind::Vercel => Integration::Vercel,
            IntegrationKind::Betterstack => Integration::Betterstack,
            IntegrationKind::Twilio => Integration::Twilio,
            IntegrationKind::Bitbucket => Integration::Bitbucket,
            IntegrationKind::Paddle => Integration::Paddle,
            IntegrationKind::Intercom => Integration::Intercom,
            IntegrationKind::Typeform => Integration::Typeform,
            IntegrationKind::Pagerduty => Integration::Pagerduty,
            IntegrationKind::Square => Integration::Square,
            IntegrationKind::Zoom => Integration::Zoom,
            IntegrationKind::Twitch => Integration::Twitch,
            IntegrationKind::Mailgun => Integration::Mailgun,
            IntegrationKind::Discord => Integration::Discord,
            IntegrationKind::Sendgrid => Integration::Sendgrid,
            IntegrationKind::GenericHmac => Integration::GenericHmac(generic.cloned()?),
        })
    }

    /// The name of this integration's kind.
    pub fn kind(&self) -> IntegrationKind {
        match self {
            Integration::Github => IntegrationKind::Github,
            Integration::Gitlab => IntegrationKind::Gitlab,
            Integration::Stripe => IntegrationKind::Stripe,
            Integration::Slack => IntegrationKind::Slack,
            Integration::Shopify => IntegrationKind::Shopify,
            Integration::Standard => IntegrationKind::Standard,
            Integration::Sentry => IntegrationKind::Sentry,
            Integration::Linear => IntegrationKind::Linear,
            Integration::Vercel => IntegrationKind::Vercel,
            Integration::Betterstack => IntegrationKind::Betterstack,
            Integration::Twilio => IntegrationKind::Twilio,
            Integration::Bitbucket => IntegrationKind::Bitbucket,
            Integration::Paddle => IntegrationKind::Paddle,
            Integration::Intercom => IntegrationKind::Intercom,
            Integration::Typeform => IntegrationKind::Typeform,
            Integration::Pagerduty => IntegrationKind::Pagerduty,
            Integration::Square => IntegrationKind::Square,
            Integration::Zoom => IntegrationKind::Zoom,
            Integration::Twitch => IntegrationKind::Twitch,
            Integration::Mailgun => IntegrationKind::Mailgun,
            Integration::Discord => IntegrationKind::Discord,
            Integration::Sendgrid => IntegrationKind::Sendgrid,
            Integration::GenericHmac(_) => IntegrationKind::GenericHmac,
        }
    }

    /// Whether `secret` can be a key of this scheme at all, so the admin API
    /// can refuse one that could never verify: Standard Webhooks secrets are
    /// base64 (after `whsec_`), Discord's a hex Ed25519 public key,
    /// SendGrid's a P-256 public key (base64 DER or PEM). Every other scheme
    /// takes any text. The reason is fixed and never echoes the secret.
    ///
    /// ```
    /// # use verify::Integration;
    /// assert!(Integration::Standard.check_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    /// assert!(Integration::Discord.check_secret("not hex").is_err());
    /// assert!(Integration::Stripe.check_secret("anything").is_ok());
    /// ```
    pub fn check_secret(&self, secret: &str) -> Result<(), &'static str> {
        match self {
            Integration::Standard => standard::check_secret(secret),
            Integration::Discord => discord::check_secret(secret),
            Integration::Sendgrid => sendgrid::check_secret(secret),
            _ => Ok(()),
        }
    }

    /// Step 4: whether a request with this `Content-Type` is acceptable.
    /// Compared by media type, case-insensitively, parameters ignored. JSON
    /// for every provider; form-encoded too for GitHub (`payload=`), Slack
    /// (slash commands, interactivity) and Twilio; anything for generic-hmac.
    ///
    /// ```
    /// # use verify::Integration;
    /// assert!(Integration::Github.accepts_content_type(Some("Application/JSON; charset=utf-8")));
    /// assert!(Integration::Twilio.accepts_content_type(Some("application/x-www-form-urlencoded")));
    /// assert!(!Integration::Stripe.accepts_content_type(Some("application/x-www-form-urlencoded")));
    /// assert!(!Integration::Github.accepts_content_type(Some("text/plain")));
    /// assert!(!Integration::Github.accepts_content_type(None));
    /// ```
    pub fn accepts_content_type(&self, content_type: Option<&str>) -> bool {
        let Some(ct) = content_type else {
            return matches!(self, Integration::GenericHmac(_));
        };
        match self {
            Integration::GenericHmac(_) => true,
            Integration::Github | Integration::Slack | Integration::Twilio => {
                media::is(ct, media::JSON) || media::is(ct, media::FORM)
            }
            _ => media::is(ct, media::JSON),
        }
    }

    /// Step 7, the cheap part before the signature: reads the provider
    /// delivery id and, for schemes with a signed timestamp, checks it is
    /// within `tolerance_secs` of `now_secs` either way
    /// ([`Rejection::StaleTimestamp`] otherwise). The caller checks the id
    /// against its dedup set. Providers with body-borne ids or timestamps
    /// (Stripe, Slack, Vercel, Linear, Mailgun, ...) parse the body here,
    /// once; a body that does not parse is reported by
    /// [`parse`](Self::parse), after the signature, so an unsigned request
    /// is always answered `invalid_signature`.
    ///
    /// The id is not authenticated yet: record it only after
    /// [`verify`](Self::verify) succeeds.
    pub fn preflight(
        &self,
        req: &Request<'_>,
        now_secs: i64,
        tolerance_secs: u64,
    ) -> Result<Preflight, Rejection> {
        let clock = Clock {
            now: now_secs,
            tolerance: tolerance_secs,
        };
        match self {
            Integration::Github => github::preflight(req, clock),
            Integration::Gitlab => gitlab::preflight(req, clock),
            Integration::Stripe => stripe::preflight(req, clock),
            Integration::Slack => slack::preflight(req, clock),
            Integration::Shopify => shopify::preflight(req, clock),
            Integration::Standard => standard::preflight(req, clock),
            Integration::Sentry => sentry::preflight(req, clock),
            Integration::Linear => linear::preflight(req, clock),
            Integration::Vercel => vercel::preflight(req, clock),
            Integration::Betterstack => betterstack::preflight(req, clock),
            Integration::Twilio => twilio::preflight(req, clock),
            Integration::Bitbucket => bitbucket::preflight(req, clock),
            Integration::Paddle => paddle::preflight(req, clock),
            Integration::Intercom => intercom::preflight(req, clock),
            Integration::Typeform => typeform::preflight(req, clock),
            Integration::Pagerduty => pagerduty::preflight(req, clock),
            Integration::Square => square::preflight(req, clock),
            Integration::Zoom => zoom::preflight(req, clock),
            Integration::Twitch => twitch::preflight(req, clock),
            Integration::Mailgun => mailgun::preflight(req, clock),
            Integration::Discord => discord::preflight(req, clock),
            Integration::Sendgrid => sendgrid::preflight(req, clock),
            Integration::GenericHmac(_) => Ok(Preflight::default()),
        }
    }

    /// Step 8: checks the request's signature against each secret in order
    /// (rotation), comparing in constant time. A missing or malformed
    /// signature is [`Rejection::InvalidSignature`], as is an empty
    /// `secrets` (fail closed). For `discord` and `sendgrid` the secrets are
    /// the provider's public keys.
    pub fn verify(
        &self,
        req: &Request<'_>,
        preflight: &Preflight,
        secrets: &[Secret],
    ) -> Result<(), Rejection> {
        match self {
            Integration::Github => github::verify(req, preflight, secrets),
            Integration::Gitlab => gitlab::verify(req, preflight, secrets),
            Integration::Stripe => stripe::verify(req, preflight, secrets),
            Integration::Slack => slack::verify(req, preflight, secrets),
            Integration::Shopify => shopify::verify(req, preflight, secrets),
            Integration::Standard => standard::verify(req, preflight, secrets),
            Integration::Sentry => sentry::verify(req, preflight, secrets),
            Integration::Linear => linear::verify(req, preflight, secrets),
            Integration::Vercel => vercel::verify(req, preflight, secrets),
            Integration::Betterstack => betterstack::verify(req, preflight, secrets),
            Integration::Twilio => twilio::verify(req, preflight, secrets),
            Integration::Bitbucket => bitbucket::verify(req, preflight, secrets),
            Integration::Paddle => paddle::verify(req, preflight, secrets),
            Integration::Intercom => intercom::verify(req, preflight, secrets),
            Integration::Typeform => typeform::verify(req, preflight, secrets),
            Integration::Pagerduty => pagerduty::verify(req, preflight, secrets),
            Integration::Square => square::verify(req, preflight, secrets),
            Integration::Zoom => zoom::verify(req, preflight, secrets),
            Integration::Twitch => twitch::verify(req, preflight, secrets),
            Integration::Mailgun => mailgun::verify(req, preflight, secrets),
            Integration::Discord => discord::verify(req, preflight, secrets),
            Integration::Sendgrid => sendgrid::verify(req, preflight, secrets),
            Integration::GenericHmac(cfg) => generic_hmac::verify(cfg, req, secrets),
        }
    }

    /// Step 9: parses the payload of a verified request and extracts what the
    /// event records. Reuses whatever [`preflight`](Self::preflight) already
    /// read.
    pub fn parse(&self, req: &Request<'_>, preflight: Preflight) -> Result<Parsed, Rejection> {
        match self {
            Integration::Github => github::parse(req, preflight),
            Integration::Gitlab => gitlab::parse(req, preflight),
            Integration::Stripe => stripe::parse(req, preflight),
            Integration::Slack => slack::parse(req, preflight),
            Integration::Shopify => shopify::parse(req, preflight),
            Integration::Standard => standard::parse(req, preflight),
            Integration::Sentry => sentry::parse(req, preflight),
            Integration::Linear => linear::parse(req, preflight),
            Integration::Vercel => vercel::parse(req, preflight),
            Integration::Betterstack => betterstack::parse(req, preflight),
            Integration::Twilio => twilio::parse(req, preflight),
            Integration::Bitbucket => bitbucket::parse(req, preflight),
            Integration::Paddle => paddle::parse(req, preflight),
            Integration::Intercom => intercom::parse(req, preflight),
            Integration::Typeform => typeform::parse(req, preflight),
            Integration::Pagerduty => pagerduty::parse(req, preflight),
            Integration::Square => square::parse(req, preflight),
            Integration::Zoom => zoom::parse(req, preflight),
            Integration::Twitch => twitch::parse(req, preflight),
            Integration::Mailgun => mailgun::parse(req, preflight),
            Integration::Discord => discord::parse(req, preflight),
            Integration::Sendgrid => sendgrid::parse(req, preflight),
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
/// Non-exhaustive so providers with a body-borne delivery id keep their
/// bounded parse here privately; build one with `Preflight::default()`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Preflight {
    /// The provider's id for this delivery, the dedup key.
    pub delivery_id: Option<String>,
    /// What the body said, or why it could not be read (reported at step 9).
    pub(crate) body: BodyFacts,
}

impl Preflight {
    /// A preflight whose body facts are `facts` and whose delivery id is
    /// `header_id`, or else the body's.
    pub(crate) fn new(header_id: Option<&str>, facts: Result<Facts, Rejection>) -> Preflight {
        let delivery_id = header_id
            .map(str::to_owned)
            .or_else(|| facts.as_ref().ok().and_then(|f| f.delivery_id.clone()));
        Preflight {
            delivery_id,
            body: BodyFacts(facts),
        }
    }

    /// Step 9 for most providers: the body's error if it had one, else the
    /// event type from `header_event` or the body.
    pub(crate) fn finish(self, header_event: Option<&str>) -> Result<Parsed, Rejection> {
        let facts = self.body.0?;
        Ok(Parsed {
            delivery_id: self.delivery_id,
            event_type: header_event.map(str::to_owned).or(facts.event_type),
            event_count: facts.event_count.unwrap_or(1),
        })
    }
}

/// The outcome of step 7's body parse.
#[derive(Debug, Clone)]
pub(crate) struct BodyFacts(pub(crate) Result<Facts, Rejection>);

impl Default for BodyFacts {
    fn default() -> Self {
        BodyFacts(Ok(Facts::default()))
    }
}

/// What a provider's body says about itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub(crate) delivery_id: Option<String>,
    pub(crate) event_type: Option<String>,
    /// `None` is one event.
    pub(crate) event_count: Option<u32>,
    /// Mailgun's signature travels in the body.
    pub(crate) mailgun: Option<mailgun::BodySignature>,
}

impl Facts {
    /// Facts from optional body fields, each checked like a header value.
    pub(crate) fn checked(
        delivery_id: Option<&str>,
        event_type: Option<&str>,
    ) -> Result<Facts, Rejection> {
        Ok(Facts {
            delivery_id: delivery_id
                .map(|v| header::check_id(v, "malformed delivery id"))
                .transpose()?
                .map(str::to_owned),
            event_type: event_type
                .map(|v| header::check_event(v, "malformed event type"))
                .transpose()?
                .map(str::to_owned),
            ..Facts::default()
        })
    }
}

/// The body's `id` and `type`, the common shape (Vercel).
pub(crate) fn body_id_and_type(body: &[u8]) -> Result<Facts, Rejection> {
    #[derive(serde::Deserialize)]
    struct IdType {
        id: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    json::object::<IdType>(body).and_then(|e| Facts::checked(e.id.as_deref(), e.kind.as_deref()))
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
        let out = crate::sign::tests_outgoing(body);
        for (k, v) in sign(&Integration::Github, "s3cret", &out).unwrap().headers {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(&v).unwrap(),
            );
        }
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
        gh.verify(&req, &pre, &["old".into(), "s3cret".into()])
            .unwrap();
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
