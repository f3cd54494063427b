//! An output, a destination of a bucket: where, how long to wait, how
//! often to retry, how many at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ValidationError;
use crate::ids::{BucketId, FunctionId, OutputId, TenantId};

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
