//! `hookrelay agent` (DESIGN §2): flags to a validated `agent::AgentConfig`,
//! signals to a clean stop. `listen` (`crate::listen`) shares the
//! [`Connection`] flags and, with an agent token, [`config`].

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::exit::ConfigError;
use crate::logs::LogFormat;
use crate::signals::cancel_on_signal;

/// How long a stopping agent waits for requests already under way.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// `hookrelay agent [install-service]`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct AgentCommand {
    #[command(subcommand)]
    service: Option<AgentSub>,
    #[command(flatten)]
    args: AgentArgs,
}

#[derive(Subcommand)]
pub(crate) enum AgentSub {
    /// Write a systemd unit (Linux) or launchd plist (macOS) running this
    /// agent, with the token in a 0600 file; starts nothing.
    InstallService(Box<AgentService>),
}

/// `hookrelay agent install-service`: the agent's flags and the service's.
#[derive(Args)]
pub(crate) struct AgentService {
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    service: crate::service::ServiceFlags,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TransportArg {
    Grpc,
    Ws,
}

/// Where the relay is and who the agent is: the flags `agent`, `listen`
/// and `tunnel` share, read from the same environment variables.
#[derive(Args, Clone)]
pub(crate) struct RelayFlags {
    /// The relay's URL (required; also read from HOOKRELAY_SERVER).
    #[arg(long, env = "HOOKRELAY_URL")]
    server: Option<String>,
    /// `HOOKRELAY_SERVER`, read after `HOOKRELAY_URL` as every other
    /// subcommand reads it first (DESIGN §8).
    #[arg(long = "server-env-fallback", env = "HOOKRELAY_SERVER", hide = true)]
    server_fallback: Option<String>,
    /// The agent token as `KEY.SECRET`.
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true, conflicts_with_all = ["token_key", "token_secret"])]
    token: Option<String>,
    /// The agent token's key (with --token-secret).
    #[arg(long, env = "HOOKRELAY_TOKEN_KEY", requires = "token_secret")]
    token_key: Option<String>,
    /// The agent token's secret (with --token-key).
    #[arg(
        long,
        env = "HOOKRELAY_TOKEN_SECRET",
        hide_env_values = true,
        requires = "token_key"
    )]
    token_secret: Option<String>,
    /// grpc (HTTP/2 stream) or ws (WebSocket).
    #[arg(long, env = "HOOKRELAY_TRANSPORT", value_enum, default_value = "grpc")]
    pub(crate) transport: TransportArg,
    /// PEM file of the CA that signed the relay's certificate (default:
    /// the system's roots).
    #[arg(long, env = "HOOKRELAY_CA_FILE")]
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// Allow plain http:// to a relay that is not on this machine.
    #[arg(long, env = "HOOKRELAY_INSECURE")]
    insecure: bool,
}

/// [`RelayFlags`] and the in-flight cap of an agent that forwards.
#[derive(Args, Clone)]
pub(crate) struct Connection {
    #[command(flatten)]
    pub(crate) relay: RelayFlags,
    /// At most this many deliveries in flight at once (1 to 1024).
    #[arg(long, env = "HOOKRELAY_MAX_IN_FLIGHT", default_value_t = 16)]
    max_in_flight: u32,
}

#[derive(Args, Clone)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    connection: Connection,
    /// A bucket id or name to receive (repeat for several; none: all the
    /// token may read).
    #[arg(long = "bucket", env = "HOOKRELAY_BUCKET", value_delimiter = ',')]
    buckets: Vec<String>,
    /// Agents of one group share the work; default: the token key.
    #[arg(long, env = "HOOKRELAY_GROUP", default_value = "")]
    group: String,
    /// Send every delivery here instead of its output's URL (the path
    /// suffix and query are kept).
    #[arg(long, env = "HOOKRELAY_DESTINATION")]
    destination: Option<String>,
}

pub(crate) async fn run_agent(command: AgentCommand, log: LogFormat) -> Result<()> {
    match command.service {
        Some(AgentSub::InstallService(args)) => {
            let config = args.agent.to_config()?;
            crate::service::install(
                args.service,
                crate::service::Service {
                    default_name: "hookrelay-agent".to_owned(),
                    description: "hookrelay agent: forwards webhooks from the relay",
                    arguments: args.agent.service_arguments(),
                    token: format!("{}.{}", config.token_key, config.token_secret),
                    reads: config
                        .ca_file
                        .into_iter()
                        .map(|f| ("--ca-file", f))
                        .collect(),
                },
            )
        }
        None => {
            crate::logs::init(log, false);
            run(command.args.to_config()?).await
        }
    }
}

impl AgentArgs {
    pub(crate) fn to_config(&self) -> Result<agent::AgentConfig, ConfigError> {
        config(
            &self.connection,
            self.buckets.clone(),
            self.group.clone(),
            self.destination.clone(),
        )
    }

    /// These arguments as `hookrelay agent` flags, without the token (a
    /// service passes it in its environment).
    pub(crate) fn service_arguments(&self) -> Vec<String> {
        let c = &self.connection;
        let mut out = vec!["agent".to_owned()];
        let mut flag = |name: &str, value: String| {
            out.push(format!("--{name}"));
            out.push(value);
        };
        for bucket in &self.buckets {
            flag("bucket", bucket.clone());
        }
        if !self.group.is_empty() {
            flag("group", self.group.clone());
        }
        flag("max-in-flight", c.max_in_flight.to_string());
        if let Some(d) = &self.destination {
            flag("destination", d.clone());
        }
        c.relay.push_service_arguments(&mut out);
        out
    }
}

