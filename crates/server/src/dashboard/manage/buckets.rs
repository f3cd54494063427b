//! Buckets: the list with a create form, and one bucket's page with its
//! settings, kill switch, deletion, inputs and outputs.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::Value;

use super::{act, auth, auth_fields, body, delete, delete_form, enabled, save, state_badge};
use crate::dashboard::guard::{Checked, Signed};
use crate::dashboard::page::{self, Nav};
use crate::dashboard::signin::urlencoding;
use crate::dashboard::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/buckets", get(list).post(create))
        .route("/ui/buckets/{id}", get(show).post(update))
        .route("/ui/buckets/{id}/delete", post(remove))
}

async fn list(State(ui): State<Ui>, signed: Signed) -> Response {
    let buckets = match ui.api.get(&signed.caller(), "/v1/buckets").await {
        Ok(answer) => answer["buckets"].as_array().cloned().unwrap_or_default(),
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let main = html! {
        h1 { "Buckets" }
        @if buckets.is_empty() { p { "No bucket yet: create one below." } } @else {
            div.scroll { table #buckets {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "State" } th.wide scope="col" { "Auth" }
                    th.wide scope="col" { "Retention" } th.wide scope="col" { "Id" }
                } }
                tbody { @for b in &buckets {
                    @let id = b["id"].as_str().unwrap_or_default();
                    tr {
                        td { a href={ "/ui/buckets/" (id) } { (b["name"].as_str().unwrap_or(id)) } }
                        td { (state_badge(b)) @if b["ephemeral"].as_bool() == Some(true) { " ephemeral" } }
                        td.wide { (b["auth"]["type"].as_str().unwrap_or("none")) }
                        td.wide.num { (b["retentionSeconds"].as_u64().unwrap_or(0)) " s" }
                        td.wide.mono { (id) }
                    }
                } }
            } }
        }
        h2 { "Create a bucket" }
        (form(&signed, None))
    };
    page::respond(
        StatusCode::OK,
        page::frame("Buckets", Some(&signed), Nav::Buckets, main),
    )
}

/// The create form, or the edit form of `current`.
fn form(signed: &Signed, current: Option<&Value>) -> Markup {
    let action = match current {
        Some(b) => format!("/ui/buckets/{}", b["id"].as_str().unwrap_or_default()),
        None => "/ui/buckets".to_owned(),
    };
    let value = |k: &str| {
        current.map(|b| match &b[k] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            v => v.to_string(),
        })
    };
    html! {
        form.stack method="post" action=(action) {
            (page::csrf(signed))
            label for="b-name" { "Name" }
            input #b-name name="name" required pattern="[a-z0-9][a-z0-9\\-]*" value=[value("name")]
                aria-describedby="b-name-hint";
            p.hint #b-name-hint { "Lower-case letters, digits and dashes." }
            (auth_fields(current))
            label for="b-retention" { "Retention (seconds)" }
            input #b-retention name="retentionSeconds" type="number" min="1" value=[value("retentionSeconds")] placeholder="86400";
            label for="b-catchup" { "Catch-up for reconnecting agents (seconds)" }
            input #b-catchup name="catchupSeconds" type="number" min="0" value=[value("catchupSeconds")] placeholder="600";
            @if current.is_none() {
                label { input name="ephemeral" type="checkbox" value="1"; " Ephemeral (store no headers, query or body)" }
            } @else {
                input type="hidden" name="has-enabled" value="1";
                label { input name="enabled" type="checkbox" value="1" checked[current.and_then(|b| b["enabled"].as_bool()) != Some(false)]; " Enabled (unticked: its inputs answer 503)" }
            }
            button type="submit" { @if current.is_some() { "Save" } @else { "Create bucket" } }
        }
    }
}

async fn create(State(ui): State<Ui>, checked: Checked) -> Response {
    let fields = &checked.fields;
    let mut map = body(fields, &["name"], &["retentionSeconds", "catchupSeconds"]);
    if let Some(auth) = auth(fields, false) {
        map.insert("auth".into(), auth);
    }
    map.insert("ephemeral".into(), Value::Bool(fields.checked("ephemeral")));
    let name = fields.get("name").unwrap_or_default().to_owned();
    act(
        &ui,
        &checked,
        (Method::POST, "/v1/buckets", Some(Value::Object(map))),
        &format!("Bucket {name} created."),
        "/ui/buckets",
        |b| b["id"].as_str().map(|id| format!("/ui/buckets/{id}")),
    )
    .await
}

async fn update(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let fields = &checked.fields;
    let mut map = body(fields, &["name"], &["retentionSeconds", "catchupSeconds"]);
    if let Some(auth) = auth(fields, true) {
        map.insert("auth".into(), auth);
    }
    if let Some(enabled) = enabled(fields) {
        map.insert("enabled".into(), enabled);
    }
    let body = Value::Object(map);
    save(&ui, &checked, ("buckets", &id), body, "Bucket saved.").await
}

async fn remove(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let object = ("buckets", id.as_str());
    delete(
        &ui,
        &checked,
        object,
        "Bucket deleted.",
        "/ui/buckets".into(),
    )
    .await
}

async fn show(State(ui): State<Ui>, signed: Signed, Path(id): Path<String>) -> Response {
    let caller = signed.caller();
    let path = format!("/v1/buckets/{}", urlencoding(&id));
    let bucket = match ui.api.get(&caller, &path).await {
        Ok(bucket) => bucket,
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let id = bucket["id"].as_str().unwrap_or_default().to_owned();
    let inputs = ui
        .api
        .get(&caller, &format!("/v1/buckets/{id}/inputs"))
        .await
        .map(|a| a["inputs"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let outputs = ui
        .api
        .get(&caller, &format!("/v1/buckets/{id}/outputs"))
        .await
        .map(|a| a["outputs"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let name = bucket["name"].as_str().unwrap_or_default().to_owned();
    let main = html! {
        p { a href="/ui/buckets" { "← Buckets" } }
        h1 { "Bucket " (name) " " (state_badge(&bucket)) }
        p.mono { (id) }
        p { a href={ "/ui/?bucket=" (id) } { "Events of this bucket" } }
        h2 { "Inputs" }
        (super::inputs::table(&inputs))
        details #new-input { summary { "Create an input" } (super::inputs::create_form(&signed, &id)) }
        h2 { "Outputs" }
        (super::outputs::table(&outputs))
        details #new-output { summary { "Create an output" } (super::outputs::form(&signed, &id, None)) }
        h2 { "Settings" }
        (form(&signed, Some(&bucket)))
        h2 { "Delete" }
        (delete_form(&signed, &format!("/ui/buckets/{id}/delete"), None, &format!("Delete bucket {name}, its inputs, outputs and events")))
    };
    page::respond(
        StatusCode::OK,
        page::frame(&name, Some(&signed), Nav::Buckets, main),
    )
}
