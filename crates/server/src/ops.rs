//! Operations routes (DESIGN §3.5): liveness, readiness and metrics. No
//! authentication: they reveal nothing about tenants.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// `GET /api/health`: the server answers.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: &'static str,
    /// Server time, ms since the Unix epoch.
    timestamp: i64,
}

/// `GET /readyz`: the store answers too.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ready {
    /// Always `ready`.
    status: &'static str,
}

async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        timestamp: store::clock::now_ms(),
    })
}

async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::unavailable())?;
    Ok((StatusCode::OK, axum::Json(Ready { status: "ready" })))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
        let mut text = state
            .metrics
            .render(state.store.pending_writes(), state.hub.agent_count());
        state.tunnels.render_metrics(&mut text);
        text
    })
}
