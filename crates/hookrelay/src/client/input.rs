//! `hookrelay admin input ...`: inputs are created and listed under their
//! bucket (`/v1/buckets/{id}/inputs`) and addressed alone afterwards
//! (`/v1/inputs/{id}`), DESIGN §3.4. Also home of [`GenericHmacArgs`], which
//! `send` shares.

use model::{GenericHmac, HmacAlgorithm, Secret, SignatureEncoding};
use serde_json::{json, Map, Value};

use super::collection::Collection;
use super::http::ApiClient;
use super::table::{cell, Column, View};

/// Verbs on inputs.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum InputCommand {
    /// Create an input in a bucket; prints its public URL.
    Create(InputCreate),
    /// List a bucket's inputs.
    List {
        /// Bucket id.
        #[arg(long)]
        bucket: String,
    },
    /// Show one input.
    Show {
        /// Input id.
        id: String,
    },
    /// Change an input's settings, secrets or kill switch.
    Update(InputUpdate),
    /// Delete an input.
    Delete {
        /// Input id.
        id: String,
    },
}

/// Digest of a generic HMAC signature.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// Text encoding of a generic HMAC signature.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub(crate) enum Encoding {
    Hex,
    Base64,
}

/// The `generic-hmac` integration's settings (DESIGN §8).
#[derive(clap::Args, Debug, Default)]
pub(crate) struct GenericHmacArgs {
    /// generic-hmac: the header carrying the signature, e.g. X-Signature.
    #[arg(long)]
    pub(crate) generic_header: Option<String>,
    /// generic-hmac: digest [default: sha256].
    #[arg(long, value_enum)]
    pub(crate) generic_algorithm: Option<Algorithm>,
    /// generic-hmac: signature encoding [default: hex].
    #[arg(long, value_enum)]
    pub(crate) generic_encoding: Option<Encoding>,
    /// generic-hmac: text before the signature, e.g. `sha256=`.
    #[arg(long)]
    pub(crate) generic_prefix: Option<String>,
}

impl GenericHmacArgs {
    /// The configuration, or `None` when no `--generic-*` flag was given.
    pub(crate) fn to_model(&self) -> anyhow::Result<Option<GenericHmac>> {
        let Some(header) = &self.generic_header else {
            if self.generic_algorithm.is_some()
                || self.generic_encoding.is_some()
                || self.generic_prefix.is_some()
            {
                anyhow::bail!(
                    "--generic-algorithm, --generic-encoding and --generic-prefix \
                     need --generic-header"
                );
            }
            return Ok(None);
        };
        let algorithm = match self.generic_algorithm.unwrap_or(Algorithm::Sha256) {
            Algorithm::Sha1 => HmacAlgorithm::Sha1,
            Algorithm::Sha256 => HmacAlgorithm::Sha256,
            Algorithm::Sha512 => HmacAlgorithm::Sha512,
        };
        let encoding = match self.generic_encoding.unwrap_or(Encoding::Hex) {
            Encoding::Hex => SignatureEncoding::Hex,
            Encoding::Base64 => SignatureEncoding::Base64,
        };
        Ok(Some(GenericHmac {
            header: header.clone(),
            algorithm,
            encoding,
            prefix: self.generic_prefix.clone(),
        }))
    }
}

