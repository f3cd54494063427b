//! Where a delivery goes after an attempt: `forward::verdict` judges the
//! answer (DESIGN §5: connection errors, 5xx, 408 and 429 are retried,
//! other answers fail at once), and the output's retry policy bounds the
//! tries and sets the first wait.

use std::time::Duration;

use forward::Verdict;
use model::RetryPolicy;
use store::Settle;

/// The settlement after try number `tries` (1-based) came to `verdict`.
pub(crate) fn settle_after(
    verdict: Verdict,
    tries: u32,
    policy: &RetryPolicy,
    now_ms: i64,
) -> Settle {
    match verdict {
        Verdict::Delivered => Settle::Delivered,
        Verdict::Fail => Settle::Failed,
        Verdict::Retry if tries >= policy.max_attempts => Settle::Failed,
        Verdict::Retry => {
            let wait = forward::backoff(tries, Duration::from_millis(policy.initial_delay_ms));
            let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            Settle::RetryAt(now_ms.saturating_add(wait))
        }
    }
}

/// The verdict on an agent's ack, judged exactly as the agent's own
/// forwarder would judge the outcome it reports.
pub(crate) fn verdict_of_ack(status: Option<u16>, error: Option<&str>) -> Verdict {
    forward::verdict(&forward::Outcome {
        status,
        error: error.map(str::to_owned),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_try_fails_for_good() {
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_delay_ms: 100,
        };
        let retry = settle_after(Verdict::Retry, 2, &policy, 0);
        assert!(
            matches!(retry, Settle::RetryAt(at) if (320..=480).contains(&at)),
            "{retry:?}"
        );
        assert_eq!(settle_after(Verdict::Retry, 3, &policy, 0), Settle::Failed);
        assert_eq!(settle_after(Verdict::Fail, 1, &policy, 0), Settle::Failed);
        assert_eq!(
            settle_after(Verdict::Delivered, 9, &policy, 0),
            Settle::Delivered
        );
    }

    #[test]
    fn acks_are_judged_like_outcomes() {
        assert_eq!(verdict_of_ack(Some(503), None), Verdict::Retry);
        assert_eq!(verdict_of_ack(Some(404), None), Verdict::Fail);
        assert_eq!(
            verdict_of_ack(None, Some("connection refused")),
            Verdict::Retry
        );
        assert_eq!(verdict_of_ack(Some(204), None), Verdict::Delivered);
    }

    #[test]
    fn the_default_policy_ends_within_a_day() {
        let policy = RetryPolicy::default();
        let worst: Duration = (1..policy.max_attempts)
            .map(|t| forward::backoff(t, Duration::from_millis(policy.initial_delay_ms)))
            .sum();
        assert!(worst < Duration::from_secs(24 * 3600), "{worst:?}");
    }
}
