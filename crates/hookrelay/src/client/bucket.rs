//! `hookrelay admin bucket ...`: `/v1/buckets` (DESIGN §3.4). A bucket's
//! `auth` applies to every input in it.

use model::Secret;
use serde_json::{json, Map, Value};

use super::collection::Collection;
use super::http::ApiClient;
use super::table::{cell, Column, View};

/// Verbs on buckets.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum BucketCommand {
    /// Create a bucket.
    Create(BucketCreate),
    /// List the tenant's buckets.
    List,
    /// Show one bucket.
    Show {
        /// Bucket id.
        id: String,
    },
    /// Change a bucket's settings or kill switch.
    Update(BucketUpdate),
    /// Delete a bucket.
    Delete {
        /// Bucket id.
        id: String,
    },
}

/// Bucket auth type.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    None,
    Basic,
    Token,
}

impl AuthKind {
    fn name(self) -> &'static str {
        match self {
            AuthKind::None => "none",
            AuthKind::Basic => "basic",
            AuthKind::Token => "token",
        }
    }
}

/// How callers of the bucket's inputs (or of a tunnel) authenticate.
#[derive(clap::Args, Debug)]
pub(crate) struct AuthArgs {
    /// Auth required of callers (of the bucket's inputs, or of the tunnel).
    #[arg(long, value_enum)]
    auth: Option<AuthKind>,
    /// User name for `--auth basic`.
    #[arg(long)]
    username: Option<String>,
    /// Password for `--auth basic`.
    #[arg(long)]
    password: Option<Secret>,
    /// Token for `--auth token` (callers send `Authorization: Bearer` or `?token=`).
    #[arg(long)]
    auth_token: Option<Secret>,
}

impl AuthArgs {
    /// The `auth` object, or `None` when no auth flag was given.
    pub(super) fn to_json(&self) -> anyhow::Result<Option<Value>> {
        let Some(kind) = self.auth else {
            if self.username.is_some() || self.password.is_some() || self.auth_token.is_some() {
                anyhow::bail!(
                    "--username, --password and --auth-token need --auth basic or --auth token"
                );
            }
            return Ok(None);
        };
        let unused = match kind {
            AuthKind::None => {
                self.username.is_some() || self.password.is_some() || self.auth_token.is_some()
            }
            AuthKind::Basic => self.auth_token.is_some(),
            AuthKind::Token => self.username.is_some() || self.password.is_some(),
        };
        if unused {
            anyhow::bail!(
                "a credential flag was given that --auth {} does not use",
                kind.name()
            );
        }
        let auth = match kind {
            AuthKind::None => json!({"type": "none"}),
            AuthKind::Basic => match (&self.username, &self.password) {
                (Some(username), Some(password)) => {
                    json!({"type": "basic", "username": username, "password": password.expose()})
                }
                _ => anyhow::bail!("--auth basic needs --username and --password"),
            },
            AuthKind::Token => match &self.auth_token {
                Some(token) => json!({"type": "token", "token": token.expose()}),
                None => anyhow::bail!("--auth token needs --auth-token"),
            },
        };
        Ok(Some(auth))
    }
}

/// `bucket create`.
#[derive(clap::Args, Debug)]
pub(crate) struct BucketCreate {
    /// Bucket name.
    name: String,
    #[command(flatten)]
    auth: AuthArgs,
    /// Keep no bodies, headers or queries of this bucket's events.
    #[arg(long)]
    ephemeral: bool,
    /// How long events are kept (default 86400).
    #[arg(long)]
    retention_seconds: Option<u64>,
    /// How far back a reconnecting agent is sent what it missed (default 600).
    #[arg(long)]
    catchup_seconds: Option<u64>,
}

/// `bucket update`.
#[derive(clap::Args, Debug)]
pub(crate) struct BucketUpdate {
    /// Bucket id.
    id: String,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// Kill switch: `false` makes every input of the bucket answer 503.
    #[arg(long)]
    enabled: Option<bool>,
    #[command(flatten)]
    auth: AuthArgs,
    /// Keep no bodies, headers or queries of new events.
    #[arg(long)]
    ephemeral: Option<bool>,
    /// How long events are kept.
    #[arg(long)]
    retention_seconds: Option<u64>,
    /// How far back a reconnecting agent is sent what it missed.
    #[arg(long)]
    catchup_seconds: Option<u64>,
}

const COLUMNS: &[Column] = &[
    ("ID", |v| cell(v, "/id")),
    ("NAME", |v| cell(v, "/name")),
    ("AUTH", |v| cell(v, "/auth/type")),
    ("EPHEMERAL", |v| cell(v, "/ephemeral")),
    ("ENABLED", |v| cell(v, "/enabled")),
];