/// Settings that both `create` and `update` take.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct InputSettings {
    /// Slug, unique in the tenant; also routes `/api/webhooks/{name}`.
    #[arg(long)]
    name: Option<String>,
    /// Signature scheme to verify, e.g. `github`, `stripe`, `generic-hmac`.
    #[arg(long)]
    integration: Option<String>,
    /// Signing secret; repeat to rotate, newest first (each is tried in order).
    #[arg(long = "secret", value_name = "SECRET")]
    secrets: Vec<Secret>,
    #[command(flatten)]
    generic: GenericHmacArgs,
    /// Answer callers with this status instead of 200 (the `static` policy).
    #[arg(long)]
    response_static_status: Option<u16>,
    /// Body of the static answer.
    #[arg(long, requires = "response_static_status")]
    response_static_body: Option<String>,
    /// Largest accepted body in bytes (default: the integration's documented
    /// maximum, e.g. 26214400 for github; 1048576 for a plain input).
    #[arg(long)]
    body_limit: Option<u64>,
    /// Requests allowed per window, per client IP (default: 100 refused
    /// requests a minute with an integration or bucket auth, else 6000).
    #[arg(long)]
    rate_limit_requests: Option<u32>,
    /// Rate-limit window in seconds [default: 60 when --rate-limit-requests is given].
    #[arg(long, requires = "rate_limit_requests")]
    rate_limit_window_seconds: Option<u32>,
    /// Which requests the rate limit counts: `all`, or only the `refused`
    /// ones (bad auth, replay, signature, payload) [default: all when
    /// --rate-limit-requests is given].
    #[arg(long, requires = "rate_limit_requests", value_parser = ["all", "refused"])]
    rate_limit_count: Option<String>,
    /// Tolerance of a signed timestamp, either way (default 300).
    #[arg(long)]
    timestamp_tolerance_seconds: Option<u64>,
    /// The function run on each verified request (`fn_...`); `none`
    /// detaches it.
    #[arg(long)]
    function: Option<String>,
}

impl InputSettings {
    /// Adds the given settings to a request body in the API's field names.
    fn write_into(&self, body: &mut Map<String, Value>) -> anyhow::Result<()> {
        if let Some(name) = &self.name {
            body.insert("name".into(), json!(name));
        }
        if let Some(integration) = &self.integration {
            body.insert("integration".into(), json!(integration));
        }
        if !self.secrets.is_empty() {
            let secrets: Vec<&str> = self.secrets.iter().map(Secret::expose).collect();
            body.insert("secrets".into(), json!(secrets));
        }
        if let Some(generic) = self.generic.to_model()? {
            body.insert("genericHmac".into(), serde_json::to_value(generic)?);
        }
        if let Some(status) = self.response_static_status {
            let text = self.response_static_body.clone().unwrap_or_default();
            body.insert(
                "response".into(),
                json!({"type": "static", "status": status, "body": text}),
            );
        }
        if let Some(limit) = self.body_limit {
            body.insert("bodyLimit".into(), json!(limit));
        }
        if let Some(requests) = self.rate_limit_requests {
            // DESIGN's default window is a minute (100 / min).
            let window = self.rate_limit_window_seconds.unwrap_or(60);
            let count = self.rate_limit_count.as_deref().unwrap_or("all");
            body.insert(
                "rateLimit".into(),
                json!({"requests": requests, "windowSeconds": window, "count": count}),
            );
        }
        if let Some(seconds) = self.timestamp_tolerance_seconds {
            body.insert("timestampToleranceSeconds".into(), json!(seconds));
        }
        if let Some(function) = &self.function {
            body.insert("functionId".into(), super::function::id_or_null(function));
        }
        Ok(())
    }
}

/// `input create`.
#[derive(clap::Args, Debug)]
pub(crate) struct InputCreate {
    /// Bucket id.
    #[arg(long)]
    bucket: String,
    #[command(flatten)]
    settings: InputSettings,
    /// Create the input switched off (answers 503 until enabled).
    #[arg(long)]
    disabled: bool,
}

/// `input update`.
#[derive(clap::Args, Debug)]
pub(crate) struct InputUpdate {
    /// Input id.
    id: String,
    /// Kill switch: `false` makes the input answer 503.
    #[arg(long)]
    enabled: Option<bool>,
    #[command(flatten)]
    settings: InputSettings,
}

const COLUMNS: &[Column] = &[
    ("ID", |v| cell(v, "/id")),
    ("NAME", |v| cell(v, "/name")),
    ("INTEGRATION", |v| cell(v, "/integration")),
    ("ENABLED", |v| cell(v, "/enabled")),
    ("URL", |v| cell(v, "/url")),
];

/// The body of `POST /v1/buckets/{bucket}/inputs`.
pub(crate) fn input_create_body(args: &InputCreate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    args.settings.write_into(&mut body)?;
    if args.disabled {
        body.insert("enabled".into(), json!(false));
    }
    Ok(Value::Object(body))
}

