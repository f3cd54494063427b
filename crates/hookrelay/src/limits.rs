//! `serve`'s flags for what unauthenticated peers may make the relay hold
//! (DESIGN §7, issue 19) and what one function call may spend (DESIGN §9);
//! the README's limits table lists them with every fixed bound.

use std::time::Duration;

use clap::Args;

use crate::exit::config_error;

const MIB: usize = 1024 * 1024;

/// The longest time limit a function may be given: a call holds one of
/// the few function threads for all of it.
const MAX_FUNCTION_TIMEOUT_MS: u64 = 10_000;
/// The most memory a function call may be given, in MiB (one per function
/// thread may be in use at once).
const MAX_FUNCTION_MEMORY_MIB: usize = 1024;

/// The flags (the TOML file's keys of the same names fill what they leave
/// unset).
#[derive(Args, Debug, Default)]
pub(crate) struct LimitArgs {
    /// Open connections at once, agents' included; at the bound the oldest
    /// connection that has not yet sent a request gives way; at least 64
    /// (each needs a file descriptor: raise `ulimit -n` with it)
    /// [default: 10000].
    #[arg(long, env = "HOOKRELAY_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// Agent streams and WebSocket connections whose Hello is not yet
    /// verified, server-wide; beyond it the oldest is closed [default: 1024].
    #[arg(long, env = "HOOKRELAY_MAX_UNAUTHENTICATED_AGENTS")]
    pub(crate) max_unauthenticated_agents: Option<usize>,
    /// The same, per client IP (an IPv6 client's /64) [default: 16].
    #[arg(long, env = "HOOKRELAY_MAX_UNAUTHENTICATED_AGENTS_PER_IP")]
    pub(crate) max_unauthenticated_agents_per_ip: Option<usize>,
    /// MiB of large agent messages (64 KiB and up) received at once,
    /// server-wide; at least 32 [default: 256].
    #[arg(long, env = "HOOKRELAY_AGENT_MESSAGE_BUDGET_MIB")]
    pub(crate) agent_message_budget_mib: Option<usize>,
    /// MiB of webhook bodies being read, checked and stored at once,
    /// server-wide, each counted four times (buffer, sealed plaintext,
    /// ciphertext, the store's copy); beyond it ingest answers 503 with
    /// Retry-After; at least 128, four of the largest body [default: 256].
    #[arg(long, env = "HOOKRELAY_INGEST_BODY_BUDGET_MIB")]
    pub(crate) ingest_body_budget_mib: Option<usize>,
    /// Wall time of one function call in milliseconds, 1 to 10000; a call
    /// still running then is stopped [default: 100].
    #[arg(long, env = "HOOKRELAY_FUNCTION_TIMEOUT_MS")]
    pub(crate) function_timeout_ms: Option<u64>,
    /// Memory one function call may allocate in MiB, 1 to 1024
    /// [default: 16].
    #[arg(long, env = "HOOKRELAY_FUNCTION_MEMORY_MIB")]
    pub(crate) function_memory_mib: Option<usize>,
}

impl LimitArgs {
    /// Applies what the flags (or else the file) set to `config`; a
    /// function limit out of its range is a configuration error.
    pub(crate) fn apply(
        &self,
        file: &LimitArgs,
        config: &mut server::Config,
    ) -> anyhow::Result<()> {
        let pick = |flag: Option<usize>, file: Option<usize>| flag.or(file).map(|n| n.max(1));
        if let Some(n) = pick(self.max_connections, file.max_connections) {
            config.max_connections = n.max(64);
        }
        if let Some(n) = pick(
            self.max_unauthenticated_agents,
            file.max_unauthenticated_agents,
        ) {
            config.max_unauthenticated_agents = n;
        }
        if let Some(n) = pick(
            self.max_unauthenticated_agents_per_ip,
            file.max_unauthenticated_agents_per_ip,
        ) {
            config.max_unauthenticated_agents_per_ip = n;
        }
        if let Some(n) = pick(self.agent_message_budget_mib, file.agent_message_budget_mib) {
            config.agent_message_budget = n.max(32) * MIB;
        }
        // At least one largest body (an input's bodyLimit is at most 32 MiB),
        // counted four times.
        if let Some(n) = pick(self.ingest_body_budget_mib, file.ingest_body_budget_mib) {
            config.ingest_body_budget = n.max(128) * MIB;
        }
        if let Some(ms) = self.function_timeout_ms.or(file.function_timeout_ms) {
            if !(1..=MAX_FUNCTION_TIMEOUT_MS).contains(&ms) {
                return Err(config_error(format!(
                    "--function-timeout-ms must be 1 to {MAX_FUNCTION_TIMEOUT_MS}"
                )));
            }
            config.function_timeout = Duration::from_millis(ms);
        }
        if let Some(mib) = self.function_memory_mib.or(file.function_memory_mib) {
            if !(1..=MAX_FUNCTION_MEMORY_MIB).contains(&mib) {
                return Err(config_error(format!(
                    "--function-memory-mib must be 1 to {MAX_FUNCTION_MEMORY_MIB}"
                )));
            }
            config.function_memory = mib * MIB;
        }
        Ok(())
    }
}
