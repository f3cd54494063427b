//! Inputs: the table and create form on a bucket's page, and one input's
//! page with its public URL, the integration's setup hint, secret rotation,
//! the kill switch and deletion.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use model::IntegrationKind;
use serde_json::{json, Map, Value};

use super::{act, body, delete_form, enabled, remove_from_bucket, save};
use crate::dashboard::guard::{Checked, Fields, Signed};
use crate::dashboard::hints;
use crate::dashboard::page::{self, Nav};
use crate::dashboard::signin::urlencoding;
use crate::dashboard::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/buckets/{id}/inputs", post(create))
        .route("/ui/inputs/{id}", get(show).post(update))
        .route("/ui/inputs/{id}/delete", post(remove))
}

pub(super) fn table(inputs: &[Value]) -> Markup {
    html! {
        @if inputs.is_empty() { p.hint { "No input yet." } } @else {
            div.scroll { table #inputs {
                thead { tr { th scope="col" { "Input" } th scope="col" { "Integration" } th scope="col" { "State" } th.wide scope="col" { "URL" } } }
                tbody { @for i in inputs {
                    @let id = i["id"].as_str().unwrap_or_default();
                    tr {
                        td { a href={ "/ui/inputs/" (id) } { (i["name"].as_str().unwrap_or(id)) } }
                        td { (i["integration"].as_str().unwrap_or("plain")) }
                        td { (page::badge(if i["enabled"].as_bool() == Some(false) { "disabled" } else { "enabled" })) }
                        td.wide.mono { (i["url"].as_str().unwrap_or_default()) }
                    }
                } }
            } }
        }
    }
}

fn integration_select(current: Option<&str>) -> Markup {
    html! {
        select #i-integration name="integration" {
            option value="" selected[current.is_none()] { "none (plain input, no signature)" }
            @for kind in IntegrationKind::ALL {
                option value=(kind.name()) selected[current == Some(kind.name())] { (kind.name()) }
            }
        }
    }
}

pub(super) fn create_form(signed: &Signed, bucket: &str) -> Markup {
    html! {
        form.stack method="post" action={ "/ui/buckets/" (bucket) "/inputs" } {
            (page::csrf(signed))
            label for="i-name" { "Name (optional)" }
            input #i-name name="name" pattern="[a-z0-9][a-z0-9\\-]*";
            label for="i-integration" { "Integration" }
            (integration_select(None))
            label for="i-secrets" { "Secrets, one per line, newest first" }
            textarea #i-secrets name="secrets" autocomplete="off" {}
            (response_fields(None))
            button type="submit" { "Create input" }
        }
    }
}

fn response_fields(current: Option<&Value>) -> Markup {
    let kind = current
        .and_then(|r| r["type"].as_str())
        .unwrap_or("default");
    html! {
        fieldset {
            legend { "Answer to the sender" }
            label for="i-response" { "Policy" }
            select #i-response name="response" {
                @for k in ["default", "static", "wait"] { option value=(k) selected[kind == k] { (k) } }
            }
            " " label for="i-status" { "Static status" }
            " " input #i-status name="status" type="number" min="100" max="599" value=[current.and_then(|r| r["status"].as_u64())];
            " " label for="i-body" { "Static body" }
            " " input #i-body name="body" value=[current.and_then(|r| r["body"].as_str())];
            " " label for="i-timeout" { "Wait timeout (ms)" }
            " " input #i-timeout name="timeoutMs" type="number" min="1" value=[current.and_then(|r| r["timeoutMs"].as_u64())];
        }
    }
}

/// The create or patch body of an input form.
fn input_body(fields: &Fields, editing: bool) -> Value {
    let mut map = body(fields, &["name"], &[]);
    // The form always has the select: empty means a plain input.
    map.insert(
        "integration".into(),
        fields.get("integration").map_or(Value::Null, |i| json!(i)),
    );
    let secrets: Vec<String> = fields
        .get("secrets")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // Editing: empty keeps the current secrets; a list replaces them.
    if !secrets.is_empty() || !editing {
        map.insert("secrets".into(), json!(secrets));
    }
    map.insert("response".into(), response(fields));
    if let Some(enabled) = enabled(fields) {
        map.insert("enabled".into(), enabled);
    }
    Value::Object(map)
}

