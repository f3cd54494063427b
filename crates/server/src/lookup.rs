//! Finding a tenant's bucket by what a caller names it with: the admin API,
//! event reads and agent subscriptions all take a bucket id or name. Used by
//! `api` and `deliver`; depends on the store only.

use model::{Bucket, BucketId, TenantId};

use crate::error::ApiError;
use crate::state::AppState;

/// A bucket of `tenant` by id or by name (agents and the CLI take either);
/// absent, or another tenant's, is 404 `not_found`.
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
