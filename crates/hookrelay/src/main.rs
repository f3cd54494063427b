//! The `hookrelay` binary: command-line parsing, configuration loading,
//! logging, signals and exit codes. The only crate that uses `anyhow`.
//!
//! Subcommands: `serve` runs the relay ([`serve`]); `agent` and `listen`
//! run an agent ([`agent`], [`listen`]); `tunnel` publishes a local
//! service ([`tunnel`]); `admin`, `events` and `send` are HTTP clients
//! of a running relay (`client`); `keys` manages the master keys of a data
//! directory (`keys`).

mod agent;
mod client;
mod exit;
#[cfg(feature = "server")]
mod keys;
#[cfg(feature = "server")]
mod limits;
mod listen;
mod logs;
mod out;
// Sentry reporting is `serve`'s; only the log layer is shared.
#[cfg_attr(not(feature = "server"), allow(dead_code))]
mod report;
#[cfg(feature = "server")]
mod serve;
mod service;
mod signals;
mod tls;
mod tunnel;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hookrelay", version, about = "A self-hosted webhook relay")]
struct Cli {
    /// Log lines as text (coloured on a terminal) or one JSON object each.
    #[arg(
        long,
        global = true,
        env = "HOOKRELAY_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay.
    #[cfg(feature = "server")]
    Serve(Box<serve::ServeArgs>),
    /// Run an agent: receive a bucket's webhooks over one outbound stream
    /// and forward them to internal URLs.
    Agent(Box<agent::AgentCommand>),
    /// Publish a local HTTP service through the relay (an HTTP tunnel).
    Tunnel(Box<tunnel::TunnelCommand>),
    /// Forward a bucket's events to a local URL, printing each request
    /// (like `stripe listen`); several BUCKET=URL pairs in one session.
    Listen(Box<listen::ListenArgs>),
    /// Administer tenants, buckets, inputs, outputs and tokens of a running relay.
    Admin {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::AdminCommand,
    },
    /// List, show and resend events of a running relay.
    Events {
        #[command(flatten)]
        client: client::ClientArgs,
        #[command(subcommand)]
        command: client::EventsCommand,
    },
    /// Send a correctly signed test webhook.
    Send(client::SendArgs),
    /// Manage the master keys of a data directory: list, rotate, reencrypt, retire.
    #[cfg(feature = "server")]
    Keys(keys::KeysArgs),
    /// Print a shell completion script: `hookrelay completions bash >
    /// /etc/bash_completion.d/hookrelay`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), made from this command line: `hookrelay
    /// man | man -l -`.
    Man,
}

/// Completions or the man page, generated from the CLI's own definition so
/// they never disagree with `--help`.
fn generated(command: &Command) -> anyhow::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "hookrelay", &mut out);
        }
        _ => clap_mangen::Man::new(Cli::command()).render(&mut out)?,
    }
    Ok(out)
}

/// The runtime a command runs on. The agent and `listen` are one outbound
/// session each, mostly waiting on the network: on one thread an idle
/// agent is 0.1–0.4 MiB smaller and a backlog drained no slower than on
/// the multi-thread runtime (README, "The idle hookrelay agent process").
/// `tunnel` carries bulk traffic and stays on the multi-thread runtime
/// until its throughput is measured on one thread; the relay and the CLI
/// keep it too.
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match command {
        Command::Agent(_) | Command::Listen(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match runtime_for(&cli.command) {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    if matches!(cli.command, Command::Completions { .. } | Command::Man) {
        return match generated(&cli.command) {
            Ok(text) => {
                out!("{}", String::from_utf8_lossy(&text));
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let log = cli.log_format;
    let result = runtime.block_on(async move {
        match cli.command {
            #[cfg(feature = "server")]
            Command::Serve(args) => serve::run(*args, log).await,
            Command::Agent(args) => agent::run_agent(*args, log).await,
            Command::Listen(args) => listen::run_listen(*args, log).await,
            Command::Tunnel(args) => tunnel::run_tunnel(*args, log).await,
            Command::Admin { client, command } => client::run_admin(client, command).await,
            Command::Events { client, command } => client::run_events(client, command).await,
            Command::Send(args) => client::run_send(args).await,
            Command::Completions { .. } | Command::Man => Ok(()),
            #[cfg(feature = "server")]
            Command::Keys(args) => {
                logs::init(log, false);
                tokio::task::spawn_blocking(move || keys::run(args))
                    .await
                    .map_err(anyhow::Error::new)
                    .and_then(|r| r)
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code_of(&err)
        }
    }
}
