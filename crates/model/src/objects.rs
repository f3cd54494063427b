//! The administered objects of DESIGN §1 and §3.4: tenant, bucket, input,
//! output and token, with their defaults and validation.
//!
//! These are the domain shapes, not the API's (the server's views are
//! their own structs). Secrets they carry (bucket passwords, input secrets,
//! token hashes) are [`Secret`]s, which do not serialise: an object's serde
//! form skips them, and a store seals them through [`BucketAuth::sealable`]
//! or [`Secret::expose`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{BucketId, FunctionId, InputId, OutputId, TenantId, TokenKey};
use crate::limits::{self, InputRateLimit, Provisioning};
use crate::Secret;

/// A field that failed validation, named as in the API's JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The JSON field name (`name`, `rateLimit.requests`, ...).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ValidationError {
    /// A validation failure of `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// The unit of isolation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: TenantId,
    pub label: String,
    /// Tenant kill switch: when false every input of the tenant answers 503.
    pub enabled: bool,
    pub created_at: i64,
}

/// How callers authenticate to every input of a bucket (DESIGN §1).
///
/// Not `Serialize` (it holds secrets): [`BucketAuth::sealable`] is the
/// form a store encrypts, [`BucketAuth::redacted`] the shown one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum BucketAuth {
    None,
    Basic {
        username: String,
        #[schema(value_type = String)]
        password: Secret,
    },
    Token {
        #[schema(value_type = String)]
        token: Secret,
    },
}

/// [`BucketAuth`] in the JSON it is parsed from, secrets included: only to
/// be encrypted at rest (see [`BucketAuth::sealable`]).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SealableAuth<'a> {
    None,
    Basic {
        username: &'a str,
        password: &'a str,
    },
    Token {
        token: &'a str,
    },
}

impl BucketAuth {
    /// No auth (the default).
    pub fn none() -> Self {
        BucketAuth::None
    }

    /// The auth with its secrets in the clear, as `BucketAuth` parses it
    /// back: the one way it serialises, for a store to seal at rest.
    pub fn sealable(&self) -> SealableAuth<'_> {
        match self {
            BucketAuth::None => SealableAuth::None,
            BucketAuth::Basic { username, password } => SealableAuth::Basic {
                username,
                password: password.expose(),
            },
            BucketAuth::Token { token } => SealableAuth::Token {
                token: token.expose(),
            },
        }
    }

    /// The same auth with its secrets removed, for API answers.
    pub fn redacted(&self) -> serde_json::Value {
        match self {
            BucketAuth::None => serde_json::json!({"type": "none"}),
            BucketAuth::Basic { username, .. } => {
                serde_json::json!({"type": "basic", "username": username})
            }
            BucketAuth::Token { .. } => serde_json::json!({"type": "token"}),
        }
    }
}

/// A named group of inputs and outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub id: BucketId,
    pub tenant: TenantId,
    pub name: String,
    /// Sealed apart by the stores; never in the bucket's serde form.
    #[serde(skip_serializing, default = "BucketAuth::none")]
    pub auth: BucketAuth,
    /// Bodies, headers and queries of an ephemeral bucket are never stored.
    pub ephemeral: bool,
    pub retention_seconds: u64,
    pub catchup_seconds: u64,
    /// Bucket kill switch.
    pub enabled: bool,
    pub created_at: i64,
}

impl Bucket {
    /// Default retention: 24 h.
    pub const DEFAULT_RETENTION_SECONDS: u64 = 86_400;
    /// Default catch-up window for a reconnecting agent: 10 min.
    pub const DEFAULT_CATCHUP_SECONDS: u64 = 600;
}

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

/// What the caller of an input is answered (DESIGN §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ResponsePolicy {
    Default,
    Static {
        status: u16,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: String,
    },
    #[serde(rename_all = "camelCase")]
    Wait {
        #[serde(default = "ResponsePolicy::default_wait_ms")]
        timeout_ms: u64,
        #[serde(default)]
        headers: Vec<String>,
    },
    /// The input's function (DESIGN §9) decides the answer; `default`
    /// when it sets none. Needs the input's `functionId`.
    Function,
}

impl ResponsePolicy {
    fn default_wait_ms() -> u64 {
        10_000
    }

