//! `GET /v1/agents`: the caller's tenant's agents connected now (DESIGN
//! §3.4): id, group, buckets, transport, address, connected since, in
//! flight. On a cluster (a shared store), the agents of every live node.

use std::collections::HashSet;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/agents", get(list))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<Value>, ApiError> {
    let local = state.hub.agents(&caller.tenant);
    let mut shown: Vec<Value> = local
        .iter()
        .map(|a| serde_json::to_value(a.as_ref()).unwrap_or_default())
        .collect();
    // On a cluster, the other nodes' agents as they announced them; this
    // node's own are shown live (their in-flight count moves).
    if let Some(cluster) = state.store.cluster_agents(&caller.tenant).await? {
        let here: HashSet<&str> = local.iter().map(|a| a.id.as_str()).collect();
        shown.extend(
            cluster
                .into_iter()
                .filter(|a| a["id"].as_str().is_some_and(|id| !here.contains(id))),
        );
        shown.sort_by_key(|a| a["connectedSince"].as_i64().unwrap_or(0));
    }
    Ok(Json(json!({ "agents": shown })))
}
