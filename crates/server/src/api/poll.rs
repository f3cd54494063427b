//! The Radarboard poll (`GET /api/events`, `/api/t/{tenant}/events`, DESIGN
//! §3.2, §8): events received at or after `since`, a bare JSON array, and
//! `X-Relay-Timestamp` for the next `since`. Own rate limit per client IP;
//! CORS only for the configured origin.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use model::TenantId;
use serde::Deserialize;
use store::{Cursor, EventQuery, RateDecision};
use utoipa::IntoParams;

use super::events::{DEFAULT_LIMIT, MAX_LIMIT};
use super::views::EventOut;
use crate::auth::authenticate_poll;
use crate::error::{ApiError, Path, Query};
use crate::state::AppState;

/// How far back a poll without `since` looks.
const DEFAULT_LOOKBACK_MS: i64 = 60_000;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/events", get(poll_default).options(preflight))
        .route(
            "/api/t/{tenant}/events",
            get(poll_tenant).options(preflight),
        )
}

/// The query of the Radarboard poll.
#[derive(Deserialize, IntoParams)]
pub(crate) struct PollQuery {
    /// ms since the Unix epoch; default now − 60 s.
    since: Option<i64>,
    /// At most this many events: default 100, at most 500.
    limit: Option<usize>,
}

async fn poll_default(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<PollQuery>, ApiError>,
) -> Response {
    let response = poll(&state, peer, &headers, TenantId::default_tenant(), query).await;
    with_cors(
        &state,
        &headers,
        response.unwrap_or_else(IntoResponse::into_response),
    )
}

async fn poll_tenant(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    tenant: Result<Path<String>, ApiError>,
    headers: HeaderMap,
    query: Result<Query<PollQuery>, ApiError>,
) -> Response {
    let tenant = tenant.ok().and_then(|Path(t)| t.parse::<TenantId>().ok());
    let response = match tenant {
        Some(tenant) => poll(&state, peer, &headers, tenant, query).await,
        None => Err(ApiError::unauthorized()),
    };
    with_cors(
        &state,
        &headers,
        response.unwrap_or_else(IntoResponse::into_response),
    )
}

async fn poll(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    tenant: TenantId,
    query: Result<Query<PollQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let ip = crate::client::client_ip(&state.config.trusted_proxies, peer, headers);
    let key = format!("poll:{ip}");
    let now = store::clock::now_ms();
    if let RateDecision::Limited { retry_after_secs } = state
        .store
        .rate_limit(&key, state.config.poll_rate_limit, now)
        .await?
    {
        return Err(ApiError::rate_limited(retry_after_secs));
    }
    // A bad query still counts against the rate limit and gets CORS.
    let Query(q) = query?;
    let caller = authenticate_poll(state, headers, &tenant, ip).await?;
    // Read the horizon before the query: every event received before it is
    // already visible, so `since = horizon` next time misses nothing.
    let horizon = state.store.visible_before();
    let query = EventQuery {
        from: Cursor::Since(q.since.unwrap_or(now - DEFAULT_LOOKBACK_MS)),
        buckets: caller.buckets.clone(),
        limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let events = state.store.events(&caller.tenant, &query).await?;
    // A full page may have left events out: the next `since` must be the
    // last one returned (which comes again; duplicates are allowed), not
    // the horizon, or everything between the two would be skipped.
    let next_since = match events.last() {
        Some(last) if events.len() == query.limit => last.received_at,
        _ => horizon,
    };
    let body: Vec<EventOut> = events.iter().map(EventOut::from).collect();
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert("x-relay-timestamp", HeaderValue::from(next_since));
    Ok(response)
}

async fn preflight(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if allowed_origin(&state, &headers).is_some() {
        let h = response.headers_mut();
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("GET, OPTIONS"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
    }
    with_cors(&state, &headers, response)
}

/// The request's `Origin` if it is the configured one.
fn allowed_origin(state: &AppState, headers: &HeaderMap) -> Option<HeaderValue> {
    let allowed = state.config.allowed_origin.as_deref()?;
    let origin = headers.get(http::header::ORIGIN)?;
    (origin.as_bytes() == allowed.as_bytes()).then(|| origin.clone())
}

fn with_cors(state: &AppState, headers: &HeaderMap, mut response: Response) -> Response {
    if let Some(origin) = allowed_origin(state, headers) {
        let h = response.headers_mut();
        h.insert("access-control-allow-origin", origin);
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("x-relay-timestamp"),
        );
        h.insert(http::header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}
