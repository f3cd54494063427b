//! `/v1/functions` (DESIGN §9): create, list, read, patch and delete a
//! tenant's functions, and `/v1/functions/{id}/invoke`, which runs one on
//! a sample request and answers the outcome. A source that does not
//! compile is refused naming the line; config values are secrets (only
//! their keys are shown); a function an input or output names cannot be
//! deleted (409 `in_use`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use model::function::MAX_FUNCTIONS;
use model::{Function, FunctionId, Secret, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::or_not_found;
use super::patch::{present, set};
use crate::auth::Admin;
use crate::error::{ApiError, Json, Path};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/functions", get(list).post(create))
        .route(
            "/v1/functions/{function}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/functions/{function}/invoke", post(invoke))
}

/// The create body of DESIGN §9.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FunctionBody {
    name: String,
    /// Only `lua` (Luau, Lua 5.1 syntax).
    #[serde(default = "lua")]
    language: String,
    /// At most 64 KiB.
    source: String,
    /// Secrets the script reads with `cfg.get(KEY)`: sealed at rest, never
    /// shown again (only their keys).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    config: BTreeMap<String, Secret>,
}

/// A PATCH of a function: any field of the create body. A `config`
/// replaces the whole config.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FunctionPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    language: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    source: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = BTreeMap<String, String>, nullable = false)]
    config: Option<BTreeMap<String, Secret>>,
}

fn lua() -> String {
    "lua".into()
}

/// A function as the API shows it: the config's keys, never its values.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionOut {
    id: String,
    tenant: String,
    name: String,
    language: String,
    source: String,
    config_keys: Vec<String>,
    /// Changes with every change of the source or config.
    version: u64,
    created_at: i64,
    updated_at: i64,
}

impl From<&Function> for FunctionOut {
    fn from(f: &Function) -> Self {
        FunctionOut {
            id: f.id.to_string(),
            tenant: f.tenant.to_string(),
            name: f.name.clone(),
            language: f.language.clone(),
            source: f.source.clone(),
            config_keys: f.config.keys().cloned().collect(),
            version: f.version,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// `GET /v1/functions`.
#[derive(Serialize, ToSchema)]
pub(crate) struct FunctionList {
    functions: Vec<FunctionOut>,
}

/// Checks the caps and that the source compiles (400 naming the line).
pub(crate) fn checked(function: Function) -> Result<Function, ApiError> {
    function.validate()?;
    crate::scripts::prepare(&function)
        .map_err(|e| ApiError::invalid_request(format!("source: {}", e.message)))?;
    Ok(function)
}

impl FunctionBody {
    pub(crate) fn into_function(
        self,
        id: FunctionId,
        tenant: TenantId,
        now: i64,
    ) -> Result<Function, ApiError> {
        checked(Function {
            id,
            tenant,
            name: self.name,
            language: self.language,
            source: self.source,
            config: self.config,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }
}

impl FunctionPatch {
    /// `current` with the patch applied, checked as a create, its version
    /// bumped.
    pub(crate) fn apply(self, current: &Function, now: i64) -> Result<Function, ApiError> {
        let mut f = current.clone();
        set(&mut f.name, self.name);
        set(&mut f.language, self.language);
        set(&mut f.source, self.source);
        set(&mut f.config, self.config);
        f.version = current.version + 1;
        f.updated_at = now;
        checked(f)
    }
}

async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<FunctionBody>,
) -> Result<(StatusCode, Json<FunctionOut>), ApiError> {
    let function = body.into_function(
        FunctionId::generate(),
        caller.tenant,
        store::clock::now_ms(),
    )?;
    // Counted before the write: two racing creates may pass one over the
    // cap, never more than the racers.
    if state.store.list_functions(&function.tenant).await?.len() >= MAX_FUNCTIONS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "limit_reached",
            format!("a tenant may hold at most {MAX_FUNCTIONS} functions"),
        ));
    }
    state.store.create_function(&function).await?;
    Ok((StatusCode::CREATED, Json(FunctionOut::from(&function))))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<FunctionList>, ApiError> {
    let functions = state.store.list_functions(&caller.tenant).await?;
    Ok(Json(FunctionList {
        functions: functions.iter().map(FunctionOut::from).collect(),
    }))
}

async fn find(state: &AppState, tenant: &TenantId, id: &str) -> Result<Function, ApiError> {
    let id: FunctionId = id.parse().map_err(|_| ApiError::not_found("function"))?;
    state
        .store
        .function(tenant, &id)
        .await
        .map_err(or_not_found("function"))
}

async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Json<FunctionOut>, ApiError> {
    Ok(Json(FunctionOut::from(
        &find(&state, &caller.tenant, &id).await?,
    )))
}

async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Json(patch): Json<FunctionPatch>,
) -> Result<Json<FunctionOut>, ApiError> {
    let current = find(&state, &caller.tenant, &id).await?;
    let updated = patch.apply(&current, store::clock::now_ms())?;
    state
        .store
        .update_function(&updated)
        .await
        .map_err(or_not_found("function"))?;
    state.scripts.forget(&updated.id);
    Ok(Json(FunctionOut::from(&updated)))
}

async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let function = find(&state, &caller.tenant, &id).await?;
    if let Some(user) = used_by(&state, &function).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "in_use",
            format!("the function is attached to {user}; detach it first"),
        ));
    }
    state
        .store
        .delete_function(&caller.tenant, &function.id)
        .await
        .map_err(or_not_found("function"))?;
    state.scripts.forget(&function.id);
    Ok(StatusCode::NO_CONTENT)
}

