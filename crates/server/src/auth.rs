//! Who is calling: bearer credentials turned into a [`Caller`], with a
//! short-lived cache so hot routes do not pay bcrypt on every request.
//!
//! Credentials (DESIGN §3.4, §8): `Bearer <key>.<secret>` for tokens,
//! `Bearer <admin secret>` for the admin secret, `Bearer <poll secret>` on
//! the poll routes. Only bcrypt hashes are stored; the cache keeps a SHA-256
//! of a verified secret for `auth_cache_ttl` and compares in constant time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use model::{BucketId, TenantId, Token, TokenKey, TokenScope};
use store::RateDecision;

use crate::error::ApiError;
use crate::secrets;
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

struct Verified {
    digest: [u8; 32],
    expires: Instant,
    token: Option<Token>,
}

/// Cache of recently verified secrets, by credential name (`tok_…`,
/// `admin`, `poll:<tenant>`), and the count of recent failures per client.
pub(crate) struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Verified>>,
    /// Bumped by every `forget`, under the `entries` lock. A verification
    /// remembers its result only if no credential was forgotten since it
    /// read the stored hash, so a check of a secret that was rotated or
    /// deleted meanwhile cannot put it back in the cache.
    generation: AtomicU64,
    /// bcrypt checks per client IP. A check not answered from the cache
    /// costs ~250 ms of CPU at cost 12; a legitimate client needs one per
    /// credential per cache TTL, so a client that needs many is refused 429
    /// before it can spend more. Counted before the check, so concurrent
    /// requests cannot all slip under the limit.
    bcrypt_budget: store::SlidingWindow,
    /// bcrypt checks running at once, at most one per core, so a flood of
    /// them (from many addresses) queues here instead of taking every
    /// blocking thread and core from ingest.
    bcrypt_slots: tokio::sync::Semaphore,
    /// A bcrypt hash of a random secret, checked in place of the poll
    /// secret of a tenant that does not exist (or has none), so that a
    /// poll of an unknown tenant costs the same time and bcrypt budget as
    /// one of a known tenant and tenant ids cannot be probed (issue 7).
    decoy: tokio::sync::OnceCell<String>,
}

/// bcrypt checks a client may cause per minute.
const BCRYPT_CHECKS_ALLOWED: model::RateLimit = model::RateLimit {
    requests: 20,
    window_seconds: 60,
};

/// Entries above this are swept of expired ones before inserting, so a
/// stream of distinct valid tokens cannot grow the map without bound.
const CACHE_SWEEP_AT: usize = 10_000;

impl AuthCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            bcrypt_budget: store::SlidingWindow::new(),
            bcrypt_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            decoy: tokio::sync::OnceCell::new(),
        }
    }

    /// The decoy hash at `cost`, made on first use.
    async fn decoy_hash(&self, cost: u32) -> Option<String> {
        self.decoy
            .get_or_try_init(|| secrets::hash(secrets::generate(), cost))
            .await
            .ok()
            .cloned()
    }

    /// The cached token (or `Some(None)` for a secret without a token) if
    /// `secret` was verified for `name` within the TTL.
    fn lookup(&self, name: &str, secret: &str) -> Option<Option<Token>> {
        let digest = secrets::digest(secret);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(name)?;
        let fresh = entry.expires > Instant::now();
        (fresh && secrets::ct_eq(&entry.digest, &digest)).then(|| entry.token.clone())
    }

    /// Read before the stored hash, passed to [`AuthCache::remember`].
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn remember(&self, name: String, secret: &str, token: Option<Token>, since: u64) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() != since {
            return;
        }
        if entries.len() >= CACHE_SWEEP_AT {
            entries.retain(|_, v| v.expires > now);
        }
        entries.insert(
            name,
            Verified {
                digest: secrets::digest(secret),
                expires: now + self.ttl,
                token,
            },
        );
    }

    /// Checks `secret` against a bcrypt `hash`, waiting for a free slot.
    async fn check_bcrypt(&self, secret: &str, hash: String) -> bool {
        // The semaphore is never closed, so acquiring only waits.
        let Ok(_slot) = self.bcrypt_slots.acquire().await else {
            return false;
        };
        secrets::verify(secret.to_owned(), hash).await
    }

    /// Drops every cached credential (after a tenant and its tokens were
    /// deleted: its id may be re-created from the same label at once).
    pub(crate) fn forget_all(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops a credential after it was deleted or rotated.
    pub(crate) fn forget(&self, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(name);
        self.generation.fetch_add(1, Ordering::SeqCst);
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
        Ok(token) => token,
        Err(store::Error::NotFound) => return Err(ApiError::unauthorized()),
        Err(e) => return Err(e.into()),
    };
    spend_bcrypt(state, client)?;
    let ok = state
        .auth
        .check_bcrypt(secret, token.secret_hash.expose().to_owned())
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
    spend_bcrypt(state, client)?;
    let ok = state.auth.check_bcrypt(secret, hash.clone()).await;
    if ok {
        state.auth.remember("admin".to_owned(), secret, None, since);
    }
    Ok(ok)
}

/// Counts one bcrypt check against `client`'s budget, or refuses it.
fn spend_bcrypt(state: &AppState, client: IpAddr) -> Result<(), ApiError> {
    let decision = state.auth.bcrypt_budget.hit(
        &client.to_string(),
        BCRYPT_CHECKS_ALLOWED,
        store::clock::now_ms(),
    );
    match decision {
        RateDecision::Allowed => Ok(()),
        RateDecision::Limited { retry_after_secs } => Err(ApiError::rate_limited(retry_after_secs)),
    }
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
    spend_bcrypt(state, client)?;
    let Some(hash) = hash else {
        // The same work as for a real poll secret: see `AuthCache::decoy`.
        if let Some(decoy) = state.auth.decoy_hash(state.config.bcrypt_cost).await {
            let _ = state.auth.check_bcrypt(secret, decoy).await;
        }
        return Ok(false);
    };
    let ok = state.auth.check_bcrypt(secret, hash).await;
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
            crate::ingest::client_ip(&state.config.trusted_proxies, *peer, &parts.headers)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_raced_a_forget_is_not_remembered() {
        let cache = AuthCache::new(Duration::from_secs(30));
        let since = cache.generation();
        // A token is rotated while its old secret is being checked...
        cache.forget("tok_a");
        // ...so the check's success must not bring the old secret back.
        cache.remember("tok_a".into(), "old", None, since);
        assert!(cache.lookup("tok_a", "old").is_none());

        let since = cache.generation();
        cache.remember("tok_a".into(), "new", None, since);
        assert!(cache.lookup("tok_a", "new").is_some());
        assert!(cache.lookup("tok_a", "old").is_none());
        cache.forget("tok_a");
        assert!(cache.lookup("tok_a", "new").is_none());
    }
}
