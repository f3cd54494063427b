//! The events page's newest-first page: the API's own newest-first read
//! (`GET /v1/events?order=desc&before=`), one call when the page fills
//! from the first scan (always, unfiltered), more only to follow a
//! filtered scan's `next` past its bound.

use model::EventId;
use serde_json::Value;

use super::client::{Caller, Refusal};
use super::Ui;

/// API calls one page may take following a filtered scan's `next` (each
/// examines at most 5,000 events, so a rare filter is followed through
/// 100,000 before the page shows what it found).
const SCAN_CALLS: usize = 20;

/// What to read: the API query (filters), the cursor, the time bounds in
/// ms (both inclusive), and how many events a page shows.
pub(super) struct Window<'a> {
    pub(super) filters: &'a str,
    pub(super) before: Option<EventId>,
    pub(super) from_ms: Option<i64>,
    pub(super) to_ms: Option<i64>,
    pub(super) page: usize,
}

/// A page, newest first, and the cursor of the next older page when
/// older events may exist.
pub(super) struct Page {
    pub(super) events: Vec<Value>,
    pub(super) older: Option<String>,
}

/// The `want.page` newest events within the bounds of `want`. One event
/// more than the page is asked for, so that a full last page has no
/// *Older* link.
pub(super) async fn page(ui: &Ui, caller: &Caller<'_>, want: &Window<'_>) -> Result<Page, Refusal> {
    let mut bounds = String::new();
    for (name, ms) in [("from", want.from_ms), ("to", want.to_ms)] {
        if let Some(ms) = ms {
            bounds.push_str(&format!("&{name}={ms}"));
        }
    }
    let mut cursor = want.before.map(|id| id.to_string());
    let mut events: Vec<Value> = Vec::new();
    let mut end = false;
    for _ in 0..SCAN_CALLS {
        let limit = want.page + 1 - events.len();
        let before = cursor
            .as_deref()
            .map(|id| format!("&before={id}"))
            .unwrap_or_default();
        let path = format!(
            "/v1/events?order=desc&limit={limit}{before}{bounds}{}",
            want.filters
        );
        let mut answer = ui.api.get(caller, &path).await?;
        let next = answer["next"].as_str().map(str::to_owned);
        if let Some(Value::Array(found)) = answer.get_mut("events").map(Value::take) {
            events.extend(found);
        }
        if events.len() > want.page {
            break;
        }
        // A scan that examined nothing answers the cursor it was sent:
        // nothing is left behind it (or the `from` bound is reached).
        end = next.is_none() || next == cursor;
        if end {
            break;
        }
        cursor = next;
    }
    let older = if events.len() > want.page {
        events.truncate(want.page);
        events
            .last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned)
    } else if end {
        None
    } else {
        // The calls ran out inside a rare filter's scan: go on from there.
        cursor
    };
    Ok(Page { events, older })
}
