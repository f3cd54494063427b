//! `GET /v1/agents`: the caller's tenant's agents connected now (DESIGN
//! §3.4): id, group, buckets, transport, address, connected since, in
//! flight. On a cluster (a shared store), the agents of every live node.

use std::collections::HashSet;

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::views::{AgentList, AgentOut};
use crate::auth::Admin;
use crate::deliver::AgentInfo;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/agents", get(list))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<AgentList>, ApiError> {
    let local = state.hub.agents(&caller.tenant);
    let mut shown: Vec<AgentOut> = local.iter().map(|a| view(a)).collect();
    // On a cluster, the other nodes' agents as they announced them; this
    // node's own are shown live (their in-flight count moves).
    if let Some(cluster) = state.store.cluster_agents(&caller.tenant).await? {
        let here: HashSet<&str> = local.iter().map(|a| a.id.as_str()).collect();
        // An announcement this version cannot read (another version's
        // node) is left out rather than failing the list.
        shown.extend(
            cluster
                .into_iter()
                .filter_map(|a| serde_json::from_value::<AgentOut>(a).ok())
                .filter(|a| !here.contains(a.id.as_str())),
        );
        shown.sort_by_key(|a| a.connected_since);
    }
    Ok(Json(AgentList { agents: shown }))
}

fn view(a: &AgentInfo) -> AgentOut {
    AgentOut {
        id: a.id.clone(),
        group: a.group.clone(),
        buckets: a.buckets.iter().map(ToString::to_string).collect(),
        transport: a.transport.to_owned(),
        address: a.address.clone(),
        version: a.version.clone(),
        connected_since: a.connected_since,
        max_in_flight: a.max_in_flight,
        in_flight: a.in_flight.load(Ordering::Relaxed) as u64,
    }
}
