//! An input's ingest limits (DESIGN §3.1 steps 3 and 5, §13): its body
//! limit and its rate limit, and the defaults filled in when an input is
//! made, which depend on how it was made.
//!
//! Two sets of defaults, because two contracts meet here:
//! - Radarboard provisioning (`WEBHOOK_SECRET_<NAME>`, `PUT
//!   /api/tenants/{id}/secrets`) keeps that relay's numbers exactly:
//!   256 KiB, 100 requests a minute, every request counted.
//! - Inputs made through `/v1` get numbers that let real provider traffic
//!   through: the provider's documented maximum body, and, when the input
//!   can tell a genuine request from a forged one (an integration or bucket
//!   auth), a limit that counts only refused requests, so a burst of 130
//!   GitHub deliveries in a minute (GitHub never retries a failed one by
//!   itself) all land while a flood of forged ones is cut at 100.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::objects::{IntegrationKind, RateLimit, ValidationError};

/// Which requests an input's rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RateCount {
    /// Every request that reaches step 5.
    #[default]
    All,
    /// Only requests that a later step refuses (bucket auth, replay,
    /// signature, parse). Past the limit, every request from that address
    /// is refused at step 5 until the window slides.
    Refused,
}

/// An input's `rateLimit`: `requests` per `windowSeconds` per (tenant,
/// input, client IP), counting what `count` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputRateLimit {
    pub requests: u32,
    pub window_seconds: u32,
    /// Stored limits from before `count` existed counted every request.
    #[serde(default)]
    pub count: RateCount,
}

impl InputRateLimit {
    /// Radarboard's limit: 100 a minute, every request counted.
    pub const RADARBOARD: InputRateLimit = InputRateLimit {
        requests: 100,
        window_seconds: 60,
        count: RateCount::All,
    };
    /// An input that can tell forged requests from genuine ones: 100 refused
    /// requests a minute, the same cut Radarboard applies to a flood, but
    /// a provider's genuine burst is never counted.
    pub const VERIFIED: InputRateLimit = InputRateLimit {
        requests: 100,
        window_seconds: 60,
        count: RateCount::Refused,
    };
    /// A plain input, which cannot tell: 6000 a minute (100 a second from
    /// one address), every request counted. Enough for a CI system or a
    /// home-grown sender; still a bound on one address's flood.
    pub const PLAIN: InputRateLimit = InputRateLimit {
        requests: 6000,
        window_seconds: 60,
        count: RateCount::All,
    };

    /// The sliding window the store counts in.
    pub fn window(&self) -> RateLimit {
        RateLimit {
            requests: self.requests,
            window_seconds: self.window_seconds,
        }
    }

    /// Both numbers must be positive.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.window().validate()
    }
}

/// Radarboard's body limit: 256 KiB.
pub const RADARBOARD_BODY_LIMIT: u64 = 256 * 1024;
/// A plain input's body limit: 1 MiB, nginx's `client_max_body_size`
/// default, which most senders already fit under.
pub const PLAIN_BODY_LIMIT: u64 = 1024 * 1024;
/// Hard ceiling for a configured body limit: 32 MiB, above the largest
/// documented provider maximum (GitHub's and GitLab's 25 MiB). A body is
/// held in memory while it is checked, so this bounds one request's share
/// of the server's body budget.
pub const MAX_BODY_LIMIT: u64 = 32 * 1024 * 1024;

impl IntegrationKind {
    /// The largest body the provider documents sending, as the default
    /// body limit of an input made through `/v1` (the README's integration
    /// table lists them). Providers that document no maximum get the
    /// plain default: their payloads are single JSON objects far below it.
    pub fn documented_body_limit(self) -> u64 {
        match self {
            // GitHub: "Payloads are capped at 25 MB"; GitLab refuses to send
            // a payload over 25 MB (its webhook limit).
            IntegrationKind::Github | IntegrationKind::Gitlab => 25 * 1024 * 1024,
            _ => PLAIN_BODY_LIMIT,
        }
    }
}

/// How an input came to be, which decides its default limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// `WEBHOOK_SECRET_<NAME>` or `PUT /api/tenants/{id}/secrets`.
    Radarboard,
    /// `POST /v1/buckets/{id}/inputs`; `bucket_auth` is whether the
    /// input's bucket has basic or token auth.
    V1 { bucket_auth: bool },
}

/// The defaults of an input made by `how` with `integration`.
pub fn default_limits(
    how: Provisioning,
    integration: Option<IntegrationKind>,
) -> (u64, InputRateLimit) {
    match how {
        Provisioning::Radarboard => (RADARBOARD_BODY_LIMIT, InputRateLimit::RADARBOARD),
        Provisioning::V1 { bucket_auth } => {
            let body = integration.map_or(PLAIN_BODY_LIMIT, IntegrationKind::documented_body_limit);
            let rate = if integration.is_some() || bucket_auth {
                InputRateLimit::VERIFIED
            } else {
                InputRateLimit::PLAIN
            };
            (body, rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_how_the_input_was_made() {
        let gh = Some(IntegrationKind::Github);
        let v1 = Provisioning::V1 { bucket_auth: false };
        let table = [
            (
                Provisioning::Radarboard,
                gh,
                262_144,
                InputRateLimit::RADARBOARD,
            ),
            (v1, gh, 26_214_400, InputRateLimit::VERIFIED),
            (
                v1,
                Some(IntegrationKind::Stripe),
                1_048_576,
                InputRateLimit::VERIFIED,
            ),
            (v1, None, 1_048_576, InputRateLimit::PLAIN),
            (
                Provisioning::V1 { bucket_auth: true },
                None,
                1_048_576,
                InputRateLimit::VERIFIED,
            ),
        ];
        for (how, integration, body, rate) in table {
            assert_eq!(
                default_limits(how, integration),
                (body, rate),
                "{how:?} {integration:?}"
            );
        }
    }

    #[test]
    fn a_stored_limit_without_count_counted_everything() {
        let old: InputRateLimit =
            serde_json::from_str(r#"{"requests":5,"windowSeconds":60}"#).unwrap();
        assert_eq!(old.count, RateCount::All);
        let json = serde_json::to_value(InputRateLimit::VERIFIED).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"requests": 100, "windowSeconds": 60, "count": "refused"})
        );
    }

    #[test]
    fn every_documented_limit_is_allowed() {
        for kind in IntegrationKind::ALL {
            assert!(kind.documented_body_limit() <= MAX_BODY_LIMIT);
        }
    }
}
