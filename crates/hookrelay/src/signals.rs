//! SIGINT and SIGTERM to a cancellation token: `serve`, `agent` and
//! `listen` stop on either, finishing what is in flight.

use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` on the first SIGINT or SIGTERM. The handlers are
/// registered before this returns, so a signal sent as soon as the caller
/// prints that it is ready (as `.ci/run` and the tests do) is a clean stop,
/// not the default action's kill.
pub(crate) fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::spawn(async move {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                    stop(&shutdown);
                });
            }
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(%err, "cannot listen for SIGINT and SIGTERM");
            }
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop(&shutdown);
        }
    });
}

fn stop(shutdown: &CancellationToken) {
    tracing::info!("shutting down: finishing in-flight requests");
    shutdown.cancel();
}
