//! Step 5 of the ingest pipeline (DESIGN §3.1, §13): the sliding window per
//! (tenant, input, client IP), counting every request or only the ones a
//! later step refuses.
//!
//! Counting only refusals keeps the check at step 5, before any signature
//! is computed, and keeps it cheap: the store counts a refusal when a later
//! step makes one (bucket auth, replay, signature, parse), and the refusal
//! that finds the window full is answered 429 and blocks the address here,
//! in memory, until the window has room again. A flood of forged requests
//! therefore gets exactly `requests` 401s per window across the cluster
//! (the store's counter is shared), then 429s that cost a map lookup; a
//! provider's genuine burst is never counted. Each node learns of a block
//! from its own next refusal, so a cluster of n nodes verifies at most n
//! more forged requests per window than one node would.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use model::{RateCount, RateLimit};
use store::RateDecision;

use crate::catalog::Route;
use crate::error::ApiError;
use crate::state::AppState;

/// Addresses blocked at most: an entry costs ~100 bytes, so ~1 MiB. Past
/// it, expired entries are swept; if all are live the new block is not
/// remembered, which costs that address one verification per request (its
/// refusals still find the store's window full and get 429), never a
/// wrong answer.
const MAX_BLOCKED: usize = 10_000;

/// Keys (tenant, input, address) whose refusals filled their window, with
/// the time (ms) until which step 5 refuses them.
#[derive(Default)]
pub(crate) struct RefusalBlocks {
    until: Mutex<HashMap<String, i64>>,
}

impl RefusalBlocks {
    /// Seconds until `key` may pass again, if it is blocked at `now_ms`.
    fn blocked(&self, key: &str, now_ms: i64) -> Option<u64> {
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        match until.get(key) {
            Some(&end) if end > now_ms => Some(retry_after_secs(end - now_ms)),
            Some(_) => {
                until.remove(key);
                None
            }
            None => None,
        }
    }

    fn block(&self, key: &str, end_ms: i64, now_ms: i64) {
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if until.len() >= MAX_BLOCKED {
            until.retain(|_, end| *end > now_ms);
        }
        if until.len() < MAX_BLOCKED || until.contains_key(key) {
            until.insert(key.to_owned(), end_ms);
        }
    }
}

fn retry_after_secs(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

/// What step 5 decided, for the steps after it.
pub(super) enum Gate {
    /// The request was counted; later refusals count nothing more.
    Counted,
    /// Nothing was counted yet: a refusal by a later step is.
    CountRefusals { key: String, window: RateLimit },
}

/// Step 5: refuses with 429 a client over the input's limit.
pub(super) async fn check(
    state: &AppState,
    route: &Route,
    client_ip: IpAddr,
) -> Result<Gate, ApiError> {
    let input = &route.input;
    let limit = input.effective_rate_limit();
    let key = format!("ingest:{}:{}:{}", input.tenant, input.id, client_ip);
    let now_ms = store::clock::now_ms();
    match limit.count {
        RateCount::All => match state.store.rate_limit(&key, limit.window(), now_ms).await? {
            RateDecision::Allowed => Ok(Gate::Counted),
            RateDecision::Limited { retry_after_secs } => {
                Err(ApiError::rate_limited(retry_after_secs))
            }
        },
        RateCount::Refused => match state.ingest_blocks.blocked(&key, now_ms) {
            Some(retry_after_secs) => Err(ApiError::rate_limited(retry_after_secs)),
            None => Ok(Gate::CountRefusals {
                key,
                window: limit.window(),
            }),
        },
    }
}

/// Counts `refusal` (made by a step after 5) when the gate says so; the
/// refusal that finds the window full becomes a 429 and blocks the address
/// at step 5 until the window has room.
pub(super) async fn refused(state: &AppState, gate: &Gate, refusal: ApiError) -> ApiError {
    let Gate::CountRefusals { key, window } = gate else {
        return refusal;
    };
    let now_ms = store::clock::now_ms();
    match state.store.rate_limit(key, *window, now_ms).await {
        Ok(RateDecision::Allowed) => refusal,
        Ok(RateDecision::Limited { retry_after_secs }) => {
            let end = now_ms.saturating_add(i64::try_from(retry_after_secs * 1000).unwrap_or(0));
            state.ingest_blocks.block(key, end, now_ms);
            ApiError::rate_limited(retry_after_secs)
        }
        // The request is refused either way; a store that cannot count
        // leaves it to the next refusal.
        Err(_) => refusal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_ends_when_its_time_is_up_and_memory_stays_bounded() {
        let blocks = RefusalBlocks::default();
        blocks.block("k", 5_000, 0);
        assert_eq!(blocks.blocked("k", 0), Some(5));
        assert_eq!(blocks.blocked("k", 4_001), Some(1));
        assert_eq!(blocks.blocked("k", 5_000), None);
        assert_eq!(blocks.blocked("other", 0), None);

        for i in 0..MAX_BLOCKED + 10 {
            blocks.block(&i.to_string(), 1_000, 0);
        }
        assert_eq!(blocks.until.lock().unwrap().len(), MAX_BLOCKED);
        // Once those expired, a new block sweeps them and is remembered.
        blocks.block("late", 9_000, 2_000);
        assert_eq!(blocks.blocked("late", 2_000), Some(7));
        assert_eq!(blocks.until.lock().unwrap().len(), 1);
    }
}
