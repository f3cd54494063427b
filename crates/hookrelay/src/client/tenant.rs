//! `hookrelay admin tenant ...`: the Radarboard-compatible tenant routes
//! under `/api/tenants` (DESIGN §3.4). Only the admin may use them.

use std::collections::BTreeMap;

use model::Secret;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::collection::Collection;
use super::http::ApiClient;
use super::table::{cell, render_object, time_cell, Column, View};

/// Verbs on tenants.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TenantCommand {
    /// Create a tenant; prints its poll secret once.
    Create(TenantCreate),
    /// List every tenant.
    List,
    /// Show one tenant.
    Show {
        /// Tenant id.
        id: String,
    },
    /// Change a tenant's label or kill switch.
    Update(TenantUpdate),
    /// Delete a tenant and everything it holds.
    Delete {
        /// Tenant id.
        id: String,
    },
    /// Set the webhook secrets of a tenant's named inputs.
    Secrets(TenantSecrets),
}

/// `tenant create`.
#[derive(clap::Args, Debug)]
pub(crate) struct TenantCreate {
    /// Human-readable name.
    #[arg(long)]
    label: String,
    /// Tenant id (slug); the server picks one when omitted.
    #[arg(long)]
    id: Option<String>,
}

/// `tenant update`.
#[derive(clap::Args, Debug)]
pub(crate) struct TenantUpdate {
    /// Tenant id.
    id: String,
    /// New label.
    #[arg(long)]
    label: Option<String>,
    /// Kill switch: `false` makes every input of the tenant answer 503.
    #[arg(long)]
    enabled: Option<bool>,
}

/// `tenant secrets`.
#[derive(clap::Args, Debug)]
pub(crate) struct TenantSecrets {
    /// Tenant id.
    id: String,
    /// `NAME=VALUE`, e.g. `github=s3cret`; a comma-separated value is a
    /// rotation list, newest first. Repeat for several integrations.
    #[arg(
        long = "secret",
        value_name = "NAME=VALUE",
        required = true,
        value_parser = parse_named_secret
    )]
    secrets: Vec<(String, Secret)>,
}

fn parse_named_secret(text: &str) -> Result<(String, Secret), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() && !value.is_empty() => {
            Ok((name.trim().to_owned(), Secret::new(value)))
        }
        _ => Err("expected NAME=VALUE with both parts non-empty".to_owned()),
    }
}

const COLUMNS: &[Column] = &[
    ("ID", |v| cell(v, "/id")),
    ("LABEL", |v| cell(v, "/label")),
    ("ENABLED", |v| cell(v, "/enabled")),
    ("CREATED", |v| time_cell(v, "/createdAt")),
];

/// The body of `POST /api/tenants`.
pub(crate) fn tenant_create_body(args: &TenantCreate) -> Value {
    let mut body = json!({ "label": args.label });
    if let Some(id) = &args.id {
        body["id"] = json!(id);
    }
    body
}

/// The body of `PATCH /api/tenants/{id}`.
pub(crate) fn tenant_update_body(args: &TenantUpdate) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(label) = &args.label {
        body.insert("label".into(), json!(label));
    }
    if let Some(enabled) = args.enabled {
        body.insert("enabled".into(), json!(enabled));
    }
    let body = Value::Object(body);
    super::require_changes(&body, "--label, --enabled")?;
    Ok(body)
}

/// The body of `PUT /api/tenants/{id}/secrets`.
pub(crate) fn tenant_secrets_body(args: &TenantSecrets) -> anyhow::Result<Value> {
    let mut secrets = BTreeMap::new();
    for (name, value) in &args.secrets {
        if secrets.insert(name.as_str(), value.expose()).is_some() {
            anyhow::bail!("--secret {name}=... is given twice; join rotated secrets with a comma");
        }
    }
    Ok(json!({ "webhookSecrets": secrets }))
}

const TENANTS: Collection = Collection {
    api: "api",
    name: "tenants",
    noun: "tenant",
    columns: COLUMNS,
};

/// Runs one tenant verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Create(args) => {
            let answer = api
                .send(
                    Method::POST,
                    &["api", "tenants"],
                    Some(&tenant_create_body(&args)),
                )
                .await?;
            if view.json {
                view.raw(&answer);
            } else {
                print_created(&answer);
            }
            Ok(())
        }
        TenantCommand::List => TENANTS.list(api, view).await,
        TenantCommand::Show { id } => TENANTS.show(api, view, &id).await,
        TenantCommand::Update(args) => {
            TENANTS
                .update(api, view, &args.id, &tenant_update_body(&args)?)
                .await
        }
        TenantCommand::Delete { id } => TENANTS.delete(api, view, &id).await,
        TenantCommand::Secrets(args) => {
            let body = tenant_secrets_body(&args)?;
            let answer = api
                .send(
                    Method::PUT,
                    &["api", "tenants", &args.id, "secrets"],
                    Some(&body),
                )
                .await?;
            view.object(&answer);
            Ok(())
        }
    }
}

/// The create answer `{"tenant", "pollSecret", "webhookBaseUrl", "pollUrl"}`:
/// the poll secret is shown this once, so it stands apart.
fn print_created(answer: &Value) {
    crate::out!("{}", render_object(answer.get("tenant").unwrap_or(answer)));
    crate::outln!("webhookBaseUrl: {}", cell(answer, "/webhookBaseUrl"));
    crate::outln!("pollUrl:        {}", cell(answer, "/pollUrl"));
    if answer.get("pollSecret").is_some() {
        crate::outln!();
        crate::outln!("Poll secret (it will not be shown again):");
        crate::outln!();
        crate::outln!("    {}", cell(answer, "/pollSecret"));
        crate::outln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_has_the_id_only_when_given() {
        let args = TenantCreate {
            label: "Acme Corp".into(),
            id: None,
        };
        assert_eq!(tenant_create_body(&args), json!({"label": "Acme Corp"}));
        let args = TenantCreate {
            label: "Acme".into(),
            id: Some("acme".into()),
        };
        assert_eq!(
            tenant_create_body(&args),
            json!({"label": "Acme", "id": "acme"})
        );
    }

    #[test]
    fn update_needs_a_change() {
        let args = TenantUpdate {
            id: "acme".into(),
            label: None,
            enabled: Some(false),
        };
        assert_eq!(
            tenant_update_body(&args).unwrap(),
            json!({"enabled": false})
        );
        let args = TenantUpdate {
            id: "acme".into(),
            label: None,
            enabled: None,
        };
        assert!(tenant_update_body(&args).is_err());
    }

    #[test]
    fn secrets_body_and_duplicates() {
        let parsed = ["github=a,b", "vercel=c=d"]
            .map(|s| parse_named_secret(s).unwrap())
            .to_vec();
        let args = TenantSecrets {
            id: "acme".into(),
            secrets: parsed,
        };
        assert_eq!(
            tenant_secrets_body(&args).unwrap(),
            json!({"webhookSecrets": {"github": "a,b", "vercel": "c=d"}})
        );
        let args = TenantSecrets {
            id: "acme".into(),
            secrets: vec![
                parse_named_secret("github=a").unwrap(),
                parse_named_secret("github=b").unwrap(),
            ],
        };
        assert!(tenant_secrets_body(&args).is_err());
        assert!(parse_named_secret("github=").is_err());
        assert!(parse_named_secret("=x").is_err());
    }
}
