//! `hookrelay serve`: flags, `HOOKRELAY_*` variables, the optional TOML file
//! and the Radarboard variables turned into one validated
//! [`server::Config`]; then the store is opened, the port bound, and the
//! server run until SIGINT or SIGTERM.
//!
//! [`config`] turns flags, file and environment into a validated
//! configuration; this module opens the store, binds and runs.
//! Depends on `server` and `store`; only `main.rs` calls it.

mod config;

pub(crate) use config::ServeArgs;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::exit::config_error;
use crate::logs::LogFormat;
use crate::signals::cancel_on_signal;

use config::{redact_url, resolve, var_of, Resolved, StoreChoice};

pub(crate) async fn run(args: ServeArgs, log_format: LogFormat) -> anyhow::Result<()> {
    // Held to the end of `run`: dropping it flushes queued reports.
    let reporting = match std::env::var("SENTRY_DSN") {
        Ok(dsn) if !dsn.is_empty() => {
            Some(crate::report::init(&dsn).map_err(|e| config_error(format!("{e:#}")))?)
        }
        _ => None,
    };
    crate::logs::init(log_format, reporting.is_some());
    if reporting.is_some() {
        tracing::info!("reporting errors to Sentry (SENTRY_DSN)");
    }
    // Before anything is printed: a SIGTERM sent the moment the address
    // appears must stop the relay cleanly.
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let env: Vec<(String, String)> = std::env::vars().collect();
    let Resolved {
        listen,
        data_dir,
        store: store_choice,
        public_url_given,
        node_url,
        mut config,
    } = resolve(args, &env)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| config_error(format!("cannot listen on {listen}: {e}")))?;
    let local = listener.local_addr()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if !public_url_given {
        config.public_url = format!("{scheme}://{local}");
    }

    let master = var_of(&env, crate::keys::ENV);
    let (keys, source) = crate::keys::load(&data_dir, master.as_deref(), true)?;
    config.node = node_link(&store_choice, node_url, &config, local, &keys);
    let keys = crypto::Keyring::new(&keys).map_err(|e| config_error(format!("master key: {e}")))?;
    let from = match source {
        crate::keys::Source::Env => crate::keys::ENV.to_owned(),
        crate::keys::Source::File(path) => path.display().to_string(),
    };
    tracing::info!(active = %keys.active(), keys = keys.ids().len(), %from, "master keys loaded");
    let store = open_store(&store_choice, &data_dir, keys).await?;
    let bootstrapped = server::bootstrap(&store, &config)
        .await
        .map_err(|e| match e {
            server::Error::Config(message) => config_error(message),
            other => anyhow::Error::new(other),
        })?;
    if let Some(token) = &bootstrapped.admin_token {
        crate::outln!("admin token (shown once, keep it safe): {token}");
    }
    for name in &bootstrapped.named_inputs {
        tracing::info!(input = %name, "named input configured from WEBHOOK_SECRET_*");
    }
    tracing::info!(address = %local, data_dir = %data_dir.display(), "hookrelay listening");
    crate::outln!("hookrelay listening on {scheme}://{local}");

    server::run(listener, config, store, shutdown).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// What the node needs to take part in cross-node tunnels (DESIGN §10):
/// only with the shared store, at `--node-url` or, without it, at its
/// listen address when that is one the other nodes can dial.
fn node_link(
    store: &StoreChoice,
    given: Option<String>,
    config: &server::Config,
    local: std::net::SocketAddr,
    keys: &[crypto::Key],
) -> Option<server::NodeLink> {
    use base64::Engine;
    let url = match (store, given) {
        (StoreChoice::Sqlite, Some(_)) => {
            tracing::warn!(
                "--node-url is for a shared store (redis://); the embedded store has one node"
            );
            return None;
        }
        (StoreChoice::Sqlite, None) => return None,
        (StoreChoice::Redis(..), Some(url)) => url,
        (StoreChoice::Redis(..), None) if config.tls.is_none() && !local.ip().is_unspecified() => {
            format!("http://{local}")
        }
        (StoreChoice::Redis(..), None) => {
            tracing::warn!(
                "no --node-url: tunnel requests reaching this node are carried to other nodes, \
                 but none are carried here"
            );
            return None;
        }
    };
    tracing::info!(node_url = %url, "other nodes send tunnel requests for agents here");
    let keys = keys
        .iter()
        .map(|key| {
            let derived = key.derive("node-to-node tunnel requests");
            model::Secret::new(base64::engine::general_purpose::STANDARD.encode(derived))
        })
        .collect();
    Some(server::NodeLink { url, keys })
}

async fn open_store(
    choice: &StoreChoice,
    data_dir: &Path,
    keys: crypto::Keyring,
) -> anyhow::Result<Arc<dyn store::Store>> {
    Ok(match choice {
        StoreChoice::Sqlite => Arc::new(
            store::sqlite::SqliteStore::open_with(data_dir, keys)
                .with_context(|| format!("opening the store in {}", data_dir.display()))?,
        ),
        StoreChoice::Redis(url, options) => {
            let redis = store::redis::RedisStore::open(url, keys, options.clone())
                .await
                .map_err(|e| match e {
                    store::Error::Corrupt(message) => config_error(message),
                    other => anyhow::Error::new(other)
                        .context(format!("opening the Redis store at {}", redact_url(url))),
                })?;
            Arc::new(redis)
        }
    })
}
