//! Newest-first pages over the API's oldest-first cursor (`GET /v1/events
//! ?after=`): event ids are ULIDs, so the id floor of an instant is a
//! cursor at that instant, and the newest page before a bound is found by
//! reading forward from a window before it, widening the window while it
//! holds too few events and narrowing it while a read cannot reach the
//! bound. One read when events are dense (the usual case: a one-minute
//! window), about log2(span) reads when they are sparse.

use model::EventId;
use serde_json::Value;

use super::client::{Caller, Refusal};
use super::Ui;

/// Events read per API call while searching: the API's page cap is 500;
/// 200 keeps each read's decryption small while leaving room above a page.
const READ: usize = 200;
/// The first window, and the most reads one page may take (each read
/// halves or multiplies the window: 40 covers ms to centuries).
const FIRST_WINDOW_MS: i64 = 60_000;
const MAX_READS: usize = 40;
/// API calls one read may take following a filtered scan's `next` (each
/// examines at most 5,000 events).
const SCAN_CALLS: usize = 20;

/// What to read: the API query (filters), the exclusive upper bound and
/// the lower bound (ms), and how many events a page shows.
pub(super) struct Window<'a> {
    pub(super) filters: &'a str,
    pub(super) before: Option<EventId>,
    pub(super) until_ms: i64,
    pub(super) from_ms: i64,
    pub(super) page: usize,
}

/// A page, newest first, and whether older events exist.
pub(super) struct Page {
    pub(super) events: Vec<Value>,
    pub(super) older: bool,
}

/// The `want.page` newest events below the bounds of `want`.
pub(super) async fn page(ui: &Ui, caller: &Caller<'_>, want: &Window<'_>) -> Result<Page, Refusal> {
    let upper = match want.before {
        Some(id) => id.to_string(),
        None => EventId::floor_at(want.until_ms).to_string(),
    };
    let top_ms = match want.before {
        Some(id) => (id.ulid().timestamp_ms() as i64).min(want.until_ms),
        None => want.until_ms,
    };
    let mut window = FIRST_WINDOW_MS;
    // The widest window known to hold too few events, and the narrowest
    // known to hold more than one read can reach the bound through.
    let (mut small, mut big): (i64, Option<i64>) = (0, None);
    let mut best: Vec<Value> = Vec::new();
    for _ in 0..MAX_READS {
        let start = (top_ms - window).max(want.from_ms);
        let Read { below, reached } = read_after(ui, caller, want.filters, start, &upper).await?;
        let at_floor = start <= want.from_ms;
        if reached {
            if below.len() >= want.page || at_floor {
                return Ok(newest(below, want.page, !at_floor));
            }
            small = window;
            best = below;
        } else {
            big = Some(window);
            if window <= 1 {
                // More than one read of events in one millisecond: show
                // what the read holds rather than loop.
                return Ok(newest(below, want.page, true));
            }
        }
        window = match big {
            Some(big) => small + (big - small) / 2,
            None => window.saturating_mul(8),
        }
        .max(1);
        if big.is_some_and(|big| window <= small || window >= big) {
            break;
        }
    }
    Ok(newest(best, want.page, true))
}

/// The last `n` of `oldest_first`, newest first; `older` when more exist
/// below them.
fn newest(mut oldest_first: Vec<Value>, n: usize, older_below: bool) -> Page {
    let older = older_below || oldest_first.len() > n;
    let cut = oldest_first.len().saturating_sub(n);
    let mut events = oldest_first.split_off(cut);
    events.reverse();
    Page { events, older }
}

/// What one forward read from a window's start found: the events below
/// the upper bound, and whether it got all of them (it reached the bound
/// or the log's end) or stopped at `READ` events or `SCAN_CALLS` calls.
struct Read {
    below: Vec<Value>,
    reached: bool,
}

/// Reads forward from `start_ms` towards `upper`. A filtered API read
/// examines at most 5,000 events and answers the matches with `next`, the
/// last event examined: following `next` is what makes a rare filter's
/// page the newest matches, not the first 5,000 events' ones.
async fn read_after(
    ui: &Ui,
    caller: &Caller<'_>,
    filters: &str,
    start_ms: i64,
    upper: &str,
) -> Result<Read, Refusal> {
    let mut cursor = EventId::floor_at(start_ms.max(0)).to_string();
    let mut below = Vec::new();
    for _ in 0..SCAN_CALLS {
        let path = format!("/v1/events?after={cursor}&limit={READ}{filters}");
        let mut answer = ui.api.get(caller, &path).await?;
        let next = answer["next"].as_str().map(str::to_owned);
        let events = match answer.get_mut("events").map(Value::take) {
            Some(Value::Array(events)) => events,
            _ => Vec::new(),
        };
        for event in events {
            if event["id"].as_str().is_none_or(|id| id >= upper) {
                return Ok(Read {
                    below,
                    reached: true,
                });
            }
            below.push(event);
            if below.len() == READ {
                return Ok(Read {
                    below,
                    reached: false,
                });
            }
        }
        match next {
            Some(next) if next > cursor && next.as_str() < upper => cursor = next,
            _ => {
                return Ok(Read {
                    below,
                    reached: true,
                })
            }
        }
    }
    Ok(Read {
        below,
        reached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_newest_are_kept_newest_first() {
        let page = newest(vec![json!(1), json!(2), json!(3)], 2, false);
        assert_eq!(page.events, vec![json!(3), json!(2)]);
        assert!(page.older);
        let page = newest(vec![json!(1)], 2, false);
        assert_eq!(page.events, vec![json!(1)]);
        assert!(!page.older);
    }
}
