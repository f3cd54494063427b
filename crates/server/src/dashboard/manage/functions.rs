//! Functions (DESIGN §9): the list with a create form, and one function's
//! page to edit its source and config, delete it, and invoke it on a
//! sample request with the outcome shown below the form.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::{act, delete, delete_form, save};
use crate::dashboard::client::Refusal;
use crate::dashboard::guard::{Checked, Fields, Signed};
use crate::dashboard::page::{self, Nav};
use crate::dashboard::signin::urlencoding;
use crate::dashboard::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/functions", get(list).post(create))
        .route("/ui/functions/{id}", get(show).post(update))
        .route("/ui/functions/{id}/delete", post(remove))
        .route("/ui/functions/{id}/invoke", post(invoke))
}

async fn list(State(ui): State<Ui>, signed: Signed) -> Response {
    let functions = match ui.api.get(&signed.caller(), "/v1/functions").await {
        Ok(answer) => answer["functions"].as_array().cloned().unwrap_or_default(),
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let main = html! {
        h1 { "Functions" }
        p.hint { "Lua (Luau) scripts an input or output names with its " code { "functionId" } "." }
        @if functions.is_empty() { p { "No function yet: create one below." } } @else {
            div.scroll { table #functions {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Config keys" }
                    th.wide scope="col" { "Updated (UTC)" } th.wide scope="col" { "Id" }
                } }
                tbody { @for f in &functions {
                    @let id = f["id"].as_str().unwrap_or_default();
                    tr {
                        td { a href={ "/ui/functions/" (id) } { (f["name"].as_str().unwrap_or(id)) } }
                        td.mono { (keys(f)) }
                        td.wide { (page::time(f["updatedAt"].as_i64().unwrap_or(0))) }
                        td.wide.mono { (id) }
                    }
                } }
            } }
        }
        h2 { "Create a function" }
        (form(&signed, None))
    };
    page::respond(
        StatusCode::OK,
        page::frame("Functions", Some(&signed), Nav::Functions, main),
    )
}

fn keys(function: &Value) -> String {
    let keys: Vec<&str> = function["configKeys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if keys.is_empty() {
        "—".to_owned()
    } else {
        keys.join(", ")
    }
}

/// The create form, or the edit form of `current`.
fn form(signed: &Signed, current: Option<&Value>) -> Markup {
    let action = match current {
        Some(f) => format!("/ui/functions/{}", f["id"].as_str().unwrap_or_default()),
        None => "/ui/functions".to_owned(),
    };
    html! {
        form.stack method="post" action=(action) {
            (page::csrf(signed))
            label for="fn-name" { "Name" }
            input #fn-name name="name" required value=[current.and_then(|f| f["name"].as_str())];
            label for="fn-source" { "Source (Lua, at most 64 KiB)" }
            textarea #fn-source.code name="source" rows="14" required spellcheck="false" {
                (current.and_then(|f| f["source"].as_str()).unwrap_or_default())
            }
            label for="fn-config" {
                "Config, one " code { "KEY=value" } " a line (secrets: never shown again"
                @if current.is_some() { "; empty keeps the current " (current.map(keys).unwrap_or_default()) }
                ")"
            }
            textarea #fn-config name="config" rows="3" autocomplete="off" spellcheck="false" {}
            @if current.is_some() {
                label { input name="clear-config" type="checkbox" value="1"; " Remove every config value" }
            }
            button type="submit" { @if current.is_some() { "Save" } @else { "Create function" } }
        }
    }
}

/// A textarea's text with the browser's CRLF line breaks made LF.
fn text(fields: &Fields, name: &str) -> Option<String> {
    fields.get(name).map(|t| t.replace("\r\n", "\n"))
}

/// `NAME<sep>value` lines as an object; a line without `sep` is refused
/// naming `field` and the line.
fn pairs(text: &str, sep: char, field: &str) -> Result<Map<String, Value>, Refusal> {
    let mut map = Map::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(sep) else {
            return Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_request".into(),
                message: format!("{field}: line {} is not NAME{sep}value", n + 1),
            });
        };
        map.insert(key.trim().to_owned(), json!(value.trim()));
    }
    Ok(map)
}

