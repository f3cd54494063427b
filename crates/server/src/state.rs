//! `AppState`: what every handler shares. One `Arc`, so the clones axum
//! makes per request (extractors, middleware) cost one atomic increment.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::AuthCache;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::deliver::{Doorway, Hub, PreauthLimits};
use crate::metrics::Metrics;
use crate::secrets;

#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn store::Store>,
    pub(crate) auth: AuthCache,
    pub(crate) catalog: Catalog,
    pub(crate) metrics: Metrics,
    /// Connected agents and their groups' delivery pumps.
    pub(crate) hub: Hub,
    /// Agent sessions not yet authenticated, and the budget of large agent
    /// messages (DESIGN §7).
    pub(crate) preauth: Doorway,
    /// Tunnel agents connected to this node, and the request logs.
    pub(crate) tunnels: crate::tunnel::Registry,
    /// Bytes of ingest bodies being read or checked at once (DESIGN §7).
    pub(crate) body_budget: crate::ingest::BodyBudget,
    /// Channel streams open on this node (DESIGN §12).
    pub(crate) channels: crate::channels::Registry,
    /// Functions (DESIGN §9): the function threads and compiled scripts.
    pub(crate) scripts: crate::scripts::Scripts,
    /// Addresses whose refused requests filled their input's window.
    pub(crate) ingest_blocks: crate::ingest::RefusalBlocks,
    /// bcrypt hash of the configured admin secret, made once at start so
    /// the secret is checked like every other credential.
    pub(crate) admin_secret_hash: Option<String>,
    /// Cancelled at shutdown: long-polls and SSE streams end on it so the
    /// graceful drain does not wait for them.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub(crate) async fn new(
        config: Arc<Config>,
        store: Arc<dyn store::Store>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<Self, crate::Error> {
        let admin_secret_hash = match &config.admin_secret {
            Some(secret) => Some(
                secrets::hash(secret.expose().to_owned(), config.bcrypt_cost)
                    .await
                    .map_err(|e| crate::Error::Config(e.message))?,
            ),
            None => None,
        };
        Ok(Self(Arc::new(Shared {
            auth: AuthCache::new(config.auth_cache_ttl),
            catalog: Catalog::new(store.config_changes()),
            metrics: Metrics::new(),
            hub: Hub::new(),
            preauth: Doorway::new(PreauthLimits {
                total: config.max_unauthenticated_agents,
                per_ip: config.max_unauthenticated_agents_per_ip,
                message_budget: config.agent_message_budget,
            }),
            tunnels: crate::tunnel::Registry::new(store.config_changes()),
            channels: Default::default(),
            scripts: crate::scripts::Scripts::new(functions::Limits {
                time: config.function_timeout,
                memory: config.function_memory,
                ..functions::Limits::default()
            }),
            ingest_blocks: Default::default(),
            body_budget: crate::ingest::BodyBudget::new(config.ingest_body_budget),
            admin_secret_hash,
            shutdown,
            config,
            store,
        })))
    }
}