fn response(fields: &Fields) -> Value {
    let number = |k: &str| {
        fields
            .get(k)
            .map(|v| v.parse::<u64>().map_or_else(|_| json!(v), Value::from))
    };
    let mut map = Map::new();
    let kind = fields.get("response").unwrap_or("default");
    map.insert("type".into(), json!(kind));
    match kind {
        "static" => {
            map.insert("status".into(), number("status").unwrap_or(json!(200)));
            map.insert("body".into(), json!(fields.get("body").unwrap_or_default()));
        }
        "wait" => {
            if let Some(t) = number("timeoutMs") {
                map.insert("timeoutMs".into(), t);
            }
        }
        _ => {}
    }
    Value::Object(map)
}

async fn create(State(ui): State<Ui>, Path(bucket): Path<String>, checked: Checked) -> Response {
    let back = format!("/ui/buckets/{}", urlencoding(&bucket));
    let path = format!("/v1/buckets/{}/inputs", urlencoding(&bucket));
    let body = input_body(&checked.fields, false);
    act(
        &ui,
        &checked,
        (Method::POST, &path, Some(body)),
        "Input created: point the sender at its URL.",
        &back,
        |i| i["id"].as_str().map(|id| format!("/ui/inputs/{id}")),
    )
    .await
}

async fn update(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let body = input_body(&checked.fields, true);
    save(&ui, &checked, ("inputs", &id), body, "Input saved.").await
}

async fn remove(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    remove_from_bucket(&ui, ("inputs", &id), "Input deleted.", &checked).await
}

async fn show(State(ui): State<Ui>, signed: Signed, Path(id): Path<String>) -> Response {
    let path = format!("/v1/inputs/{}", urlencoding(&id));
    let input = match ui.api.get(&signed.caller(), &path).await {
        Ok(input) => input,
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let id = input["id"].as_str().unwrap_or_default().to_owned();
    let bucket = input["bucket"].as_str().unwrap_or_default().to_owned();
    let integration = input["integration"].as_str();
    let kind = integration.and_then(|name| IntegrationKind::ALL.iter().find(|k| k.name() == name));
    let enabled = input["enabled"].as_bool() != Some(false);
    let title = input["name"].as_str().unwrap_or(&id).to_owned();
    let main = html! {
        p { a href={ "/ui/buckets/" (bucket) } { "← Bucket" } }
        h1 { "Input " (title) " " (page::badge(if enabled { "enabled" } else { "disabled" })) }
        h2 { "Public URL" }
        p { "Point the sender at:" }
        pre #input-url { (input["url"].as_str().unwrap_or_default()) }
        button type="button" data-copy="input-url" hidden { "Copy" }
        @if let Some(kind) = kind {
            h2 { "Setting up " (kind.name()) }
            p #setup-hint { "Secret: " (hints::setup(*kind).unwrap_or("the sender's signing secret")) }
        } @else {
            p.hint { "Plain input: anything sent to the URL is accepted (no signature check)." }
        }
        dl.facts {
            dt { "Secrets" } dd { (input["secretCount"].as_u64().unwrap_or(0)) " configured (never shown again)" }
            dt { "Body limit" } dd { @match input["bodyLimit"].as_u64() { Some(n) => { (n) " bytes" }, None => "the default" } }
            dt { "Rate limit" } dd {
                @let rate = &input["rateLimit"];
                @match (rate["requests"].as_u64(), rate["windowSeconds"].as_u64()) {
                    (Some(n), Some(s)) => { (n) " requests per " (s) " s" @if let Some(c) = rate["count"].as_str() { " (counting " (c) ")" } },
                    _ => "the default",
                }
            }
            dt { "Response" } dd.mono { (input["response"].to_string()) }
        }
        h2 { "Edit" }
        form.stack method="post" action={ "/ui/inputs/" (id) } {
            (page::csrf(&signed))
            label for="i-name" { "Name" }
            input #i-name name="name" value=[input["name"].as_str()];
            label for="i-integration" { "Integration" }
            (integration_select(integration))
            label for="i-secrets" { "New secrets, one per line, newest first (rotation: put the new one first and keep the old one until the sender switched; empty keeps the current ones)" }
            textarea #i-secrets name="secrets" autocomplete="off" {}
            (response_fields(Some(&input["response"])))
            input type="hidden" name="has-enabled" value="1";
            label { input name="enabled" type="checkbox" value="1" checked[enabled]; " Enabled (unticked: answers 503)" }
            button type="submit" { "Save" }
        }
        h2 { "Delete" }
        (delete_form(&signed, &format!("/ui/inputs/{id}/delete"), Some(&bucket), "Delete this input (its URL stops working)"))
    };
    page::respond(
        StatusCode::OK,
        page::frame(&title, Some(&signed), Nav::Buckets, main),
    )
}
