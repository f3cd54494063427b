//! `/v1/tunnels` (DESIGN §10): create, list, read, patch and delete a
//! tenant's tunnels, and `/v1/tunnels/{id}/requests`, the request log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use model::{BucketAuth, TenantId, Tunnel, TunnelId};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::log::RequestRecord;
use crate::api::or_not_found;
use crate::api::views::BucketAuthOut;
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path, Query};
use crate::state::AppState;

/// Records `GET .../requests` returns at most (the ring's capacity).
const MAX_LISTED: usize = super::log::CAPACITY;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tunnels", get(list).post(create))
        .route("/v1/tunnels/{id}", get(show).patch(update).delete(remove))
        .route("/v1/tunnels/{id}/requests", get(requests))
}

/// The create body of DESIGN §10.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// A DNS label, unique on the server: the tunnel's public address.
    name: String,
    #[serde(default = "no_auth")]
    auth: BucketAuth,
    #[serde(default)]
    host_header: Option<String>,
    #[serde(default = "enabled")]
    enabled: bool,
}

/// Every field optional; `"hostHeader": null` clears the rewrite.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchBody {
    #[schema(nullable = false)]
    name: Option<String>,
    #[schema(nullable = false)]
    auth: Option<BucketAuth>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    host_header: Option<Option<String>>,
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

fn no_auth() -> BucketAuth {
    BucketAuth::None
}
fn enabled() -> bool {
    true
}
/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A tunnel as the API shows it: credentials redacted, URLs added.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TunnelView {
    #[schema(value_type = String)]
    id: TunnelId,
    #[schema(value_type = String)]
    tenant: TenantId,
    name: String,
    auth: BucketAuthOut,
    host_header: Option<String>,
    enabled: bool,
    created_at: i64,
    urls: Vec<String>,
    /// Agents serving it on this node now.
    agents: usize,
}

fn view(state: &AppState, t: &Tunnel) -> TunnelView {
    TunnelView {
        id: t.id.clone(),
        tenant: t.tenant.clone(),
        name: t.name.clone(),
        auth: BucketAuthOut::from(&t.auth),
        host_header: t.host_header.clone(),
        enabled: t.enabled,
        created_at: t.created_at,
        urls: super::urls(&state.config, &t.name),
        agents: state.tunnels.agent_count(&t.id),
    }
}

fn checked(tunnel: Tunnel) -> Result<Tunnel, ApiError> {
    tunnel.validate()?;
    let empty = match &tunnel.auth {
        BucketAuth::Basic { username, password } => {
            username.is_empty() || password.expose().is_empty()
        }
        BucketAuth::Token { token } => token.expose().is_empty(),
        BucketAuth::None => false,
    };
    if empty {
        return Err(ApiError::invalid_request(
            "auth: credentials must not be empty",
        ));
    }
    Ok(tunnel)
}

async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<TunnelView>), ApiError> {
    let tunnel = checked(Tunnel {
        id: TunnelId::generate(),
        tenant: caller.tenant,
        name: body.name,
        auth: body.auth,
        host_header: body.host_header,
        enabled: body.enabled,
        created_at: store::clock::now_ms(),
    })?;
    state.store.create_tunnel(&tunnel).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &tunnel))))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TunnelList {
    tunnels: Vec<TunnelView>,
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<TunnelList>, ApiError> {
    let tunnels = state.store.list_tunnels(&caller.tenant).await?;
    let tunnels = tunnels.iter().map(|t| view(&state, t)).collect();
    Ok(Json(TunnelList { tunnels }))
}

async fn find(state: &AppState, tenant: &TenantId, id: &str) -> Result<Tunnel, ApiError> {
    let id: TunnelId = id.parse().map_err(|_| ApiError::not_found("tunnel"))?;
    state
        .store
        .tunnel(tenant, &id)
        .await
        .map_err(or_not_found("tunnel"))
}

async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<TunnelView>, ApiError> {
    let tunnel = find(&state, &caller.tenant, &id).await?;
    Ok(Json(view(&state, &tunnel)))
}

async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Json(patch): Json<PatchBody>,
) -> Result<Json<TunnelView>, ApiError> {
    let mut tunnel = find(&state, &caller.tenant, &id).await?;
    if let Some(name) = patch.name {
        tunnel.name = name;
    }
    if let Some(auth) = patch.auth {
        tunnel.auth = auth;
    }
    if let Some(host_header) = patch.host_header {
        tunnel.host_header = host_header;
    }
    if let Some(enabled) = patch.enabled {
        tunnel.enabled = enabled;
    }
    let tunnel = checked(tunnel)?;
    state
        .store
        .update_tunnel(&tunnel)
        .await
        .map_err(or_not_found("tunnel"))?;
    Ok(Json(view(&state, &tunnel)))
}

async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tunnel = find(&state, &caller.tenant, &id).await?;
    state
        .store
        .delete_tunnel(&caller.tenant, &tunnel.id)
        .await
        .map_err(or_not_found("tunnel"))?;
    state.tunnels.log.forget(&tunnel.id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub(crate) struct RequestsQuery {
    /// At most this many, newest first (1 to 1000, default 100).
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RequestList {
    requests: Vec<RequestRecord>,
}

/// The tunnel's recent requests on this node, newest first.
async fn requests(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Query(query): Query<RequestsQuery>,
) -> Result<Json<RequestList>, ApiError> {
    let tunnel = find(&state, &caller.tenant, &id).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LISTED);
    Ok(Json(RequestList {
        requests: state.tunnels.log.recent(&tunnel.id, limit),
    }))
}
