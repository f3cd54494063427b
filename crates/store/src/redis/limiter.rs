//! [`Limiter`] on Redis: one sliding window per key, shared by every node
//! (`lua/ratelimit.lua`, the approximation of `crate::limiter`).

use async_trait::async_trait;
use model::RateLimit;

use super::codec::unavailable;
use super::RedisStore;
use crate::{Limiter, RateDecision, Result};

#[async_trait]
impl Limiter for RedisStore {
    async fn rate_limit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision> {
        let mut con = self.inner.con()?;
        let window_ms = i64::from(limit.window_seconds.max(1)) * 1000;
        let wait: i64 = self
            .inner
            .scripts
            .rate_limit
            .key(self.inner.keys.rate(key))
            .arg(limit.requests)
            .arg(window_ms)
            .arg(now_ms)
            .invoke_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(if wait <= 0 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after_secs: u64::try_from((wait + 999) / 1000).unwrap_or(1).max(1),
            }
        })
    }
}
