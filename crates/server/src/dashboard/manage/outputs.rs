//! Outputs: the table and create form on a bucket's page, and one output's
//! page to edit or delete it.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::{act, body, delete_form, remove_from_bucket, save};
use crate::dashboard::guard::{Checked, Fields, Signed};
use crate::dashboard::page::{self, Nav};
use crate::dashboard::signin::urlencoding;
use crate::dashboard::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/buckets/{id}/outputs", post(create))
        .route("/ui/outputs/{id}", get(show).post(update))
        .route("/ui/outputs/{id}/delete", post(remove))
}

pub(super) fn table(outputs: &[Value]) -> Markup {
    html! {
        @if outputs.is_empty() { p.hint { "No output yet: events are stored and readable, and delivered to no one." } } @else {
            div.scroll { table #outputs {
                thead { tr { th scope="col" { "URL" } th scope="col" { "Delivered by" } th.wide scope="col" { "Timeout" } th.wide scope="col" { "Attempts" } } }
                tbody { @for o in outputs {
                    @let id = o["id"].as_str().unwrap_or_default();
                    tr {
                        td.mono { a href={ "/ui/outputs/" (id) } { (o["url"].as_str().unwrap_or(id)) } }
                        td { @if o["internal"].as_bool() == Some(false) { "the relay" } @else { "agents" } }
                        td.wide.num { (o["timeoutMs"].as_u64().unwrap_or(0)) " ms" }
                        td.wide.num { (o["retry"]["maxAttempts"].as_u64().unwrap_or(0)) }
                    }
                } }
            } }
        }
    }
}

/// The create form (for `bucket`) or the edit form of `current`.
pub(super) fn form(signed: &Signed, bucket: &str, current: Option<&Value>) -> Markup {
    let action = match current {
        Some(o) => format!("/ui/outputs/{}", o["id"].as_str().unwrap_or_default()),
        None => format!("/ui/buckets/{bucket}/outputs"),
    };
    let internal = current
        .and_then(|o| o["internal"].as_bool())
        .unwrap_or(true);
    html! {
        form.stack method="post" action=(action) {
            (page::csrf(signed))
            label for="o-url" { "URL" }
            input #o-url name="url" type="url" required placeholder="http://localhost:3000/hook" value=[current.and_then(|o| o["url"].as_str())];
            label { input name="internal" type="checkbox" value="1" checked[internal]; " Internal: delivered by agents inside your network (unticked: the relay delivers it to a public URL)" }
            input type="hidden" name="has-internal" value="1";
            label for="o-timeout" { "Timeout (ms)" }
            input #o-timeout name="timeoutMs" type="number" min="1" placeholder="10000" value=[current.and_then(|o| o["timeoutMs"].as_u64())];
            label for="o-attempts" { "Attempts at most" }
            input #o-attempts name="maxAttempts" type="number" min="1" placeholder="8" value=[current.and_then(|o| o["retry"]["maxAttempts"].as_u64())];
            button type="submit" { @if current.is_some() { "Save" } @else { "Create output" } }
        }
    }
}

fn output_body(fields: &Fields, current_retry: Option<&Value>) -> Value {
    let mut map = body(fields, &["url"], &["timeoutMs"]);
    map.insert("internal".into(), Value::Bool(fields.checked("internal")));
    if let Some(attempts) = fields.get("maxAttempts") {
        let mut retry = current_retry.cloned().unwrap_or_else(|| json!({}));
        retry["maxAttempts"] = attempts
            .parse::<u64>()
            .map_or_else(|_| json!(attempts), Value::from);
        map.insert("retry".into(), retry);
    }
    Value::Object(map)
}

async fn create(State(ui): State<Ui>, Path(bucket): Path<String>, checked: Checked) -> Response {
    let back = format!("/ui/buckets/{}", urlencoding(&bucket));
    let path = format!("/v1/buckets/{}/outputs", urlencoding(&bucket));
    let body = output_body(&checked.fields, None);
    act(
        &ui,
        &checked,
        (Method::POST, &path, Some(body)),
        "Output created.",
        &back,
        |_| None,
    )
    .await
}

async fn update(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let path = format!("/v1/outputs/{}", urlencoding(&id));
    let current = ui.api.get(&checked.signed.caller(), &path).await.ok();
    let body = output_body(&checked.fields, current.as_ref().map(|o| &o["retry"]));
    save(&ui, &checked, ("outputs", &id), body, "Output saved.").await
}

async fn remove(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    remove_from_bucket(&ui, ("outputs", &id), "Output deleted.", &checked).await
}

async fn show(State(ui): State<Ui>, signed: Signed, Path(id): Path<String>) -> Response {
    let path = format!("/v1/outputs/{}", urlencoding(&id));
    let output = match ui.api.get(&signed.caller(), &path).await {
        Ok(output) => output,
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let id = output["id"].as_str().unwrap_or_default().to_owned();
    let bucket = output["bucket"].as_str().unwrap_or_default().to_owned();
    let main = html! {
        p { a href={ "/ui/buckets/" (bucket) } { "← Bucket" } }
        h1 { "Output " code { (id) } }
        (form(&signed, &bucket, Some(&output)))
        h2 { "Delete" }
        (delete_form(&signed, &format!("/ui/outputs/{id}/delete"), Some(&bucket), "Delete this output"))
    };
    page::respond(
        StatusCode::OK,
        page::frame("Output", Some(&signed), Nav::Buckets, main),
    )
}