async fn run(config: agent::AgentConfig) -> Result<()> {
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    Ok(agent::run(config, shutdown, None).await?)
}

impl RelayFlags {
    /// `--server`, else `HOOKRELAY_URL`, else `HOOKRELAY_SERVER`.
    pub(crate) fn server_url(&self) -> Result<String, ConfigError> {
        let server = self
            .server
            .as_deref()
            .or(self.server_fallback.as_deref())
            .ok_or_else(|| {
                ConfigError("--server is required (or HOOKRELAY_URL, HOOKRELAY_SERVER)".into())
            })?;
        check_server_url(server, self.insecure)?;
        Ok(server.trim_end_matches('/').to_owned())
    }

    /// The token as one bearer string (`KEY.SECRET`, or an admin secret).
    pub(crate) fn bearer(&self) -> Result<String, ConfigError> {
        match (&self.token, &self.token_key, &self.token_secret) {
            (Some(token), _, _) => Ok(token.clone()),
            (None, Some(key), Some(secret)) => Ok(format!("{key}.{secret}")),
            _ => Err(ConfigError(
                "a token is required: --token (or HOOKRELAY_TOKEN), or --token-key and --token-secret"
                    .into(),
            )),
        }
    }

    /// The agent token split into key and secret.
    pub(crate) fn token_pair(&self) -> Result<(String, String), ConfigError> {
        match (&self.token, &self.token_key, &self.token_secret) {
            (Some(token), _, _) => token
                .split_once('.')
                .map(|(k, s)| (k.to_owned(), s.to_owned()))
                .ok_or_else(|| ConfigError("--token must be KEY.SECRET".into())),
            (None, Some(key), Some(secret)) => Ok((key.clone(), secret.clone())),
            _ => Err(ConfigError(
                "an agent token is required: --token KEY.SECRET or --token-key and --token-secret"
                    .into(),
            )),
        }
    }

    /// `--ca-file`, checked to be a file.
    pub(crate) fn checked_ca_file(&self) -> Result<Option<std::path::PathBuf>, ConfigError> {
        match &self.ca_file {
            Some(ca) if !ca.is_file() => Err(ConfigError(format!(
                "--ca-file {}: no such file",
                ca.display()
            ))),
            ca => Ok(ca.clone()),
        }
    }

    /// These flags as command-line arguments for a service, without the
    /// token (a service passes it in its environment, never on its command
    /// line, where `ps` would show it).
    pub(crate) fn push_service_arguments(&self, out: &mut Vec<String>) {
        if let Some(server) = self.server.as_ref().or(self.server_fallback.as_ref()) {
            out.extend(["--server".to_owned(), server.clone()]);
        }
        let transport = match self.transport {
            TransportArg::Grpc => "grpc",
            TransportArg::Ws => "ws",
        };
        out.extend(["--transport".to_owned(), transport.to_owned()]);
        if let Some(ca) = &self.ca_file {
            // systemd runs the unit from `/`: a relative path would name
            // another file there.
            let ca = std::path::absolute(ca).unwrap_or_else(|_| ca.clone());
            out.extend(["--ca-file".to_owned(), ca.display().to_string()]);
        }
        if self.insecure {
            out.push("--insecure".to_owned());
        }
    }
}

/// The agent's configuration from its flags.
pub(crate) fn config(
    c: &Connection,
    buckets: Vec<String>,
    group: String,
    destination: Option<String>,
) -> Result<agent::AgentConfig, ConfigError> {
    let relay = &c.relay;
    let (token_key, token_secret) = relay.token_pair()?;
    let server = relay.server_url()?;
    if let Some(d) = &destination {
        if !(d.starts_with("http://") || d.starts_with("https://")) {
            return Err(ConfigError(format!(
                "the destination {d:?} must be an http(s) URL"
            )));
        }
    }
    let ca_file = relay.checked_ca_file()?;
    if !(1..=proto::MAX_IN_FLIGHT_CAP).contains(&c.max_in_flight) {
        return Err(ConfigError(
            "--max-in-flight must be between 1 and 1024".into(),
        ));
    }
    Ok(agent::AgentConfig {
        server,
        token_key,
        token_secret,
        buckets,
        group,
        transport: match relay.transport {
            TransportArg::Grpc => agent::Transport::Grpc,
            TransportArg::Ws => agent::Transport::WebSocket,
        },
        destination,
        max_in_flight: c.max_in_flight,
        stop_grace: STOP_GRACE,
        ca_file,
    })
}

/// Plain http:// carries the token in the clear: only to this machine,
/// unless the user says `--insecure` (DESIGN §7).
fn check_server_url(server: &str, insecure: bool) -> Result<(), ConfigError> {
    if server.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = server.strip_prefix("http://") else {
        return Err(ConfigError(format!(
            "--server {server:?} must be an http:// or https:// URL"
        )));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let local = matches!(host, "localhost" | "127.0.0.1" | "::1") || host.starts_with("127.");
    if local || insecure {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "refusing plain http:// to {host}: the token would cross the network in the clear; use https:// or --insecure"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine_unless_insecure() {
        assert!(check_server_url("http://127.0.0.1:8080", false).is_ok());
        assert!(check_server_url("http://localhost:8080/", false).is_ok());
        assert!(check_server_url("http://[::1]:8080", false).is_ok());
        assert!(check_server_url("https://relay.example", false).is_ok());
        assert!(check_server_url("http://relay.example", false).is_err());
        assert!(check_server_url("http://localhost.evil.example", false).is_err());
        assert!(check_server_url("http://relay.example", true).is_ok());
        assert!(check_server_url("ftp://relay.example", true).is_err());
    }
}
