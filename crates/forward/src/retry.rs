//! What an attempt's outcome means for the delivery, and when to try again
//! (DESIGN §5: connection errors, 5xx, 408 and 429 are retried; other 4xx
//! fail at once).

use std::time::Duration;

use rand::Rng;

use crate::{Outcome, PERMANENT_ERRORS};

/// The longest wait between two attempts, whatever the attempt number.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 60 * 60);

/// Each retry waits this many times longer than the one before.
const FACTOR: u32 = 4;

/// What to do with a delivery after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The destination accepted it (2xx).
    Delivered,
    /// Worth another attempt later: no answer (connection error, timeout),
    /// 5xx, 408 or 429.
    Retry,
    /// Trying again would get the same answer: other 4xx, 3xx (redirects are
    /// not followed, so the event never reached what the redirect names),
    /// a refused or malformed destination.
    Fail,
}

/// The verdict on one attempt. A status decides when there is one, whatever
/// `error` says (a response body that failed to read does not undo a 2xx).
/// Without a status, an error that starts with one of [`PERMANENT_ERRORS`]
/// fails and any other is retried. The same holds for an outcome rebuilt from
/// an agent's `Ack`, as long as its error string is carried unchanged.
pub fn verdict(outcome: &Outcome) -> Verdict {
    match outcome.status {
        Some(200..=299) => Verdict::Delivered,
        Some(408 | 429 | 500..=599) => Verdict::Retry,
        Some(_) => Verdict::Fail,
        None => match &outcome.error {
            Some(e) if PERMANENT_ERRORS.iter().any(|p| e.starts_with(p)) => Verdict::Fail,
            _ => Verdict::Retry,
        },
    }
}

/// The wait before retry number `attempt` (1 = the first retry; 0 is read as
/// 1): `initial × 4^(attempt−1)`, jittered by ±20 % so retries of a burst do
/// not arrive together, and never more than [`MAX_BACKOFF`].
pub fn backoff(attempt: u32, initial: Duration) -> Duration {
    let mut wait = initial.min(MAX_BACKOFF);
    for _ in 1..attempt {
        wait = wait.saturating_mul(FACTOR);
        if wait >= MAX_BACKOFF {
            wait = MAX_BACKOFF;
            break;
        }
    }
    let jitter = rand::rng().random_range(0.8..=1.2);
    // `wait` ≤ 6 h, so the product is far from overflowing.
    wait.mul_f64(jitter).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn outcome(status: Option<u16>, error: Option<&str>) -> Outcome {
        Outcome {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            body_truncated: false,
            latency: Duration::ZERO,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn verdict_table() {
        use Verdict::*;
        let by_status: &[(u16, Verdict)] = &[
            (200, Delivered),
            (201, Delivered),
            (204, Delivered),
            (299, Delivered),
            (301, Fail),
            (302, Fail),
            (304, Fail),
            (307, Fail),
            (400, Fail),
            (401, Fail),
            (403, Fail),
            (404, Fail),
            (410, Fail),
            (413, Fail),
            (408, Retry),
            (429, Retry),
            (500, Retry),
            (502, Retry),
            (503, Retry),
            (504, Retry),
            (599, Retry),
            (600, Fail),
            (100, Fail),
        ];
        for &(status, want) in by_status {
            assert_eq!(verdict(&outcome(Some(status), None)), want, "{status}");
        }
        assert_eq!(
            verdict(&outcome(Some(200), Some("reading body"))),
            Delivered
        );
        assert_eq!(
            verdict(&outcome(None, Some("timed out after 10 ms"))),
            Retry
        );
        assert_eq!(verdict(&outcome(None, Some("connection failed"))), Retry);
        assert_eq!(verdict(&outcome(None, None)), Retry);
        for prefix in PERMANENT_ERRORS {
            let e = format!("{prefix}: detail");
            assert_eq!(verdict(&outcome(None, Some(&e))), Fail, "{e}");
        }
    }

    #[test]
    fn backoff_grows_by_four_and_caps() {
        let s = Duration::from_secs;
        let within = |d: Duration, base: Duration| d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2);
        assert!(within(backoff(0, s(10)), s(10)));
        assert!(within(backoff(1, s(10)), s(10)));
        assert!(within(backoff(2, s(10)), s(40)));
        assert!(within(backoff(3, s(10)), s(160)));
        assert!(backoff(50, s(10)) <= MAX_BACKOFF);
        assert!(backoff(u32::MAX, Duration::MAX) <= MAX_BACKOFF);
        assert!(backoff(u32::MAX, s(1)) >= MAX_BACKOFF.mul_f64(0.8));
        assert_eq!(backoff(3, Duration::ZERO), Duration::ZERO);
    }

    proptest! {
        #[test]
        fn backoff_stays_within_jitter_of_the_capped_schedule(
            attempt in 0u32..64,
            initial_ms in 0u64..(10 * 60 * 1000),
        ) {
            let initial = Duration::from_millis(initial_ms);
            let exp = attempt.saturating_sub(1).min(20);
            let base = initial.saturating_mul(FACTOR.pow(exp.min(15))).min(MAX_BACKOFF);
            let base = if exp > 15 && initial > Duration::ZERO { MAX_BACKOFF } else { base };
            let got = backoff(attempt, initial);
            prop_assert!(got <= MAX_BACKOFF);
            prop_assert!(got >= base.mul_f64(0.8), "{:?} < 0.8 × {:?}", got, base);
            prop_assert!(got <= base.mul_f64(1.2), "{:?} > 1.2 × {:?}", got, base);
        }
    }
}