fn put_common(
    body: &mut Map<String, Value>,
    auth: &AuthArgs,
    retention: Option<u64>,
    catchup: Option<u64>,
) -> anyhow::Result<()> {
    if let Some(auth) = auth.to_json()? {
        body.insert("auth".into(), auth);
    }
    if let Some(seconds) = retention {
        body.insert("retentionSeconds".into(), json!(seconds));
    }
    if let Some(seconds) = catchup {
        body.insert("catchupSeconds".into(), json!(seconds));
    }
    Ok(())
}

/// The body of `POST /v1/buckets`: only the flags given, so the server's
/// defaults apply to the rest.
pub(crate) fn bucket_create_body(args: &BucketCreate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    put_common(
        &mut body,
        &args.auth,
        args.retention_seconds,
        args.catchup_seconds,
    )?;
    if args.ephemeral {
        body.insert("ephemeral".into(), json!(true));
    }
    Ok(Value::Object(body))
}

/// The body of `PATCH /v1/buckets/{id}`.
pub(crate) fn bucket_update_body(args: &BucketUpdate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(name) = &args.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(enabled) = args.enabled {
        body.insert("enabled".into(), json!(enabled));
    }
    if let Some(ephemeral) = args.ephemeral {
        body.insert("ephemeral".into(), json!(ephemeral));
    }
    put_common(
        &mut body,
        &args.auth,
        args.retention_seconds,
        args.catchup_seconds,
    )?;
    let body = Value::Object(body);
    super::require_changes(
        &body,
        "--name, --enabled, --auth, --ephemeral, --retention-seconds, --catchup-seconds",
    )?;
    Ok(body)
}

const BUCKETS: Collection = Collection {
    api: "v1",
    name: "buckets",
    noun: "bucket",
    columns: COLUMNS,
};

/// Runs one bucket verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: BucketCommand) -> anyhow::Result<()> {
    match cmd {
        BucketCommand::Create(args) => BUCKETS.create(api, view, &bucket_create_body(&args)?).await,
        BucketCommand::List => BUCKETS.list(api, view).await,
        BucketCommand::Show { id } => BUCKETS.show(api, view, &id).await,
        BucketCommand::Update(args) => {
            BUCKETS
                .update(api, view, &args.id, &bucket_update_body(&args)?)
                .await
        }
        BucketCommand::Delete { id } => BUCKETS.delete(api, view, &id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_auth() -> AuthArgs {
        AuthArgs {
            auth: None,
            username: None,
            password: None,
            auth_token: None,
        }
    }

    fn create(auth: AuthArgs) -> BucketCreate {
        BucketCreate {
            name: "prod".into(),
            auth,
            ephemeral: false,
            retention_seconds: None,
            catchup_seconds: None,
        }
    }

    #[test]
    fn minimal_create_leaves_defaults_to_the_server() {
        assert_eq!(
            bucket_create_body(&create(no_auth())).unwrap(),
            json!({"name": "prod"})
        );
    }

    #[test]
    fn full_create() {
        let mut args = create(AuthArgs {
            auth: Some(AuthKind::Basic),
            username: Some("u".into()),
            password: Some(Secret::new("p")),
            auth_token: None,
        });
        args.ephemeral = true;
        args.retention_seconds = Some(3600);
        args.catchup_seconds = Some(60);
        assert_eq!(
            bucket_create_body(&args).unwrap(),
            json!({"name": "prod", "auth": {"type": "basic", "username": "u", "password": "p"},
                   "ephemeral": true, "retentionSeconds": 3600, "catchupSeconds": 60})
        );
        let token = create(AuthArgs {
            auth: Some(AuthKind::Token),
            auth_token: Some(Secret::new("t")),
            ..no_auth()
        });
        assert_eq!(
            bucket_create_body(&token).unwrap()["auth"],
            json!({"type": "token", "token": "t"})
        );
    }

    #[test]
    fn auth_flags_must_agree() {
        let missing_password = AuthArgs {
            auth: Some(AuthKind::Basic),
            username: Some("u".into()),
            ..no_auth()
        };
        let stray_token = AuthArgs {
            auth: Some(AuthKind::Basic),
            username: Some("u".into()),
            password: Some(Secret::new("p")),
            auth_token: Some(Secret::new("t")),
        };
        let no_kind = AuthArgs {
            username: Some("u".into()),
            ..no_auth()
        };
        let token_without_value = AuthArgs {
            auth: Some(AuthKind::Token),
            ..no_auth()
        };
        for auth in [missing_password, stray_token, no_kind, token_without_value] {
            assert!(bucket_create_body(&create(auth)).is_err());
        }
    }

    #[test]
    fn update_sends_only_changes() {
        let args = BucketUpdate {
            id: "bkt_1".into(),
            name: None,
            enabled: Some(false),
            auth: no_auth(),
            ephemeral: None,
            retention_seconds: None,
            catchup_seconds: None,
        };
        assert_eq!(
            bucket_update_body(&args).unwrap(),
            json!({"enabled": false})
        );
        let nothing = BucketUpdate {
            enabled: None,
            ..args
        };
        assert!(bucket_update_body(&nothing).is_err());
    }
}
