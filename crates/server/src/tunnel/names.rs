//! Tunnels by name for the public routes and the agents' handshakes,
//! cached: without it every visitor's request read the store (a hop to the
//! blocking pool, a SQLite query and an AES-GCM open of the tunnel's auth).
//!
//! As `crate::catalog` does for inputs, the cache follows the store's
//! configuration feed (`store::ClusterBus::config_changes`), which every
//! tunnel write ticks, here and (Redis) on the other nodes: the next use
//! finds the tick and starts empty, so no handler has to remember to
//! invalidate. Entries also expire after [`ENTRY_TTL`], for a change the
//! bus failed to carry. Unknown names are not cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::Tunnel;
use tokio::sync::watch;

/// How long a cached tunnel is trusted without re-reading the store.
const ENTRY_TTL: Duration = Duration::from_secs(5);
/// Above this many entries the cache is cleared rather than grown.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
struct Entries {
    /// The feed's value these entries were read under.
    version: u64,
    by_name: HashMap<String, (Arc<Tunnel>, Instant)>,
}

pub(crate) struct Names {
    entries: Mutex<Entries>,
    changes: watch::Receiver<u64>,
}

impl Names {
    pub(crate) fn new(changes: watch::Receiver<u64>) -> Self {
        let version = *changes.borrow();
        Names {
            entries: Mutex::new(Entries {
                version,
                ..Entries::default()
            }),
            changes,
        }
    }

    fn version(&self) -> u64 {
        *self.changes.borrow()
    }

    /// The entries, emptied first if the feed ticked since they were read.
    fn current(&self) -> std::sync::MutexGuard<'_, Entries> {
        let mut entries = super::lock(&self.entries);
        let version = self.version();
        if entries.version != version {
            *entries = Entries {
                version,
                ..Entries::default()
            };
        }
        entries
    }

    /// The tunnel named `name`, from the cache or the store.
    pub(crate) async fn get(
        &self,
        store: &dyn store::Store,
        name: &str,
    ) -> Result<Arc<Tunnel>, store::Error> {
        if let Some((tunnel, at)) = self.current().by_name.get(name) {
            if at.elapsed() < ENTRY_TTL {
                return Ok(Arc::clone(tunnel));
            }
        }
        // A load that started before a tick does not insert its (possibly
        // stale) result.
        let version = self.version();
        let tunnel = Arc::new(store.tunnel_by_name(name).await?);
        let mut entries = self.current();
        if entries.version == version {
            if entries.by_name.len() >= MAX_ENTRIES {
                entries.by_name.clear();
            }
            entries
                .by_name
                .insert(name.to_owned(), (Arc::clone(&tunnel), Instant::now()));
        }
        Ok(tunnel)
    }
}