    /// Checks the status and headers of a static answer.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            ResponsePolicy::Static {
                status, headers, ..
            } => {
                if !(200..=599).contains(status) {
                    return Err(ValidationError::new(
                        "response.status",
                        "must be between 200 and 599",
                    ));
                }
                for (name, value) in headers {
                    let name_ok = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                    let value_ok = value
                        .bytes()
                        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
                    if !name_ok || !value_ok {
                        return Err(ValidationError::new(
                            "response.headers",
                            format!("invalid header {name:?}"),
                        ));
                    }
                }
                Ok(())
            }
            ResponsePolicy::Wait {
                timeout_ms,
                headers,
            } => {
                if !(1..=60_000).contains(timeout_ms) {
                    return Err(ValidationError::new(
                        "response.timeoutMs",
                        "must be between 1 and 60000",
                    ));
                }
                if headers.len() > 32 || headers.iter().any(|h| h.is_empty() || h.len() > 128) {
                    return Err(ValidationError::new(
                        "response.headers",
                        "at most 32 header names of 1 to 128 characters",
                    ));
                }
                Ok(())
            }
            ResponsePolicy::Default | ResponsePolicy::Function => Ok(()),
        }
    }
}

/// A sliding-window rate limit: `requests` per `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub window_seconds: u32,
}

impl RateLimit {
    /// Both numbers must be positive.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.requests == 0 {
            return Err(ValidationError::new(
                "rateLimit.requests",
                "must be positive",
            ));
        }
        if self.window_seconds == 0 || self.window_seconds > 86_400 {
            return Err(ValidationError::new(
                "rateLimit.windowSeconds",
                "must be between 1 and 86400",
            ));
        }
        Ok(())
    }
}

/// A public endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub id: InputId,
    pub tenant: TenantId,
    pub bucket: BucketId,
    /// Slug, unique in the tenant; routes `/api/webhooks/{name}`.
    pub name: Option<String>,
    pub integration: Option<IntegrationKind>,
    pub generic_hmac: Option<GenericHmac>,
    /// Newest first; each is tried in order (rotation).
    #[serde(skip_serializing, default)]
    pub secrets: Vec<Secret>,
    pub response: ResponsePolicy,
    /// Input kill switch.
    pub enabled: bool,
    /// Filled in when the input is made ([`Input::fill_default_limits`]);
    /// `None` only in inputs stored before defaults were filled in, which
    /// were made with Radarboard's numbers.
    pub body_limit: Option<u64>,
    /// As `body_limit`.
    pub rate_limit: Option<InputRateLimit>,
    pub timestamp_tolerance_seconds: u64,
    /// Answer the provider's URL-verification handshake (DESIGN §13).
    #[serde(default = "crate::objects::yes")]
    pub handshakes: bool,
    /// The function run on each verified request (DESIGN §9).
    #[serde(default)]
    pub function_id: Option<FunctionId>,
    pub created_at: i64,
}

pub(crate) fn yes() -> bool {
    true
}

impl Input {
    /// Hard ceiling for a configured body limit.
    pub const MAX_BODY_LIMIT: u64 = limits::MAX_BODY_LIMIT;
    /// Default tolerance of a signed timestamp, either way.
    pub const DEFAULT_TIMESTAMP_TOLERANCE_SECONDS: u64 = 300;

