//! `/v1/buckets`: create, list, read, patch and delete a tenant's buckets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use model::{Bucket, BucketAuth, BucketId, TenantId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::or_not_found;
use super::patch::{present, set};
use super::views::{BucketList, BucketOut};
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path};
use crate::lookup::resolve_bucket;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/buckets", get(list).post(create))
        .route(
            "/v1/buckets/{bucket}",
            get(show).patch(update).delete(remove),
        )
}

/// The create body of DESIGN §3.4.
#[derive(Deserialize, ToSchema)]
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

/// A PATCH of a bucket: any field of the create body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BucketPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    auth: Option<BucketAuth>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    ephemeral: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    retention_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    catchup_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

impl BucketBody {
    pub(crate) fn into_bucket(
        self,
        id: BucketId,
        tenant: TenantId,
        created_at: i64,
    ) -> Result<Bucket, ApiError> {
        let bucket = Bucket {
            id,
            tenant,
            name: self.name,
            auth: self.auth,
            ephemeral: self.ephemeral,
            retention_seconds: self.retention_seconds,
            catchup_seconds: self.catchup_seconds,
            enabled: self.enabled,
            created_at,
        };
        check(&bucket)?;
        Ok(bucket)
    }
}

impl BucketPatch {
    /// `current` with the patch applied, checked as a create.
    pub(crate) fn apply(self, current: &Bucket) -> Result<Bucket, ApiError> {
        let mut b = current.clone();
        set(&mut b.name, self.name);
        set(&mut b.auth, self.auth);
        set(&mut b.ephemeral, self.ephemeral);
        set(&mut b.retention_seconds, self.retention_seconds);
        set(&mut b.catchup_seconds, self.catchup_seconds);
        set(&mut b.enabled, self.enabled);
        check(&b)?;
        Ok(b)
    }
}

/// The rules of a bucket's settings, for create and patch alike.
fn check(b: &Bucket) -> Result<(), ApiError> {
    model::validate_slug("name", &b.name)?;
    if b.retention_seconds == 0 || b.retention_seconds > 365 * 86_400 {
        return Err(ApiError::invalid_request(
            "retentionSeconds: must be between 1 and 31536000",
        ));
    }
    if b.catchup_seconds > b.retention_seconds {
        return Err(ApiError::invalid_request(
            "catchupSeconds: must not exceed retentionSeconds",
        ));
    }
    let empty_secret = match &b.auth {
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
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<BucketBody>,
) -> Result<impl IntoResponse, ApiError> {
    let bucket = body.into_bucket(BucketId::generate(), caller.tenant, store::clock::now_ms())?;
    state.store.create_bucket(&bucket).await?;
    Ok((StatusCode::CREATED, Json(BucketOut::from(&bucket))))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<BucketList>, ApiError> {
    let buckets = state.store.list_buckets(&caller.tenant).await?;
    Ok(Json(BucketList {
        buckets: buckets.iter().map(BucketOut::from).collect(),
    }))
}

async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
) -> Result<Json<BucketOut>, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    Ok(Json(BucketOut::from(&bucket)))
}

async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
    Json(patch): Json<BucketPatch>,
) -> Result<Json<BucketOut>, ApiError> {
    let current = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let updated = patch.apply(&current)?;
    state
        .store
        .update_bucket(&updated)
        .await
        .map_err(or_not_found("bucket"))?;
    Ok(Json(BucketOut::from(&updated)))
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
    Ok(StatusCode::NO_CONTENT)
}
