//! `/v1/buckets/{bucket}/inputs` and `/v1/inputs/{id}`: a tenant's inputs.
//! Secrets are accepted on create and patch and shown only in the create
//! answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use model::{
    BucketId, GenericHmac, Input, InputId, IntegrationKind, RateLimit, ResponsePolicy, Secret,
    TenantId,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{or_not_found, resolve_bucket, views};
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/buckets/{bucket}/inputs", get(list).post(create))
        .route("/v1/inputs/{input}", get(show).patch(update).delete(remove))
}

/// The create body of DESIGN §3.4; also what a PATCH is merged into.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InputBody {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) integration: Option<IntegrationKind>,
    #[serde(default)]
    pub(crate) generic_hmac: Option<GenericHmac>,
    #[serde(default)]
    pub(crate) secrets: Vec<Secret>,
    #[serde(default = "default_response")]
    pub(crate) response: ResponsePolicy,
    #[serde(default = "enabled")]
    pub(crate) enabled: bool,
    #[serde(default)]
    pub(crate) body_limit: Option<u64>,
    #[serde(default)]
    pub(crate) rate_limit: Option<RateLimit>,
    #[serde(default = "default_tolerance")]
    pub(crate) timestamp_tolerance_seconds: u64,
    #[serde(default = "enabled")]
    pub(crate) handshakes: bool,
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
    pub(crate) fn into_input(
        self,
        id: InputId,
        tenant: TenantId,
        bucket: BucketId,
        created_at: i64,
    ) -> Result<Input, ApiError> {
        let input = Input {
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
            created_at,
        };
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
        bucket.id,
        model::time::now_ms(),
    )?;
    state.store.create_input(&input).await?;
    crate::cluster::config_changed(&state).await;
    let mut view = views::input(&input, &state.config.public_url);
    let secrets: Vec<&str> = input.secrets.iter().map(Secret::expose).collect();
    view["secrets"] = json!(secrets);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(bucket): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let bucket = resolve_bucket(&state, &caller.tenant, &bucket).await?;
    let inputs = state.store.list_inputs(&caller.tenant, &bucket.id).await?;
    let inputs: Vec<Value> = inputs
        .iter()
        .map(|i| views::input(i, &state.config.public_url))
        .collect();
    Ok(Json(json!({ "inputs": inputs })))
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
) -> Result<Json<Value>, ApiError> {
    let input = find(&state, &caller.tenant, &input).await?;
    Ok(Json(views::input(&input, &state.config.public_url)))
}

async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(input): Path<String>,
    Json(patch): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let current = find(&state, &caller.tenant, &input).await?;
    let mut body = views::as_create_body(&current, &["id", "tenant", "bucket", "createdAt"]);
    body.insert("secrets".into(), json!(current.secrets));
    let body: InputBody = views::apply_patch(body, patch)?;
    let updated = body.into_input(
        current.id,
        current.tenant,
        current.bucket,
        current.created_at,
    )?;
    state
        .store
        .update_input(&updated)
        .await
        .map_err(or_not_found("input"))?;
    crate::cluster::config_changed(&state).await;
    Ok(Json(views::input(&updated, &state.config.public_url)))
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
    crate::cluster::config_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
