//! Management pages: buckets (with their inputs and outputs), tokens and
//! connected agents. Each form becomes one API call with the session's
//! credential, so the API's checks and its validation messages apply as
//! they are; a refusal comes back as the next page's message.
//!
//! Depends on the dashboard's session and page helpers (`super`), never on
//! `api` or the store directly; only `dashboard`'s router uses it.

mod agents;
mod buckets;
mod inputs;
mod outputs;
mod tokens;

use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use serde_json::{Map, Value};

use super::guard::{Checked, Fields};
use super::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .merge(buckets::router())
        .merge(inputs::router())
        .merge(outputs::router())
        .merge(tokens::router())
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
