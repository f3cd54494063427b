//! Authenticated HTTP API: administration of buckets, inputs, outputs and
//! tokens (`/v1/...`, DESIGN §3.4), Radarboard tenant provisioning
//! (`/api/tenants`), and event reads: cursor and long-poll, Radarboard poll,
//! and the live SSE stream (§3.2).
//!
//! Every handler narrows to the caller's tenant before touching the store;
//! anything outside it answers 404.

mod agents;
mod buckets;
mod events;
mod inputs;
mod outputs;
mod poll;
mod stream;
mod tenants;
mod tokens;
pub(crate) mod views;

use axum::Router;
use model::{Bucket, BucketId, TenantId};

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) use tenants::upsert_named_inputs;
pub(crate) use tokens::issue as issue_token;

/// The bodies and their checks, for `crate::fuzzing`.
pub(crate) mod bodies {
    pub(crate) use super::buckets::BucketBody;
    pub(crate) use super::inputs::InputBody;
    pub(crate) use super::outputs::OutputBody;
    pub(crate) use super::tenants::{
        identity as tenant_identity, named_integration, split_secrets, CreateBody as TenantBody,
        PatchBody as TenantPatch, SecretsBody,
    };
    pub(crate) use super::tokens::{
        check_create as check_token, CreateBody as TokenBody, PatchBody as TokenPatch,
    };
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(agents::router())
        .merge(buckets::router())
        .merge(inputs::router())
        .merge(outputs::router())
        .merge(tokens::router())
        .merge(tenants::router())
        .merge(events::router())
        .merge(poll::router())
        .merge(stream::router())
}

/// A bucket of `tenant` by id or by name (agents and the CLI take either).
pub(crate) async fn resolve_bucket(
    state: &AppState,
    tenant: &TenantId,
    id_or_name: &str,
) -> Result<Bucket, ApiError> {
    let found = match id_or_name.parse::<BucketId>() {
        Ok(id) => state.store.bucket(tenant, &id).await,
        Err(_) => state.store.bucket_by_name(tenant, id_or_name).await,
    };
    found.map_err(|e| match e {
        store::Error::NotFound => ApiError::not_found("bucket"),
        other => other.into(),
    })
}

/// Maps a store `NotFound` to a 404 naming `what`.
pub(crate) fn or_not_found(what: &'static str) -> impl Fn(store::Error) -> ApiError {
    move |e| match e {
        store::Error::NotFound => ApiError::not_found(what),
        other => other.into(),
    }
}
