//! The command-line clients of a running relay (DESIGN §2): `hookrelay admin`
//! (tenants, buckets, inputs, outputs, tokens), `hookrelay events` (list, show,
//! resend) and `hookrelay send` (a correctly signed test webhook).
//!
//! Start with [`run_admin`], [`run_events`] and [`run_send`]; `main.rs` wires
//! them to clap. [`http`] talks to the administration API, [`table`] prints
//! its answers, and one module per object builds request bodies from flags as
//! pure functions (unit-tested without a server). Nothing here reads the
//! environment directly: clap does, through the `env` names on the flags.
//! Speaks HTTP only (no server or store import); only `main.rs` calls it.

mod admin;
mod bucket;
mod channel;
mod collection;
mod events;
mod function;
mod http;
mod input;
mod output;
mod send;
mod table;
mod tenant;
mod token;
mod tunnel;

pub(crate) use admin::AdminCommand;
pub(crate) use events::EventsCommand;
pub(crate) use send::SendArgs;

/// Groups the [`ClientArgs`] under their own heading in every `--help`, as
/// they are repeated on each verb.
const CONNECTION: &str = "Relay options";

/// How to reach the relay's API, shared by `admin` and `events`.
///
/// The flags are `global` so they may stand before or after the object and
/// verb (`hookrelay admin bucket list --json`).
#[derive(clap::Args, Clone)]
pub(crate) struct ClientArgs {
    /// Relay base URL.
    #[arg(
        long,
        env = "HOOKRELAY_URL",
        default_value = "http://127.0.0.1:8080",
        global = true,
        help_heading = CONNECTION
    )]
    pub(crate) server: String,
    /// Bearer token (`<key>.<secret>` or the admin secret).
    #[arg(
        long,
        env = "HOOKRELAY_TOKEN",
        hide_env_values = true,
        global = true,
        help_heading = CONNECTION
    )]
    pub(crate) token: Option<String>,
    /// Tenant to act on as admin (sent as X-Hookrelay-Tenant).
    #[arg(long, env = "HOOKRELAY_TENANT", global = true, help_heading = CONNECTION)]
    pub(crate) tenant: Option<String>,
    /// PEM file of the CA (or self-signed certificate) the relay's TLS
    /// certificate is trusted by, besides the system's.
    #[arg(long, env = "HOOKRELAY_CA_FILE", global = true, help_heading = CONNECTION)]
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) json: bool,
}

// Written by hand so that `{:?}` of the arguments never shows the token.
impl std::fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientArgs")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("tenant", &self.tenant)
            .field("ca_file", &self.ca_file)
            .field("json", &self.json)
            .finish()
    }
}

/// `hookrelay admin <object> <verb> ...`: administers one tenant's objects.
pub(crate) async fn run_admin(client: ClientArgs, cmd: AdminCommand) -> anyhow::Result<()> {
    let api = http::ApiClient::new(&client)?;
    admin::run(&api, table::View { json: client.json }, cmd).await
}

/// `hookrelay events list|show|resend`: reads and replays stored events.
pub(crate) async fn run_events(client: ClientArgs, cmd: EventsCommand) -> anyhow::Result<()> {
    let api = http::ApiClient::new(&client)?;
    events::run(&api, table::View { json: client.json }, cmd).await
}

/// `hookrelay send`: posts one signed test webhook to an input URL.
pub(crate) async fn run_send(args: SendArgs) -> anyhow::Result<()> {
    send::run(args).await
}

/// Parses a `Name: value` header flag (`--header`).
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected NAME:VALUE, got {text:?}")),
    }
}

/// Fails when an `update` was given nothing to change: an empty `PATCH`
/// would succeed and mislead.
fn require_changes(body: &serde_json::Value, flags: &str) -> anyhow::Result<()> {
    match body.as_object() {
        Some(map) if !map.is_empty() => Ok(()),
        _ => anyhow::bail!("nothing to update: give at least one of {flags}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The wiring `main.rs` is expected to use.
    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Cmd {
        Admin {
            #[command(flatten)]
            client: ClientArgs,
            #[command(subcommand)]
            cmd: AdminCommand,
        },
        Events {
            #[command(flatten)]
            client: ClientArgs,
            #[command(subcommand)]
            cmd: EventsCommand,
        },
        Send(SendArgs),
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hookrelay").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn client_flags_go_before_or_after_the_verb() {
        for args in [
            &[
                "admin",
                "--server",
                "http://h:1",
                "--json",
                "bucket",
                "list",
            ][..],
            &[
                "admin",
                "bucket",
                "list",
                "--server",
                "http://h:1",
                "--json",
            ][..],
        ] {
            let Cmd::Admin { client, .. } = parse(args).unwrap().cmd else {
                panic!("not admin");
            };
            assert_eq!(client.server, "http://h:1");
            assert!(client.json);
        }
        let Cmd::Events { client, cmd } = parse(&["events", "show", "evt_1", "--token", "k.s"])
            .unwrap()
            .cmd
        else {
            panic!("not events");
        };
        assert_eq!(client.token.as_deref(), Some("k.s"));
        assert!(!format!("{client:?}").contains("k.s"));
        assert!(matches!(cmd, EventsCommand::Show { .. }));
    }

    #[test]
    fn headers_parse() {
        assert_eq!(
            parse_header("X-A: b:c "),
            Ok(("X-A".to_owned(), "b:c".to_owned()))
        );
        assert!(parse_header("no-colon").is_err());
        assert!(parse_header(": v").is_err());
    }
}
