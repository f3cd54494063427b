//! Tokens: the list, create (the bearer string shown once, on the answer
//! page and never again), rotate (likewise), describe and delete.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde_json::{json, Value};

use super::act;
use crate::dashboard::events::bucket_names;
use crate::dashboard::guard::{Checked, Signed};
use crate::dashboard::page::{self, Nav};
use crate::dashboard::signin::urlencoding;
use crate::dashboard::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/tokens", get(list).post(create))
        .route("/ui/tokens/{key}", post(describe))
        .route("/ui/tokens/{key}/rotate", post(rotate))
        .route("/ui/tokens/{key}/delete", post(remove))
}

async fn list(State(ui): State<Ui>, signed: Signed) -> Response {
    let caller = signed.caller();
    let tokens = match ui.api.get(&caller, "/v1/tokens").await {
        Ok(answer) => answer["tokens"].as_array().cloned().unwrap_or_default(),
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let names = bucket_names(&ui, &caller).await;
    let mut buckets: Vec<(&String, &String)> = names.iter().collect();
    buckets.sort_by(|a, b| a.1.cmp(b.1));
    let main = html! {
        h1 { "Tokens" }
        div.scroll { table #tokens {
            thead { tr {
                th scope="col" { "Key" } th scope="col" { "Scope" } th.wide scope="col" { "Buckets" }
                th scope="col" { "Description" } th scope="col" { "Actions" }
            } }
            tbody { @for t in &tokens {
                @let key = t["key"].as_str().unwrap_or_default();
                tr {
                    td.mono { (key) }
                    td { (t["scope"].as_str().unwrap_or_default()) @if let Some(mode) = t["mode"].as_str() { " (" (mode) ")" } }
                    td.wide { @match t["buckets"].as_array() {
                        Some(list) if !list.is_empty() => {
                            @for b in list { @let b = b.as_str().unwrap_or_default(); (names.get(b).map_or(b, String::as_str)) " " }
                        },
                        _ => "all",
                    } }
                    td {
                        form.inline method="post" action={ "/ui/tokens/" (key) } {
                            (page::csrf(&signed))
                            label.hint for={ "d-" (key) } { "Description" }
                            input id={ "d-" (key) } name="description" value=(t["description"].as_str().unwrap_or_default()) size="14";
                            button.secondary type="submit" { "Save" }
                        }
                    }
                    td {
                        form.inline method="post" action={ "/ui/tokens/" (key) "/rotate" } {
                            (page::csrf(&signed))
                            button.secondary type="submit" { "Rotate secret" }
                        }
                        " "
                        form.inline method="post" action={ "/ui/tokens/" (key) "/delete" } {
                            (page::csrf(&signed))
                            button.danger type="submit" aria-label={ "Delete " (key) } { "Delete" }
                        }
                    }
                }
            } }
        } }
        h2 { "Create a token" }
        form.stack method="post" action="/ui/tokens" {
            (page::csrf(&signed))
            label for="t-scope" { "Scope" }
            select #t-scope name="scope" {
                option value="agent" { "agent: receives a bucket's events (hookrelay agent / listen)" }
                option value="poll" { "poll: reads events" }
                option value="tenant" { "tenant: administers this tenant" }
                option value="admin" { "admin: everything (administrator only)" }
            }
            label for="t-mode" { "Agent mode" }
            select #t-mode name="mode" {
                option value="" { "— (not an agent token)" }
                option value="forward" { "forward" }
                option value="tunnel" { "tunnel" }
            }
            fieldset {
                legend { "Buckets (agent and poll tokens; none ticked: all)" }
                @for (id, name) in &buckets {
                    label { input type="checkbox" name="buckets" value=(id); " " (name) } " "
                }
            }
            label for="t-description" { "Description" }
            input #t-description name="description";
            button type="submit" { "Create token" }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame("Tokens", Some(&signed), Nav::Tokens, main),
    )
}

/// The page that shows a new secret, once.
fn shown_once(signed: &Signed, answer: &Value, what: &str) -> Response {
    let main = html! {
        h1 { (what) }
        p role="status" { "Copy it now: the secret is shown this once and never again." }
        pre.secret #new-token { (answer["token"].as_str().unwrap_or_default()) }
        button type="button" data-copy="new-token" hidden { "Copy" }
        dl.facts {
            dt { "Key" } dd.mono { (answer["key"].as_str().unwrap_or_default()) }
            dt { "Scope" } dd { (answer["scope"].as_str().unwrap_or_default()) }
        }
        p { a href="/ui/tokens" { "Back to the tokens" } }
    };
    page::respond(
        StatusCode::CREATED,
        page::frame(what, Some(signed), Nav::Tokens, main),
    )
}

async fn create(State(ui): State<Ui>, checked: Checked) -> Response {
    let fields = &checked.fields;
    let mut body = json!({
        "scope": fields.get("scope").unwrap_or_default(),
        "buckets": fields.all("buckets"),
        "description": fields.get("description").unwrap_or_default(),
    });
    if let Some(mode) = fields.get("mode") {
        body["mode"] = json!(mode);
    }
    let signed = &checked.signed;
    match ui
        .api
        .call(&signed.caller(), Method::POST, "/v1/tokens", Some(&body))
        .await
    {
        Ok(answer) => shown_once(signed, &answer, "Token created"),
        Err(refusal) => {
            signed.flash(&ui, true, refusal.message);
            axum::response::IntoResponse::into_response(axum::response::Redirect::to("/ui/tokens"))
        }
    }
}

async fn rotate(State(ui): State<Ui>, Path(key): Path<String>, checked: Checked) -> Response {
    let signed = &checked.signed;
    let path = format!("/v1/tokens/{}/rotate", urlencoding(&key));
    match ui
        .api
        .call(&signed.caller(), Method::POST, &path, None)
        .await
    {
        Ok(answer) => shown_once(signed, &answer, "Secret rotated"),
        Err(refusal) => page::refusal(signed, &refusal),
    }
}

async fn describe(State(ui): State<Ui>, Path(key): Path<String>, checked: Checked) -> Response {
    let path = format!("/v1/tokens/{}", urlencoding(&key));
    let body = json!({"description": checked.fields.get("description").unwrap_or_default()});
    act(
        &ui,
        &checked,
        (Method::PATCH, &path, Some(body)),
        "Token saved.",
        "/ui/tokens",
        |_| None,
    )
    .await
}

async fn remove(State(ui): State<Ui>, Path(key): Path<String>, checked: Checked) -> Response {
    let path = format!("/v1/tokens/{}", urlencoding(&key));
    act(
        &ui,
        &checked,
        (Method::DELETE, &path, None),
        "Token deleted.",
        "/ui/tokens",
        |_| None,
    )
    .await
}
