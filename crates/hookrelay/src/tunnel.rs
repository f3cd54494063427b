//! `hookrelay tunnel` (DESIGN §10): flags to a validated
//! `tunnel::agent::TunnelConfig`, the public URLs printed at connect,
//! signals to a clean stop (open requests finish first); `install-service`
//! runs it as a system service ([`crate::service`]). The relay flags are
//! the agent's ([`RelayFlags`]).

use anyhow::Result;
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::agent::{RelayFlags, TransportArg};
use crate::exit::ConfigError;
use crate::logs::LogFormat;
use crate::service::{Service, ServiceFlags};
use crate::signals::cancel_on_signal;

/// `hookrelay tunnel [install-service]`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct TunnelCommand {
    #[command(subcommand)]
    service: Option<TunnelSub>,
    #[command(flatten)]
    args: TunnelArgs,
}

#[derive(Subcommand)]
enum TunnelSub {
    /// Write a systemd unit (Linux) or launchd plist (macOS) running this
    /// tunnel, with the token in a 0600 file; starts nothing.
    InstallService(Box<TunnelService>),
}

#[derive(Args)]
struct TunnelService {
    #[command(flatten)]
    tunnel: TunnelArgs,
    #[command(flatten)]
    service: ServiceFlags,
}

#[derive(Args)]
struct TunnelArgs {
    #[command(flatten)]
    relay: RelayFlags,
    /// The tunnel's name (as created with `hookrelay admin tunnel create`).
    #[arg(long, env = "HOOKRELAY_TUNNEL_NAME", required = true)]
    name: Option<String>,
    /// The local service every request goes to, e.g. http://localhost:3000
    /// or https://localhost:8443.
    #[arg(long, env = "HOOKRELAY_DESTINATION", required = true)]
    destination: Option<String>,
    /// PEM file of the CA that signed an https:// destination's
    /// certificate (default: the system's roots).
    #[arg(long, env = "HOOKRELAY_DESTINATION_CA_FILE")]
    destination_ca_file: Option<std::path::PathBuf>,
}

impl TunnelArgs {
    fn to_config(&self) -> Result<tunnel::agent::TunnelConfig, ConfigError> {
        let (token_key, token_secret) = self.relay.token_pair()?;
        let server = self.relay.server_url()?;
        let name = self.name()?;
        model::validate_dns_label("--name", name).map_err(|e| ConfigError(e.to_string()))?;
        let destination_ca = match &self.destination_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                ConfigError(format!("--destination-ca-file {}: {e}", path.display()))
            })?),
            None => None,
        };
        let destination =
            tunnel::agent::Destination::parse(self.destination()?, destination_ca.as_deref())
                .map_err(ConfigError)?;
        Ok(tunnel::agent::TunnelConfig {
            server,
            token_key,
            token_secret,
            name: name.to_owned(),
            destination,
            transport: match self.relay.transport {
                TransportArg::Grpc => tunnel::agent::Transport::Grpc,
                TransportArg::Ws => tunnel::agent::Transport::WebSocket,
            },
            ca_file: self.relay.checked_ca_file()?,
        })
    }

    fn name(&self) -> Result<&str, ConfigError> {
        self.name
            .as_deref()
            .ok_or_else(|| ConfigError("--name is required".into()))
    }

    fn destination(&self) -> Result<&str, ConfigError> {
        self.destination
            .as_deref()
            .ok_or_else(|| ConfigError("--destination is required".into()))
    }

    /// These arguments as `hookrelay tunnel` flags, without the token.
    fn service_arguments(&self) -> Result<Vec<String>, ConfigError> {
        let mut out = vec!["tunnel".to_owned()];
        out.extend(["--name".to_owned(), self.name()?.to_owned()]);
        out.extend(["--destination".to_owned(), self.destination()?.to_owned()]);
        if let Some(ca) = &self.destination_ca_file {
            let ca = std::path::absolute(ca).unwrap_or_else(|_| ca.clone());
            out.extend(["--destination-ca-file".to_owned(), ca.display().to_string()]);
        }
        self.relay.push_service_arguments(&mut out);
        Ok(out)
    }
}

pub(crate) async fn run_tunnel(command: TunnelCommand, log: LogFormat) -> Result<()> {
    match command.service {
        Some(TunnelSub::InstallService(args)) => install_service(*args),
        None => run(command.args, log).await,
    }
}

fn install_service(args: TunnelService) -> Result<()> {
    let config = args.tunnel.to_config()?;
    crate::service::install(
        args.service,
        Service {
            default_name: format!("hookrelay-tunnel-{}", config.name),
            description: "hookrelay tunnel: publishes a local service through the relay",
            arguments: args.tunnel.service_arguments()?,
            token: format!("{}.{}", config.token_key, config.token_secret),
            reads: [
                config.ca_file.map(|f| ("--ca-file", f)),
                args.tunnel
                    .destination_ca_file
                    .clone()
                    .map(|f| ("--destination-ca-file", f)),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
    )
}

async fn run(args: TunnelArgs, log: LogFormat) -> Result<()> {
    crate::logs::init(log, false);
    let config = args.to_config()?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let destination = args.destination()?.to_owned();
    tunnel::agent::run(config, shutdown, move |urls| {
        for url in urls {
            println!("tunnel {url} -> {destination}");
        }
    })
    .await?;
    Ok(())
}
