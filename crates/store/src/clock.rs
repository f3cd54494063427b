//! The one clock of hookrelay's logic: wall-clock milliseconds (the unit of
//! `receivedAt`, retry times, catch-up windows, retention), read through
//! tokio's clock so that a test can pause it and move it forward
//! (`tokio::time::pause`/`advance`) instead of waiting for real time.
//!
//! The wall clock is read once, at the first call; after that the time is
//! that reading plus how far tokio's `Instant` has moved since. Outside a
//! paused runtime tokio's `Instant` is the monotonic clock, so this is the
//! wall clock without its steps (an NTP correction after start shows only
//! at the next start). Anything that stores or compares times takes them
//! from here: the server, the stores, the tests.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock (µs since the epoch) and the monotonic clock, read
/// together once.
static BASE: OnceLock<(i64, Instant)> = OnceLock::new();

/// Milliseconds since the Unix epoch, as tokio's clock sees it. A clock
/// before 1970 reads as 0 rather than failing: timestamps are compared,
/// never trusted for security alone.
pub fn now_ms() -> i64 {
    let (wall_us, base) = *BASE.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        (wall, Instant::now())
    });
    // A paused runtime's clock may stand before the base (it froze before
    // the first call), so the offset is signed. Microseconds, so that
    // moving the clock by whole milliseconds moves this by exactly as many.
    let now = tokio::time::Instant::now().into_std();
    let offset_us = match now.checked_duration_since(base) {
        Some(ahead) => i64::try_from(ahead.as_micros()).unwrap_or(i64::MAX),
        None => -i64::try_from(base.duration_since(now).as_micros()).unwrap_or(i64::MAX),
    };
    wall_us.saturating_add(offset_us).max(0) / 1_000
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::now_ms;

    #[test]
    fn it_reads_the_wall_clock() {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now_ms() - wall).abs() < 1_000, "{} vs {wall}", now_ms());
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_moves_only_when_advanced() {
        let before = now_ms();
        tokio::time::advance(Duration::from_secs(600)).await;
        let after = now_ms();
        assert_eq!(after - before, 600_000);
    }
}