    /// Checks the rules that tie fields together.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(name) = &self.name {
            validate_slug("name", name)?;
        }
        match (self.integration, &self.generic_hmac) {
            (Some(IntegrationKind::GenericHmac), None) => {
                return Err(ValidationError::new(
                    "genericHmac",
                    "required with integration generic-hmac",
                ))
            }
            (Some(IntegrationKind::GenericHmac), Some(cfg)) if cfg.header.trim().is_empty() => {
                return Err(ValidationError::new(
                    "genericHmac.header",
                    "must not be empty",
                ))
            }
            (Some(IntegrationKind::GenericHmac), Some(cfg))
                if cfg.header.len() > 256 || cfg.prefix.as_ref().is_some_and(|p| p.len() > 64) =>
            {
                return Err(ValidationError::new(
                    "genericHmac",
                    "header name at most 256 bytes, prefix at most 64",
                ))
            }
            (Some(IntegrationKind::GenericHmac), Some(_)) => {}
            (_, Some(_)) => {
                return Err(ValidationError::new(
                    "genericHmac",
                    "only allowed with integration generic-hmac",
                ))
            }
            _ => {}
        }
        if self.integration.is_some() && self.secrets.is_empty() {
            return Err(ValidationError::new(
                "secrets",
                "an input with an integration needs at least one secret",
            ));
        }
        if self.secrets.iter().any(|s| s.expose().is_empty()) {
            return Err(ValidationError::new(
                "secrets",
                "a secret must not be empty",
            ));
        }
        crate::caps::check_secrets("secrets", &self.secrets)?;
        if let Some(limit) = self.body_limit {
            if limit == 0 || limit > Self::MAX_BODY_LIMIT {
                return Err(ValidationError::new(
                    "bodyLimit",
                    format!("must be between 1 and {}", Self::MAX_BODY_LIMIT),
                ));
            }
        }
        if let Some(rate) = &self.rate_limit {
            rate.validate()?;
        }
        if self.response == ResponsePolicy::Function && self.function_id.is_none() {
            return Err(ValidationError::new(
                "functionId",
                "required with the response policy function",
            ));
        }
        self.response.validate()
    }

    /// Fills in the limits left unset with the defaults of an input made
    /// by `how` (DESIGN §13), so the stored input and its view show them.
    pub fn fill_default_limits(&mut self, how: Provisioning) {
        let (body, rate) = limits::default_limits(how, self.integration);
        self.body_limit.get_or_insert(body);
        self.rate_limit.get_or_insert(rate);
    }

    /// The body limit in force.
    pub fn effective_body_limit(&self) -> u64 {
        self.body_limit.unwrap_or(limits::RADARBOARD_BODY_LIMIT)
    }

    /// The rate limit in force.
    pub fn effective_rate_limit(&self) -> InputRateLimit {
        self.rate_limit.unwrap_or(InputRateLimit::RADARBOARD)
    }
}

/// Checks a slug: 1 to 64 of `[a-z0-9-_]`, starting with a letter or digit.
pub fn validate_slug(field: &'static str, value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be 1 to 64 of lowercase letters, digits, '-' or '_'",
        ))
    }
}

/// How often a failed delivery is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; each later one waits four times
    /// longer (with jitter), capped at six hours.
    pub initial_delay_ms: u64,
}

impl RetryPolicy {
    /// With the defaults, 8 tries span about 7.5 hours: within the day
    /// DESIGN §5 promises.
    pub const DEFAULT_INITIAL_DELAY_MS: u64 = 5_000;
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_delay_ms: Self::DEFAULT_INITIAL_DELAY_MS,
        }
    }
}

/// A destination of a bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub id: OutputId,
    pub tenant: TenantId,
    pub bucket: BucketId,
    pub url: String,
    /// True: delivered by agents inside the private network.
    pub internal: bool,
    pub timeout_ms: u64,
    pub headers: BTreeMap<String, String>,
    pub retry: RetryPolicy,
    /// Requests to the destination in flight at once, across the output's
    /// agent group (DESIGN §5).
    #[serde(default = "Output::default_concurrency")]
    pub concurrency: u32,
    /// One request at a time per agent group, first attempts in event
    /// order; a retry waiting out its backoff holds nothing back.
    #[serde(default)]
    pub ordered: bool,
    /// The function run per (event, output) when a delivery is built.
    #[serde(default)]
    pub function_id: Option<FunctionId>,
    pub created_at: i64,
}

impl Output {
    /// DESIGN §13: 16 in flight lets a 50 ms destination take 320 events/s.
    pub const DEFAULT_CONCURRENCY: u32 = 16;

    /// The most requests in flight an output may ask for.
    pub const MAX_CONCURRENCY: u32 = 1_024;

    fn default_concurrency() -> u32 {
        Self::DEFAULT_CONCURRENCY
    }

    /// How many of this output's deliveries may be under way at once.
    pub fn in_flight_limit(&self) -> usize {
        if self.ordered {
            1
        } else {
            self.concurrency.max(1) as usize
        }
    }

