//! In-process sliding-window rate limiter, for stores whose node is the only
//! one counting (the embedded store).
//!
//! The window is approximated the way Cloudflare and Redis cells do it: the
//! previous fixed window's count weighted by how much of it still overlaps
//! the sliding window, plus the current window's count. Two counters per key
//! instead of a timestamp per request.

use std::collections::HashMap;
use std::sync::Mutex;

use model::RateLimit;

use crate::RateDecision;

/// Keys not touched for this many windows are dropped on the next sweep.
const IDLE_WINDOWS_BEFORE_EVICTION: i64 = 2;
/// Sweep at most once per this many calls, so the map cannot grow without
/// bound under a spray of client IPs.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy)]
struct Counters {
    window_start: i64,
    current: u32,
    previous: u32,
}

/// A sliding-window limiter over string keys.
#[derive(Debug, Default)]
pub struct SlidingWindow {
    state: Mutex<(HashMap<String, Counters>, u64)>,
}

impl SlidingWindow {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request for `key` at `now_ms` and says whether it may pass.
    pub fn hit(&self, key: &str, limit: RateLimit, now_ms: i64) -> RateDecision {
        self.decide(key, limit, now_ms, true)
    }

    /// Says whether one more request for `key` would pass, counting nothing
    /// (to count only failures, e.g. of authentication).
    pub fn peek(&self, key: &str, limit: RateLimit, now_ms: i64) -> RateDecision {
        self.decide(key, limit, now_ms, false)
    }

    fn decide(&self, key: &str, limit: RateLimit, now_ms: i64, count: bool) -> RateDecision {
        let window_ms = i64::from(limit.window_seconds.max(1)) * 1000;
        let start = now_ms - now_ms.rem_euclid(window_ms);
        // A poisoned lock only means another request panicked mid-update;
        // counters stay usable.
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (map, calls) = &mut *guard;
        *calls += 1;
        if *calls % SWEEP_EVERY == 0 {
            map.retain(|_, c| now_ms - c.window_start < window_ms * IDLE_WINDOWS_BEFORE_EVICTION);
        }
        let counters = map.entry(key.to_owned()).or_insert(Counters {
            window_start: start,
            current: 0,
            previous: 0,
        });
        if counters.window_start != start {
            let previous = if start - counters.window_start == window_ms {
                counters.current
            } else {
                0
            };
            *counters = Counters {
                window_start: start,
                current: 0,
                previous,
            };
        }
        let elapsed = (now_ms - start) as f64 / window_ms as f64;
        let weighted = f64::from(counters.previous) * (1.0 - elapsed) + f64::from(counters.current);
        if weighted + 1.0 > f64::from(limit.requests) {
            // Time until the weighted count drops below the limit: at the
            // latest when the current window ends.
            let retry_ms = (start + window_ms - now_ms).max(1000);
            return RateDecision::Limited {
                retry_after_secs: ((retry_ms + 999) / 1000) as u64,
            };
        }
        if count {
            counters.current += 1;
        }
        RateDecision::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_PER_10S: RateLimit = RateLimit {
        requests: 5,
        window_seconds: 10,
    };

    #[test]
    fn allows_up_to_the_limit_then_refuses() {
        let l = SlidingWindow::new();
        for _ in 0..5 {
            assert_eq!(l.hit("k", FIVE_PER_10S, 1_000), RateDecision::Allowed);
        }
        match l.hit("k", FIVE_PER_10S, 1_000) {
            RateDecision::Limited { retry_after_secs } => {
                assert!((1..=10).contains(&retry_after_secs))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(l.hit("other", FIVE_PER_10S, 1_000), RateDecision::Allowed);
    }

    #[test]
    fn peeking_counts_nothing() {
        let l = SlidingWindow::new();
        for _ in 0..10 {
            assert_eq!(l.peek("k", FIVE_PER_10S, 1_000), RateDecision::Allowed);
        }
        for _ in 0..5 {
            l.hit("k", FIVE_PER_10S, 1_000);
        }
        assert!(matches!(
            l.peek("k", FIVE_PER_10S, 1_000),
            RateDecision::Limited { .. }
        ));
    }

    #[test]
    fn the_previous_window_weighs_in_then_fades() {
        let l = SlidingWindow::new();
        for _ in 0..5 {
            l.hit("k", FIVE_PER_10S, 9_000);
        }
        // 1 s into the next window, 90 % of the previous 5 still count.
        assert!(matches!(
            l.hit("k", FIVE_PER_10S, 11_000),
            RateDecision::Limited { .. }
        ));
        // Two windows later everything has faded.
        assert_eq!(l.hit("k", FIVE_PER_10S, 30_000), RateDecision::Allowed);
    }
}
