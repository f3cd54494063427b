//! Rate limits: the [`Limiter`] seam, and [`SlidingWindow`], the
//! in-process sliding-window limiter for stores whose node is the only one
//! counting (the embedded store; the server's own bcrypt budget).
//!
//! The window is approximated the way Cloudflare and Redis cells do it: the
//! previous fixed window's count weighted by how much of it still overlaps
//! the sliding window, plus the current window's count. Two counters per key
//! instead of a timestamp per request.
//!
//! Memory is bounded: keys idle for two of their own windows are swept, and
//! at most [`MAX_KEYS`] are tracked (see [`SlidingWindow::make_room`] for
//! what happens beyond).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use model::RateLimit;

use crate::Result;

/// Rate-limit verdict of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Refused; the caller may retry after this many seconds (at least 1).
    Limited {
        retry_after_secs: u64,
    },
}

/// Sliding-window request counts by key (ingest per input, polls per
/// client address).
///
/// Guarantees: a window admits `limit.requests` per `limit.window_seconds`,
/// approximated as [`SlidingWindow`] does; a shared backend counts every
/// node's requests against one window, the embedded one its own node's.
#[async_trait]
pub trait Limiter: Send + Sync + 'static {
    /// Counts one request against `key`'s sliding window.
    async fn rate_limit(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<RateDecision>;
}

/// Keys not touched for this many of their windows are dropped on the next
/// sweep: by then both counters are zero or weigh nothing.
const IDLE_WINDOWS_BEFORE_EVICTION: i64 = 2;
/// Sweep at most once per this many calls, so idle keys go without a scan
/// per request.
const SWEEP_EVERY: u64 = 4096;
/// Most keys tracked. A key with its counters costs ~100 bytes, so this
/// caps the limiter near 10 MiB however many client addresses spray it.
const MAX_KEYS: usize = 100_000;
/// When the map is full of live keys, the least recently seen tenth goes,
/// so the O(n) eviction runs once per ~10,000 new keys, not per key.
const EVICT_DIVISOR: usize = 10;

#[derive(Debug, Clone, Copy)]
struct Counters {
    /// Start of the current fixed window (ms, a multiple of `window_ms`).
    window_start: i64,
    /// This key's window length: sweeps judge idleness by it, not by the
    /// window of whichever caller happens to trigger the sweep.
    window_ms: i64,
    /// Latest time this key was seen, to evict the least recently seen.
    last_seen: i64,
    current: u32,
    previous: u32,
}

impl Counters {
    fn idle(&self, now_ms: i64) -> bool {
        now_ms - self.window_start >= self.window_ms * IDLE_WINDOWS_BEFORE_EVICTION
    }
}

#[derive(Debug)]
struct State {
    keys: HashMap<String, Counters>,
    /// Calls since the last sweep.
    since_sweep: u64,
}

/// A sliding-window limiter over string keys.
#[derive(Debug)]
pub struct SlidingWindow {
    state: Mutex<State>,
    /// [`MAX_KEYS`], smaller in tests.
    max_keys: usize,
}

impl Default for SlidingWindow {
    fn default() -> Self {
        Self::with_max_keys(MAX_KEYS)
    }
}

impl SlidingWindow {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_max_keys(max_keys: usize) -> Self {
        Self {
            state: Mutex::new(State {
                keys: HashMap::new(),
                since_sweep: 0,
            }),
            max_keys: max_keys.max(EVICT_DIVISOR),
        }
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
        // A poisoned lock only means another request panicked mid-update;
        // counters stay usable.
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        state.since_sweep += 1;
        if state.since_sweep >= SWEEP_EVERY {
            state.since_sweep = 0;
            state.keys.retain(|_, c| !c.idle(now_ms));
        }
        let fresh = Counters {
            window_start: now_ms - now_ms.rem_euclid(window_ms),
            window_ms,
            last_seen: now_ms,
            current: 0,
            previous: 0,
        };
        // Peeking at an unknown key counts nothing, so it stores nothing.
        let mut untracked = fresh;
        let counters = match state.keys.get_mut(key) {
            Some(c) => c,
            None if !count => &mut untracked,
            None => {
                if state.keys.len() >= self.max_keys {
                    self.make_room(&mut state.keys, now_ms);
                }
                state.keys.entry(key.to_owned()).or_insert(fresh)
            }
        };
        if counters.window_ms != window_ms {
            // The key's limit was reconfigured: start over in the new window.
            *counters = fresh;
        }
        // A request stamped slightly before the key's current window (times
        // taken before the lock, racing) counts into the current window
        // rather than rewinding, which would reset the counters.
        let now_ms = now_ms.max(counters.window_start);
        let start = now_ms - now_ms.rem_euclid(window_ms);
        counters.last_seen = counters.last_seen.max(now_ms);
        if counters.window_start != start {
            let previous = if start - counters.window_start == window_ms {
                counters.current
            } else {
                0
            };
            counters.window_start = start;
            counters.previous = previous;
            counters.current = 0;
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
            counters.current = counters.current.saturating_add(1);
        }
        RateDecision::Allowed
    }

