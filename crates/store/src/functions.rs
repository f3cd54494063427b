//! The function objects (DESIGN §9): [`Functions`].

use async_trait::async_trait;
use model::{Function, FunctionId, TenantId};

use crate::Result;

/// A tenant's functions.
///
/// Guarantees:
/// - **Tenant isolation**: a function is read, changed or deleted only
///   through its tenant; another tenant's id is [`crate::Error::NotFound`].
///   Deleting a tenant deletes its functions.
/// - **Config sealed**: the config values are stored sealed, bound to the
///   function id; a config that does not open fails the read
///   [`crate::Error::Corrupt`]. The source is stored as given.
/// - Whether a function is in use (by an input or output) is the server's
///   check, not the store's: the store deletes what it is asked to.
#[async_trait]
pub trait Functions: Send + Sync + 'static {
    /// [`crate::Error::NotFound`] if the tenant does not exist.
    async fn create_function(&self, function: &Function) -> Result<()>;
    async fn function(&self, tenant: &TenantId, id: &FunctionId) -> Result<Function>;
    /// Oldest first.
    async fn list_functions(&self, tenant: &TenantId) -> Result<Vec<Function>>;
    /// Replaces name, source, config, version and update time.
    async fn update_function(&self, function: &Function) -> Result<()>;
    async fn delete_function(&self, tenant: &TenantId, id: &FunctionId) -> Result<()>;
}
