//! `hookrelay admin tunnel ...`: `/v1/tunnels` (DESIGN §10). A tunnel's
//! `auth` is checked at the relay before a visitor's request reaches the
//! agent; `requests` prints the node's request log of the tunnel.

use serde_json::{json, Map, Value};

use super::bucket::AuthArgs;
use super::collection::Collection;
use super::http::ApiClient;
use super::table::{cell, time_cell, Column, View};

/// Verbs on tunnels.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TunnelCommand {
    /// Create a tunnel; prints its public URLs.
    Create(TunnelCreate),
    /// List the tenant's tunnels.
    List,
    /// Show one tunnel (with the agents serving it on this node).
    Show {
        /// Tunnel id (`tun_...`).
        id: String,
    },
    /// Change a tunnel's name, auth, Host rewrite or kill switch.
    Update(TunnelUpdate),
    /// Delete a tunnel (its agents are refused from then on).
    Delete {
        /// Tunnel id (`tun_...`).
        id: String,
    },
    /// The tunnel's recent requests on this node, newest first (metadata
    /// only: never headers or bodies).
    Requests {
        /// Tunnel id (`tun_...`).
        id: String,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// `tunnel create`.
#[derive(clap::Args, Debug)]
pub(crate) struct TunnelCreate {
    /// The tunnel's name: a DNS label, unique on the server (its URLs are
    /// `/t/NAME/` and `NAME.<tunnel domain>`).
    name: String,
    #[command(flatten)]
    auth: AuthArgs,
    /// The `Host` the destination sees (default: the visitor's).
    #[arg(long)]
    host_header: Option<String>,
    /// Create it switched off (visitors get 503 until enabled).
    #[arg(long)]
    disabled: bool,
}

/// `tunnel update`.
#[derive(clap::Args, Debug)]
pub(crate) struct TunnelUpdate {
    /// Tunnel id (`tun_...`).
    id: String,
    /// New name (the public URLs change with it).
    #[arg(long)]
    name: Option<String>,
    /// Kill switch: `false` makes the tunnel answer 503.
    #[arg(long)]
    enabled: Option<bool>,
    #[command(flatten)]
    auth: AuthArgs,
    /// New `Host` for the destination.
    #[arg(long, conflicts_with = "no_host_header")]
    host_header: Option<String>,
    /// Send the visitor's `Host` again.
    #[arg(long)]
    no_host_header: bool,
}

const COLUMNS: &[Column] = &[
    ("ID", |v| cell(v, "/id")),
    ("NAME", |v| cell(v, "/name")),
    ("AUTH", |v| cell(v, "/auth/type")),
    ("HOST HEADER", |v| cell(v, "/hostHeader")),
    ("ENABLED", |v| cell(v, "/enabled")),
    ("AGENTS", |v| cell(v, "/agents")),
    ("URL", |v| cell(v, "/urls/0")),
];

const REQUEST_COLUMNS: &[Column] = &[
    ("TIME", |v| time_cell(v, "/at")),
    ("METHOD", |v| cell(v, "/method")),
    ("PATH", |v| cell(v, "/path")),
    ("STATUS", |v| cell(v, "/status")),
    ("MS", |v| cell(v, "/latencyMs")),
    ("IN", |v| cell(v, "/bytesIn")),
    ("OUT", |v| cell(v, "/bytesOut")),
    ("CLIENT", |v| cell(v, "/clientIp")),
];

/// The body of `POST /v1/tunnels`: only what was given.
pub(crate) fn tunnel_create_body(args: &TunnelCreate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    if let Some(auth) = args.auth.to_json()? {
        body.insert("auth".into(), auth);
    }
    if let Some(host) = &args.host_header {
        body.insert("hostHeader".into(), json!(host));
    }
    if args.disabled {
        body.insert("enabled".into(), json!(false));
    }
    Ok(Value::Object(body))
}

/// The body of `PATCH /v1/tunnels/{id}`.
pub(crate) fn tunnel_update_body(args: &TunnelUpdate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(name) = &args.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(enabled) = args.enabled {
        body.insert("enabled".into(), json!(enabled));
    }
    if let Some(auth) = args.auth.to_json()? {
        body.insert("auth".into(), auth);
    }
    if let Some(host) = &args.host_header {
        body.insert("hostHeader".into(), json!(host));
    } else if args.no_host_header {
        body.insert("hostHeader".into(), Value::Null);
    }
    let body = Value::Object(body);
    super::require_changes(
        &body,
        "--name, --enabled, --auth, --host-header, --no-host-header",
    )?;
    Ok(body)
}

const TUNNELS: Collection = Collection {
    api: "v1",
    name: "tunnels",
    noun: "tunnel",
    columns: COLUMNS,
};

/// Runs one tunnel verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: TunnelCommand) -> anyhow::Result<()> {
    match cmd {
        TunnelCommand::Create(args) => TUNNELS.create(api, view, &tunnel_create_body(&args)?).await,
        TunnelCommand::List => TUNNELS.list(api, view).await,
        TunnelCommand::Show { id } => TUNNELS.show(api, view, &id).await,
        TunnelCommand::Update(args) => {
            TUNNELS
                .update(api, view, &args.id, &tunnel_update_body(&args)?)
                .await
        }
        TunnelCommand::Delete { id } => TUNNELS.delete(api, view, &id).await,
        TunnelCommand::Requests { id, limit } => {
            let query: Vec<(&str, String)> = limit
                .map(|n| ("limit", n.to_string()))
                .into_iter()
                .collect();
            let answer = api
                .get(&["v1", "tunnels", &id, "requests"], &query, None)
                .await?;
            view.list(&answer, "requests", REQUEST_COLUMNS);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        verb: TunnelCommand,
    }

    fn parse(args: &[&str]) -> TunnelCommand {
        Cli::try_parse_from(std::iter::once("tunnel").chain(args.iter().copied()))
            .expect("parses")
            .verb
    }

    #[test]
    fn create_sends_only_what_was_given() {
        let TunnelCommand::Create(args) = parse(&["create", "myapp"]) else {
            panic!("create")
        };
        assert_eq!(tunnel_create_body(&args).unwrap(), json!({"name": "myapp"}));
        let TunnelCommand::Create(args) = parse(&[
            "create",
            "myapp",
            "--auth",
            "token",
            "--auth-token",
            "t0k",
            "--host-header",
            "localhost:3000",
            "--disabled",
        ]) else {
            panic!("create")
        };
        assert_eq!(
            tunnel_create_body(&args).unwrap(),
            json!({"name": "myapp", "auth": {"type": "token", "token": "t0k"},
                   "hostHeader": "localhost:3000", "enabled": false})
        );
    }

    #[test]
    fn update_clears_the_host_header_and_needs_a_change() {
        let TunnelCommand::Update(args) = parse(&["update", "tun_1", "--no-host-header"]) else {
            panic!("update")
        };
        assert_eq!(
            tunnel_update_body(&args).unwrap(),
            json!({"hostHeader": null})
        );
        let TunnelCommand::Update(args) = parse(&["update", "tun_1"]) else {
            panic!("update")
        };
        assert!(tunnel_update_body(&args).is_err());
        assert!(Cli::try_parse_from([
            "tunnel",
            "update",
            "tun_1",
            "--host-header",
            "a",
            "--no-host-header"
        ])
        .is_err());
    }
}
