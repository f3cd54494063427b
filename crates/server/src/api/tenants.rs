//! Radarboard-compatible tenant provisioning (`/api/tenants`, DESIGN §3.4),
//! for the administrator only, and the named-input upsert that both
//! `PUT /api/tenants/{id}/secrets` and `WEBHOOK_SECRET_<NAME>` use.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::Router;
use model::{
    Bucket, BucketAuth, BucketId, Input, InputId, IntegrationKind, ResponsePolicy, Secret, Tenant,
    TenantId,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::or_not_found;
use super::views::{SecretsSet, TenantCreated, TenantList, TenantOut};
use crate::auth::SuperAdmin;
use crate::error::{ApiError, Json, Path};
use crate::secrets;
use crate::state::AppState;

/// The bucket that holds a tenant's named (Radarboard-style) inputs.
const NAMED_INPUTS_BUCKET: &str = "default";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tenants", get(list).post(create))
        .route(
            "/api/tenants/{tenant}",
            get(show).patch(update).delete(remove),
        )
        .route("/api/tenants/{tenant}/secrets", put(set_secrets))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateBody {
    label: String,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    id: Option<TenantId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchBody {
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SecretsBody {
    pub(crate) webhook_secrets: BTreeMap<String, String>,
}

/// A create body's tenant id (given, or made from the label) and trimmed
/// label.
pub(crate) fn identity(body: CreateBody) -> Result<(TenantId, String), ApiError> {
    let label = body.label.trim().to_owned();
    if label.is_empty() || label.len() > 200 {
        return Err(ApiError::invalid_request(
            "label: must be 1 to 200 characters",
        ));
    }
    let id = match body.id {
        Some(id) => id,
        None => TenantId::slug_of(&label).ok_or_else(|| {
            ApiError::invalid_request("label: needs letters or digits to make an id, or pass id")
        })?,
    };
    Ok((id, label))
}

async fn create(
    State(state): State<AppState>,
    _: SuperAdmin,
    Json(body): Json<CreateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let (id, label) = identity(body)?;
    let poll_secret = secrets::generate();
    let record = store::TenantRecord {
        tenant: Tenant {
            id: id.clone(),
            label,
            enabled: true,
            created_at: store::clock::now_ms(),
        },
        poll_secret_hash: Some(secrets::hash(poll_secret.clone(), state.config.bcrypt_cost).await?),
    };
    state.store.create_tenant(&record).await?;
    let answer = TenantCreated {
        tenant: TenantOut::from(&record.tenant),
        poll_secret: Secret::new(poll_secret).reveal_once(),
        webhook_base_url: format!("/api/t/{id}/webhooks"),
        poll_url: format!("/api/t/{id}/events"),
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn list(State(state): State<AppState>, _: SuperAdmin) -> Result<Json<TenantList>, ApiError> {
    let tenants = state.store.list_tenants().await?;
    Ok(Json(TenantList {
        tenants: tenants.iter().map(TenantOut::from).collect(),
    }))
}

fn parse_id(id: &str) -> Result<TenantId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("tenant"))
}

async fn show(
    State(state): State<AppState>,
    _: SuperAdmin,
    Path(id): Path<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let record = state
        .store
        .tenant(&parse_id(&id)?)
        .await
        .map_err(or_not_found("tenant"))?;
    Ok(Json(TenantOut::from(&record.tenant)))
}

async fn update(
    State(state): State<AppState>,
    _: SuperAdmin,
    Path(id): Path<String>,
    Json(patch): Json<PatchBody>,
) -> Result<Json<TenantOut>, ApiError> {
    let mut tenant = state
        .store
        .tenant(&parse_id(&id)?)
        .await
        .map_err(or_not_found("tenant"))?
        .tenant;
    if let Some(label) = patch.label {
        tenant.label = label;
    }
    if let Some(enabled) = patch.enabled {
        tenant.enabled = enabled;
    }
    state
        .store
        .update_tenant(&tenant)
        .await
        .map_err(or_not_found("tenant"))?;
    Ok(Json(TenantOut::from(&tenant)))
}

async fn remove(
    State(state): State<AppState>,
    _: SuperAdmin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if id == TenantId::default_tenant() {
        return Err(ApiError::invalid_request(
            "the default tenant cannot be deleted",
        ));
    }
    state
        .store
        .delete_tenant(&id)
        .await
        .map_err(or_not_found("tenant"))?;
    state.auth.forget_all();
    Ok(StatusCode::NO_CONTENT)
}

async fn set_secrets(
    State(state): State<AppState>,
    _: SuperAdmin,
    Path(id): Path<String>,
    Json(body): Json<SecretsBody>,
) -> Result<Json<SecretsSet>, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .tenant(&id)
        .await
        .map_err(or_not_found("tenant"))?;
    let mut pairs = Vec::with_capacity(body.webhook_secrets.len());
    for (name, list) in body.webhook_secrets {
        let secrets = split_secrets(&list);
        model::caps::check_secrets("webhookSecrets", &secrets).map_err(|e| {
            let shown: String = name.chars().take(64).collect();
            ApiError::invalid_request(format!("webhookSecrets.{shown}: {}", e.reason))
        })?;
        pairs.push((name, secrets));
    }
    let names = upsert_named_inputs(&state.store, &id, pairs).await?;
    Ok(Json(SecretsSet {
        integrations: names,
    }))
}

/// A comma-separated secret list, newest first, blanks dropped.
pub(crate) fn split_secrets(list: &str) -> Vec<Secret> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::from)
        .collect()
}

