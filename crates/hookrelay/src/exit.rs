//! Exit codes: what a failed command tells its caller. A configuration
//! mistake (bad flag, unreadable file, a master key that does not match the
//! store) is 64 (sysexits EX_USAGE), as the README promises; anything else
//! is 1.
//!
//! Every module may return a [`ConfigError`]; only `main` turns errors into
//! codes, so no module needs another's to say "this was the user's input".

use std::process::ExitCode;

/// Exit code for a bad configuration or command line (sysexits EX_USAGE).
pub(crate) const EXIT_USAGE: u8 = 64;

/// A configuration mistake: reported with exit code 64.
#[derive(Debug)]
pub(crate) struct ConfigError(pub(crate) String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A [`ConfigError`] as an `anyhow::Error`.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) fn config_error(message: impl Into<String>) -> anyhow::Error {
    ConfigError(message.into()).into()
}

/// The exit code for `err`: 64 when a [`ConfigError`] is anywhere in its
/// chain, else 1.
pub(crate) fn code_of(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|e| e.is::<ConfigError>()) {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::FAILURE
    }
}