/// The body of `PATCH /v1/inputs/{id}`. `--secret` replaces the whole list.
pub(crate) fn input_update_body(args: &InputUpdate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(enabled) = args.enabled {
        body.insert("enabled".into(), json!(enabled));
    }
    args.settings.write_into(&mut body)?;
    let body = Value::Object(body);
    super::require_changes(
        &body,
        "--enabled, --name, --integration, --secret, ... (see --help)",
    )?;
    Ok(body)
}

const INPUTS: Collection = Collection {
    api: "v1",
    name: "inputs",
    noun: "input",
    columns: COLUMNS,
};

/// Runs one input verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: InputCommand) -> anyhow::Result<()> {
    match cmd {
        InputCommand::Create(args) => {
            let body = input_create_body(&args)?;
            INPUTS.create_in(api, view, &args.bucket, Some(&body)).await
        }
        InputCommand::List { bucket } => INPUTS.list_in(api, view, &bucket).await,
        InputCommand::Show { id } => INPUTS.show(api, view, &id).await,
        InputCommand::Update(args) => {
            INPUTS
                .update(api, view, &args.id, &input_update_body(&args)?)
                .await
        }
        InputCommand::Delete { id } => INPUTS.delete(api, view, &id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(settings: InputSettings) -> InputCreate {
        InputCreate {
            bucket: "bkt_1".into(),
            settings,
            disabled: false,
        }
    }

    #[test]
    fn github_input_with_rotation() {
        let args = create(InputSettings {
            name: Some("github".into()),
            integration: Some("github".into()),
            secrets: vec![Secret::new("newest"), Secret::new("older")],
            ..InputSettings::default()
        });
        assert_eq!(
            input_create_body(&args).unwrap(),
            json!({"name": "github", "integration": "github", "secrets": ["newest", "older"]})
        );
    }

    #[test]
    fn generic_static_limits_and_disabled() {
        let mut args = create(InputSettings {
            integration: Some("generic-hmac".into()),
            secrets: vec![Secret::new("s")],
            generic: GenericHmacArgs {
                generic_header: Some("X-Signature".into()),
                generic_prefix: Some("sha256=".into()),
                ..GenericHmacArgs::default()
            },
            response_static_status: Some(202),
            response_static_body: Some("ok".into()),
            body_limit: Some(1024),
            rate_limit_requests: Some(5),
            ..InputSettings::default()
        });
        args.disabled = true;
        assert_eq!(
            input_create_body(&args).unwrap(),
            json!({
                "integration": "generic-hmac", "secrets": ["s"],
                "genericHmac": {"header": "X-Signature", "algorithm": "sha256", "encoding": "hex", "prefix": "sha256="},
                "response": {"type": "static", "status": 202, "body": "ok"},
                "bodyLimit": 1024, "rateLimit": {"requests": 5, "windowSeconds": 60, "count": "all"},
                "enabled": false
            })
        );
    }

    #[test]
    fn generic_flags_need_a_header() {
        let args = create(InputSettings {
            generic: GenericHmacArgs {
                generic_algorithm: Some(Algorithm::Sha1),
                ..GenericHmacArgs::default()
            },
            ..InputSettings::default()
        });
        assert!(input_create_body(&args).is_err());
    }

    #[test]
    fn update_is_a_patch_of_what_was_given() {
        let args = InputUpdate {
            id: "9b1d".into(),
            enabled: Some(false),
            settings: InputSettings::default(),
        };
        assert_eq!(input_update_body(&args).unwrap(), json!({"enabled": false}));
        let rotate = InputUpdate {
            id: "9b1d".into(),
            enabled: None,
            settings: InputSettings {
                secrets: vec![Secret::new("new"), Secret::new("old")],
                ..InputSettings::default()
            },
        };
        assert_eq!(
            input_update_body(&rotate).unwrap(),
            json!({"secrets": ["new", "old"]})
        );
        let nothing = InputUpdate {
            id: "9b1d".into(),
            enabled: None,
            settings: InputSettings::default(),
        };
        assert!(input_update_body(&nothing).is_err());
    }
}
