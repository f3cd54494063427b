//! `hookrelay tunnel` (DESIGN §10): holds one tunnel connection to the
//! relay and answers the relay's HTTP/2 requests by sending them to its
//! `--destination`, which only this side chooses: the relay sends a path,
//! a query, headers and a body, never an address.
//!
//! Uses `wire` and the transports of this crate, never the `relay` side;
//! the binary's `tunnel` subcommand calls [`run`].
//!
//! # Layout
//! - `mod.rs`: [`TunnelConfig`], [`run`] (the reconnect loop).
//! - `connect`: the two transports (gRPC, WebSocket, both through TLS) as
//!   one byte stream, and the handshake.
//! - `serve`: the HTTP/2 server and the keep-alive pool to the destination.

mod connect;
mod serve;

use tokio_util::sync::CancellationToken;

pub use serve::Destination;

/// What carries the tunnel connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    WebSocket,
}

/// A validated `hookrelay tunnel` configuration.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// The relay's base URL, `http://` or `https://`.
    pub server: String,
    pub token_key: String,
    pub token_secret: String,
    /// The tunnel's name (a DNS label).
    pub name: String,
    pub destination: Destination,
    pub transport: Transport,
    /// PEM file of the CA that signed the relay's certificate; `None`
    /// trusts the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Why the tunnel agent stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The relay refused the agent for a reason reconnecting cannot fix
    /// (bad token, wrong mode, unknown tunnel).
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Runs until `shutdown` (then lets open requests finish) or a refusal.
/// `on_welcome` is called with the tunnel's public URLs at every connect.
pub async fn run(
    config: TunnelConfig,
    shutdown: CancellationToken,
    on_welcome: impl Fn(&[String]) + Send + Sync,
) -> Result<(), TunnelError> {
    let ca = match &config.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            TunnelError::Config(format!("cannot read the CA file {}: {e}", path.display()))
        })?),
        None => None,
    };
    let mut failures = 0u32;
    loop {
        let connected = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            c = connect::open(&config, ca.as_deref()) => c,
        };
        let reason = match connected {
            Ok((io, welcome)) => {
                failures = 0;
                on_welcome(&welcome.tunnel_urls);
                tracing::info!(agent = %welcome.agent_id, "tunnel connected");
                match serve::serve(io, &config.destination, &shutdown).await {
                    Ok(()) if shutdown.is_cancelled() => return Ok(()),
                    Ok(()) => "the relay closed the tunnel".to_owned(),
                    Err(err) => err.to_string(),
                }
            }
            Err(connect::Failure::Refused(err)) => return Err(err),
            Err(connect::Failure::Lost(reason)) => reason,
        };
        failures += 1;
        let wait = proto::link::backoff(failures, rand::random::<f64>());
        tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, "tunnel connection lost");
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
    }
}
