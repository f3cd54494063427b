//! `GET /v1/agents`: the caller's tenant's agents connected now (DESIGN
//! §3.4): id, group, buckets, transport, address, connected since, in
//! flight.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::Admin;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/agents", get(list))
}

async fn list(State(state): State<AppState>, Admin(caller): Admin) -> Json<Value> {
    let agents = state.hub.agents(&caller.tenant);
    let shown: Vec<&crate::deliver::AgentInfo> = agents.iter().map(AsRef::as_ref).collect();
    Json(json!({ "agents": shown }))
}