/// Creates or updates `tenant`'s named inputs `<name>` with integration
/// `<name>` and the given secrets, in the tenant's `default` bucket.
/// Returns the input names now configured.
pub(crate) async fn upsert_named_inputs(
    store: &std::sync::Arc<dyn store::Store>,
    tenant: &TenantId,
    pairs: Vec<(String, Vec<Secret>)>,
) -> Result<Vec<String>, ApiError> {
    let bucket = named_inputs_bucket(store.as_ref(), tenant).await?;
    let mut names = Vec::new();
    for (raw_name, secrets) in pairs {
        let (name, kind) = named_integration(&raw_name, &secrets)?;
        match store.input_by_name(tenant, &name).await {
            Ok(mut input) => {
                input.integration = Some(kind);
                input.secrets = secrets;
                input.validate()?;
                super::inputs::check_secrets(&input)?;
                store.update_input(&input).await?;
            }
            Err(store::Error::NotFound) => {
                let mut input = Input {
                    id: InputId::generate(),
                    tenant: tenant.clone(),
                    bucket: bucket.id.clone(),
                    name: Some(name.clone()),
                    integration: Some(kind),
                    generic_hmac: None,
                    secrets,
                    response: ResponsePolicy::Default,
                    enabled: true,
                    body_limit: None,
                    rate_limit: None,
                    timestamp_tolerance_seconds: Input::DEFAULT_TIMESTAMP_TOLERANCE_SECONDS,
                    handshakes: true,
                    function_id: None,
                    created_at: store::clock::now_ms(),
                };
                input.fill_default_limits(model::Provisioning::Radarboard);
                input.validate()?;
                super::inputs::check_secrets(&input)?;
                store.create_input(&input).await?;
            }
            Err(e) => return Err(e.into()),
        }
        names.push(name);
    }
    Ok(names)
}

/// The input name and integration a `webhookSecrets` entry (or a
/// `WEBHOOK_SECRET_<NAME>` variable) configures: `<name>` lower-cased, `_`
/// as `-`, a fixed-scheme integration, with at least one secret.
pub(crate) fn named_integration(
    raw_name: &str,
    secrets: &[Secret],
) -> Result<(String, IntegrationKind), ApiError> {
    let name = raw_name.to_ascii_lowercase().replace('_', "-");
    let kind = IntegrationKind::from_name(&name)
        .filter(|k| *k != IntegrationKind::GenericHmac)
        .ok_or_else(|| {
            ApiError::invalid_request(format!(
                "webhookSecrets.{raw_name}: not a supported integration with a fixed scheme"
            ))
        })?;
    if secrets.is_empty() {
        return Err(ApiError::invalid_request(format!(
            "webhookSecrets.{raw_name}: needs at least one secret"
        )));
    }
    Ok((name, kind))
}

async fn named_inputs_bucket(
    store: &dyn store::Store,
    tenant: &TenantId,
) -> Result<Bucket, ApiError> {
    match store.bucket_by_name(tenant, NAMED_INPUTS_BUCKET).await {
        Ok(bucket) => return Ok(bucket),
        Err(store::Error::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let bucket = Bucket {
        id: BucketId::generate(),
        tenant: tenant.clone(),
        name: NAMED_INPUTS_BUCKET.to_owned(),
        auth: BucketAuth::None,
        ephemeral: false,
        retention_seconds: Bucket::DEFAULT_RETENTION_SECONDS,
        catchup_seconds: Bucket::DEFAULT_CATCHUP_SECONDS,
        enabled: true,
        created_at: store::clock::now_ms(),
    };
    match store.create_bucket(&bucket).await {
        Ok(()) => Ok(bucket),
        // Another request created it first; use theirs.
        Err(store::Error::Conflict(_)) => {
            Ok(store.bucket_by_name(tenant, NAMED_INPUTS_BUCKET).await?)
        }
        Err(e) => Err(e.into()),
    }
}
