//! Operations routes (DESIGN §3.5): liveness, readiness and metrics. No
//! authentication: they reveal nothing about tenants.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn health() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok", "timestamp": store::clock::now_ms() }))
}

async fn ready(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::unavailable())?;
    Ok((StatusCode::OK, axum::Json(json!({ "status": "ready" }))))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .metrics
            .render(state.store.pending_writes(), state.hub.agent_count()),
    )
}
