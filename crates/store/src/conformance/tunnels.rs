//! Tunnels: names unique across tenants, lookups by name, isolation by
//! tenant, auth sealed and read back, renames, deletes, and a deleted
//! tenant's names free again.

use std::sync::Arc;

use model::{BucketAuth, Secret, TenantId, Tunnel, TunnelId};

use super::{now, tenant_record, unique};
use crate::{Error, Store};

pub(super) fn tunnel_in(tenant: &TenantId, name: &str) -> Tunnel {
    Tunnel {
        id: TunnelId::generate(),
        tenant: tenant.clone(),
        name: name.to_owned(),
        auth: BucketAuth::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        },
        host_header: Some("localhost:3000".into()),
        enabled: true,
        created_at: now(),
    }
}

/// A DNS label no other check uses.
pub(super) fn fresh_name(label: &str) -> String {
    format!("{label}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub async fn tunnels(store: &Arc<dyn Store>) {
    let (a, b) = (unique("tun-a"), unique("tun-b"));
    for t in [&a, &b] {
        store
            .create_tenant(&tenant_record(t.clone()))
            .await
            .unwrap();
    }
    let name = fresh_name("app");
    let tunnel = tunnel_in(&a, &name);
    store.create_tunnel(&tunnel).await.unwrap();
    let read = store.tunnel(&a, &tunnel.id).await.unwrap();
    assert_eq!(
        (read.name.as_str(), read.host_header.as_deref()),
        (name.as_str(), Some("localhost:3000"))
    );
    assert!(
        matches!(read.auth, BucketAuth::Basic { ref password, .. } if password.expose() == "p")
    );
    assert_eq!(store.tunnel_by_name(&name).await.unwrap().id, tunnel.id);

    // The name is the server's, not the tenant's.
    let clash = store.create_tunnel(&tunnel_in(&b, &name)).await;
    assert!(matches!(clash, Err(Error::Conflict("name"))), "{clash:?}");
    assert!(matches!(
        store.tunnel(&b, &tunnel.id).await,
        Err(Error::NotFound)
    ));
    assert!(store.list_tunnels(&b).await.unwrap().is_empty());
    let orphan = tunnel_in(&unique("tun-none"), &fresh_name("orphan"));
    assert!(matches!(
        store.create_tunnel(&orphan).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.tunnel_by_name(&orphan.name).await,
        Err(Error::NotFound)
    ));

    // A rename frees the old name; another tenant cannot update or delete.
    let mut renamed = read.clone();
    renamed.name = fresh_name("renamed");
    renamed.enabled = false;
    store.update_tunnel(&renamed).await.unwrap();
    assert!(matches!(
        store.tunnel_by_name(&name).await,
        Err(Error::NotFound)
    ));
    assert!(!store.tunnel_by_name(&renamed.name).await.unwrap().enabled);
    let mut foreign = renamed.clone();
    foreign.tenant = b.clone();
    assert!(matches!(
        store.update_tunnel(&foreign).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete_tunnel(&b, &renamed.id).await,
        Err(Error::NotFound)
    ));
    store.create_tunnel(&tunnel_in(&b, &name)).await.unwrap();
    assert_eq!(store.list_tunnels(&a).await.unwrap().len(), 1);

    store.delete_tunnel(&a, &renamed.id).await.unwrap();
    assert!(matches!(
        store.tunnel_by_name(&renamed.name).await,
        Err(Error::NotFound)
    ));
    assert!(store.list_tunnels(&a).await.unwrap().is_empty());

    // Deleting a tenant takes its tunnels, and their names are free again.
    store.delete_tenant(&b).await.unwrap();
    assert!(matches!(
        store.tunnel_by_name(&name).await,
        Err(Error::NotFound)
    ));
    store.create_tunnel(&tunnel_in(&a, &name)).await.unwrap();
    store.delete_tenant(&a).await.unwrap();
}
