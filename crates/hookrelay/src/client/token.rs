//! `hookrelay admin token ...`: `/v1/tokens` (DESIGN §3.4). The bearer
//! string of a new token is in the create answer only, so it is printed
//! apart from the other fields, with a warning.

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::collection::Collection;
use super::http::ApiClient;
use super::table::{cell, render_object, time_cell, Column, View};

/// Verbs on tokens.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Create a token; prints its bearer string once.
    Create(TokenCreate),
    /// List the tenant's tokens (never their secrets).
    List,
    /// Show one token.
    Show {
        /// Token key (`tok_...`).
        key: String,
    },
    /// Change a token's description.
    Update(TokenUpdate),
    /// Replace a token's secret (a lost secret cannot be recovered); prints
    /// the new bearer string once. The old secret stops working at once.
    Rotate {
        /// Token key (`tok_...`).
        key: String,
    },
    /// Revoke a token.
    Delete {
        /// Token key (`tok_...`).
        key: String,
    },
}

/// What a token may do.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Everything.
    Admin,
    /// Administer one tenant.
    Tenant,
    /// Subscribe to buckets as an agent.
    Agent,
    /// Read events of one tenant.
    Poll,
}

/// An agent token's mode, fixed at creation.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Mode {
    Forward,
    Tunnel,
}

/// `token create`.
#[derive(clap::Args, Debug)]
pub(crate) struct TokenCreate {
    /// What the token may do.
    #[arg(long, value_enum)]
    scope: Scope,
    /// Bucket an agent or poll token may read; repeatable; none means all.
    #[arg(long = "bucket", value_name = "BUCKET")]
    buckets: Vec<String>,
    /// Agent tokens: forward webhooks or open tunnels [default: forward].
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Free text, e.g. where the token is used.
    #[arg(long)]
    description: Option<String>,
}

/// `token update`.
#[derive(clap::Args, Debug)]
pub(crate) struct TokenUpdate {
    /// Token key (`tok_...`).
    key: String,
    /// New description. (Scope and mode never change: create a new token.)
    #[arg(long)]
    description: Option<String>,
}

const COLUMNS: &[Column] = &[
    ("KEY", |v| cell(v, "/key")),
    ("SCOPE", |v| cell(v, "/scope")),
    ("MODE", |v| cell(v, "/mode")),
    ("BUCKETS", |v| cell(v, "/buckets")),
    ("DESCRIPTION", |v| cell(v, "/description")),
    ("CREATED", |v| time_cell(v, "/createdAt")),
];

/// The body of `POST /v1/tokens`.
pub(crate) fn token_create_body(args: &TokenCreate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    let scope = match args.scope {
        Scope::Admin => "admin",
        Scope::Tenant => "tenant",
        Scope::Agent => "agent",
        Scope::Poll => "poll",
    };
    body.insert("scope".into(), json!(scope));
    if !args.buckets.is_empty() {
        if !matches!(args.scope, Scope::Agent | Scope::Poll) {
            anyhow::bail!("--bucket is for agent and poll tokens only");
        }
        body.insert("buckets".into(), json!(args.buckets));
    }
    if let Some(mode) = args.mode {
        if args.scope != Scope::Agent {
            anyhow::bail!("--mode is for agent tokens only");
        }
        let mode = match mode {
            Mode::Forward => "forward",
            Mode::Tunnel => "tunnel",
        };
        body.insert("mode".into(), json!(mode));
    }
    if let Some(description) = &args.description {
        body.insert("description".into(), json!(description));
    }
    Ok(Value::Object(body))
}

/// The body of `PATCH /v1/tokens/{key}`.
pub(crate) fn token_update_body(args: &TokenUpdate) -> anyhow::Result<Value> {
    match &args.description {
        Some(description) => Ok(json!({ "description": description })),
        None => anyhow::bail!("nothing to update: give --description"),
    }
}

const TOKENS: Collection = Collection {
    api: "v1",
    name: "tokens",
    noun: "token",
    columns: COLUMNS,
};

/// Runs one token verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create(args) => {
            let body = token_create_body(&args)?;
            let answer = api
                .send(Method::POST, &["v1", "tokens"], Some(&body))
                .await?;
            print_secret(view, &answer);
            Ok(())
        }
        TokenCommand::List => TOKENS.list(api, view).await,
        TokenCommand::Show { key } => TOKENS.show(api, view, &key).await,
        TokenCommand::Update(args) => {
            TOKENS
                .update(api, view, &args.key, &token_update_body(&args)?)
                .await
        }
        TokenCommand::Rotate { key } => {
            let answer = api
                .send(Method::POST, &["v1", "tokens", &key, "rotate"], None)
                .await?;
            print_secret(view, &answer);
            Ok(())
        }
        TokenCommand::Delete { key } => TOKENS.delete(api, view, &key).await,
    }
}

/// A created or rotated token: its secret is shown this once.
fn print_secret(view: View, answer: &Value) {
    if view.json {
        view.raw(answer);
    } else {
        crate::out!("{}", render_created(answer));
    }
}

/// The create answer: the fields without the secret parts, then the bearer
/// string on its own line so it can be copied whole.
fn render_created(answer: &Value) -> String {
    let mut fields = answer.clone();
    if let Some(map) = fields.as_object_mut() {
        map.remove("secret");
        map.remove("token");
    }
    let mut out = render_object(&fields);
    let bearer = match answer.get("token").and_then(Value::as_str) {
        Some(token) => token.to_owned(),
        // An older server may answer key and secret apart: join them as
        // `Authorization: Bearer <key>.<secret>` expects.
        None => format!("{}.{}", cell(answer, "/key"), cell(answer, "/secret")),
    };
    out.push_str("\nToken (it will not be shown again; store it now):\n\n    ");
    out.push_str(&super::table::clean(&bearer));
    out.push_str("\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(scope: Scope) -> TokenCreate {
        TokenCreate {
            scope,
            buckets: Vec::new(),
            mode: None,
            description: None,
        }
    }

    #[test]
    fn agent_token_body() {
        let args = TokenCreate {
            buckets: vec!["bkt_1".into(), "prod".into()],
            mode: Some(Mode::Tunnel),
            description: Some("laptop".into()),
            ..create(Scope::Agent)
        };
        assert_eq!(
            token_create_body(&args).unwrap(),
            json!({"scope": "agent", "buckets": ["bkt_1", "prod"], "mode": "tunnel", "description": "laptop"})
        );
        assert_eq!(
            token_create_body(&create(Scope::Admin)).unwrap(),
            json!({"scope": "admin"})
        );
    }

    #[test]
    fn mode_and_buckets_only_where_they_mean_something() {
        let mode_on_poll = TokenCreate {
            mode: Some(Mode::Forward),
            ..create(Scope::Poll)
        };
        assert!(token_create_body(&mode_on_poll).is_err());
        let buckets_on_tenant = TokenCreate {
            buckets: vec!["b".into()],
            ..create(Scope::Tenant)
        };
        assert!(token_create_body(&buckets_on_tenant).is_err());
    }

    #[test]
    fn created_token_is_printed_apart_once() {
        let text = render_created(&json!({
            "key": "tok_abc", "secret": "s3cr3t", "token": "tok_abc.s3cr3t", "scope": "agent"
        }));
        assert_eq!(text.matches("s3cr3t").count(), 1);
        assert!(text.contains("\n    tok_abc.s3cr3t\n"));
        assert!(text.contains("will not be shown again"));
    }
}
