//! The sending side: what makes a body verify, for `hookrelay send`,
//! tests, fuzzing and benchmarks. One arm per integration, each delegating
//! to its provider module. Depends on the provider modules.

use crate::Integration;

/// A request about to be signed.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Where it goes: Twilio and Square sign this URL, so it must be the
    /// relay's `--public-url` plus the input's path (and any query).
    pub url: &'a str,
    /// Its `Content-Type`: Twilio signs forms and JSON differently.
    pub content_type: &'a str,
    /// The payload. Body-borne ids and event types (Stripe `id`, Slack
    /// `event_id`, ...) are the caller's to put in it.
    pub body: &'a [u8],
    /// The event type, for providers that send it in a header
    /// (`X-GitHub-Event`, `X-Gitlab-Event`, `X-Shopify-Topic`, ...).
    pub event: &'a str,
    /// The signing time, for providers that sign a timestamp.
    pub now_secs: i64,
}

/// A signed request: send `body` to `url` with `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The URL, with anything the scheme adds (Twilio's `bodySHA256`).
    pub url: String,
    /// Provider headers: signatures, timestamps, fresh delivery ids, the
    /// event type.
    pub headers: Vec<(String, String)>,
    /// The body: the payload itself, except for Mailgun, whose signature
    /// travels inside it.
    pub body: Vec<u8>,
}

impl Signed {
    pub(crate) fn of(out: &Outgoing<'_>) -> Signed {
        Signed {
            url: out.url.to_owned(),
            headers: Vec::new(),
            body: out.body.to_vec(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Signed {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The secret is not a key of this scheme: Standard Webhooks wants
    /// `whsec_<base64>`, Discord a hex Ed25519 private key (32-byte seed),
    /// SendGrid a base64 (or PEM) P-256 private key, PKCS#8 or SEC1.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The payload cannot carry this scheme's signature (Mailgun signs
    /// inside a JSON object).
    #[error("cannot sign this payload: {0}")]
    Payload(&'static str),
}

/// What makes `out` verify under `integration` with `secret`, tried first in
/// the input's secret list. For `discord` and `sendgrid`, whose inputs hold
/// the provider's public key, `secret` is the matching private key.
///
/// Headers the provider uses as delivery ids get a fresh random value
/// (UUID v4), so two sends of one body are not deduplicated.
///
/// ```
/// let out = verify::Outgoing {
///     url: "https://relay.example/v1/webhooks/x",
///     content_type: "application/json",
///     body: b"Hello, World!",
///     event: "ping",
///     now_secs: 0,
/// };
/// let signed = verify::sign(&verify::Integration::Github, "It's a Secret to Everybody", &out).unwrap();
/// assert_eq!(signed.headers[0].0, "X-Hub-Signature-256");
/// assert_eq!(signed.headers[0].1, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
/// ```
pub fn sign(
    integration: &Integration,
    secret: &str,
    out: &Outgoing<'_>,
) -> Result<Signed, SignError> {
    match integration {
        Integration::Github => crate::github::sign(secret, out),
        Integration::Gitlab => crate::gitlab::sign(secret, out),
        Integration::Stripe => crate::stripe::sign(secret, out),
        Integration::Slack => crate::slack::sign(secret, out),
        Integration::Shopify => crate::shopify::sign(secret, out),
        Integration::Standard => crate::standard::sign(secret, out),
        Integration::Sentry => crate::sentry::sign(secret, out),
        Integration::Linear => crate::linear::sign(secret, out),
        Integration::Vercel => crate::vercel::sign(secret, out),
        Integration::Betterstack => crate::betterstack::sign(secret, out),
        Integration::Twilio => crate::twilio::sign(secret, out),
        Integration::Bitbucket => crate::bitbucket::sign(secret, out),
        Integration::Paddle => crate::paddle::sign(secret, out),
        Integration::Intercom => crate::intercom::sign(secret, out),
        Integration::Typeform => crate::typeform::sign(secret, out),
        Integration::Pagerduty => crate::pagerduty::sign(secret, out),
        Integration::Square => crate::square::sign(secret, out),
        Integration::Zoom => crate::zoom::sign(secret, out),
        Integration::Twitch => crate::twitch::sign(secret, out),
        Integration::Mailgun => crate::mailgun::sign(secret, out),
        Integration::Discord => crate::discord::sign(secret, out),
        Integration::Sendgrid => crate::sendgrid::sign(secret, out),
        Integration::GenericHmac(cfg) => Ok(crate::generic_hmac::sign(cfg, secret, out)),
    }
}

/// For `discord` and `sendgrid`: the public key to put in the input's
/// secrets (hex for Discord, base64 DER for SendGrid) that matches a private
/// key [`sign`] accepts. `None` for other integrations or a bad key.
pub fn public_key(integration: &Integration, private: &str) -> Option<String> {
    match integration {
        Integration::Discord => crate::discord::public_key(private),
        Integration::Sendgrid => crate::sendgrid::public_key(private),
        _ => None,
    }
}

/// A fresh delivery id.
pub(crate) fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An [`Outgoing`] for unit tests that only care about the body.
#[cfg(test)]
pub(crate) fn tests_outgoing(body: &[u8]) -> Outgoing<'_> {
    Outgoing {
        url: "https://relay.example/v1/webhooks/x",
        content_type: "application/json",
        body,
        event: "ping",
        now_secs: 1_700_000_000,
    }
}
