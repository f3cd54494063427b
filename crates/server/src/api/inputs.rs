//! `/v1/buckets/{bucket}/inputs` and `/v1/inputs/{id}`: a tenant's inputs.
//! Secrets are accepted on create and patch and shown only in the create
//! answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use model::{
    BucketAuth, BucketId, FunctionId, GenericHmac, Input, InputId, InputRateLimit, IntegrationKind,
    Provisioning, ResponsePolicy, Secret, TenantId,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::or_not_found;
use super::patch::{present, set};
use super::views::{InputCreated, InputList, InputOut};
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path};
use crate::lookup::resolve_bucket;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/buckets/{bucket}/inputs", get(list).post(create))
        .route("/v1/inputs/{input}", get(show).patch(update).delete(remove))
}

/// The create body of DESIGN §3.4.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InputBody {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) integration: Option<IntegrationKind>,
    #[serde(default)]
    pub(crate) generic_hmac: Option<GenericHmac>,
    /// Newest first; each is tried in order (rotation).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub(crate) secrets: Vec<Secret>,
    #[serde(default = "default_response")]
    pub(crate) response: ResponsePolicy,
    #[serde(default = "enabled")]
    pub(crate) enabled: bool,
    #[serde(default)]
    pub(crate) body_limit: Option<u64>,
    #[serde(default)]
    pub(crate) rate_limit: Option<InputRateLimit>,
    #[serde(default = "default_tolerance")]
    pub(crate) timestamp_tolerance_seconds: u64,
    /// Answer provider handshakes (DESIGN §13).
    #[serde(default = "enabled")]
    pub(crate) handshakes: bool,
    /// A function of the tenant, run on each verified request (DESIGN §9).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(crate) function_id: Option<FunctionId>,
}

/// A PATCH of an input: any field of the create body; `null` clears the
/// optional ones.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InputPatch {
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    integration: Option<Option<IntegrationKind>>,
    #[serde(default, deserialize_with = "present")]
    generic_hmac: Option<Option<GenericHmac>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>, nullable = false)]
    secrets: Option<Vec<Secret>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    response: Option<ResponsePolicy>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    body_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<InputRateLimit>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    timestamp_tolerance_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    handshakes: Option<bool>,
    /// `null` detaches the function.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    function_id: Option<Option<FunctionId>>,
}

impl InputPatch {
    /// `current` (in a bucket with `bucket_auth`) with the patch applied,
    /// checked as a create; a limit cleared with `null` is back to the
    /// default of an input made through `/v1` (DESIGN §13).
    pub(crate) fn apply(
        self,
        current: &Input,
        bucket_auth: &BucketAuth,
    ) -> Result<Input, ApiError> {
        let mut i = current.clone();
        set(&mut i.name, self.name);
        set(&mut i.integration, self.integration);
        set(&mut i.generic_hmac, self.generic_hmac);
        set(&mut i.secrets, self.secrets);
        set(&mut i.response, self.response);
        set(&mut i.enabled, self.enabled);
        set(&mut i.body_limit, self.body_limit);
        set(&mut i.rate_limit, self.rate_limit);
        set(
            &mut i.timestamp_tolerance_seconds,
            self.timestamp_tolerance_seconds,
        );
        set(&mut i.handshakes, self.handshakes);
        set(&mut i.function_id, self.function_id);
        if i.body_limit.is_none() || i.rate_limit.is_none() {
            i.fill_default_limits(Provisioning::V1 {
                bucket_auth: !matches!(bucket_auth, BucketAuth::None),
            });
        }
        i.validate()?;
        check_secrets(&i)?;
        Ok(i)
    }
}

fn default_response() -> ResponsePolicy {
    ResponsePolicy::Default
}
fn enabled() -> bool {
    true
}
fn default_tolerance() -> u64 {
    Input::DEFAULT_TIMESTAMP_TOLERANCE_SECONDS
}