/// The first input or output of the tenant that names `function`.
async fn used_by(state: &AppState, function: &Function) -> Result<Option<String>, ApiError> {
    let tenant = &function.tenant;
    for bucket in state.store.list_buckets(tenant).await? {
        for input in state.store.list_inputs(tenant, &bucket.id).await? {
            if input.function_id.as_ref() == Some(&function.id) {
                return Ok(Some(format!("input {}", input.id)));
            }
        }
        for output in state.store.list_outputs(tenant, &bucket.id).await? {
            if output.function_id.as_ref() == Some(&function.id) {
                return Ok(Some(format!("output {}", output.id)));
            }
        }
    }
    Ok(None)
}

/// The sample request of `invoke` (DESIGN §14: `query` raw, `headers` an
/// object).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InvokeBody {
    #[serde(default = "post_method")]
    method: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
    /// Run it as an output function (no response setters) instead of an
    /// input function.
    #[serde(default)]
    output: bool,
}

fn post_method() -> String {
    "POST".into()
}

/// Headers a sample request may carry, and their bytes in all.
const MAX_INVOKE_HEADERS: usize = 100;
const MAX_INVOKE_HEADER_BYTES: usize = 64 * 1024;
/// Path and query, each.
const MAX_INVOKE_TARGET: usize = 8 * 1024;

impl InvokeBody {
    /// The request the function sees, after the checks a real request
    /// passed to get this far.
    pub(crate) fn into_request(self) -> Result<(functions::Request, bool), ApiError> {
        let method_ok = !self.method.is_empty()
            && self.method.len() <= 32
            && self.method.bytes().all(|b| b.is_ascii_alphabetic());
        if !method_ok {
            return Err(ApiError::invalid_request(
                "method: must be 1 to 32 ASCII letters",
            ));
        }
        if self.path.len() > MAX_INVOKE_TARGET || self.query.len() > MAX_INVOKE_TARGET {
            return Err(ApiError::invalid_request(format!(
                "path, query: at most {MAX_INVOKE_TARGET} bytes each"
            )));
        }
        let size: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        if self.headers.len() > MAX_INVOKE_HEADERS || size > MAX_INVOKE_HEADER_BYTES {
            return Err(ApiError::invalid_request(format!(
                "headers: at most {MAX_INVOKE_HEADERS} of {MAX_INVOKE_HEADER_BYTES} bytes in all"
            )));
        }
        for (name, value) in &self.headers {
            if http::HeaderName::try_from(name.as_str()).is_err()
                || http::HeaderValue::try_from(value.as_str()).is_err()
            {
                return Err(ApiError::invalid_request(format!(
                    "headers: {name:?} is not a valid header"
                )));
            }
        }
        let request = functions::Request {
            method: self.method.to_ascii_uppercase(),
            path: self.path,
            query: self.query,
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body: self.body.into_bytes(),
        };
        Ok((request, self.output))
    }
}

/// A request in an `invoke` answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvokeRequest {
    method: String,
    path: String,
    query: String,
    /// A repeated name keeps its last value.
    headers: BTreeMap<String, String>,
    body: String,
    /// `base64` when the body is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<String>,
}

/// The answer the function set for the sender.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvokeResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<String>,
}

/// `invoke`'s answer (DESIGN §9).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvokeOut {
    /// The request after the function (unchanged when it failed).
    request: InvokeRequest,
    response: Option<InvokeResponse>,
    stop_forwarding: bool,
    logs: Vec<String>,
    error: Option<String>,
    duration_micros: u64,
}

fn text(body: Vec<u8>) -> (String, Option<String>) {
    match String::from_utf8(body) {
        Ok(s) => (s, None),
        Err(e) => (
            base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
            Some("base64".to_owned()),
        ),
    }
}

impl From<functions::Outcome> for InvokeOut {
    fn from(o: functions::Outcome) -> Self {
        let (body, body_encoding) = text(o.request.body);
        InvokeOut {
            request: InvokeRequest {
                method: o.request.method,
                path: o.request.path,
                query: o.request.query,
                headers: o.request.headers.into_iter().collect(),
                body,
                body_encoding,
            },
            response: o.response.map(|r| {
                let (body, body_encoding) = text(r.body);
                InvokeResponse {
                    status: r.status,
                    headers: r.headers.into_iter().collect(),
                    body,
                    body_encoding,
                }
            }),
            stop_forwarding: o.stop_forwarding,
            logs: o.logs,
            error: o.error,
            duration_micros: o.duration_micros,
        }
    }
}

async fn invoke(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Json(body): Json<InvokeBody>,
) -> Result<Json<InvokeOut>, ApiError> {
    let function = find(&state, &caller.tenant, &id).await?;
    let (request, output) = body.into_request()?;
    let loaded = crate::scripts::prepare(&function)
        .map_err(|e| ApiError::invalid_request(format!("source: {}", e.message)))?;
    let attachment = if output {
        functions::Attachment::Output
    } else {
        functions::Attachment::Input
    };
    let metadata = vec![("tenant_id", caller.tenant.to_string())];
    let outcome = state
        .scripts
        .run(&loaded, request, metadata, attachment)
        .await;
    Ok(Json(InvokeOut::from(outcome)))
}
