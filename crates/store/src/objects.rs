//! The admin objects: [`Tenants`] (tenants and their tokens, which exist
//! before any bucket) and [`Buckets`] (buckets and what hangs off them,
//! inputs and outputs). Two traits because each backend keeps them in two
//! rooms (`sqlite::tenants`/`sqlite::buckets`, `redis::tenants`/
//! `redis::objects`), and a trait's impl cannot span files.

use async_trait::async_trait;
use model::{
    Bucket, BucketId, Input, InputId, Output, OutputId, Tenant, TenantId, Token, TokenKey,
};

use crate::Result;

/// A tenant with its poll secret's hash (Radarboard provisioning).
#[derive(Debug, Clone)]
pub struct TenantRecord {
    pub tenant: Tenant,
    /// bcrypt hash of the tenant's poll secret, if it has one.
    pub poll_secret_hash: Option<String>,
}

/// Tenants and their tokens.
///
/// Guarantees:
/// - **Tenant isolation** (see [`crate::Store`]): a token is read, changed
///   or deleted only through its tenant, except by
///   [`Tenants::token_by_key`], since a bearer token names its key before
///   its tenant is known. Token keys are unique across tenants.
/// - Only hashes are stored: a token's secret hash and a tenant's poll
///   secret hash are bcrypt, made by the server.
/// - Deleting a tenant deletes every byte it owns, atomically.
#[async_trait]
pub trait Tenants: Send + Sync + 'static {
    /// Creates a tenant. [`crate::Error::Conflict`] if the id is taken.
    async fn create_tenant(&self, record: &TenantRecord) -> Result<()>;
    async fn tenant(&self, id: &TenantId) -> Result<TenantRecord>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;
    /// Replaces the tenant's label and kill switch.
    async fn update_tenant(&self, tenant: &Tenant) -> Result<()>;
    /// Sets (or clears) the tenant's poll secret hash.
    async fn set_poll_secret(&self, id: &TenantId, hash: Option<&str>) -> Result<()>;
    /// Deletes the tenant and every byte it owns: buckets, inputs, outputs,
    /// tokens, events, deliveries, dedup entries.
    async fn delete_tenant(&self, id: &TenantId) -> Result<()>;

    /// [`crate::Error::Conflict`] if the key is taken,
    /// [`crate::Error::NotFound`] if the tenant does not exist.
    async fn create_token(&self, token: &Token) -> Result<()>;
    /// Authentication: the token with this key in whatever tenant owns it.
    async fn token_by_key(&self, key: &TokenKey) -> Result<Token>;
    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<Token>>;
    /// Replaces the description and bucket list only: scope and mode are
    /// fixed at creation, and the secret hash is never taken from an update.
    async fn update_token(&self, token: &Token) -> Result<()>;
    /// Replaces the token's secret hash (a lost secret is replaced, never
    /// recovered). [`crate::Error::NotFound`] outside its tenant.
    async fn rotate_token_secret(
        &self,
        tenant: &TenantId,
        key: &TokenKey,
        secret_hash: &str,
    ) -> Result<()>;
    async fn delete_token(&self, tenant: &TenantId, key: &TokenKey) -> Result<()>;
    /// True if any admin-scope token exists (first-start bootstrap).
    async fn has_admin_token(&self) -> Result<bool>;
}

/// Buckets, their inputs (where events come in) and their outputs (where
/// they go).
///
/// Guarantees:
/// - **Tenant isolation** (see [`crate::Store`]): every object is read,
///   changed or deleted through its tenant, and another tenant's id
///   behaves exactly like an unknown one ([`crate::Error::NotFound`]),
///   except in [`Buckets::input_by_id`]: ingest knows only the unguessable
///   input id.
/// - Names are unique per tenant (buckets, inputs), atomically.
/// - **Secrets sealed**: an input's secrets and a bucket's auth are stored
///   sealed; secrets that do not open fail the read with
///   [`crate::Error::Corrupt`].
/// - A delete takes everything under it: a bucket its inputs, outputs,
///   events and deliveries.
#[async_trait]
pub trait Buckets: Send + Sync + 'static {
    /// [`crate::Error::Conflict`] if the name is taken in the tenant,
    /// [`crate::Error::NotFound`] if the tenant does not exist.
    async fn create_bucket(&self, bucket: &Bucket) -> Result<()>;
    async fn bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<Bucket>;
    async fn bucket_by_name(&self, tenant: &TenantId, name: &str) -> Result<Bucket>;
    async fn list_buckets(&self, tenant: &TenantId) -> Result<Vec<Bucket>>;
    async fn update_bucket(&self, bucket: &Bucket) -> Result<()>;
    /// Deletes the bucket with its inputs, outputs, events and deliveries.
    async fn delete_bucket(&self, tenant: &TenantId, id: &BucketId) -> Result<()>;

    /// [`crate::Error::Conflict`] if the name is taken in the tenant,
    /// [`crate::Error::NotFound`] if its bucket is not in its tenant.
    async fn create_input(&self, input: &Input) -> Result<()>;
    async fn input(&self, tenant: &TenantId, id: &InputId) -> Result<Input>;
    /// Ingest routing: the input with this id in whatever tenant owns it.
    async fn input_by_id(&self, id: &InputId) -> Result<Input>;
    async fn input_by_name(&self, tenant: &TenantId, name: &str) -> Result<Input>;
    async fn list_inputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Input>>;
    async fn update_input(&self, input: &Input) -> Result<()>;
    async fn delete_input(&self, tenant: &TenantId, id: &InputId) -> Result<()>;

    /// [`crate::Error::NotFound`] if its bucket is not in its tenant.
    async fn create_output(&self, output: &Output) -> Result<()>;
    async fn output(&self, tenant: &TenantId, id: &OutputId) -> Result<Output>;
    async fn list_outputs(&self, tenant: &TenantId, bucket: &BucketId) -> Result<Vec<Output>>;
    async fn update_output(&self, output: &Output) -> Result<()>;
    async fn delete_output(&self, tenant: &TenantId, id: &OutputId) -> Result<()>;
}
