//! `/v1/buckets`: create, list, read, patch and delete a tenant's buckets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use model::{Bucket, BucketAuth, BucketId, TenantId};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{or_not_found, resolve_bucket, views};
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/buckets", get(list).post(create))
        .route(
            "/v1/buckets/{bucket}",
            get(show).patch(update).delete(remove),
        )
}

/// The create body of DESIGN §3.4; also what a PATCH is merged into.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BucketBody {
    name: String,
    #[serde(default = "no_auth")]
    auth: BucketAuth,
    #[serde(default)]
    ephemeral: bool,
    #[serde(default = "default_retention")]
    retention_seconds: u64,
    #[serde(default = "default_catchup")]
    catchup_seconds: u64,
    #[serde(default = "enabled")]
    enabled: bool,
}

fn no_auth() -> BucketAuth {
    BucketAuth::None
}
fn default_retention() -> u64 {
    Bucket::DEFAULT_RETENTION_SECONDS
}
fn default_catchup() -> u64 {
    Bucket::DEFAULT_CATCHUP_SECONDS
}
fn enabled() -> bool {
    true
}

impl BucketBody {
    pub(crate) fn into_bucket(
        self,
        id: BucketId,
        tenant: TenantId,
        created_at: i64,
    ) -> Result<Bucket, ApiError> {
        model::validate_slug("name", &self.name)?;
        if self.retention_seconds == 0 || self.retention_seconds > 365 * 86_400 {
            return Err(ApiError::invalid_request(
                "retentionSeconds: must be between 1 and 31536000",
            ));
        }
        if self.catchup_seconds > self.retention_seconds {
            return Err(ApiError::invalid_request(
                "catchupSeconds: must not exceed retentionSeconds",
            ));
        }
        let empty_secret = match &self.auth {
            BucketAuth::Basic { username, password } => {
                username.is_empty() || password.expose().is_empty()
            }
            BucketAuth::Token { token } => token.expose().is_empty(),
            BucketAuth::None => false,
        };
        if empty_secret {
            return Err(ApiError::invalid_request(
                "auth: credentials must not be empty",
            ));
        }
        Ok(Bucket {
            id,
            tenant,
            name: self.name,
            auth: self.auth,
            ephemeral: self.ephemeral,
            retention_seconds: self.retention_seconds,
            catchup_seconds: self.catchup_seconds,
            enabled: self.enabled,
            created_at,
        })
    }
}

async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<BucketBody>,
) -> Result<impl IntoResponse, ApiError> {
    let bucket = body.into_bucket(BucketId::generate(), caller.tenant, store::clock::now_ms())?;
    state.store.create_bucket(&bucket).await?;
    crate::cluster::config_changed(&state).await;
    Ok((StatusCode::CREATED, Json(views::bucket(&bucket))))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<Value>, ApiError> {
    let buckets = state.store.list_buckets(&caller.tenant).await?;
    let buckets: Vec<Value> = buckets.iter().map(views::bucket).collect();
    Ok(Json(json!({ "buckets": buckets })))
}

async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    Ok(Json(views::bucket(&bucket)))
}

async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
    Json(patch): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let current = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let body: BucketBody = views::apply_patch(
        views::as_create_body(&current, &["id", "tenant", "createdAt"]),
        patch,
    )?;
    let updated = body.into_bucket(current.id, current.tenant, current.created_at)?;
    state
        .store
        .update_bucket(&updated)
        .await
        .map_err(or_not_found("bucket"))?;
    crate::cluster::config_changed(&state).await;
    Ok(Json(views::bucket(&updated)))
}

async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
) -> Result<StatusCode, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    state
        .store
        .delete_bucket(&caller.tenant, &bucket.id)
        .await
        .map_err(or_not_found("bucket"))?;
    crate::cluster::config_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
