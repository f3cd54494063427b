//! Authenticated HTTP API: administration of buckets, inputs, outputs and
//! tokens (`/v1/...`, DESIGN §3.4), functions (§9), Radarboard tenant provisioning
//! (`/api/tenants`), event reads (cursor with filters and long-poll,
//! Radarboard poll, the live SSE stream, §3.2 and §11) and resends.
//!
//! Every handler narrows to the caller's tenant before touching the store;
//! anything outside it answers 404.
//!
//! Uses `auth`, `lookup`, `error` and the store's seams; `openapi` reads
//! its request types and views, `tunnel::api` and `bootstrap` borrow its
//! helpers. Nothing in `ingest` or `deliver` may depend on it.

mod agents;
mod buckets;
mod events;
mod functions;
mod inputs;
mod outputs;
mod patch;
mod poll;
mod resend;
mod scan;
mod stream;
mod tenants;
mod tokens;
pub(crate) mod views;

use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) use tenants::upsert_named_inputs;
pub(crate) use tokens::issue as issue_token;

/// The bodies and queries, with their checks, for `crate::fuzzing` and
/// `crate::openapi`.
pub(crate) mod bodies {
    pub(crate) use super::buckets::{BucketBody, BucketPatch};
    pub(crate) use super::events::EventListQuery;
    pub(crate) use super::functions::{
        FunctionBody, FunctionList, FunctionOut, FunctionPatch, InvokeBody, InvokeOut,
    };
    pub(crate) use super::inputs::{InputBody, InputPatch};
    pub(crate) use super::outputs::{OutputBody, OutputPatch};
    pub(crate) use super::poll::PollQuery;
    pub(crate) use super::resend::{ResendBody, ResendQuery};
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
        .merge(functions::router())
        .merge(tenants::router())
        .merge(events::router())
        .merge(resend::router())
        .merge(poll::router())
        .merge(stream::router())
}

/// Maps a store `NotFound` to a 404 naming `what`.
pub(crate) fn or_not_found(what: &'static str) -> impl Fn(store::Error) -> ApiError {
    move |e| match e {
        store::Error::NotFound => ApiError::not_found(what),
        other => other.into(),
    }
}
