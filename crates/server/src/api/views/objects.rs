//! What the API shows of the administered objects: tenant, bucket, input,
//! output, token, and the answers that carry a secret once (an input's
//! create answer, a token's create and rotate answers).
//!
//! Each view is built by destructuring its model whole, so a field added to
//! a model fails to compile here until someone decides whether the API
//! shows it.

use std::collections::BTreeMap;

use model::{
    AgentMode, Bucket, BucketAuth, GenericHmac, Input, InputRateLimit, IntegrationKind, Output,
    ResponsePolicy, RetryPolicy, Secret, Tenant, Token, TokenScope,
};
use serde::Serialize;
use utoipa::ToSchema;

/// A tenant.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TenantOut {
    id: String,
    label: String,
    /// Tenant kill switch: when false every input of the tenant answers 503.
    enabled: bool,
    /// Creation time, ms since the Unix epoch.
    created_at: i64,
}

impl From<&Tenant> for TenantOut {
    fn from(t: &Tenant) -> Self {
        let Tenant {
            id,
            label,
            enabled,
            created_at,
        } = t;
        TenantOut {
            id: id.to_string(),
            label: label.clone(),
            enabled: *enabled,
            created_at: *created_at,
        }
    }
}

/// A bucket's auth as shown: the kind and the basic username, never the
/// password or token.
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum BucketAuthOut {
    None,
    Basic { username: String },
    Token,
}

impl From<&BucketAuth> for BucketAuthOut {
    fn from(auth: &BucketAuth) -> Self {
        match auth {
            BucketAuth::None => BucketAuthOut::None,
            BucketAuth::Basic { username, .. } => BucketAuthOut::Basic {
                username: username.clone(),
            },
            BucketAuth::Token { .. } => BucketAuthOut::Token,
        }
    }
}

/// A bucket.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BucketOut {
    id: String,
    tenant: String,
    name: String,
    auth: BucketAuthOut,
    ephemeral: bool,
    retention_seconds: u64,
    catchup_seconds: u64,
    enabled: bool,
    created_at: i64,
}

impl From<&Bucket> for BucketOut {
    fn from(b: &Bucket) -> Self {
        let Bucket {
            id,
            tenant,
            name,
            auth,
            ephemeral,
            retention_seconds,
            catchup_seconds,
            enabled,
            created_at,
        } = b;
        BucketOut {
            id: id.to_string(),
            tenant: tenant.to_string(),
            name: name.clone(),
            auth: auth.into(),
            ephemeral: *ephemeral,
            retention_seconds: *retention_seconds,
            catchup_seconds: *catchup_seconds,
            enabled: *enabled,
            created_at: *created_at,
        }
    }
}

/// An input: its public `url`, and how many secrets it holds (never the
/// secrets).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InputOut {
    id: String,
    tenant: String,
    bucket: String,
    name: Option<String>,
    integration: Option<IntegrationKind>,
    generic_hmac: Option<GenericHmac>,
    response: ResponsePolicy,
    enabled: bool,
    /// The limits in force, never null (DESIGN §13), also for an input
    /// stored before defaults were filled in.
    body_limit: u64,
    rate_limit: InputRateLimit,
    timestamp_tolerance_seconds: u64,
    /// Whether the relay answers provider handshakes (DESIGN §13).
    handshakes: bool,
    /// The function run on each verified request (DESIGN §9).
    function_id: Option<String>,
    created_at: i64,
    /// `<public url>/v1/webhooks/<id>`.
    url: String,
    secret_count: usize,
}

impl InputOut {
    pub(crate) fn new(i: &Input, public_url: &str) -> Self {
        let Input {
            id,
            tenant,
            bucket,
            name,
            integration,
            generic_hmac,
            secrets,
            response,
            enabled,
            body_limit,
            rate_limit,
            timestamp_tolerance_seconds,
            handshakes,
            function_id,
            created_at,
        } = i;
        InputOut {
            id: id.to_string(),
            tenant: tenant.to_string(),
            bucket: bucket.to_string(),
            name: name.clone(),
            integration: *integration,
            generic_hmac: generic_hmac.clone(),
            response: response.clone(),
            enabled: *enabled,
            body_limit: body_limit.unwrap_or_else(|| i.effective_body_limit()),
            rate_limit: rate_limit.unwrap_or_else(|| i.effective_rate_limit()),
            timestamp_tolerance_seconds: *timestamp_tolerance_seconds,
            handshakes: *handshakes,
            function_id: function_id.as_ref().map(ToString::to_string),
            created_at: *created_at,
            url: format!("{public_url}/v1/webhooks/{id}"),
            secret_count: secrets.len(),
        }
    }
}

/// The create answer of an input: the view and, this once, its secrets.
#[derive(Serialize, ToSchema)]
pub(crate) struct InputCreated {
    #[serde(flatten)]
    input: InputOut,
    /// Newest first, as given; never shown again.
    secrets: Vec<String>,
}

impl InputCreated {
    pub(crate) fn new(i: &Input, public_url: &str) -> Self {
        InputCreated {
            input: InputOut::new(i, public_url),
            secrets: i.secrets.iter().map(Secret::reveal_once).collect(),
        }
    }
}

/// An output.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutputOut {
    id: String,
    tenant: String,
    bucket: String,
    url: String,
    internal: bool,
    timeout_ms: u64,
    headers: BTreeMap<String, String>,
    retry: RetryPolicy,
    concurrency: u32,
    ordered: bool,
    /// The function run per delivery (DESIGN §9).
    function_id: Option<String>,
    created_at: i64,
}

impl From<&Output> for OutputOut {
    fn from(o: &Output) -> Self {
        let Output {
            id,
            tenant,
            bucket,
            url,
            internal,
            timeout_ms,
            headers,
            retry,
            concurrency,
            ordered,
            function_id,
            created_at,
        } = o;
        OutputOut {
            id: id.to_string(),
            tenant: tenant.to_string(),
            bucket: bucket.to_string(),
            url: url.clone(),
            internal: *internal,
            timeout_ms: *timeout_ms,
            headers: headers.clone(),
            retry: *retry,
            concurrency: *concurrency,
            ordered: *ordered,
            function_id: function_id.as_ref().map(ToString::to_string),
            created_at: *created_at,
        }
    }
}

/// A token, without its secret (only a hash of it is kept).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenOut {
    key: String,
    tenant: String,
    scope: TokenScope,
    /// Agent and poll tokens: the buckets they may read; empty means all.
    buckets: Vec<String>,
    mode: Option<AgentMode>,
    description: String,
    created_at: i64,
}

impl From<&Token> for TokenOut {
    fn from(t: &Token) -> Self {
        let Token {
            key,
            tenant,
            scope,
            buckets,
            mode,
            description,
            secret_hash: _,
            created_at,
        } = t;
        TokenOut {
            key: key.to_string(),
            tenant: tenant.to_string(),
            scope: *scope,
            buckets: buckets.iter().map(ToString::to_string).collect(),
            mode: *mode,
            description: description.clone(),
            created_at: *created_at,
        }
    }
}

/// A token with its new secret, answered once (create and rotate).
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenIssued {
    #[serde(flatten)]
    token: TokenOut,
    secret: String,
    /// The bearer string: `<key>.<secret>`.
    #[serde(rename = "token")]
    bearer: String,
}

impl TokenIssued {
    pub(crate) fn new(token: &Token, secret: &Secret) -> Self {
        let secret = secret.reveal_once();
        TokenIssued {
            token: token.into(),
            bearer: format!("{}.{secret}", token.key),
            secret,
        }
    }
}
