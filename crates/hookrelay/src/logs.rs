//! The log: `tracing` on stderr, set up once per process. Colour only when
//! stderr is a terminal (a file or journald gets no ANSI codes), or one JSON
//! object per line with `--log-format json`. The default filter shows the
//! relay's, the agent's and `listen`'s own info lines (connection state
//! included); `RUST_LOG` replaces it.

use std::io::IsTerminal;

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What is logged without `RUST_LOG`.
const DEFAULT_FILTER: &str = "hookrelay=info,server=info,store=info,agent=info";

/// Installs the subscriber; with `sentry`, `error!` events also go to
/// Sentry. A second call does nothing.
pub(crate) fn init(format: LogFormat, sentry: bool) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt.json().with_current_span(true).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(sentry.then(crate::report::layer))
        .try_init();
}
