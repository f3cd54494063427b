//! `hookrelay admin <object> <verb>`: the object level of the command tree.
//! Each object's verbs, flags and request bodies live in its own module
//! ([`super::tenant`], [`super::bucket`], [`super::input`], [`super::output`],
//! [`super::token`], [`super::channel`], [`super::function`],
//! [`super::tunnel`]); this file only dispatches.

use super::http::ApiClient;
use super::table::View;
use super::{bucket, channel, function, input, output, tenant, token, tunnel};

/// The administered objects of DESIGN §1.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum AdminCommand {
    /// Tenants, the unit of isolation (admin secret or admin token only).
    Tenant {
        #[command(subcommand)]
        verb: tenant::TenantCommand,
    },
    /// Buckets: named groups of inputs and outputs.
    Bucket {
        #[command(subcommand)]
        verb: bucket::BucketCommand,
    },
    /// Inputs: the public endpoints webhooks are sent to.
    Input {
        #[command(subcommand)]
        verb: input::InputCommand,
    },
    /// Outputs: where a bucket's events are delivered.
    Output {
        #[command(subcommand)]
        verb: output::OutputCommand,
    },
    /// Channels: a bucket's events for smee and gosmee clients.
    Channel {
        #[command(subcommand)]
        verb: channel::ChannelCommand,
    },
    /// Tokens: credentials for admins, tenants, agents and pollers.
    Token {
        #[command(subcommand)]
        verb: token::TokenCommand,
    },
    /// Tunnels: local HTTP services published through the relay.
    Tunnel {
        #[command(subcommand)]
        verb: tunnel::TunnelCommand,
    },
    /// Functions: Lua scripts inputs and outputs run (DESIGN §9).
    Function {
        #[command(subcommand)]
        verb: function::FunctionCommand,
    },
}

/// Runs one admin command against the relay.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Tenant { verb } => tenant::run(api, view, verb).await,
        AdminCommand::Bucket { verb } => bucket::run(api, view, verb).await,
        AdminCommand::Input { verb } => input::run(api, view, verb).await,
        AdminCommand::Output { verb } => output::run(api, view, verb).await,
        AdminCommand::Token { verb } => token::run(api, view, verb).await,
        AdminCommand::Channel { verb } => channel::run(api, view, verb).await,
        AdminCommand::Tunnel { verb } => tunnel::run(api, view, verb).await,
        AdminCommand::Function { verb } => function::run(api, view, verb).await,
    }
}
