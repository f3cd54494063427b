//! Management pages: buckets (with their inputs and outputs), tokens,
//! functions, tunnels and connected agents. Each form becomes one API call with the session's
//! credential, so the API's checks and its validation messages apply as
//! they are; a refusal comes back as the next page's message.
//!
//! Depends on the dashboard's session and page helpers (`super`), never on
//! `api` or the store directly; only `dashboard`'s router uses it.

mod agents;
mod buckets;
mod functions;
mod inputs;
mod outputs;
mod tokens;
mod tunnels;

use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::guard::{Checked, Fields, Signed};
use super::page;
use super::signin::urlencoding;
use super::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .merge(buckets::router())
        .merge(inputs::router())
        .merge(outputs::router())
        .merge(tokens::router())
        .merge(functions::router())
        .merge(tunnels::router())
        .merge(agents::router())
}

/// Makes one API call for a form, leaves the outcome as the next page's
/// message and goes to `back` (or, on success, to `next(answer)`).
async fn act(
    ui: &Ui,
    checked: &Checked,
    (method, path, body): (Method, &str, Option<Value>),
    done: &str,
    back: &str,
    next: impl FnOnce(&Value) -> Option<String>,
) -> Response {
    let signed = &checked.signed;
    match ui
        .api
        .call(&signed.caller(), method, path, body.as_ref())
        .await
    {
        Ok(answer) => {
            signed.flash(ui, false, done);
            let to = next(&answer).unwrap_or_else(|| back.to_owned());
            Redirect::to(&to).into_response()
        }
        Err(refusal) => {
            signed.flash(ui, true, refusal.message);
            Redirect::to(back).into_response()
        }
    }
}

/// A JSON body from form fields: `number` fields become numbers when they
/// parse (otherwise the text, so the API names the field), `flag` fields
/// booleans, `text` fields strings; empty fields are left out so the API's
/// defaults (or, in a PATCH, the current values) apply.
fn body(fields: &Fields, text: &[&str], number: &[&str]) -> Map<String, Value> {
    let mut map = Map::new();
    for name in text {
        if let Some(v) = fields.get(name) {
            map.insert((*name).to_owned(), Value::String(v.to_owned()));
        }
    }
    for name in number {
        if let Some(v) = fields.get(name) {
            let value = v
                .parse::<u64>()
                .map_or_else(|_| Value::String(v.to_owned()), Value::from);
            map.insert((*name).to_owned(), value);
        }
    }
    map
}

/// `enabled` from a form's checkbox, when the form shows one.
fn enabled(fields: &Fields) -> Option<Value> {
    fields
        .get("has-enabled")
        .map(|_| Value::Bool(fields.checked("enabled")))
}

/// An object's `enabled` as a badge.
fn state_badge(object: &Value) -> Markup {
    page::badge(if object["enabled"].as_bool() == Some(false) {
        "disabled"
    } else {
        "enabled"
    })
}

/// The auth fields of a bucket or tunnel form (their `auth` objects are
/// the same type); editing, empty credentials keep the current ones.
fn auth_fields(current: Option<&Value>) -> Markup {
    let kind = current
        .and_then(|o| o["auth"]["type"].as_str())
        .unwrap_or("none");
    html! {
        label for="b-auth" { "Authentication" }
        select #b-auth name="auth" {
            @for k in ["none", "basic", "token"] { option value=(k) selected[kind == k] { (k) } }
        }
        fieldset {
            legend { "Credentials (basic: username and password; token: the token)" }
            @if current.is_some() { p.hint { "Leave empty to keep the current ones." } }
            label for="b-user" { "Username" } " " input #b-user name="username" autocomplete="off";
            " " label for="b-pass" { "Password or token" } " " input #b-pass name="password" type="password" autocomplete="new-password";
        }
    }
}

/// The auth object of [`auth_fields`], when the form sets one.
fn auth(fields: &Fields, editing: bool) -> Option<Value> {
    let secret = fields.get("password").unwrap_or_default();
    match fields.get("auth").unwrap_or("none") {
        "basic" if !(editing && secret.is_empty()) => Some(json!({
            "type": "basic", "username": fields.get("username").unwrap_or_default(), "password": secret
        })),
        "token" if !(editing && secret.is_empty()) => {
            Some(json!({"type": "token", "token": secret}))
        }
        "none" => Some(json!({"type": "none"})),
        _ => None,
    }
}

/// A delete button behind a confirmation box; `bucket` is sent along so
/// that the next page is the bucket's.
fn delete_form(signed: &Signed, action: &str, bucket: Option<&str>, what: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (page::csrf(signed))
            @if let Some(bucket) = bucket { input type="hidden" name="bucket" value=(bucket); }
            label { input type="checkbox" name="confirm" value="1" required; " " (what) }
            button.danger type="submit" { "Delete" }
        }
    }
}

/// PATCHes `/v1/{kind}/{id}` with `body`, then back to its page.
async fn save(
    ui: &Ui,
    checked: &Checked,
    (kind, id): (&str, &str),
    body: Value,
    done: &str,
) -> Response {
    let back = format!("/ui/{kind}/{}", urlencoding(id));
    let path = format!("/v1/{kind}/{}", urlencoding(id));
    let call = (Method::PATCH, path.as_str(), Some(body));
    act(ui, checked, call, done, &back, |_| None).await
}

/// DELETEs `/v1/{kind}/{id}`, then goes to `next` (back to its page when
/// refused).
async fn delete(
    ui: &Ui,
    checked: &Checked,
    (kind, id): (&str, &str),
    done: &str,
    next: String,
) -> Response {
    let back = format!("/ui/{kind}/{}", urlencoding(id));
    let path = format!("/v1/{kind}/{}", urlencoding(id));
    let call = (Method::DELETE, path.as_str(), None);
    act(ui, checked, call, done, &back, |_| Some(next)).await
}

/// Deletes an input or output (`kind`: `inputs`, `outputs`), then goes to
/// its bucket's page (sent along by [`delete_form`]).
async fn remove_from_bucket(
    ui: &Ui,
    object: (&str, &str),
    done: &str,
    checked: &Checked,
) -> Response {
    let bucket = match checked.fields.get("bucket") {
        Some(b) => format!("/ui/buckets/{}", urlencoding(b)),
        None => "/ui/buckets".to_owned(),
    };
    delete(ui, checked, object, done, bucket).await
}
