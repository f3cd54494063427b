//! The event filters of `GET /v1/events` and `POST /v1/events/resend`
//! (DESIGN §11: bucket, input, delivery status, time range, event type and
//! a text search in bodies), answered by a bounded scan: the store reads
//! the tenant's events by cursor, oldest first (or newest first for
//! `order=desc`), already decrypted, and each is kept or passed over here.
//!
//! One request examines at most `Config::event_scan` events and body bytes
//! (5,000 and 64 MiB by default), so a filter that matches little costs a
//! bounded read however long the log. Where a scan stops, the answer's
//! cursor says so and the caller continues from it.

use model::{BucketId, DeliveryState, Event, EventBody, EventId, InputId};
use store::{Cursor, EventQuery};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Events read per store query while scanning: the most one unfiltered
/// page may hold, so a scan holds no more at once than a plain read does.
const SCAN_PAGE: usize = super::events::MAX_LIMIT;
/// Longest `search` text: a filter, not a payload.
const MAX_SEARCH: usize = 256;
/// The latest time an event id's 48-bit time part holds.
const MAX_ULID_MS: i64 = (1 << 48) - 1;

/// What an event must be to be listed or resent; every given field must
/// hold. The list's query and the bulk resend's body carry these fields.
pub(crate) struct EventFilter {
    /// Only this bucket (id or name).
    pub(crate) bucket: Option<String>,
    /// Only events of this input (its id).
    pub(crate) input: Option<String>,
    /// Only events with at least one delivery in this state.
    pub(crate) status: Option<DeliveryState>,
    /// Received at or after this time (ms since the Unix epoch).
    pub(crate) from: Option<i64>,
    /// Received at or before this time (ms since the Unix epoch).
    pub(crate) to: Option<i64>,
    /// Only this event type (`push`, `invoice.paid`, ...), exactly.
    pub(crate) event_type: Option<String>,
    /// Only events whose body contains this text, ASCII case ignored.
    pub(crate) search: Option<String>,
}

/// The outcome of one scan.
pub(crate) struct Scanned {
    /// The events that matched, oldest first.
    pub(crate) events: Vec<Event>,
    /// The last event examined, matched or not: where to continue.
    pub(crate) last: Option<EventId>,
    /// Whether the scan reached the end of the log (or of the `to` range),
    /// rather than stopping at `limit` or at a bound.
    pub(crate) exhausted: bool,
}

/// A filter checked and resolved against the caller's tenant.
pub(crate) struct Checked {
    buckets: Vec<BucketId>,
    input: Option<InputId>,
    status: Option<DeliveryState>,
    from: Option<i64>,
    to: Option<i64>,
    event_type: Option<String>,
    /// Lower-cased.
    search: Option<Vec<u8>>,
    /// Every event from the cursor on matches, up to the time bound that
    /// ends the scan: pages hold just what is still wanted, so an
    /// unfiltered read decrypts no more than it answers.
    every: bool,
}

impl EventFilter {
    /// Resolves the bucket (404 when the caller may not read it) and checks
    /// the fields.
    pub(crate) async fn check(
        self,
        state: &AppState,
        caller: &Caller,
    ) -> Result<Checked, ApiError> {
        let buckets =
            super::events::readable_buckets(state, caller, self.bucket.as_deref()).await?;
        let input = match self.input.as_deref() {
            Some(id) => Some(
                id.parse::<InputId>()
                    .map_err(|_| ApiError::invalid_request("input: not an input id"))?,
            ),
            None => None,
        };
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(ApiError::invalid_request("to: must not be before from"));
            }
        }
        let search = match self.search {
            Some(text) if text.len() > MAX_SEARCH => {
                return Err(ApiError::invalid_request(format!(
                    "search: at most {MAX_SEARCH} bytes"
                )))
            }
            Some(text) if !text.is_empty() => Some(text.to_ascii_lowercase().into_bytes()),
            _ => None,
        };
        let every = input.is_none()
            && self.status.is_none()
            && self.event_type.is_none()
            && search.is_none();
        Ok(Checked {
            every,
            buckets,
            input,
            status: self.status,
            from: self.from,
            to: self.to,
            event_type: self.event_type,
            search,
        })
    }
}

