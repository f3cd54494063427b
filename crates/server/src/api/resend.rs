//! Manual resends (DESIGN §3.2, §11): one event (`POST
//! /v1/events/{id}/resend`), or every event a filter matches (`POST
//! /v1/events/resend`), at most [`RESEND_EVENTS`] per call, within the
//! scan's bounds; the answer's `next` continues where a call stopped.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use model::{DeliveryState, OutputId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::events::{parse_cursor, parse_event_id};
use super::or_not_found;
use super::scan::EventFilter;
use super::views::{Resent, ResentMatching};
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path, Query};
use crate::state::AppState;

/// The most events one bulk resend resets: each is one store write, and
/// 1,000 of them take about a second on Redis, well inside a request's
/// time limit.
pub(crate) const RESEND_EVENTS: usize = 1_000;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events/{event}/resend", post(resend))
        .route("/v1/events/resend", post(resend_matching))
}

/// The query of `POST /v1/events/{id}/resend`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResendQuery {
    /// Only to this output (its id).
    output: Option<String>,
}

fn parse_output(output: Option<&str>) -> Result<Option<OutputId>, ApiError> {
    output
        .map(|o| {
            o.parse::<OutputId>()
                .map_err(|_| ApiError::not_found("output"))
        })
        .transpose()
}

async fn resend(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Query(q): Query<ResendQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let output = parse_output(q.output.as_deref())?;
    let reset = state
        .store
        .reset_deliveries(&caller.tenant, &parse_event_id(&id)?, output.as_ref())
        .await
        .map_err(or_not_found("event"))?;
    state.hub.wake(&caller.tenant);
    Ok((StatusCode::ACCEPTED, Json(Resent { deliveries: reset })))
}

/// The body of `POST /v1/events/resend`: the filters of `GET /v1/events`,
/// where to start, and optionally one output. `{}` resends everything,
/// oldest first, [`RESEND_EVENTS`] at a time.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ResendBody {
    /// Start after this event id (a previous call's `next`).
    after: Option<String>,
    /// Only to this output (its id).
    output: Option<String>,
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
    /// Only events whose body contains this text, ASCII case ignored.
    search: Option<String>,
}

async fn resend_matching(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<ResendBody>,
) -> Result<impl IntoResponse, ApiError> {
    let after = parse_cursor("after", body.after.as_deref())?;
    let output = parse_output(body.output.as_deref())?;
    let filter = EventFilter {
        bucket: body.bucket,
        input: body.input,
        status: body.status,
        from: body.from,
        to: body.to,
        event_type: body.event_type,
        search: body.search,
    };
    let scanned = filter
        .check(&state, &caller)
        .await?
        .scan(&state, &caller, after, RESEND_EVENTS)
        .await?;
    let mut resent = 0;
    for event in &scanned.events {
        match state
            .store
            .reset_deliveries(&caller.tenant, &event.id, output.as_ref())
            .await
        {
            Ok(0) | Err(store::Error::NotFound) => {}
            Ok(_) => resent += 1,
            Err(other) => return Err(other.into()),
        }
    }
    if resent > 0 {
        state.hub.wake(&caller.tenant);
    }
    let next = match scanned.exhausted {
        true => None,
        false => scanned.last.map(|id| id.to_string()),
    };
    Ok((StatusCode::ACCEPTED, Json(ResentMatching { resent, next })))
}
