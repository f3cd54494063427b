//! The `hookrelay` binary: command-line parsing, configuration loading,
//! logging, signals and exit codes. The only crate that uses `anyhow`.
//!
//! Subcommands: `serve` runs the relay ([`serve`]); `agent` and `listen`
//! run an agent ([`agent`]); `admin`, `events` and `send` are HTTP clients
//! of a running relay (`client`); `keys` manages the master keys of a data
//! directory (`keys`).

mod agent;
mod client;
mod keys;
mod report;
mod serve;
mod service;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a bad configuration or command line (sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(Parser)]
#[command(name = "hookrelay", version, about = "A self-hosted webhook relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay.
    Serve(Box<serve::ServeArgs>),
    /// Run an agent: receive a bucket's webhooks over one outbound stream
    /// and forward them to internal URLs.
    Agent(Box<agent::AgentCommand>),
    /// Forward one bucket to one local URL, printing each request.
    Listen(Box<agent::ListenArgs>),
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
    Keys(keys::KeysArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Agent(args) => agent::run_agent(*args).await,
            Command::Listen(args) => agent::run_listen(*args).await,
            Command::Admin { client, command } => client::run_admin(client, command).await,
            Command::Events { client, command } => client::run_events(client, command).await,
            Command::Send(args) => client::run_send(args).await,
            Command::Keys(args) => {
                serve::init_tracing();
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
            if err.downcast_ref::<serve::ConfigError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