    /// Frees room for a new key in a full map: idle keys first, then the
    /// least recently seen tenth.
    ///
    /// Evicting a live key forgets its counts, so that key may briefly pass
    /// more than its limit: the limiter fails open, but stays bounded. The
    /// alternatives are worse. Refusing unknown keys when full would let a
    /// spray of addresses lock every newcomer out; admitting them untracked
    /// would leave every key first seen during the flood unlimited for as
    /// long as it lasts. Evicting the least recently seen keeps counting
    /// the keys that are busy now, which are the ones a limit is for.
    fn make_room(&self, keys: &mut HashMap<String, Counters>, now_ms: i64) {
        keys.retain(|_, c| !c.idle(now_ms));
        if keys.len() < self.max_keys {
            return;
        }
        let drop = keys.len() - self.max_keys + self.max_keys / EVICT_DIVISOR;
        let mut seen: Vec<i64> = keys.values().map(|c| c.last_seen).collect();
        let (_, &mut threshold, _) = seen.select_nth_unstable(drop - 1);
        // Ties at the threshold go only as far as the budget allows.
        let below = seen.iter().filter(|&&s| s < threshold).count();
        let mut ties = drop - below;
        keys.retain(|_, c| {
            if c.last_seen < threshold {
                false
            } else if c.last_seen == threshold && ties > 0 {
                ties -= 1;
                false
            } else {
                true
            }
        });
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

    #[test]
    fn a_sweep_keeps_keys_of_longer_windows() {
        let once_an_hour = RateLimit {
            requests: 1,
            window_seconds: 3600,
        };
        let per_second = RateLimit {
            requests: 1_000_000,
            window_seconds: 1,
        };
        let l = SlidingWindow::new();
        assert_eq!(l.hit("slow", once_an_hour, 0), RateDecision::Allowed);
        // Enough 1-second calls 10 s later to trigger a sweep.
        for _ in 0..SWEEP_EVERY {
            l.hit("fast", per_second, 10_000);
        }
        assert!(
            matches!(
                l.hit("slow", once_an_hour, 10_000),
                RateDecision::Limited { .. }
            ),
            "the hour-long window survived the sweep of a 1 s caller"
        );
    }

    #[test]
    fn a_slightly_late_stamp_counts_into_the_current_window() {
        let l = SlidingWindow::new();
        for _ in 0..5 {
            l.hit("k", FIVE_PER_10S, 10_500);
        }
        // Stamped before the window the key is in (raced for the lock).
        assert!(matches!(
            l.hit("k", FIVE_PER_10S, 9_999),
            RateDecision::Limited { .. }
        ));
        assert!(matches!(
            l.hit("k", FIVE_PER_10S, 10_600),
            RateDecision::Limited { .. }
        ));
    }

    #[test]
    fn keys_are_capped_and_the_busy_ones_stay_counted() {
        const CAP: usize = 100;
        let l = SlidingWindow::with_max_keys(CAP);
        for _ in 0..5 {
            l.hit("busy", FIVE_PER_10S, 1_000);
        }
        for i in 0..10 * CAP {
            // Every sprayed key is live (same window), and "busy" stays busy.
            l.hit(&format!("spray-{i}"), FIVE_PER_10S, 1_000 + i as i64);
            let _ = l.hit("busy", FIVE_PER_10S, 1_000 + i as i64);
            let len = l.state.lock().unwrap().keys.len();
            assert!(len <= CAP, "{len} keys tracked");
        }
        assert!(matches!(
            l.hit("busy", FIVE_PER_10S, 2_000),
            RateDecision::Limited { .. }
        ));
        // A new key still gets in, counted.
        assert_eq!(l.hit("late", FIVE_PER_10S, 2_000), RateDecision::Allowed);
        assert!(l.state.lock().unwrap().keys.contains_key("late"));
    }

    #[test]
    fn a_new_window_length_starts_the_key_over() {
        let l = SlidingWindow::new();
        for _ in 0..5 {
            l.hit("k", FIVE_PER_10S, 1_000);
        }
        let wider = RateLimit {
            requests: 5,
            window_seconds: 60,
        };
        assert_eq!(l.hit("k", wider, 1_000), RateDecision::Allowed);
    }
}
