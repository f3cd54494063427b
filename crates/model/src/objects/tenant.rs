//! A tenant, the unit of isolation, and its access credentials: tokens.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{BucketId, TenantId, TokenKey};
use crate::Secret;

/// The unit of isolation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: TenantId,
    pub label: String,
    /// Tenant kill switch: when false every input of the tenant answers 503.
    pub enabled: bool,
    pub created_at: i64,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    Admin,
    Tenant,
    Agent,
    Poll,
}

impl TokenScope {
    /// The scope's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            TokenScope::Admin => "admin",
            TokenScope::Tenant => "tenant",
            TokenScope::Agent => "agent",
            TokenScope::Poll => "poll",
        }
    }
}

/// An agent token's mode, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentMode {
    Forward,
    Tunnel,
}

/// An access credential. Only the bcrypt hash of its secret is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub key: TokenKey,
    pub tenant: TenantId,
    pub scope: TokenScope,
    /// Agent and poll tokens: the buckets they may read; empty means all.
    pub buckets: Vec<BucketId>,
    pub mode: Option<AgentMode>,
    pub description: String,
    #[serde(skip_serializing, default = "empty_secret")]
    pub secret_hash: Secret,
    pub created_at: i64,
}

fn empty_secret() -> Secret {
    Secret::new("")
}
