//! Wall-clock milliseconds, the unit of every timestamp hookrelay stores or
//! answers (`receivedAt`, `X-Relay-Timestamp`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. A clock before 1970 reads as 0 rather
/// than failing: timestamps are compared, never trusted for security alone.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