/// The create or patch body of the form.
fn function_body(fields: &Fields, editing: bool) -> Result<Value, Refusal> {
    let mut map = Map::new();
    for name in ["name", "source"] {
        if let Some(value) = text(fields, name) {
            map.insert(name.into(), json!(value));
        }
    }
    let config = pairs(&text(fields, "config").unwrap_or_default(), '=', "config")?;
    if !config.is_empty() || !editing || fields.checked("clear-config") {
        map.insert("config".into(), Value::Object(config));
    }
    Ok(Value::Object(map))
}

/// Leaves a refusal of the form itself as the next page's message.
fn refuse(ui: &Ui, checked: &Checked, refusal: Refusal, back: &str) -> Response {
    checked.signed.flash(ui, true, refusal.message);
    axum::response::IntoResponse::into_response(axum::response::Redirect::to(back))
}

async fn create(State(ui): State<Ui>, checked: Checked) -> Response {
    let body = match function_body(&checked.fields, false) {
        Ok(body) => body,
        Err(refusal) => return refuse(&ui, &checked, refusal, "/ui/functions"),
    };
    act(
        &ui,
        &checked,
        (Method::POST, "/v1/functions", Some(body)),
        "Function created.",
        "/ui/functions",
        |f| f["id"].as_str().map(|id| format!("/ui/functions/{id}")),
    )
    .await
}

async fn update(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    match function_body(&checked.fields, true) {
        Ok(body) => save(&ui, &checked, ("functions", &id), body, "Function saved.").await,
        Err(refusal) => {
            let back = format!("/ui/functions/{}", urlencoding(&id));
            refuse(&ui, &checked, refusal, &back)
        }
    }
}

async fn remove(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let object = ("functions", id.as_str());
    delete(
        &ui,
        &checked,
        object,
        "Function deleted.",
        "/ui/functions".into(),
    )
    .await
}

async fn show(State(ui): State<Ui>, signed: Signed, Path(id): Path<String>) -> Response {
    function_page(&ui, &signed, &id, None, None).await
}

/// The invoke form's sample request as the API's `invoke` body.
fn invoke_body(fields: &Fields) -> Result<Value, Refusal> {
    let headers = pairs(&text(fields, "headers").unwrap_or_default(), ':', "headers")?;
    Ok(json!({
        "method": fields.get("method").unwrap_or("POST"),
        "path": fields.get("path").unwrap_or_default(),
        "query": fields.get("query").unwrap_or_default(),
        "headers": headers,
        "body": text(fields, "body").unwrap_or_default(),
        "output": fields.checked("output"),
    }))
}

async fn invoke(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let signed = &checked.signed;
    let path = format!("/v1/functions/{}/invoke", urlencoding(&id));
    let outcome = match invoke_body(&checked.fields) {
        Ok(body) => {
            ui.api
                .call(&signed.caller(), Method::POST, &path, Some(&body))
                .await
        }
        Err(refusal) => Err(refusal),
    };
    function_page(&ui, signed, &id, Some(&checked.fields), Some(outcome)).await
}

