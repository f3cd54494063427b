//! The closed set of signature schemes (DESIGN §4) by name, and the
//! configuration of the one a tenant defines itself (`generic-hmac`). The
//! verification code lives in the `verify` crate.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The closed set of signature schemes (DESIGN §4). The verification code
/// for each lives in the `verify` crate; this is only the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrationKind {
    Github,
    Gitlab,
    Stripe,
    Slack,
    Shopify,
    Standard,
    Sentry,
    Linear,
    Vercel,
    Betterstack,
    Twilio,
    GenericHmac,
    Bitbucket,
    Paddle,
    Intercom,
    Typeform,
    Pagerduty,
    Square,
    Zoom,
    Twitch,
    Mailgun,
    /// Ed25519: the input's `secrets` hold the application's public key(s),
    /// hex as the Discord developer portal shows it.
    Discord,
    /// ECDSA P-256: the input's `secrets` hold the verification key(s),
    /// base64 DER as SendGrid shows it (a PEM block is accepted too).
    Sendgrid,
}

impl IntegrationKind {
    /// Every supported integration, in documentation order: DESIGN §4's
    /// required set first, then the others.
    pub const ALL: &'static [IntegrationKind] = &[
        IntegrationKind::Github,
        IntegrationKind::Gitlab,
        IntegrationKind::Stripe,
        IntegrationKind::Slack,
        IntegrationKind::Shopify,
        IntegrationKind::Standard,
        IntegrationKind::Sentry,
        IntegrationKind::Linear,
        IntegrationKind::Vercel,
        IntegrationKind::Betterstack,
        IntegrationKind::Twilio,
        IntegrationKind::GenericHmac,
        IntegrationKind::Bitbucket,
        IntegrationKind::Paddle,
        IntegrationKind::Intercom,
        IntegrationKind::Typeform,
        IntegrationKind::Pagerduty,
        IntegrationKind::Square,
        IntegrationKind::Zoom,
        IntegrationKind::Twitch,
        IntegrationKind::Mailgun,
        IntegrationKind::Discord,
        IntegrationKind::Sendgrid,
    ];

    /// The name used in the API, the CLI and `WEBHOOK_SECRET_<NAME>`.
    pub fn name(self) -> &'static str {
        match self {
            IntegrationKind::Github => "github",
            IntegrationKind::Gitlab => "gitlab",
            IntegrationKind::Stripe => "stripe",
            IntegrationKind::Slack => "slack",
            IntegrationKind::Shopify => "shopify",
            IntegrationKind::Standard => "standard",
            IntegrationKind::Sentry => "sentry",
            IntegrationKind::Linear => "linear",
            IntegrationKind::Vercel => "vercel",
            IntegrationKind::Betterstack => "betterstack",
            IntegrationKind::Twilio => "twilio",
            IntegrationKind::GenericHmac => "generic-hmac",
            IntegrationKind::Bitbucket => "bitbucket",
            IntegrationKind::Paddle => "paddle",
            IntegrationKind::Intercom => "intercom",
            IntegrationKind::Typeform => "typeform",
            IntegrationKind::Pagerduty => "pagerduty",
            IntegrationKind::Square => "square",
            IntegrationKind::Zoom => "zoom",
            IntegrationKind::Twitch => "twitch",
            IntegrationKind::Mailgun => "mailgun",
            IntegrationKind::Discord => "discord",
            IntegrationKind::Sendgrid => "sendgrid",
        }
    }

    /// Parses an integration name (`github`, `generic-hmac`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Whether the input's `secrets` are public keys of the provider rather
    /// than shared secrets: such an input can verify but never sign.
    pub fn uses_public_key(self) -> bool {
        matches!(self, IntegrationKind::Discord | IntegrationKind::Sendgrid)
    }
}

/// Digest of a generic HMAC signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// Text encoding of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// Configuration of the `generic-hmac` integration (DESIGN §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenericHmac {
    pub header: String,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_names_match_their_json_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &kind in IntegrationKind::ALL {
            assert!(seen.insert(kind.name()), "{kind:?}");
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
            assert_eq!(IntegrationKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(IntegrationKind::ALL.len(), 23);
        assert!(IntegrationKind::Discord.uses_public_key());
        assert!(!IntegrationKind::Stripe.uses_public_key());
        assert_eq!(IntegrationKind::from_name("Stripe"), None);
    }
}
