//! Which failed forwards are tried again, and when (DESIGN §5): a
//! connection error, 5xx, 408 or 429 is retried with exponential backoff up
//! to the output's `maxAttempts`; any other answer fails at once.

use model::RetryPolicy;
use store::Settle;

/// Longest wait between two tries.
const MAX_DELAY_MS: u64 = 6 * 3600 * 1000;

/// Where a delivery goes after failed try number `tries` (1-based).
pub(crate) fn after_failure(
    status: Option<u16>,
    tries: u32,
    policy: &RetryPolicy,
    now_ms: i64,
) -> Settle {
    if !retryable(status) || tries >= policy.max_attempts {
        return Settle::Failed;
    }
    let delay = backoff_ms(tries, policy.initial_delay_ms, rand::random::<f64>());
    Settle::RetryAt(now_ms.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)))
}

/// `None` is no answer at all (connection refused, timeout).
pub(crate) fn retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s >= 500 || s == 408 || s == 429,
    }
}

/// The wait after try `tries`: `initial × 4^(tries−1)`, capped, with ±20%
/// jitter from `unit` in [0, 1) so that a burst of failures spreads out.
pub(crate) fn backoff_ms(tries: u32, initial_ms: u64, unit: f64) -> u64 {
    let exponent = tries.saturating_sub(1).min(16);
    let base = initial_ms
        .saturating_mul(4u64.saturating_pow(exponent))
        .min(MAX_DELAY_MS);
    let jitter = 0.8 + 0.4 * unit.clamp(0.0, 1.0);
    ((base as f64) * jitter) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_transient_answers_are_retried() {
        for status in [None, Some(500), Some(503), Some(408), Some(429)] {
            assert!(retryable(status), "{status:?}");
        }
        for status in [Some(400), Some(401), Some(404), Some(410), Some(200)] {
            assert!(!retryable(status), "{status:?}");
        }
    }

    #[test]
    fn the_last_try_fails_for_good() {
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_delay_ms: 100,
        };
        assert!(
            matches!(after_failure(Some(500), 2, &policy, 0), Settle::RetryAt(at) if (320..=480).contains(&at))
        );
        assert_eq!(after_failure(Some(500), 3, &policy, 0), Settle::Failed);
        assert_eq!(after_failure(Some(404), 1, &policy, 0), Settle::Failed);
    }

    #[test]
    fn the_default_policy_ends_within_a_day() {
        let policy = RetryPolicy::default();
        let worst: u64 = (1..policy.max_attempts)
            .map(|t| backoff_ms(t, policy.initial_delay_ms, 1.0))
            .sum();
        assert!(worst < 24 * 3600 * 1000, "{worst} ms");
    }

    proptest! {
        #[test]
        fn backoff_stays_within_its_bounds(tries in 1u32..200, initial in 10u64..3_600_000, unit in 0.0f64..1.0) {
            let d = backoff_ms(tries, initial, unit);
            let base = initial.saturating_mul(4u64.saturating_pow((tries - 1).min(16))).min(MAX_DELAY_MS);
            prop_assert!(d as f64 >= base as f64 * 0.8 - 1.0);
            prop_assert!(d as f64 <= base as f64 * 1.2 + 1.0);
        }
    }
}
