//! `/v1/tokens`: a tenant's access tokens. The secret is returned once, at
//! creation, as part of the bearer string `<key>.<secret>`; only its bcrypt
//! hash is kept. A token's scope and agent mode never change. A lost secret
//! is replaced, never recovered: `POST /v1/tokens/{key}/rotate` answers a new
//! one (once) and the old one stops working at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use model::{AgentMode, BucketId, Secret, TenantId, Token, TokenKey, TokenScope};
use serde::Deserialize;
use utoipa::ToSchema;

use super::or_not_found;
use super::views::{TokenIssued, TokenList, TokenOut};
use crate::auth::{Admin, Caller};
use crate::error::{ApiError, Json, Path};
use crate::lookup::resolve_bucket;
use crate::secrets;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list).post(create))
        .route("/v1/tokens/{key}", get(show).patch(update).delete(remove))
        .route("/v1/tokens/{key}/rotate", post(rotate))
}

/// The create body of DESIGN §3.4.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateBody {
    pub(crate) scope: TokenScope,
    #[serde(default)]
    pub(crate) buckets: Vec<String>,
    #[serde(default)]
    pub(crate) mode: Option<AgentMode>,
    #[serde(default)]
    pub(crate) description: String,
}

/// A PATCH of a token: its buckets and description (scope and mode never
/// change).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchBody {
    #[serde(default)]
    pub(crate) buckets: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

/// A new token and its secret (shown once).
pub(crate) struct Issued {
    pub(crate) token: Token,
    pub(crate) secret: Secret,
}

impl Issued {
    /// The bearer string a client presents.
    pub(crate) fn bearer(&self) -> String {
        format!("{}.{}", self.token.key, self.secret.expose())
    }
}

/// Makes and stores a token.
pub(crate) async fn issue(
    store: &dyn store::Store,
    bcrypt_cost: u32,
    tenant: TenantId,
    scope: TokenScope,
    buckets: Vec<BucketId>,
    mode: Option<AgentMode>,
    description: String,
) -> Result<Issued, ApiError> {
    let secret = secrets::generate();
    let hash = secrets::hash(secret.clone(), bcrypt_cost).await?;
    let token = Token {
        key: TokenKey::generate(),
        tenant,
        scope,
        buckets,
        mode,
        description,
        secret_hash: Secret::new(hash),
        created_at: store::clock::now_ms(),
    };
    store.create_token(&token).await?;
    Ok(Issued {
        token,
        secret: Secret::new(secret),
    })
}

async fn bucket_ids(
    state: &AppState,
    tenant: &TenantId,
    names: &[String],
) -> Result<Vec<BucketId>, ApiError> {
    let mut ids = Vec::with_capacity(names.len());
    for name in names {
        ids.push(resolve_bucket(state, tenant, name).await?.id);
    }
    Ok(ids)
}

/// The checks of a create body that need no store: who may make admin
/// tokens, which scopes have a mode (agent, defaulting to `forward`) and
/// which are limited to buckets. Returns the token's mode.
pub(crate) fn check_create(
    body: &CreateBody,
    caller_is_admin: bool,
) -> Result<Option<AgentMode>, ApiError> {
    if body.scope == TokenScope::Admin && !caller_is_admin {
        return Err(ApiError::invalid_request(
            "scope: only the administrator can create admin tokens",
        ));
    }
    let mode = match (body.scope, body.mode) {
        (TokenScope::Agent, mode) => Some(mode.unwrap_or(AgentMode::Forward)),
        (_, None) => None,
        (_, Some(_)) => {
            return Err(ApiError::invalid_request(
                "mode: only agent tokens have a mode",
            ))
        }
    };
    let scoped = matches!(body.scope, TokenScope::Agent | TokenScope::Poll);
    if !scoped && !body.buckets.is_empty() {
        return Err(ApiError::invalid_request(
            "buckets: only agent and poll tokens are limited to buckets",
        ));
    }
    Ok(mode)
}

async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<CreateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let mode = check_create(&body, caller.is_admin())?;
    let buckets = bucket_ids(&state, &caller.tenant, &body.buckets).await?;
    let issued = issue(
        state.store.as_ref(),
        state.config.bcrypt_cost,
        caller.tenant,
        body.scope,
        buckets,
        mode,
        body.description,
    )
    .await?;
    let view = TokenIssued::new(&issued.token, &issued.secret);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.store.list_tokens(&caller.tenant).await?;
    let tokens = tokens
        .iter()
        .filter(|t| visible_to(&caller, t))
        .map(TokenOut::from)
        .collect();
    Ok(Json(TokenList { tokens }))
}

/// Admin tokens are filed under a tenant (the first-start one under
/// `default`) but belong to the administrator: a tenant token must neither
/// see nor revoke them, or it could lock the administrator out.
fn visible_to(caller: &Caller, token: &Token) -> bool {
    token.tenant == caller.tenant && (caller.is_admin() || token.scope != TokenScope::Admin)
}

async fn find(state: &AppState, caller: &Caller, key: &str) -> Result<Token, ApiError> {
    let key: TokenKey = key.parse().map_err(|_| ApiError::not_found("token"))?;
    let token = state
        .store
        .token_by_key(&key)
        .await
        .map_err(or_not_found("token"))?;
    if !visible_to(caller, &token) {
        return Err(ApiError::not_found("token"));
    }
    Ok(token)
}

async fn show(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(key): Path<String>,
) -> Result<Json<TokenOut>, ApiError> {
    Ok(Json(TokenOut::from(&find(&state, &caller, &key).await?)))
}

async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(key): Path<String>,
    Json(patch): Json<PatchBody>,
) -> Result<Json<TokenOut>, ApiError> {
    let mut token = find(&state, &caller, &key).await?;
    if let Some(buckets) = patch.buckets {
        if !matches!(token.scope, TokenScope::Agent | TokenScope::Poll) && !buckets.is_empty() {
            return Err(ApiError::invalid_request(
                "buckets: only agent and poll tokens are limited to buckets",
            ));
        }
        token.buckets = bucket_ids(&state, &caller.tenant, &buckets).await?;
    }
    if let Some(description) = patch.description {
        token.description = description;
    }
    state
        .store
        .update_token(&token)
        .await
        .map_err(or_not_found("token"))?;
    state.auth.forget(token.key.as_str());
    Ok(Json(TokenOut::from(&token)))
}

async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let token = find(&state, &caller, &key).await?;
    state
        .store
        .delete_token(&caller.tenant, &token.key)
        .await
        .map_err(or_not_found("token"))?;
    state.auth.forget(token.key.as_str());
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the token's secret; the answer carries the new one, once. The
/// cached verification of the old secret is dropped, so it fails from the
/// next request on.
async fn rotate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(key): Path<String>,
) -> Result<Json<TokenIssued>, ApiError> {
    let token = find(&state, &caller, &key).await?;
    let secret = secrets::generate();
    let hash = secrets::hash(secret.clone(), state.config.bcrypt_cost).await?;
    state
        .store
        .rotate_token_secret(&caller.tenant, &token.key, &hash)
        .await
        .map_err(or_not_found("token"))?;
    state.auth.forget(token.key.as_str());
    Ok(Json(TokenIssued::new(&token, &Secret::new(secret))))
}
