//! Where a delivery goes after an attempt, and writing it down: `forward::verdict` judges the
//! answer (DESIGN §5: connection errors, 5xx, 408 and 429 are retried,
//! other answers fail at once), and the output's retry policy bounds the
//! tries and sets the first wait.

use std::time::Duration;

use forward::Verdict;
use model::{Attempt, RetryPolicy};
use store::{DeliveryKey, Settle};

/// Settlement writes tried before giving up (about a minute in all).
const SETTLE_TRIES: u32 = 16;

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

/// Tries a settlement again while the store fails (another write can roll
/// back a shared batch): given up on, the delivery would sit `in_flight`
/// until the next restart.
pub(crate) async fn settle_with_retries(
    store: &dyn store::Store,
    key: &DeliveryKey,
    attempt: Option<Attempt>,
    next: Settle,
) {
    let mut wait = Duration::from_millis(50);
    for _ in 0..SETTLE_TRIES {
        match store.settle(key, attempt.clone(), next).await {
            Ok(()) | Err(store::Error::NotFound) => return,
            Err(err) => {
                tracing::warn!(%err, event = %key.event, "could not record a delivery's outcome; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::error!(event = %key.event, "gave up recording a delivery's outcome; it is released at the next start");
}

/// [`settle_with_retries`] for a batch: the whole batch is tried again (a
/// repeated settlement of a delivery already settled changes nothing).
pub(crate) async fn settle_batch_with_retries(
    store: &dyn store::Store,
    batch: &[store::Settlement],
) {
    let mut wait = Duration::from_millis(50);
    for _ in 0..SETTLE_TRIES {
        match store.settle_batch(batch).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(%err, deliveries = batch.len(), "could not record deliveries' outcomes; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::error!(
        deliveries = batch.len(),
        "gave up recording deliveries' outcomes; they are released at the next start"
    );
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
