//! Who is calling: bearer credentials turned into a [`Caller`], with a
//! short-lived cache so hot routes do not pay bcrypt on every request.
//!
//! Credentials (DESIGN §3.4, §8): `Bearer <key>.<secret>` for tokens,
//! `Bearer <admin secret>` for the admin secret, `Bearer <poll secret>` on
//! the poll routes. Only bcrypt hashes are stored; the cache keeps a SHA-256
//! of a verified secret for `auth_cache_ttl` and compares in constant time.
//!
//! Depends on the store, `client` and `secrets`; the API's extractors
//! ([`Admin`], [`SuperAdmin`], [`Reader`]) and the agent session use it.
//! Layout: `mod.rs` (credentials to callers, the extractors), `cache`
//! ([`AuthCache`]), `pool` (where bcrypt runs: the per-client budget,
//! fairness between networks, the decoy for unknown credentials).

mod cache;
mod pool;

pub(crate) use cache::AuthCache;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use model::{BucketId, TenantId, Token, TokenKey, TokenScope};

use crate::error::ApiError;
use crate::state::AppState;

/// Header the admin uses to pick the tenant it acts on.
pub(crate) const TENANT_HEADER: &str = "x-hookrelay-tenant";

/// An authenticated caller, already narrowed to one tenant.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) scope: TokenScope,
    pub(crate) tenant: TenantId,
    /// Buckets an agent or poll token is limited to; empty means all.
    pub(crate) buckets: Vec<BucketId>,
}

impl Caller {
    pub(crate) fn is_admin(&self) -> bool {
        self.scope == TokenScope::Admin
    }

    /// Whether the caller may administer its tenant's objects.
    pub(crate) fn may_administer(&self) -> bool {
        matches!(self.scope, TokenScope::Admin | TokenScope::Tenant)
    }

    /// Whether the caller may read events of `bucket`.
    pub(crate) fn may_read(&self, bucket: &BucketId) -> bool {
        match self.scope {
            TokenScope::Admin | TokenScope::Tenant => true,
            TokenScope::Poll | TokenScope::Agent => {
                self.buckets.is_empty() || self.buckets.contains(bucket)
            }
        }
    }
}

fn poll_cache_name(tenant: &TenantId) -> String {
    format!("poll:{tenant}")
}

