//! The Lua scripts of the Redis store (sources in `lua/`), loaded once per
//! store. Every tenant script gets `lua/prelude.lua` prepended (the helpers
//! that keep queues consistent) and takes the tenant's key prefix as
//! `KEYS[1]`: it touches only keys under that prefix, one hash tag, so it
//! runs on one Redis Cluster slot. No script touches a global key; where a
//! write needs both (the input and token indexes, the node registry), the
//! global write is made first by the caller and is harmless if the
//! script then refuses (readers check the tenant's own record).

use redis::Script;

const PRELUDE: &str = include_str!("lua/prelude.lua");
/// `settle_one`, for the scripts that settle.
const SETTLE_ONE: &str = include_str!("lua/settle_one.lua");

fn tenant_script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Every script, built once.
pub(super) struct Scripts {
    pub(super) append: Script,
    pub(super) objects: Script,
    pub(super) read_event: Script,
    pub(super) reset: Script,
    pub(super) purge: Script,
    pub(super) due: Script,
    pub(super) due_public: Script,
    pub(super) mark: Script,
    pub(super) settle: Script,
    pub(super) settle_batch: Script,
    pub(super) release: Script,
    pub(super) register: Script,
    pub(super) expire: Script,
    pub(super) abandon: Script,
    pub(super) rate_limit: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            append: tenant_script(include_str!("lua/append.lua")),
            objects: tenant_script(include_str!("lua/objects.lua")),
            read_event: tenant_script(include_str!("lua/read_event.lua")),
            reset: tenant_script(include_str!("lua/reset.lua")),
            purge: tenant_script(include_str!("lua/purge.lua")),
            due: tenant_script(include_str!("lua/due.lua")),
            due_public: tenant_script(include_str!("lua/due_public.lua")),
            mark: tenant_script(include_str!("lua/mark.lua")),
            settle: tenant_script(&format!("{SETTLE_ONE}\n{}", include_str!("lua/settle.lua"))),
            settle_batch: tenant_script(&format!(
                "{SETTLE_ONE}\n{}",
                include_str!("lua/settle_batch.lua")
            )),
            release: tenant_script(include_str!("lua/release.lua")),
            register: tenant_script(include_str!("lua/register.lua")),
            expire: tenant_script(include_str!("lua/expire.lua")),
            abandon: tenant_script(include_str!("lua/abandon.lua")),
            rate_limit: Script::new(include_str!("lua/ratelimit.lua")),
        }
    }
}