    /// Checks the concurrency, the URL, the headers and the retry policy.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !(1..=Self::MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(ValidationError::new(
                "concurrency",
                "must be between 1 and 1024",
            ));
        }
        crate::caps::check_output_headers(&self.headers)?;
        let scheme_ok = self.url.starts_with("http://") || self.url.starts_with("https://");
        if !scheme_ok || self.url.len() > 2048 || self.url.chars().any(char::is_whitespace) {
            return Err(ValidationError::new(
                "url",
                "must be an absolute http(s) URL",
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > 300_000 {
            return Err(ValidationError::new(
                "timeoutMs",
                "must be between 1 and 300000",
            ));
        }
        if self.retry.max_attempts == 0 || self.retry.max_attempts > 100 {
            return Err(ValidationError::new(
                "retry.maxAttempts",
                "must be between 1 and 100",
            ));
        }
        if !(10..=3_600_000).contains(&self.retry.initial_delay_ms) {
            return Err(ValidationError::new(
                "retry.initialDelayMs",
                "must be between 10 and 3600000",
            ));
        }
        Ok(())
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    Admin,
    Tenant,
    Agent,
    Poll,
}

impl TokenScope {
    /// The scope's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            TokenScope::Admin => "admin",
            TokenScope::Tenant => "tenant",
            TokenScope::Agent => "agent",
            TokenScope::Poll => "poll",
        }
    }
}

/// An agent token's mode, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentMode {
    Forward,
    Tunnel,
}

/// An access credential. Only the bcrypt hash of its secret is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub key: TokenKey,
    pub tenant: TenantId,
    pub scope: TokenScope,
    /// Agent and poll tokens: the buckets they may read; empty means all.
    pub buckets: Vec<BucketId>,
    pub mode: Option<AgentMode>,
    pub description: String,
    #[serde(skip_serializing, default = "empty_secret")]
    pub secret_hash: Secret,
    pub created_at: i64,
}

fn empty_secret() -> Secret {
    Secret::new("")
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

    fn input() -> Input {
        Input {
            id: InputId::generate(),
            tenant: TenantId::default_tenant(),
            bucket: BucketId::generate(),
            name: Some("github".into()),
            integration: Some(IntegrationKind::Github),
            generic_hmac: None,
            secrets: vec![Secret::new("s")],
            response: ResponsePolicy::Default,
            enabled: true,
            body_limit: None,
            rate_limit: None,
            timestamp_tolerance_seconds: 300,
            handshakes: true,
            function_id: None,
            created_at: 0,
        }
    }

    #[test]
    fn input_rules() {
        assert!(input().validate().is_ok());
        let mut i = input();
        i.secrets.clear();
        assert_eq!(i.validate().unwrap_err().field, "secrets");
        let mut i = input();
        i.integration = Some(IntegrationKind::GenericHmac);
        assert_eq!(i.validate().unwrap_err().field, "genericHmac");
        let mut i = input();
        i.name = Some("Bad Name".into());
        assert_eq!(i.validate().unwrap_err().field, "name");
        let mut i = input();
        i.body_limit = Some(0);
        assert_eq!(i.validate().unwrap_err().field, "bodyLimit");
    }

    #[test]
    fn policies_parse_as_documented() {
        let p: ResponsePolicy = serde_json::from_str(
            r#"{"type":"static","status":202,"headers":{"x-a":"b"},"body":"ok"}"#,
        )
        .unwrap();
        assert!(p.validate().is_ok());
        let bad: ResponsePolicy = serde_json::from_str(r#"{"type":"static","status":99}"#).unwrap();
        assert!(bad.validate().is_err());
        assert!(serde_json::from_str::<ResponsePolicy>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn secrets_never_serialise() {
        let json = serde_json::to_string(&input()).unwrap();
        assert!(!json.contains("secrets"));
        let sealable = BucketAuth::Basic {
            username: "u".into(),
            password: Secret::new("pw"),
        };
        let sealed = serde_json::to_string(&sealable.sealable()).unwrap();
        let back: BucketAuth = serde_json::from_str(&sealed).unwrap();
        assert!(matches!(back, BucketAuth::Basic { password, .. } if password.expose() == "pw"));
        let auth = BucketAuth::Basic {
            username: "u".into(),
            password: Secret::new("pw"),
        };
        assert!(!auth.redacted().to_string().contains("pw"));
    }
}
