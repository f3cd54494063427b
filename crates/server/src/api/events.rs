//! `/v1/events`: cursor reads with filters and long-poll, and one event
//! with its deliveries (DESIGN §3.2, §11). Resends are in `resend`.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use model::{BucketId, DeliveryState, EventId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::or_not_found;
use super::scan::{Checked, EventFilter, Scanned};
use super::views::{EventDetail, EventOut, EventPage};
use crate::auth::{Caller, Reader};
use crate::error::{ApiError, Json, Path, Query};
use crate::lookup::resolve_bucket;
use crate::state::AppState;

/// Page size when none is asked for, and the most one page may hold.
pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 500;
/// The longest long-poll.
const MAX_WAIT_SECONDS: u64 = 60;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list))
        .route("/v1/events/{event}", get(show))
}

/// The query of `GET /v1/events`: the cursor, and the filters of
/// [`EventFilter`].
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventListQuery {
    /// `asc` (default): oldest first, from `after`; `desc`: newest first,
    /// from `before`.
    #[param(inline)]
    order: Option<Order>,
    /// The cursor of `asc`: events after this event id (the previous
    /// page's `next`).
    after: Option<String>,
    /// The cursor of `desc`: events before this event id (the previous
    /// page's `next`).
    before: Option<String>,
    /// Page size: default 100, at most 500.
    limit: Option<usize>,
    /// Seconds to wait for a first matching event when there is none (at
    /// most 60; `asc` only).
    wait: Option<u64>,
    /// Only this bucket (id or name).
    bucket: Option<String>,
    /// Only events of this input (its id).
    input: Option<String>,
    /// Only events with at least one delivery in this state.
    status: Option<DeliveryState>,
    /// Received at or after this time (ms since the Unix epoch).
    from: Option<i64>,
    /// Received at or before this time (ms since the Unix epoch).
    to: Option<i64>,
    /// Only this event type, exactly.
    event_type: Option<String>,
    /// Only events whose body contains this text, ASCII case ignored (at
    /// most 256 bytes).
    search: Option<String>,
}

/// The direction of a page of `GET /v1/events`.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Order {
    /// Oldest first (`after` cursor, `wait` allowed).
    #[default]
    Asc,
    /// Newest first (`before` cursor): the newest page is one read.
    Desc,
}

impl EventListQuery {
    fn filter(&self) -> EventFilter {
        EventFilter {
            bucket: self.bucket.clone(),
            input: self.input.clone(),
            status: self.status,
            from: self.from,
            to: self.to,
            event_type: self.event_type.clone(),
            search: self.search.clone(),
        }
    }
}

/// A cursor parameter: an event id, or 400 naming `field`.
pub(crate) fn parse_cursor(field: &str, value: Option<&str>) -> Result<Option<EventId>, ApiError> {
    value
        .map(|v| {
            v.parse::<EventId>()
                .map_err(|_| ApiError::invalid_request(format!("{field}: not an event id")))
        })
        .transpose()
}

/// The buckets `caller` may read, narrowed to `requested` if given.
pub(crate) async fn readable_buckets(
    state: &AppState,
    caller: &Caller,
    requested: Option<&str>,
) -> Result<Vec<BucketId>, ApiError> {
    match requested {
        Some(name) => {
            let bucket = resolve_bucket(state, &caller.tenant, name).await?;
            if !caller.may_read(&bucket.id) {
                return Err(ApiError::not_found("bucket"));
            }
            Ok(vec![bucket.id])
        }
        None => Ok(caller.buckets.clone()),
    }
}

async fn list(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Query(q): Query<EventListQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let order = q.order.unwrap_or_default();
    let refuse = |field: &str, other: &str| {
        ApiError::invalid_request(format!("{field}: not with order={other}"))
    };
    match order {
        Order::Asc if q.before.is_some() => return Err(refuse("before", "asc")),
        Order::Desc if q.after.is_some() => return Err(refuse("after", "desc")),
        Order::Desc if q.wait.is_some() => return Err(refuse("wait", "desc")),
        _ => {}
    }
    let after = parse_cursor("after", q.after.as_deref())?;
    let before = parse_cursor("before", q.before.as_deref())?;
    let checked = q.filter().check(&state, &caller).await?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECONDS));
    let scanned = match order {
        Order::Asc => scan_or_wait(&state, &caller, &checked, after, limit, wait).await?,
        Order::Desc => checked.scan_newest(&state, &caller, before, limit).await?,
    };
    // The last event examined, so that a filtered read that matched nothing
    // in its bound still moves on; the cursor sent when nothing was.
    let next = scanned
        .last
        .map(|id| id.to_string())
        .or(q.after)
        .or(q.before);
    Ok(Json(EventPage {
        events: scanned.events.iter().map(EventOut::from).collect(),
        next,
    }))
}

/// Scans once; if the whole log was examined without a match and `wait`
/// is set, waits for commits and scans what arrived, until something
/// matches, the wait ends, or the server shuts down.
async fn scan_or_wait(
    state: &AppState,
    caller: &Caller,
    filter: &Checked,
    mut after: Option<EventId>,
    limit: usize,
    wait: Duration,
) -> Result<Scanned, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before the first read so a commit between the read and the
    // wait still wakes us.
    let mut commits = state.store.commits();
    let mut furthest = None;
    loop {
        let mut scanned = filter.scan(state, caller, after, limit).await?;
        scanned.last = scanned.last.or(furthest);
        let done = !scanned.events.is_empty() || !scanned.exhausted;
        if done || tokio::time::Instant::now() >= deadline {
            return Ok(scanned);
        }
        furthest = scanned.last;
        after = scanned.last.or(after);
        let _waiting = state.metrics.long_poll_waiting();
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return Ok(scanned) },
            _ = tokio::time::sleep_until(deadline) => return Ok(scanned),
            _ = state.shutdown.cancelled() => return Ok(scanned),
        }
    }
}

pub(crate) fn parse_event_id(id: &str) -> Result<EventId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("event"))
}

async fn show(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Path(id): Path<String>,
) -> Result<Json<EventDetail>, ApiError> {
    let (event, deliveries) = state
        .store
        .event(&caller.tenant, &parse_event_id(&id)?)
        .await
        .map_err(or_not_found("event"))?;
    if !caller.may_read(&event.bucket) {
        return Err(ApiError::not_found("event"));
    }
    Ok(Json(EventDetail::new(&event, &deliveries)))
}