impl InputBody {
    /// The input this body describes, with the limits it leaves unset
    /// filled in as for an input made through `/v1` in a bucket with (or
    /// without) `bucket_auth` (DESIGN §13).
    pub(crate) fn into_input(
        self,
        id: InputId,
        tenant: TenantId,
        bucket: (BucketId, &BucketAuth),
        created_at: i64,
    ) -> Result<Input, ApiError> {
        let (bucket, auth) = bucket;
        let mut input = Input {
            id,
            tenant,
            bucket,
            name: self.name,
            integration: self.integration,
            generic_hmac: self.generic_hmac,
            secrets: self.secrets,
            response: self.response,
            enabled: self.enabled,
            body_limit: self.body_limit,
            rate_limit: self.rate_limit,
            timestamp_tolerance_seconds: self.timestamp_tolerance_seconds,
            handshakes: self.handshakes,
            function_id: self.function_id,
            created_at,
        };
        input.fill_default_limits(Provisioning::V1 {
            bucket_auth: !matches!(auth, BucketAuth::None),
        });
        input.validate()?;
        check_secrets(&input)?;
        Ok(input)
    }
}

/// Refuses secrets that could never verify under the input's integration
/// (a Discord or SendGrid key that is not a public key, a Standard Webhooks
/// secret that is not base64), naming the field but never the secret.
pub(crate) fn check_secrets(input: &Input) -> Result<(), ApiError> {
    let Some(kind) = input.integration else {
        return Ok(());
    };
    let Some(integration) = verify::Integration::new(kind, input.generic_hmac.as_ref()) else {
        return Ok(());
    };
    for (i, secret) in input.secrets.iter().enumerate() {
        integration
            .check_secret(secret.expose())
            .map_err(|why| ApiError::invalid_request(format!("secrets[{i}]: {why}")))?;
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
    Json(body): Json<InputBody>,
) -> Result<impl IntoResponse, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let input = body.into_input(
        InputId::generate(),
        caller.tenant,
        (bucket.id, &bucket.auth),
        store::clock::now_ms(),
    )?;
    crate::scripts::check_attached(&state, &input.tenant, input.function_id.as_ref()).await?;
    state.store.create_input(&input).await?;
    let view = InputCreated::new(&input, &state.config.public_url);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
) -> Result<Json<InputList>, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let inputs = state.store.list_inputs(&caller.tenant, &bucket.id).await?;
    let public_url = &state.config.public_url;
    Ok(Json(InputList {
        inputs: inputs
            .iter()
            .map(|i| InputOut::new(i, public_url))
            .collect(),
    }))
}

async fn find(state: &AppState, tenant: &TenantId, id: &str) -> Result<Input, ApiError> {
    let id: InputId = id.parse().map_err(|_| ApiError::not_found("input"))?;
    state
        .store
        .input(tenant, &id)
        .await
        .map_err(or_not_found("input"))
}

async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(input): Path<String>,
) -> Result<Json<InputOut>, ApiError> {
    let input = find(&state, &caller.tenant, &input).await?;
    Ok(Json(InputOut::new(&input, &state.config.public_url)))
}

async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(input): Path<String>,
    Json(patch): Json<InputPatch>,
) -> Result<Json<InputOut>, ApiError> {
    let current = find(&state, &caller.tenant, &input).await?;
    let bucket = state
        .store
        .bucket(&caller.tenant, &current.bucket)
        .await
        .map_err(or_not_found("input"))?;
    let updated = patch.apply(&current, &bucket.auth)?;
    crate::scripts::check_attached(&state, &updated.tenant, updated.function_id.as_ref()).await?;
    state
        .store
        .update_input(&updated)
        .await
        .map_err(or_not_found("input"))?;
    Ok(Json(InputOut::new(&updated, &state.config.public_url)))
}

async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(input): Path<String>,
) -> Result<StatusCode, ApiError> {
    let input = find(&state, &caller.tenant, &input).await?;
    state
        .store
        .delete_input(&caller.tenant, &input.id)
        .await
        .map_err(or_not_found("input"))?;
    Ok(StatusCode::NO_CONTENT)
}
