//! The JSON shapes of the API (DESIGN §3): each answer and each list
//! envelope is its own struct, built from the model, and each derives its
//! OpenAPI schema (`crate::openapi`). The model's own serde shape is neither
//! the API contract nor (see `store`) the storage record.
//!
//! Secrets cannot reach an answer by accident: `model::Secret` does not
//! implement `Serialize`, so a view holding one does not compile. The only
//! answers that show a secret (an input's, a token's or a tenant's poll
//! secret, once, at creation or rotation) call `Secret::reveal_once`.
//!
//! - `objects`: tenant, bucket, input, output and token views.
//! - `events`: the event, its deliveries and their attempts.
//! - here: list envelopes and the small answers.
//!
//! Depends on `model` only; `api` handlers and `openapi` use it.

mod events;
mod objects;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub(crate) use events::{EventDetail, EventOut};
pub(crate) use objects::{
    BucketAuthOut, BucketOut, InputCreated, InputOut, OutputOut, TenantOut, TokenIssued, TokenOut,
};

/// `GET /v1/buckets`.
#[derive(Serialize, ToSchema)]
pub(crate) struct BucketList {
    pub(crate) buckets: Vec<BucketOut>,
}

/// `GET /v1/buckets/{bucket}/inputs`.
#[derive(Serialize, ToSchema)]
pub(crate) struct InputList {
    pub(crate) inputs: Vec<InputOut>,
}

/// `GET /v1/buckets/{bucket}/outputs`.
#[derive(Serialize, ToSchema)]
pub(crate) struct OutputList {
    pub(crate) outputs: Vec<OutputOut>,
}

/// `GET /v1/tokens`.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenList {
    pub(crate) tokens: Vec<TokenOut>,
}

/// `GET /api/tenants`.
#[derive(Serialize, ToSchema)]
pub(crate) struct TenantList {
    pub(crate) tenants: Vec<TenantOut>,
}

/// `POST /api/tenants` (Radarboard): the tenant, its poll secret (shown
/// once) and where its webhooks and polls go.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TenantCreated {
    pub(crate) tenant: TenantOut,
    pub(crate) poll_secret: String,
    pub(crate) webhook_base_url: String,
    pub(crate) poll_url: String,
}

/// `PUT /api/tenants/{id}/secrets`: the integrations that now have
/// secrets (never the secrets).
#[derive(Serialize, ToSchema)]
pub(crate) struct SecretsSet {
    pub(crate) integrations: Vec<String>,
}

/// A page of `GET /v1/events`: `next` is the cursor to pass as `after`.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventPage {
    pub(crate) events: Vec<EventOut>,
    pub(crate) next: Option<String>,
}

/// `POST /v1/events/{id}/resend`: how many deliveries were reset.
#[derive(Serialize, ToSchema)]
pub(crate) struct Resent {
    pub(crate) deliveries: usize,
}

/// `POST /v1/events/resend`: how many of the matching events had
/// deliveries reset, and where to continue (`null` when every matching
/// event was reached).
#[derive(Serialize, ToSchema)]
pub(crate) struct ResentMatching {
    pub(crate) resent: usize,
    pub(crate) next: Option<String>,
}

/// An agent connected now, on this node or (on a shared store) another,
/// which announced it in this same shape.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentOut {
    pub(crate) id: String,
    pub(crate) group: String,
    pub(crate) buckets: Vec<String>,
    /// `grpc` or `ws`.
    pub(crate) transport: String,
    pub(crate) address: String,
    pub(crate) version: String,
    pub(crate) connected_since: i64,
    pub(crate) max_in_flight: u32,
    pub(crate) in_flight: u64,
}

/// `GET /v1/agents`.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgentList {
    pub(crate) agents: Vec<AgentOut>,
}
