//! The hookrelay agent: runs inside the private network, holds one outbound
//! stream to the relay (gRPC or WebSocket, DESIGN §5), and forwards each
//! delivery to its output's URL (or `--destination`), answering with an
//! `Ack`. It reconnects with exponential backoff and jitter, and misses
//! nothing while away: the relay keeps what is pending for its group.
//!
//! Depends on `proto` (the wire messages) and `forward` (the outbound
//! HTTP request); the binary's `agent` and `listen` subcommands call [`run`].
//! Start with [`run`], then `session` (one connection's life).
//!
//! # Layout
//! - `lib.rs`: [`AgentConfig`], [`run`] (the reconnect loop) and backoff.
//! - `link`: the two transports as one [`link::ServerLink`] each, split
//!   into a reader and a writer once welcomed.
//! - `session`: hello, welcome, the reader (deliveries, heartbeats) and
//!   the writer task (acks), clean stop.
//! - `forwarding`: the requests, concurrently within `--max-in-flight`.

mod forwarding;
mod link;
mod session;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use forwarding::Forwarded;
pub use session::now_ms;

pub use proto::link::backoff;

/// Which stream the agent holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    WebSocket,
}

/// A validated agent configuration (the binary builds it from flags).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The relay's base URL, `http://` or `https://`.
    pub server: String,
    pub token_key: String,
    pub token_secret: String,
    /// Bucket ids or names; empty means every bucket the token may read.
    pub buckets: Vec<String>,
    /// Empty means the token key (the relay's default).
    pub group: String,
    pub transport: Transport,
    /// Overrides every output's URL; the event's path and query are kept.
    pub destination: Option<String>,
    pub max_in_flight: u32,
    /// How long a clean stop waits for forwards already under way.
    pub stop_grace: Duration,
    /// PEM file of the CA that signed the relay's certificate; `None`
    /// trusts the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Why the agent stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The relay refused the agent for a reason reconnecting cannot fix
    /// (bad token, unknown bucket, wrong mode).
    #[error("the relay refused the agent: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The relay's certificate is not trusted: reconnecting will not help.
    #[error("TLS: {0}")]
    Tls(String),
}

/// What to tell a user whose relay's certificate is a CA: one made the
/// usual `openssl req -x509` way has `basicConstraints CA:TRUE`, and rustls
/// refuses a CA as a server's own certificate (`CaUsedAsEndEntity`).
pub const CA_AS_LEAF: &str = "the relay's TLS certificate is a CA certificate \
     (basicConstraints CA:TRUE), which TLS clients refuse as a server's own certificate \
     (CaUsedAsEndEntity): make one with `-addext basicConstraints=critical,CA:FALSE` \
     (see the README, \"TLS\"), or sign a server certificate with your CA and give the CA \
     to --ca-file";

/// What a session ended with, deciding whether to reconnect.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// Stopped on request: do not reconnect.
    Stopped,
    /// Lost or closed by the relay; `connected` tells whether a Welcome
    /// was received (which resets the backoff).
    Lost {
        connected: bool,
        reason: String,
    },
    Fatal(AgentError),
}

/// Runs the agent until `shutdown` is cancelled (then stops cleanly) or the
/// relay refuses it for good. `report`, if given, receives one line per
/// forwarded request (`hookrelay listen` prints them).
pub async fn run(
    config: AgentConfig,
    shutdown: CancellationToken,
    report: Option<mpsc::Sender<Forwarded>>,
) -> Result<(), AgentError> {
    let forwarder = forward::Forwarder::new(forward::EgressPolicy::AllowAll)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let forwarder = std::sync::Arc::new(forwarder);
    let mut failures = 0u32;
    loop {
        let end = session::run(&config, &forwarder, &shutdown, report.clone()).await;
        match end {
            SessionEnd::Stopped => return Ok(()),
            SessionEnd::Fatal(err) => return Err(err),
            SessionEnd::Lost { connected, reason } => {
                failures = if connected { 1 } else { failures + 1 };
                let wait = backoff(failures, rand::random::<f64>());
                tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, "connection to the relay lost");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}
