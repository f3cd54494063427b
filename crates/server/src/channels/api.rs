//! `/v1/buckets/{id}/channels` (DESIGN §12, §14): make, list and revoke a
//! bucket's channels, with a tenant or admin token. The capability is in
//! the URLs of the create answer only: the store keeps its digest.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use model::{Channel, ChannelId, MAX_CHANNELS_PER_BUCKET};
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

use super::stream::digest_of;
use crate::api::or_not_found;
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path};
use crate::lookup::resolve_bucket;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/buckets/{bucket}/channels", get(list).post(create))
        .route("/v1/buckets/{bucket}/channels/{id}", delete(remove))
}

/// A channel as listed: no capability, so no URLs.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChannelOut {
    /// `chn_...`.
    id: String,
    /// The bucket's id.
    bucket: String,
    /// Creation time, ms since the Unix epoch.
    created_at: i64,
    /// The last event sent to any of its clients, as last saved: a client
    /// that comes back without `Last-Event-ID` resumes after it.
    cursor: Option<String>,
    /// Its streams open on the node that answers.
    clients: usize,
}

/// A channel as created: the only answer that carries its URLs (the
/// capability is not stored, only its SHA-256).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChannelCreated {
    /// `chn_...`.
    id: String,
    /// The bucket's id.
    bucket: String,
    /// Creation time, ms since the Unix epoch.
    created_at: i64,
    /// For smee-client: `smee --url <smeeUrl> --target <destination>`.
    smee_url: String,
    /// For gosmee: `gosmee client <base>/smee <channel>` reads
    /// `<base>/smee/events/<channel>`, this URL.
    gosmee_url: String,
}

/// `GET /v1/buckets/{bucket}/channels`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChannelList {
    channels: Vec<ChannelOut>,
}

fn view(state: &AppState, c: &Channel) -> ChannelOut {
    ChannelOut {
        id: c.id.to_string(),
        bucket: c.bucket.to_string(),
        created_at: c.created_at,
        cursor: c.cursor.map(|e| e.to_string()),
        clients: state.channels.clients(&c.id),
    }
}

async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
) -> Result<(StatusCode, Json<ChannelCreated>), ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let existing = state
        .store
        .list_channels(&caller.tenant, &bucket.id)
        .await?;
    if existing.len() >= MAX_CHANNELS_PER_BUCKET {
        return Err(ApiError::invalid_request(format!(
            "channels: a bucket has at most {MAX_CHANNELS_PER_BUCKET}; revoke one first"
        )));
    }
    let mut random = [0_u8; 16];
    rand::rng().fill_bytes(&mut random);
    let cap: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let digest = digest_of(&cap).ok_or_else(|| ApiError::internal("capability"))?;
    let channel = Channel {
        id: ChannelId::generate(),
        tenant: caller.tenant,
        bucket: bucket.id,
        capability_sha256: digest,
        cursor: None,
        created_at: store::clock::now_ms(),
    };
    state
        .store
        .create_channel(&channel)
        .await
        .map_err(or_not_found("bucket"))?;
    let base = state.config.public_url.trim_end_matches('/');
    Ok((
        StatusCode::CREATED,
        Json(ChannelCreated {
            id: channel.id.to_string(),
            bucket: channel.bucket.to_string(),
            created_at: channel.created_at,
            smee_url: format!("{base}/smee/{cap}"),
            gosmee_url: format!("{base}/smee/events/{cap}"),
        }),
    ))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
) -> Result<Json<ChannelList>, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let channels = state
        .store
        .list_channels(&caller.tenant, &bucket.id)
        .await?;
    Ok(Json(ChannelList {
        channels: channels.iter().map(|c| view(&state, c)).collect(),
    }))
}

async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path((bucket, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let id: ChannelId = id.parse().map_err(|_| ApiError::not_found("channel"))?;
    state
        .store
        .delete_channel(&caller.tenant, &bucket.id, &id)
        .await
        .map_err(or_not_found("channel"))?;
    state.channels.revoke(&id);
    Ok(StatusCode::NO_CONTENT)
}
