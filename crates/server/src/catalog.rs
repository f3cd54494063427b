//! The ingest side's view of inputs: each input with its bucket, tenant kill
//! switch and prepared verifier, cached so the hot path does not read the
//! store for configuration.
//!
//! The cache follows the store's configuration feed
//! (`store::ClusterBus::config_changes`): any object write, on this node or
//! (Redis) another, ticks it, and the next use of the cache finds the tick
//! and starts empty. No handler has to remember to invalidate. Entries also
//! expire after [`ENTRY_TTL`], for a change the bus failed to carry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use model::{Bucket, Input, InputId, TenantId};

/// How long a cached input is trusted without re-reading the store.
const ENTRY_TTL: Duration = Duration::from_secs(5);
/// Above this many entries the cache is cleared rather than grown.
const MAX_ENTRIES: usize = 100_000;

/// An input ready for the pipeline.
pub(crate) struct Route {
    pub(crate) input: Input,
    pub(crate) bucket: Bucket,
    pub(crate) tenant_enabled: bool,
    /// `None` for a plain input.
    pub(crate) integration: Option<verify::Integration>,
}

#[derive(Default)]
struct Entries {
    /// The feed's value these entries were read under.
    version: u64,
    by_id: HashMap<InputId, (Arc<Route>, Instant)>,
    by_name: HashMap<(TenantId, String), InputId>,
}

pub(crate) struct Catalog {
    entries: Mutex<Entries>,
    /// The store's configuration feed. A load that started before a tick
    /// does not insert its (possibly stale) result.
    changes: watch::Receiver<u64>,
}

impl Catalog {
    pub(crate) fn new(changes: watch::Receiver<u64>) -> Self {
        let version = *changes.borrow();
        Self {
            entries: Mutex::new(Entries {
                version,
                ..Entries::default()
            }),
            changes,
        }
    }

    /// The feed's value now.
    fn version(&self) -> u64 {
        *self.changes.borrow()
    }

    /// The entries, emptied first if the feed ticked since they were read.
    fn current(&self) -> std::sync::MutexGuard<'_, Entries> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let version = self.version();
        if entries.version != version {
            *entries = Entries {
                version,
                ..Entries::default()
            };
        }
        entries
    }

    fn cached(&self, id: &InputId) -> Option<Arc<Route>> {
        let entries = self.current();
        let (route, at) = entries.by_id.get(id)?;
        (at.elapsed() < ENTRY_TTL).then(|| route.clone())
    }

    fn cached_name(&self, tenant: &TenantId, name: &str) -> Option<InputId> {
        let entries = self.current();
        entries
            .by_name
            .get(&(tenant.clone(), name.to_owned()))
            .copied()
    }

    /// The input with this id, or `None` if there is none.
    pub(crate) async fn by_id(
        &self,
        store: &dyn store::Store,
        id: &InputId,
    ) -> Result<Option<Arc<Route>>, store::Error> {
        if let Some(route) = self.cached(id) {
            return Ok(Some(route));
        }
        let version = self.version();
        let input = match store.input_by_id(id).await {
            Ok(input) => input,
            Err(store::Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.load(store, input, version).await
    }

    /// The input with this name in `tenant`, or `None`.
    pub(crate) async fn by_name(
        &self,
        store: &dyn store::Store,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<Arc<Route>>, store::Error> {
        if let Some(id) = self.cached_name(tenant, name) {
            if let Some(route) = self.cached(&id) {
                return Ok(Some(route));
            }
        }
        let version = self.version();
        let input = match store.input_by_name(tenant, name).await {
            Ok(input) => input,
            Err(store::Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.load(store, input, version).await
    }

    async fn load(
        &self,
        store: &dyn store::Store,
        input: Input,
        version: u64,
    ) -> Result<Option<Arc<Route>>, store::Error> {
        let bucket = match store.bucket(&input.tenant, &input.bucket).await {
            Ok(bucket) => bucket,
            Err(store::Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let tenant = match store.tenant(&input.tenant).await {
            Ok(record) => record.tenant,
            Err(store::Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let integration = input
            .integration
            .and_then(|kind| verify::Integration::new(kind, input.generic_hmac.as_ref()));
        let route = Arc::new(Route {
            input,
            bucket,
            tenant_enabled: tenant.enabled,
            integration,
        });
        self.insert(&route, version);
        Ok(Some(route))
    }

    fn insert(&self, route: &Arc<Route>, version: u64) {
        let mut entries = self.current();
        if entries.version != version {
            return;
        }
        if entries.by_id.len() >= MAX_ENTRIES {
            *entries = Entries {
                version,
                ..Entries::default()
            };
        }
        let input = &route.input;
        if let Some(name) = &input.name {
            entries
                .by_name
                .insert((input.tenant.clone(), name.clone()), input.id);
        }
        entries
            .by_id
            .insert(input.id, (route.clone(), Instant::now()));
    }
}
