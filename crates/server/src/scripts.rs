//! Functions (DESIGN §9) as the server runs them: the pool of function
//! threads (started on first use), the compiled scripts cached per
//! function id, and the checks every attachment goes through. Ingest
//! (input functions), `deliver::rules` (output functions) and
//! `api::functions` (`invoke`) call in here; the sandbox itself is the
//! `functions` crate's.
//!
//! A compiled script is cached by function id for [`FRESH_FOR`]: a change
//! through this node's API drops it at once; a change made through
//! another node sharing the store is seen within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use functions::{Attachment, Call, Limits, Outcome, Pool, Request, Script};
use model::{Function, FunctionId, TenantId};

use crate::error::ApiError;
use crate::state::AppState;

/// How long a cached script is used without looking at the store again.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// Cached scripts kept at most; past it the cache starts over (every
/// tenant's functions together are bounded by `MAX_FUNCTIONS` each).
const MAX_CACHED: usize = 4_096;

/// A function ready to run: its compiled script and opened config.
pub(crate) struct Loaded {
    pub(crate) tenant: TenantId,
    pub(crate) script: Script,
    pub(crate) config: Arc<Vec<(String, String)>>,
    fetched: Instant,
}

/// The server's function runtime.
pub(crate) struct Scripts {
    limits: Limits,
    pool: OnceLock<Pool>,
    cache: Mutex<HashMap<FunctionId, Arc<Loaded>>>,
}

impl Scripts {
    pub(crate) fn new(limits: Limits) -> Self {
        Scripts {
            limits,
            pool: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn pool(&self) -> &Pool {
        self.pool.get_or_init(|| Pool::per_core(self.limits))
    }

    /// The function `id` of `tenant`, compiled; `Err` says why it cannot
    /// run (gone, or no longer compiling), in words fit for `functionError`.
    pub(crate) async fn load(
        &self,
        store: &dyn store::Store,
        tenant: &TenantId,
        id: &FunctionId,
    ) -> Result<Arc<Loaded>, String> {
        if let Some(hit) = self.cached(id) {
            if &hit.tenant == tenant && hit.fetched.elapsed() < FRESH_FOR {
                return Ok(hit);
            }
        }
        let function = match store.function(tenant, id).await {
            Ok(f) => f,
            Err(store::Error::NotFound) => return Err("the function no longer exists".into()),
            Err(e) => return Err(format!("the function could not be read: {e}")),
        };
        let loaded = Arc::new(prepare(&function).map_err(|e| e.to_string())?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(id.clone(), loaded.clone());
        }
        Ok(loaded)
    }

    fn cached(&self, id: &FunctionId) -> Option<Arc<Loaded>> {
        self.cache.lock().ok()?.get(id).cloned()
    }

    /// Drops the cached copy after a change or delete on this node.
    pub(crate) fn forget(&self, id: &FunctionId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(id);
        }
    }

    /// Runs `loaded` on `request` on a function thread.
    pub(crate) async fn run(
        &self,
        loaded: &Loaded,
        request: Request,
        metadata: Vec<(&'static str, String)>,
        attachment: Attachment,
    ) -> Outcome {
        let call = Call {
            request,
            metadata,
            config: loaded.config.clone(),
            attachment,
        };
        self.pool().run(&loaded.script, call).await
    }
}

/// Compiles a function and opens its config for calls.
pub(crate) fn prepare(function: &Function) -> Result<Loaded, functions::CompileError> {
    let script = Script::compile(function.id.as_str(), function.version, &function.source)?;
    let config = function
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    Ok(Loaded {
        tenant: function.tenant.clone(),
        script,
        config: Arc::new(config),
        fetched: Instant::now(),
    })
}

/// An input or output may name only a function of its own tenant.
pub(crate) async fn check_attached(
    state: &AppState,
    tenant: &TenantId,
    id: Option<&FunctionId>,
) -> Result<(), ApiError> {
    let Some(id) = id else { return Ok(()) };
    match state.store.function(tenant, id).await {
        Ok(_) => Ok(()),
        Err(store::Error::NotFound) => Err(ApiError::invalid_request(
            "functionId: no function with this id",
        )),
        Err(e) => Err(e.into()),
    }
}
