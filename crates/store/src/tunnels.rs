//! The tunnel objects (DESIGN §10): [`Tunnels`].

use async_trait::async_trait;
use model::{TenantId, Tunnel, TunnelId};

use crate::Result;

/// A tenant's tunnels.
///
/// Guarantees:
/// - **Names are unique on the server**, across tenants, atomically: a
///   name is the tunnel's public address (`/t/{name}`, `{name}.domain`).
///   A taken name is [`crate::Error::Conflict`]`("name")`.
/// - **Tenant isolation**: a tunnel is read, changed or deleted through its
///   tenant, except by [`Tunnels::tunnel_by_name`] (public routing knows
///   only the name). Deleting a tenant deletes its tunnels.
/// - **Secrets sealed**: the tunnel's auth is stored sealed, bound to its
///   id; one that does not open fails the read [`crate::Error::Corrupt`].
/// - **Writes tick the configuration feed**
///   ([`crate::ClusterBus::config_changes`]) before they return, like
///   every other admin write, so nothing caching a tunnel needs telling.
#[async_trait]
pub trait Tunnels: Send + Sync + 'static {
    /// [`crate::Error::Conflict`] if the name is taken,
    /// [`crate::Error::NotFound`] if the tenant does not exist.
    async fn create_tunnel(&self, tunnel: &Tunnel) -> Result<()>;
    async fn tunnel(&self, tenant: &TenantId, id: &TunnelId) -> Result<Tunnel>;
    /// Public routing and agents: the tunnel named `name`, any tenant.
    async fn tunnel_by_name(&self, name: &str) -> Result<Tunnel>;
    async fn list_tunnels(&self, tenant: &TenantId) -> Result<Vec<Tunnel>>;
    /// Replaces name, auth, host header and kill switch.
    async fn update_tunnel(&self, tunnel: &Tunnel) -> Result<()>;
    async fn delete_tunnel(&self, tenant: &TenantId, id: &TunnelId) -> Result<()>;
}
