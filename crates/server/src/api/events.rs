//! `/v1/events`: cursor reads with long-poll, one event with its
//! deliveries, and manual resend (DESIGN §3.2).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use model::{BucketId, EventId, OutputId, TenantId};
use serde::Deserialize;
use store::{Cursor, EventQuery};

use super::or_not_found;
use super::views::{EventDetail, EventOut, EventPage, Resent};
use crate::auth::{Admin, Caller, Reader};
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
        .route("/v1/events/{event}/resend", post(resend))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    bucket: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
    wait: Option<u64>,
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
    Query(q): Query<ListQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let buckets = readable_buckets(&state, &caller, q.bucket.as_deref()).await?;
    let from = match &q.after {
        Some(after) => Cursor::After(
            after
                .parse::<EventId>()
                .map_err(|_| ApiError::invalid_request("after: not an event id"))?,
        ),
        None => Cursor::Start,
    };
    let query = EventQuery {
        from,
        buckets,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECONDS));
    let events = read_or_wait(&state, &caller.tenant, &query, wait).await?;
    let next = events.last().map(|e| e.id.to_string()).or(q.after);
    Ok(Json(EventPage {
        events: events.iter().map(EventOut::from).collect(),
        next,
    }))
}

/// Reads once; if nothing is there and `wait` is set, waits for commits
/// until something arrives, the wait ends, or the server shuts down.
async fn read_or_wait(
    state: &AppState,
    tenant: &TenantId,
    query: &EventQuery,
    wait: Duration,
) -> Result<Vec<model::Event>, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before the first read so a commit between the read and the
    // wait still wakes us.
    let mut commits = state.store.commits();
    loop {
        let events = state.store.events(tenant, query).await?;
        if !events.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(events);
        }
        let _waiting = state.metrics.long_poll_waiting();
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return Ok(events) },
            _ = tokio::time::sleep_until(deadline) => return Ok(events),
            _ = state.shutdown.cancelled() => return Ok(events),
        }
    }
}

fn parse_event_id(id: &str) -> Result<EventId, ApiError> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendQuery {
    output: Option<String>,
}

async fn resend(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Query(q): Query<ResendQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let output = match &q.output {
        Some(o) => Some(
            o.parse::<OutputId>()
                .map_err(|_| ApiError::not_found("output"))?,
        ),
        None => None,
    };
    let reset = state
        .store
        .reset_deliveries(&caller.tenant, &parse_event_id(&id)?, output.as_ref())
        .await
        .map_err(or_not_found("event"))?;
    state.hub.wake(&caller.tenant);
    Ok((StatusCode::ACCEPTED, Json(Resent { deliveries: reset })))
}
