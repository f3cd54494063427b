//! `hookrelay admin output ...`: a bucket's destinations, created and listed
//! under the bucket (`/v1/buckets/{id}/outputs`) and addressed alone
//! afterwards (`/v1/outputs/{id}`), DESIGN §3.4.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::collection::Collection;
use super::http::ApiClient;
use super::table::{cell, Column, View};

/// Verbs on outputs.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum OutputCommand {
    /// Add a destination to a bucket.
    Create(OutputCreate),
    /// List a bucket's outputs.
    List {
        /// Bucket id.
        #[arg(long)]
        bucket: String,
    },
    /// Show one output.
    Show {
        /// Output id.
        id: String,
    },
    /// Change an output.
    Update(OutputUpdate),
    /// Delete an output.
    Delete {
        /// Output id.
        id: String,
    },
}

/// `output create`.
#[derive(clap::Args, Debug)]
pub(crate) struct OutputCreate {
    /// Bucket id.
    #[arg(long)]
    bucket: String,
    /// Destination URL.
    #[arg(long)]
    url: String,
    /// Delivered by the server itself rather than by agents (internal=false).
    #[arg(long)]
    public: bool,
    #[command(flatten)]
    options: OutputOptions,
}

/// `output update`.
#[derive(clap::Args, Debug)]
pub(crate) struct OutputUpdate {
    /// Output id.
    id: String,
    /// New destination URL.
    #[arg(long)]
    url: Option<String>,
    /// `true`: the server delivers (internal=false); `false`: agents deliver.
    #[arg(long)]
    public: Option<bool>,
    #[command(flatten)]
    options: OutputOptions,
}

/// Options both `create` and `update` take.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct OutputOptions {
    /// Delivery timeout in ms (default 10000).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Attempts before a delivery fails (default 8).
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Extra header sent with each delivery, `Name: value`; repeatable. On
    /// update, replaces all extra headers.
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = super::parse_header)]
    headers: Vec<(String, String)>,
    /// The function run per delivery (`fn_...`); `none` detaches it.
    #[arg(long)]
    function: Option<String>,
}

impl OutputOptions {
    fn write_into(&self, body: &mut Map<String, Value>) {
        if let Some(ms) = self.timeout_ms {
            body.insert("timeoutMs".into(), json!(ms));
        }
        if let Some(attempts) = self.max_attempts {
            body.insert("retry".into(), json!({"maxAttempts": attempts}));
        }
        if !self.headers.is_empty() {
            let headers: BTreeMap<&str, &str> = self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            body.insert("headers".into(), json!(headers));
        }
        if let Some(function) = &self.function {
            body.insert("functionId".into(), super::function::id_or_null(function));
        }
    }
}

const COLUMNS: &[Column] = &[
    ("ID", |v| cell(v, "/id")),
    ("URL", |v| cell(v, "/url")),
    ("INTERNAL", |v| cell(v, "/internal")),
    ("TIMEOUT-MS", |v| cell(v, "/timeoutMs")),
    ("MAX-ATTEMPTS", |v| cell(v, "/retry/maxAttempts")),
];

/// The body of `POST /v1/buckets/{bucket}/outputs`.
pub(crate) fn output_create_body(args: &OutputCreate) -> Value {
    let mut body = Map::new();
    body.insert("url".into(), json!(args.url));
    body.insert("internal".into(), json!(!args.public));
    args.options.write_into(&mut body);
    Value::Object(body)
}

/// The body of `PATCH /v1/outputs/{id}`.
pub(crate) fn output_update_body(args: &OutputUpdate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(url) = &args.url {
        body.insert("url".into(), json!(url));
    }
    if let Some(public) = args.public {
        body.insert("internal".into(), json!(!public));
    }
    args.options.write_into(&mut body);
    let body = Value::Object(body);
    super::require_changes(
        &body,
        "--url, --public, --timeout-ms, --max-attempts, --header, --function",
    )?;
    Ok(body)
}

const OUTPUTS: Collection = Collection {
    api: "v1",
    name: "outputs",
    noun: "output",
    columns: COLUMNS,
};

/// Runs one output verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: OutputCommand) -> anyhow::Result<()> {
    match cmd {
        OutputCommand::Create(args) => {
            let body = output_create_body(&args);
            OUTPUTS
                .create_in(api, view, &args.bucket, Some(&body))
                .await
        }
        OutputCommand::List { bucket } => OUTPUTS.list_in(api, view, &bucket).await,
        OutputCommand::Show { id } => OUTPUTS.show(api, view, &id).await,
        OutputCommand::Update(args) => {
            OUTPUTS
                .update(api, view, &args.id, &output_update_body(&args)?)
                .await
        }
        OutputCommand::Delete { id } => OUTPUTS.delete(api, view, &id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_defaults_to_agent_delivery() {
        let args = OutputCreate {
            bucket: "bkt_1".into(),
            url: "http://hooks.internal.example/hook".into(),
            public: false,
            options: OutputOptions::default(),
        };
        assert_eq!(
            output_create_body(&args),
            json!({"url": "http://hooks.internal.example/hook", "internal": true})
        );
    }

    #[test]
    fn public_create_with_options() {
        let args = OutputCreate {
            bucket: "bkt_1".into(),
            url: "https://example.com/hook".into(),
            public: true,
            options: OutputOptions {
                timeout_ms: Some(5000),
                max_attempts: Some(3),
                headers: vec![("X-Env".into(), "prod".into())],
                function: None,
            },
        };
        assert_eq!(
            output_create_body(&args),
            json!({"url": "https://example.com/hook", "internal": false, "timeoutMs": 5000,
                   "retry": {"maxAttempts": 3}, "headers": {"X-Env": "prod"}})
        );
    }

    #[test]
    fn update_needs_a_change() {
        let args = OutputUpdate {
            id: "out_1".into(),
            url: None,
            public: Some(true),
            options: OutputOptions::default(),
        };
        assert_eq!(
            output_update_body(&args).unwrap(),
            json!({"internal": false})
        );
        let nothing = OutputUpdate {
            public: None,
            ..args
        };
        assert!(output_update_body(&nothing).is_err());
    }
}
