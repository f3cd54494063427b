//! First start and the Radarboard environment (DESIGN §2, §3.6): the
//! `default` tenant, the one-time admin token, the default tenant's poll
//! secret and the named inputs of `WEBHOOK_SECRET_<NAME>`.

use std::sync::Arc;

use model::{Tenant, TenantId, TokenScope};

use crate::config::Config;
use crate::{secrets, Error};

/// What start-up made that a human must see once.
#[derive(Debug, Default)]
pub struct Bootstrapped {
    /// The admin token created on first start (`<key>.<secret>`), when no
    /// admin secret is configured. It is shown now and never again.
    pub admin_token: Option<String>,
    /// Named inputs configured from `WEBHOOK_SECRET_<NAME>`, with their ids.
    pub named_inputs: Vec<String>,
}

pub(crate) async fn run(
    store: &Arc<dyn store::Store>,
    config: &Config,
) -> Result<Bootstrapped, Error> {
    let default = TenantId::default_tenant();
    ensure_default_tenant(store.as_ref()).await?;
    match &config.poll_secret {
        Some(secret) => {
            let cost = config.bcrypt_cost;
            set_poll_secret(store.as_ref(), &default, secret.expose(), cost).await?;
        }
        // The default tenant's poll secret only ever comes from
        // RELAY_POLL_SECRET: once it is removed (say, after a leak), the old
        // secret must stop working.
        None => store.set_poll_secret(&default, None).await?,
    }
    let mut done = Bootstrapped::default();
    if !config.webhook_secrets.is_empty() {
        done.named_inputs =
            crate::api::upsert_named_inputs(store, &default, config.webhook_secrets.clone())
                .await
                .map_err(|e| Error::Config(format!("WEBHOOK_SECRET_*: {}", e.message)))?;
    }
    if config.admin_secret.is_none() && !store.has_admin_token().await? {
        let issued = crate::api::issue_token(
            store.as_ref(),
            config.bcrypt_cost,
            default,
            TokenScope::Admin,
            Vec::new(),
            None,
            "created at first start".to_owned(),
        )
        .await
        .map_err(|e| Error::Config(e.message))?;
        done.admin_token = Some(issued.bearer());
    }
    Ok(done)
}

async fn ensure_default_tenant(store: &dyn store::Store) -> Result<(), Error> {
    let record = store::TenantRecord {
        tenant: Tenant {
            id: TenantId::default_tenant(),
            label: "Default".to_owned(),
            enabled: true,
            created_at: store::clock::now_ms(),
        },
        poll_secret_hash: None,
    };
    match store.create_tenant(&record).await {
        Ok(()) | Err(store::Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Stores the hash of `secret` unless the stored hash already matches it,
/// so a restart does not rewrite it.
async fn set_poll_secret(
    store: &dyn store::Store,
    tenant: &TenantId,
    secret: &str,
    cost: u32,
) -> Result<(), Error> {
    let current = store.tenant(tenant).await?.poll_secret_hash;
    if let Some(hash) = current {
        if secrets::verify(secret.to_owned(), hash).await {
            return Ok(());
        }
    }
    let hash = secrets::hash(secret.to_owned(), cost)
        .await
        .map_err(|e| Error::Config(e.message))?;
    store.set_poll_secret(tenant, Some(&hash)).await?;
    Ok(())
}
