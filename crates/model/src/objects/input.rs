//! An input, a public endpoint of a bucket: its integration and secrets,
//! the answer its callers get ([`ResponsePolicy`]), its limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{validate_slug, GenericHmac, IntegrationKind, ValidationError};
use crate::ids::{BucketId, FunctionId, InputId, TenantId};
use crate::limits::{self, InputRateLimit, Provisioning};
use crate::Secret;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
