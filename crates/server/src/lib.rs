//! The hookrelay server: an axum application on a hyper accept loop.
//!
//! Depends on `model`, `verify`, `functions`, `store` (through
//! `Arc<dyn Store>` only), `proto` (the agent wire), `forward` (public
//! outputs) and `tunnel`; only the binary, `testkit` and `fuzz/` depend
//! on it.
//! The binary builds a [`Config`], opens a store, binds a listener and calls
//! [`run`]; tests do the same on `127.0.0.1:0`.
//!
//! # Layout
//! - [`config`]: the typed configuration the binary hands over.
//! - `listener`: the accept loop (connection limit, header read timeout,
//!   graceful drain).
//! - `framing`: HTTP/1 framing refused at the edge before hyper reads it
//!   (chunk sizes with long runs of leading zeros).
//! - `state`: `AppState`, shared by every handler.
//! - `error`: `ApiError`, the one error answer, and extractor wrappers that
//!   turn axum's own rejections into it.
//! - `auth`: bearer tokens, the admin and poll secrets, and the bcrypt cache.
//! - `client`: the client IP (through trusted proxies) and its network
//!   prefix, as the per-client budgets count them.
//! - `lookup`: a tenant's bucket by id or name, for `api` and `deliver`.
//! - `catalog`: the ingest-side cache of inputs with their kill switches.
//! - `cluster`: signals between nodes sharing a store (`wait` answers,
//!   configuration changes).
//! - `ingest/`: the public webhook routes and the pipeline of DESIGN §3.1.
//! - `api/`: administration, Radarboard provisioning, event reads, SSE.
//! - `dashboard/`: the web dashboard at `/ui/`, a client of `api/` in the
//!   same process (sessions, CSRF, server-rendered pages, live tail).
//! - `deliver/`: push delivery to agents (gRPC and WebSocket sessions, the
//!   per-group pumps), the `wait` policy and ephemeral payloads.
//! - `channels/`: smee and gosmee clients (DESIGN §12): the channels of a
//!   bucket and their public streams `/smee/{cap}`, `/smee/events/{cap}`.
//! - `tunnel/`: HTTP tunnels: the agents' tunnel connections, the public
//!   routes through them (`/t/{name}/`, `--tunnel-domain`), `/v1/tunnels`.
//! - `scripts`: functions (DESIGN §9) as the server runs them: the pool,
//!   the compiled-script cache, attachment checks; `api/functions` is
//!   their admin API and `invoke`.
//! - `ops`: health, readiness and Prometheus metrics.
//! - `openapi`: `GET /openapi.json`, the description of every route.
//! - `bootstrap`: first start (default tenant, admin token) and the
//!   Radarboard environment.
//! - `jobs/`: background work (retention), never in the request path.
//! - `fuzzing`: entry points for `fuzz/` only (hidden from the docs).

mod api;
mod auth;
mod bootstrap;
mod catalog;
mod channels;
mod client;
mod cluster;
pub mod config;
mod dashboard;
mod deliver;
mod error;
mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod ingest;
mod jobs;
mod listener;
mod lookup;
mod metrics;
mod openapi;
mod ops;
mod scripts;
mod secrets;
mod state;
mod tunnel;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use bootstrap::Bootstrapped;
pub use config::{Config, NodeLink};

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] store::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Prepares the store for `config` (default tenant, first-start admin token,
/// Radarboard environment) and reports what a human must see once.
pub async fn bootstrap(
    store: &Arc<dyn store::Store>,
    config: &Config,
) -> Result<Bootstrapped, Error> {
    bootstrap::run(store, config).await
}

/// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight
/// requests finish (up to `config.shutdown_grace`), stops background jobs and
/// closes the store so every queued write is flushed.
pub async fn run(
    listener: TcpListener,
    config: Config,
    store: Arc<dyn store::Store>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let config = Arc::new(config);
    let state = state::AppState::new(config.clone(), store.clone(), shutdown.clone()).await?;
    let app = router(state.clone());
    let jobs = jobs::spawn(state.clone(), shutdown.child_token());
    let public_stop = shutdown.child_token();
    let public = tokio::spawn(deliver::run_public_deliveries(
        state.clone(),
        public_stop.clone(),
    ));
    let signals = tokio::spawn(cluster::listen(state.clone(), shutdown.child_token()));
    let holds = tokio::spawn(tunnel::refresh_holds(state.clone(), shutdown.child_token()));
    listener::serve(listener, app, state.clone(), &config, shutdown).await;
    let _ = signals.await;
    let _ = holds.await;
    state.hub.stop();
    public_stop.cancel();
    let _ = public.await;
    jobs.stop().await;
    store.close().await;
    Ok(())
}

fn router(state: state::AppState) -> axum::Router {
    axum::Router::new()
        .merge(ingest::router())
        .merge(api::router())
        .merge(dashboard::router(
            state.clone(),
            api::router()
                .merge(tunnel::admin_router())
                .with_state(state.clone()),
        ))
        .merge(deliver::router(&state))
        .merge(ops::router())
        .merge(tunnel::router(&state))
        .merge(channels::router())
        .merge(openapi::router())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(error::json_method_not_allowed))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        // Outermost: a tunnel host's requests never reach the relay's own
        // routes, whatever their path.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tunnel::by_host,
        ))
        .with_state(state)
}
