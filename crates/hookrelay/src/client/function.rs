//! `hookrelay admin function ...`: a tenant's functions (`/v1/functions`,
//! DESIGN §9): create and update from a file (`--file f.lua`), list, show,
//! delete, and `invoke` on a sample request.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::collection::Collection;
use super::http::ApiClient;
use super::table::{cell, Column, View};

/// Verbs on functions.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum FunctionCommand {
    /// Create a function from a Lua file.
    Create(FunctionCreate),
    /// List the tenant's functions.
    List,
    /// Show one function (its source and its config's keys).
    Show {
        /// Function id (`fn_...`).
        id: String,
    },
    /// Change a function's name, source or config.
    Update(FunctionUpdate),
    /// Delete a function no input or output uses.
    Delete {
        /// Function id.
        id: String,
    },
    /// Run a function on a sample request and print what it did.
    Invoke(FunctionInvoke),
}

/// `function create`.
#[derive(clap::Args, Debug)]
pub(crate) struct FunctionCreate {
    /// A label for the function.
    #[arg(long)]
    name: String,
    /// The Lua (Luau) source file.
    #[arg(long)]
    file: PathBuf,
    /// A config value the script reads with `cfg.get(KEY)`, `KEY=value`;
    /// repeatable. Stored sealed, never shown again.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
    config: Vec<(String, String)>,
}

/// `function update`.
#[derive(clap::Args, Debug)]
pub(crate) struct FunctionUpdate {
    /// Function id.
    id: String,
    /// New label.
    #[arg(long)]
    name: Option<String>,
    /// New source file.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Replaces the whole config, `KEY=value`; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
    config: Vec<(String, String)>,
}

/// `function invoke`.
#[derive(clap::Args, Debug)]
pub(crate) struct FunctionInvoke {
    /// Function id.
    id: String,
    /// The sample request's method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// The path suffix after the input's route.
    #[arg(long, default_value = "")]
    path: String,
    /// The raw query string, without `?`.
    #[arg(long, default_value = "")]
    query: String,
    /// A request header, `Name: value`; repeatable.
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = super::parse_header)]
    headers: Vec<(String, String)>,
    /// The body, from a file (`-` for standard input).
    #[arg(long = "body-file")]
    body_file: Option<PathBuf>,
    /// The body, inline.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Run it as an output function (no response setters).
    #[arg(long)]
    output: bool,
}

/// `--function` of inputs and outputs: an id, or `none` to detach.
pub(crate) fn id_or_null(value: &str) -> Value {
    if value == "none" {
        Value::Null
    } else {
        json!(value)
    }
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

fn read_source(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn config_json(pairs: &[(String, String)]) -> Value {
    let map: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    json!(map)
}

const COLUMNS: &[Column] = &[
    ("ID", |v| cell(v, "/id")),
    ("NAME", |v| cell(v, "/name")),
    ("VERSION", |v| cell(v, "/version")),
    ("CONFIG", |v| cell(v, "/configKeys")),
];

/// The body of `POST /v1/functions`.
pub(crate) fn create_body(args: &FunctionCreate, source: String) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    body.insert("language".into(), json!("lua"));
    body.insert("source".into(), json!(source));
    if !args.config.is_empty() {
        body.insert("config".into(), config_json(&args.config));
    }
    Value::Object(body)
}

/// The body of `PATCH /v1/functions/{id}`.
pub(crate) fn update_body(args: &FunctionUpdate, source: Option<String>) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(name) = &args.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(source) = source {
        body.insert("source".into(), json!(source));
    }
    if !args.config.is_empty() {
        body.insert("config".into(), config_json(&args.config));
    }
    let body = Value::Object(body);
    super::require_changes(&body, "--name, --file, --config")?;
    Ok(body)
}

fn invoke_body(args: &FunctionInvoke) -> anyhow::Result<Value> {
    let body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone(),
        (None, Some(p)) if p.as_os_str() == "-" => {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        }
        (None, Some(p)) => read_source(p)?,
        (None, None) => String::new(),
    };
    let headers: BTreeMap<&str, &str> = args
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Ok(json!({
        "method": args.method, "path": args.path, "query": args.query,
        "headers": headers, "body": body, "output": args.output,
    }))
}

const FUNCTIONS: Collection = Collection {
    api: "v1",
    name: "functions",
    noun: "function",
    columns: COLUMNS,
};

/// Runs one function verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: FunctionCommand) -> anyhow::Result<()> {
    match cmd {
        FunctionCommand::Create(args) => {
            let body = create_body(&args, read_source(&args.file)?);
            FUNCTIONS.create(api, view, &body).await
        }
        FunctionCommand::List => FUNCTIONS.list(api, view).await,
        FunctionCommand::Show { id } => FUNCTIONS.show(api, view, &id).await,
        FunctionCommand::Update(args) => {
            let source = args.file.as_ref().map(read_source).transpose()?;
            let body = update_body(&args, source)?;
            FUNCTIONS.update(api, view, &args.id, &body).await
        }
        FunctionCommand::Delete { id } => FUNCTIONS.delete(api, view, &id).await,
        FunctionCommand::Invoke(args) => {
            let body = invoke_body(&args)?;
            let path = ["v1", "functions", args.id.as_str(), "invoke"];
            view.object(&api.send(Method::POST, &path, Some(&body)).await?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let args = FunctionCreate {
            name: "f".into(),
            file: "f.lua".into(),
            config: vec![("KEY".into(), "v=1".into())],
        };
        assert_eq!(
            create_body(&args, "return".into()),
            json!({"name": "f", "language": "lua", "source": "return", "config": {"KEY": "v=1"}})
        );
        assert_eq!(parse_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_pair("=x").is_err());
        let nothing = FunctionUpdate {
            id: "fn_1".into(),
            name: None,
            file: None,
            config: vec![],
        };
        assert!(update_body(&nothing, None).is_err());
        assert_eq!(
            update_body(&nothing, Some("x".into())).unwrap(),
            json!({"source": "x"})
        );
    }
}
