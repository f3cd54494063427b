//! `hookrelay tunnel` (DESIGN §10): flags to a validated
//! `tunnel::agent::TunnelConfig`, the public URLs printed at connect,
//! signals to a clean stop (open requests finish first).

use anyhow::Result;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::agent::{check_server_url, TransportArg};
use crate::exit::ConfigError;
use crate::logs::LogFormat;
use crate::signals::cancel_on_signal;

#[derive(Args)]
pub(crate) struct TunnelArgs {
    /// The relay's URL (required).
    #[arg(long, env = "HOOKRELAY_SERVER")]
    server: Option<String>,
    /// A tunnel-mode agent token as `KEY.SECRET`.
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The tunnel's name (as created with `hookrelay admin tunnel create`).
    #[arg(long, env = "HOOKRELAY_TUNNEL_NAME")]
    name: String,
    /// The local service every request goes to, e.g. http://localhost:3000.
    #[arg(long, env = "HOOKRELAY_DESTINATION")]
    destination: String,
    /// grpc (HTTP/2 stream) or ws (WebSocket).
    #[arg(long, env = "HOOKRELAY_TRANSPORT", value_enum, default_value = "grpc")]
    transport: TransportArg,
    /// PEM file of the CA that signed the relay's certificate (default:
    /// the system's roots).
    #[arg(long, env = "HOOKRELAY_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Allow plain http:// to a relay that is not on this machine.
    #[arg(long, env = "HOOKRELAY_INSECURE")]
    insecure: bool,
}

impl TunnelArgs {
    fn to_config(&self) -> Result<tunnel::agent::TunnelConfig, ConfigError> {
        let (token_key, token_secret) = self
            .token
            .as_deref()
            .and_then(|t| t.split_once('.'))
            .map(|(k, s)| (k.to_owned(), s.to_owned()))
            .ok_or_else(|| {
                ConfigError("--token KEY.SECRET (a tunnel-mode agent token) is required".into())
            })?;
        let server = self
            .server
            .as_deref()
            .ok_or_else(|| ConfigError("--server is required".into()))?;
        check_server_url(server, self.insecure)?;
        model::validate_dns_label("--name", &self.name).map_err(|e| ConfigError(e.to_string()))?;
        let destination =
            tunnel::agent::Destination::parse(&self.destination).map_err(ConfigError)?;
        if let Some(ca) = &self.ca_file {
            if !ca.is_file() {
                return Err(ConfigError(format!(
                    "--ca-file {}: no such file",
                    ca.display()
                )));
            }
        }
        Ok(tunnel::agent::TunnelConfig {
            server: server.trim_end_matches('/').to_owned(),
            token_key,
            token_secret,
            name: self.name.clone(),
            destination,
            transport: match self.transport {
                TransportArg::Grpc => tunnel::agent::Transport::Grpc,
                TransportArg::Ws => tunnel::agent::Transport::WebSocket,
            },
            ca_file: self.ca_file.clone(),
        })
    }
}

pub(crate) async fn run(args: TunnelArgs, log: LogFormat) -> Result<()> {
    crate::logs::init(log, false);
    let config = args.to_config()?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let destination = args.destination.clone();
    tunnel::agent::run(config, shutdown, move |urls| {
        for url in urls {
            println!("tunnel {url} -> {destination}");
        }
    })
    .await?;
    Ok(())
}