impl Checked {
    /// Scans from `after` (else from `from`, else the oldest event) for up
    /// to `limit` matches, oldest first, within the bounds.
    pub(crate) async fn scan(
        &self,
        state: &AppState,
        caller: &Caller,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Scanned, ApiError> {
        let start = match (after, self.from) {
            (Some(id), _) => Cursor::After(id),
            (None, Some(ms)) => Cursor::Since(ms),
            (None, None) => Cursor::Start,
        };
        self.scan_from(state, caller, start, limit).await
    }

    /// Scans from `before` (else from `to`, else the newest event) for up
    /// to `limit` matches, newest first, within the bounds; `exhausted`
    /// when it reached the oldest event or `from`.
    pub(crate) async fn scan_newest(
        &self,
        state: &AppState,
        caller: &Caller,
        before: Option<EventId>,
        limit: usize,
    ) -> Result<Scanned, ApiError> {
        // The id floor of the millisecond after `to`: ids below it were
        // received at or before `to` (beyond the ids' 48-bit time, every
        // id is).
        let below_to = self
            .to
            .and_then(|to| to.checked_add(1))
            .filter(|&ms| ms <= MAX_ULID_MS)
            .map(EventId::floor_at);
        let start = match (before, below_to) {
            (Some(id), Some(to)) => Cursor::Before(id.min(to)),
            (Some(id), None) | (None, Some(id)) => Cursor::Before(id),
            (None, None) => Cursor::Newest,
        };
        self.scan_from(state, caller, start, limit).await
    }

    async fn scan_from(
        &self,
        state: &AppState,
        caller: &Caller,
        mut cursor: Cursor,
        limit: usize,
    ) -> Result<Scanned, ApiError> {
        let newest_first = cursor.newest_first();
        let mut out = Scanned {
            events: Vec::new(),
            last: None,
            exhausted: false,
        };
        let bound = state.config.event_scan;
        let (mut examined, mut bytes) = (0usize, 0u64);
        while out.events.len() < limit && examined < bound.events && bytes < bound.body_bytes {
            let wanted = if self.every {
                limit - out.events.len()
            } else {
                SCAN_PAGE
            };
            let asked = wanted.min(bound.events - examined);
            let query = EventQuery {
                from: cursor,
                buckets: self.buckets.clone(),
                limit: asked,
            };
            let page = state.store.events(&caller.tenant, &query).await?;
            let short = page.len() < asked;
            for event in page {
                let past_bound = match newest_first {
                    false => self.to.is_some_and(|to| event.received_at > to),
                    true => self.from.is_some_and(|from| event.received_at < from),
                };
                if past_bound {
                    out.exhausted = true;
                    return Ok(out);
                }
                examined += 1;
                bytes += event.body.size();
                out.last = Some(event.id);
                cursor = match newest_first {
                    false => Cursor::After(event.id),
                    true => Cursor::Before(event.id),
                };
                if self.matches(state, caller, &event).await? {
                    out.events.push(event);
                }
                if out.events.len() == limit || bytes >= bound.body_bytes {
                    return Ok(out);
                }
            }
            if short {
                out.exhausted = true;
                break;
            }
        }
        Ok(out)
    }

    /// The cheap checks first; the delivery states (one more store read)
    /// only for an event that passed them.
    async fn matches(
        &self,
        state: &AppState,
        caller: &Caller,
        e: &Event,
    ) -> Result<bool, ApiError> {
        let plain = self.input.is_none_or(|i| i == e.input)
            && self.from.is_none_or(|from| e.received_at >= from)
            && self.to.is_none_or(|to| e.received_at <= to)
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| e.event_type.as_deref() == Some(t))
            && self
                .search
                .as_deref()
                .is_none_or(|needle| body_contains(&e.body, needle));
        let Some(status) = self.status.filter(|_| plain) else {
            return Ok(plain);
        };
        match state.store.event(&caller.tenant, &e.id).await {
            Ok((_, deliveries)) => Ok(deliveries.iter().any(|d| d.state == status)),
            // Deleted by retention since the page was read.
            Err(store::Error::NotFound) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }
}

/// Whether the stored body contains `needle` (already lower-cased),
/// ASCII case ignored. Ephemeral and undecryptable bodies contain nothing.
fn body_contains(body: &EventBody, needle: &[u8]) -> bool {
    let EventBody::Stored(bytes) = body else {
        return false;
    };
    bytes.windows(needle.len()).any(|w| {
        w.iter()
            .zip(needle)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_ignores_ascii_case_and_skips_unstored_bodies() {
        let body = EventBody::Stored(br#"{"Action":"Opened"}"#.to_vec());
        assert!(body_contains(&body, b"opened"));
        assert!(body_contains(&body, b"\"action\""));
        assert!(!body_contains(&body, b"closed"));
        assert!(!body_contains(&EventBody::Omitted { size: 9 }, b"a"));
        assert!(!body_contains(&EventBody::Undecryptable { size: 9 }, b"a"));
    }
}
