//! `GET /v1/buckets/{bucket}/stream`: the bucket's events as Server-Sent
//! Events. `Last-Event-ID` resumes after that event (within retention);
//! without it the stream starts at the present.
//!
//! The stream is driven by the store's commit ticks and reads by cursor, so
//! a slow reader never loses events to a lagging broadcast buffer: it just
//! reads the next page when it is ready.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use model::{Event, EventId, TenantId};
use store::{Cursor, EventQuery};

use super::events::readable_buckets;
use super::views::EventOut;
use crate::auth::Reader;
use crate::error::{ApiError, Path};
use crate::state::AppState;

/// Events read per store query while catching up.
const PAGE: usize = 100;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/buckets/{bucket}/stream", get(stream))
}

async fn stream(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Path(bucket): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let buckets = readable_buckets(&state, &caller, Some(&bucket)).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<EventId>().ok());
    let cursor = match resume {
        Some(id) => id,
        None => present(&state, &caller.tenant, &buckets).await?,
    };
    let tail = Tail {
        commits: state.store.commits(),
        state,
        tenant: caller.tenant,
        query: EventQuery {
            from: Cursor::After(cursor),
            buckets,
            limit: PAGE,
        },
        buffered: VecDeque::new(),
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        let event = tail.next().await?;
        let sse = SseEvent::default()
            .id(event.id.to_string())
            .event("webhook")
            .json_data(EventOut::from(&event))
            // An event view always serialises (strings, numbers, maps of
            // strings); were it not to, the event is sent without data
            // rather than ending the stream.
            .unwrap_or_else(|_| {
                SseEvent::default()
                    .id(event.id.to_string())
                    .event("webhook")
            });
        Some((Ok(sse), tail))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The cursor of "now": after the newest event already committed. Ids grow
/// in commit order, so that is exact; on a shared store the visibility
/// horizon lags the clock (the cluster's skew bound), and the events
/// between it and now are skipped here rather than replayed as live.
pub(crate) async fn present(
    state: &AppState,
    tenant: &TenantId,
    buckets: &[model::BucketId],
) -> Result<EventId, ApiError> {
    let mut cursor = EventId::floor_at(state.store.visible_before());
    // Bounded: a horizon lags by under a second, and a page is 100 events.
    for _ in 0..100 {
        let query = EventQuery {
            from: Cursor::After(cursor),
            buckets: buckets.to_vec(),
            limit: PAGE,
        };
        let page = state.store.events(tenant, &query).await?;
        match page.last() {
            Some(last) => cursor = last.id,
            None => break,
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(cursor)
}

/// Follows one tenant's events from a cursor.
struct Tail {
    state: AppState,
    tenant: TenantId,
    query: EventQuery,
    commits: tokio::sync::watch::Receiver<u64>,
    buffered: VecDeque<Event>,
}

impl Tail {
    /// The next event, or `None` when the stream should end (shutdown, or
    /// the store failing).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                self.query.from = Cursor::After(event.id);
                return Some(event);
            }
            // Mark the current commit as seen before reading, so a commit
            // that lands during the read wakes the wait below.
            self.commits.borrow_and_update();
            match self.state.store.events(&self.tenant, &self.query).await {
                Ok(page) if !page.is_empty() => {
                    self.buffered.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(%err, "event stream read failed; closing the stream");
                    return None;
                }
            }
            tokio::select! {
                changed = self.commits.changed() => changed.ok()?,
                _ = self.state.shutdown.cancelled() => return None,
            }
        }
    }
}