/// One function's page; after an invoke, its form keeps the sample and
/// the outcome (or the API's refusal of the sample) follows it.
async fn function_page(
    ui: &Ui,
    signed: &Signed,
    id: &str,
    sample: Option<&Fields>,
    outcome: Option<Result<Value, Refusal>>,
) -> Response {
    let path = format!("/v1/functions/{}", urlencoding(id));
    let function = match ui.api.get(&signed.caller(), &path).await {
        Ok(function) => function,
        Err(refusal) => return page::refusal(signed, &refusal),
    };
    let id = function["id"].as_str().unwrap_or_default().to_owned();
    let name = function["name"].as_str().unwrap_or(&id).to_owned();
    let field = |k: &str| sample.and_then(|s| s.get(k)).map(str::to_owned);
    let main = html! {
        p { a href="/ui/functions" { "← Functions" } }
        h1 { "Function " (name) }
        p.mono { (id) " · version " (function["version"].as_u64().unwrap_or(0)) }
        h2 { "Invoke on a sample request" }
        form.stack #invoke method="post" action={ "/ui/functions/" (id) "/invoke" } {
            (page::csrf(signed))
            label for="inv-method" { "Method" }
            input #inv-method name="method" value=(field("method").unwrap_or_else(|| "POST".into())) size="8";
            label for="inv-path" { "Path" }
            input #inv-path name="path" value=[field("path")] placeholder="/extra/path";
            label for="inv-query" { "Query (raw)" }
            input #inv-query name="query" value=[field("query")] placeholder="a=1&b=2";
            label for="inv-headers" { "Headers, one " code { "Name: value" } " a line" }
            textarea #inv-headers name="headers" rows="3" spellcheck="false" { (field("headers").unwrap_or_default()) }
            label for="inv-body" { "Body" }
            textarea #inv-body.code name="body" rows="5" spellcheck="false" { (field("body").unwrap_or_default()) }
            label { input name="output" type="checkbox" value="1" checked[sample.is_some_and(|s| s.checked("output"))]; " As an output function (no answer to the sender)" }
            button type="submit" { "Invoke" }
        }
        @if let Some(outcome) = outcome { (outcome_view(&outcome)) }
        h2 { "Edit" }
        (form(signed, Some(&function)))
        h2 { "Delete" }
        (delete_form(signed, &format!("/ui/functions/{id}/delete"), None, "Delete this function (refused while an input or output uses it)"))
    };
    page::respond(
        StatusCode::OK,
        page::frame(&name, Some(signed), Nav::Functions, main),
    )
}

/// `invoke`'s answer: the error, what the sender would get, the request
/// after the function, the logs.
fn outcome_view(outcome: &Result<Value, Refusal>) -> Markup {
    let o = match outcome {
        Ok(o) => o,
        Err(refusal) => {
            return html! {
                section #invoke-result aria-live="polite" {
                    h2 { "Result" }
                    p.flash.error role="alert" #invoke-error { code { (refusal.code) } ": " (refusal.message) }
                }
            }
        }
    };
    let headers = |h: &Value| -> BTreeMap<String, String> {
        h.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect()
    };
    let request = &o["request"];
    html! {
        section #invoke-result aria-live="polite" {
            h2 { "Result" }
            dl.facts {
                dt { "Error" } dd #invoke-error { (o["error"].as_str().unwrap_or("none")) }
                dt { "Forwarding" } dd #invoke-forwarding { @if o["stopForwarding"].as_bool() == Some(true) { "stopped" } @else { "goes on" } }
                dt { "Duration" } dd { (o["durationMicros"].as_u64().unwrap_or(0)) " µs" }
            }
            h3 { "Answer to the sender" }
            @match o["response"].as_object() {
                Some(r) => {
                    p #invoke-status { "Status " (r.get("status").and_then(Value::as_u64).unwrap_or(0)) }
                    @for (k, v) in headers(r.get("headers").unwrap_or(&Value::Null)) { p.mono { (k) ": " (v) } }
                    pre #invoke-response { (r.get("body").and_then(Value::as_str).unwrap_or_default()) }
                },
                None => p.hint { "None set: the input's own policy answers." },
            }
            h3 { "Request after the function" }
            pre #invoke-request {
                (request["method"].as_str().unwrap_or_default()) " " (request["path"].as_str().unwrap_or_default())
                @if let Some(q) = request["query"].as_str().filter(|q| !q.is_empty()) { "?" (q) }
                "\n"
                @for (k, v) in headers(&request["headers"]) { (k) ": " (v) "\n" }
                "\n" (request["body"].as_str().unwrap_or_default())
            }
            h3 { "Logs" }
            @let logs: Vec<&str> = o["logs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            @if logs.is_empty() { p.hint { "Nothing logged." } } @else {
                pre #invoke-logs { @for line in logs { (line) "\n" } }
            }
        }
    }
}