/// The credential of an `Authorization: Bearer …` header, if any.
pub(crate) fn bearer(parts: &http::HeaderMap) -> Option<&str> {
    let value = parts.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Splits `tok_….secret` into its key and secret.
fn split_token(credential: &str) -> Option<(TokenKey, &str)> {
    let (key, secret) = credential.split_once('.')?;
    Some((key.parse().ok()?, secret))
}

/// Verifies a `<key>.<secret>` token.
async fn verify_token(
    state: &AppState,
    key: TokenKey,
    secret: &str,
    client: IpAddr,
) -> Result<Token, ApiError> {
    if let Some(Some(token)) = state.auth.lookup(key.as_str(), secret) {
        return Ok(token);
    }
    let since = state.auth.generation();
    let token = match state.store.token_by_key(&key).await {
        Ok(token) => Some(token),
        Err(store::Error::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    state.auth.pool.spend(client)?;
    let Some(token) = token else {
        // The same work as for a real token, so keys cannot be found by
        // timing (issue 19): 387 ms against 0.7 ms before.
        let cost = state.config.bcrypt_cost;
        state.auth.pool.check_decoy(client, secret, cost).await;
        return Err(ApiError::unauthorized());
    };
    let ok = state
        .auth
        .pool
        .check(client, secret, token.secret_hash.expose().to_owned())
        .await;
    if !ok {
        return Err(ApiError::unauthorized());
    }
    state
        .auth
        .remember(key.as_str().to_owned(), secret, Some(token.clone()), since);
    Ok(token)
}

/// Verifies the admin secret against its bcrypt hash.
async fn verify_admin_secret(
    state: &AppState,
    secret: &str,
    client: IpAddr,
) -> Result<bool, ApiError> {
    let Some(hash) = &state.admin_secret_hash else {
        return Ok(false);
    };
    if state.auth.lookup("admin", secret).is_some() {
        return Ok(true);
    }
    let since = state.auth.generation();
    state.auth.pool.spend(client)?;
    let ok = state.auth.pool.check(client, secret, hash.clone()).await;
    if ok {
        state.auth.remember("admin".to_owned(), secret, None, since);
    }
    Ok(ok)
}

/// Authenticates an `Authorization` header for the administration and event
/// routes, refusing with 429 a client that caused too many bcrypt checks.
/// The admin acts on the tenant named by `X-Hookrelay-Tenant`.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &http::HeaderMap,
    client: IpAddr,
) -> Result<Caller, ApiError> {
    let credential = bearer(headers).ok_or_else(ApiError::unauthorized)?;
    if let Some((key, secret)) = split_token(credential) {
        let token = verify_token(state, key, secret, client).await?;
        if token.scope == TokenScope::Admin {
            return admin_caller(headers);
        }
        return Ok(Caller {
            scope: token.scope,
            tenant: token.tenant,
            buckets: token.buckets,
        });
    }
    if verify_admin_secret(state, credential, client).await? {
        return admin_caller(headers);
    }
    Err(ApiError::unauthorized())
}

/// Authenticates an agent's `Hello`: an `agent`-scope token only.
pub(crate) async fn authenticate_agent(
    state: &AppState,
    key: &str,
    secret: &str,
    client: IpAddr,
) -> Result<Token, ApiError> {
    let key: TokenKey = key.parse().map_err(|_| ApiError::unauthorized())?;
    let token = verify_token(state, key, secret, client).await?;
    if token.scope != TokenScope::Agent {
        return Err(ApiError::unauthorized());
    }
    Ok(token)
}

fn admin_caller(headers: &http::HeaderMap) -> Result<Caller, ApiError> {
    let tenant = match headers.get(TENANT_HEADER) {
        None => TenantId::default_tenant(),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ApiError::invalid_request("X-Hookrelay-Tenant: not a tenant id"))?,
    };
    Ok(Caller {
        scope: TokenScope::Admin,
        tenant,
        buckets: Vec::new(),
    })
}

/// Authenticates a Radarboard poll of `tenant`: its poll secret, or a poll,
/// tenant or admin token (or the admin secret) valid for it. The poll secret
/// is tried first so the common case costs one cache lookup.
pub(crate) async fn authenticate_poll(
    state: &AppState,
    headers: &http::HeaderMap,
    tenant: &TenantId,
    client: IpAddr,
) -> Result<Caller, ApiError> {
    let credential = bearer(headers).ok_or_else(ApiError::unauthorized)?;
    let poll_caller = Caller {
        scope: TokenScope::Poll,
        tenant: tenant.clone(),
        buckets: Vec::new(),
    };
    if split_token(credential).is_none()
        && poll_secret_matches(state, tenant, credential, client).await?
    {
        return Ok(poll_caller);
    }
    let caller = authenticate(state, headers, client).await?;
    let same_tenant = caller.is_admin() || caller.tenant == *tenant;
    if !same_tenant || caller.scope == TokenScope::Agent {
        return Err(ApiError::unauthorized());
    }
    Ok(Caller {
        tenant: tenant.clone(),
        ..caller
    })
}

async fn poll_secret_matches(
    state: &AppState,
    tenant: &TenantId,
    secret: &str,
    client: IpAddr,
) -> Result<bool, ApiError> {
    let name = poll_cache_name(tenant);
    if state.auth.lookup(&name, secret).is_some() {
        return Ok(true);
    }
    let since = state.auth.generation();
    let hash = match state.store.tenant(tenant).await {
        Ok(record) => record.poll_secret_hash,
        Err(store::Error::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    state.auth.pool.spend(client)?;
    let Some(hash) = hash else {
        // The same work as for a real poll secret, so tenant ids cannot be
        // probed (issue 7).
        let cost = state.config.bcrypt_cost;
        return Ok(state.auth.pool.check_decoy(client, secret, cost).await);
    };
    let ok = state.auth.pool.check(client, secret, hash).await;
    if ok {
        state.auth.remember(name, secret, None, since);
    }
    Ok(ok)
}

/// The caller's address, as the ingest pipeline sees it (`0.0.0.0` when the
/// request did not come through the listener, as in router unit tests).
fn client_of(state: &AppState, parts: &Parts) -> IpAddr {
    match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => {
            crate::client::client_ip(&state.config.trusted_proxies, *peer, &parts.headers)
        }
        None => IpAddr::from([0, 0, 0, 0]),
    }
}

/// Extractor: a caller allowed to administer its tenant (admin or tenant
/// scope). Any other valid token gets 404 on admin routes, as if they did
/// not exist for it.
pub(crate) struct Admin(pub(crate) Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(state, &parts.headers, client_of(state, parts)).await?;
        if !caller.may_administer() {
            return Err(ApiError::not_found("route"));
        }
        Ok(Admin(caller))
    }
}

/// Extractor: the server administrator only (Radarboard tenant routes).
pub(crate) struct SuperAdmin;

impl FromRequestParts<AppState> for SuperAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(state, &parts.headers, client_of(state, parts)).await?;
        if !caller.is_admin() {
            return Err(ApiError::not_found("route"));
        }
        Ok(SuperAdmin)
    }
}

/// Extractor: a caller allowed to read events (admin, tenant or poll scope).
pub(crate) struct Reader(pub(crate) Caller);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(state, &parts.headers, client_of(state, parts)).await?;
        if caller.scope == TokenScope::Agent {
            return Err(ApiError::not_found("route"));
        }
        Ok(Reader(caller))
    }
}
