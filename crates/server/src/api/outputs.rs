//! `/v1/buckets/{bucket}/outputs` and `/v1/outputs/{id}`: a bucket's
//! destinations.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use model::{BucketId, FunctionId, Output, OutputId, RetryPolicy, TenantId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::or_not_found;
use super::patch::{present, set};
use super::views::{OutputList, OutputOut};
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path};
use crate::lookup::resolve_bucket;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/buckets/{bucket}/outputs", get(list).post(create))
        .route(
            "/v1/outputs/{output}",
            get(show).patch(update).delete(remove),
        )
}

/// The create body of DESIGN §3.4.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OutputBody {
    url: String,
    #[serde(default = "internal")]
    internal: bool,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    retry: RetryPolicy,
    #[serde(default = "default_concurrency")]
    concurrency: u32,
    #[serde(default)]
    ordered: bool,
    /// A function of the tenant, run per delivery (DESIGN §9).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    function_id: Option<FunctionId>,
}

/// A PATCH of an output: any field of the create body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OutputPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    internal: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    retry: Option<RetryPolicy>,
    #[serde(default, deserialize_with = "present")]
    concurrency: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    ordered: Option<bool>,
    /// `null` detaches the function.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    function_id: Option<Option<FunctionId>>,
}

impl OutputPatch {
    /// `current` with the patch applied, checked as a create.
    pub(crate) fn apply(self, current: &Output) -> Result<Output, ApiError> {
        let mut o = current.clone();
        set(&mut o.url, self.url);
        set(&mut o.internal, self.internal);
        set(&mut o.timeout_ms, self.timeout_ms);
        set(&mut o.headers, self.headers);
        set(&mut o.retry, self.retry);
        set(&mut o.concurrency, self.concurrency);
        set(&mut o.ordered, self.ordered);
        set(&mut o.function_id, self.function_id);
        o.validate()?;
        Ok(o)
    }
}

fn internal() -> bool {
    true
}
fn default_timeout() -> u64 {
    10_000
}
fn default_concurrency() -> u32 {
    Output::DEFAULT_CONCURRENCY
}

impl OutputBody {
    pub(crate) fn into_output(
        self,
        id: OutputId,
        tenant: TenantId,
        bucket: BucketId,
        created_at: i64,
    ) -> Result<Output, ApiError> {
        let output = Output {
            id,
            tenant,
            bucket,
            url: self.url,
            internal: self.internal,
            timeout_ms: self.timeout_ms,
            headers: self.headers,
            retry: self.retry,
            concurrency: self.concurrency,
            ordered: self.ordered,
            function_id: self.function_id,
            created_at,
        };
        output.validate()?;
        Ok(output)
    }
}

async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
    Json(body): Json<OutputBody>,
) -> Result<impl IntoResponse, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let output = body.into_output(
        OutputId::generate(),
        caller.tenant,
        bucket.id,
        store::clock::now_ms(),
    )?;
    crate::scripts::check_attached(&state, &output.tenant, output.function_id.as_ref()).await?;
    state.store.create_output(&output).await?;
    Ok((StatusCode::CREATED, Json(OutputOut::from(&output))))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
) -> Result<Json<OutputList>, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let outputs = state.store.list_outputs(&caller.tenant, &bucket.id).await?;
    Ok(Json(OutputList {
        outputs: outputs.iter().map(OutputOut::from).collect(),
    }))
}

async fn find(state: &AppState, tenant: &TenantId, id: &str) -> Result<Output, ApiError> {
    let id: OutputId = id.parse().map_err(|_| ApiError::not_found("output"))?;
    state
        .store
        .output(tenant, &id)
        .await
        .map_err(or_not_found("output"))
}

async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(output): Path<String>,
) -> Result<Json<OutputOut>, ApiError> {
    Ok(Json(OutputOut::from(
        &find(&state, &caller.tenant, &output).await?,
    )))
}

async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(output): Path<String>,
    Json(patch): Json<OutputPatch>,
) -> Result<Json<OutputOut>, ApiError> {
    let current = find(&state, &caller.tenant, &output).await?;
    let updated = patch.apply(&current)?;
    crate::scripts::check_attached(&state, &updated.tenant, updated.function_id.as_ref()).await?;
    state
        .store
        .update_output(&updated)
        .await
        .map_err(or_not_found("output"))?;
    Ok(Json(OutputOut::from(&updated)))
}

async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(output): Path<String>,
) -> Result<StatusCode, ApiError> {
    let output = find(&state, &caller.tenant, &output).await?;
    state
        .store
        .delete_output(&caller.tenant, &output.id)
        .await
        .map_err(or_not_found("output"))?;
    Ok(StatusCode::NO_CONTENT)
}
