//! One event: every header, the query, the body (formatted when it is JSON,
//! raw and byte-exact, downloadable), `verified`, every delivery with its
//! attempts, resend (all outputs or one), copy as curl, a permanent link.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use maud::{html, Markup};
use serde_json::Value;

use super::client::Caller;
use super::events::bucket_names;
use super::guard::{Checked, Signed};
use super::page::{self, Nav};
use super::session::Reach;
use super::signin::urlencoding;
use super::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/events/{id}", get(show))
        .route("/ui/events/{id}/raw", get(raw))
        .route("/ui/events/{id}/resend", post(resend))
}

async fn show(State(ui): State<Ui>, signed: Signed, Path(id): Path<String>) -> Response {
    let caller = signed.caller();
    let path = format!("/v1/events/{}", urlencoding(&id));
    let event = match ui.api.get(&caller, &path).await {
        Ok(event) => event,
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let names = bucket_names(&ui, &caller).await;
    let outputs = output_urls(&ui, &caller, &event).await;
    let id = event["id"].as_str().unwrap_or_default().to_owned();
    let link = format!("{}/ui/events/{id}", ui.app.config.public_url);
    let admin = signed.session.reach != Reach::Read;
    let main = html! {
        h1 { "Event " code { (id) } }
        p { "Permanent link: " a #permalink href={ "/ui/events/" (id) } { (link) } }
        (facts(&event, &names))
        @if admin {
            form.inline method="post" action={ "/ui/events/" (id) "/resend" } {
                (page::csrf(&signed))
                button #resend type="submit" { "Resend to every output" }
            }
        }
        h2 { "Headers" }
        (headers(&event))
        h2 { "Query" }
        @match event["query"].as_str() {
            Some(q) if !q.is_empty() => pre #query { (q) },
            _ => p.hint { "None." },
        }
        h2 { "Body" }
        (body(&event, &id))
        h2 { "Deliveries" }
        (deliveries(&signed, &event, &outputs, admin, &id))
        h2 { "Copy as curl" }
        p.hint { "Sends the same request again; set URL to where it should go." }
        pre #curl { (curl(&event)) }
        button type="button" data-copy="curl" hidden { "Copy" }
    };
    page::respond(
        StatusCode::OK,
        page::frame(&id, Some(&signed), Nav::Events, main),
    )
}

fn facts(event: &Value, names: &HashMap<String, String>) -> Markup {
    let text = |k: &str| match &event[k] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let bucket = text("bucket");
    html! {
        dl.facts {
            dt { "Received (UTC)" } dd { (page::time(event["receivedAt"].as_i64().unwrap_or(0))) }
            dt { "Request" } dd.mono { (text("method")) " " (if text("path") == "—" || text("path").is_empty() { "/".into() } else { text("path") }) }
            dt { "Bucket" } dd { (names.get(&bucket).cloned().unwrap_or(bucket)) }
            dt { "Input" } dd.mono { (text("input")) }
            dt { "Integration" } dd { (text("integration")) }
            dt { "Signature verified" } dd #verified { (page::badge(if event["verified"].as_bool() == Some(true) { "yes" } else { "no" })) }
            dt { "Delivery id" } dd.mono { (text("deliveryId")) }
            dt { "Event type" } dd { (text("eventType")) }
            dt { "Size" } dd { (text("size")) " bytes" }
            @for flag in ["stopped", "handshake"] {
                @if event[flag].as_bool() == Some(true) { dt { (flag) } dd { "yes" } }
            }
            @if let Some(error) = event["functionError"].as_str() { dt { "Function error" } dd { (error) } }
            @if let Some(error) = event["error"].as_str() { dt { "Payload" } dd { (error) } }
        }
    }
}

fn headers(event: &Value) -> Markup {
    let Some(headers) = event["headers"].as_object() else {
        return html! { p.hint { "Not stored (ephemeral bucket)." } };
    };
    let base64 = event["headerEncoding"].as_str() == Some("base64");
    html! {
        @if base64 { p.hint { "Some values are not UTF-8: every value is shown base64-encoded." } }
        div.scroll { table #headers {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
            tbody { @for (name, value) in headers {
                tr { td.mono { (name) } td.mono { (value.as_str().unwrap_or_default()) } }
            } }
        } }
    }
}

fn body(event: &Value, id: &str) -> Markup {
    let Some(text) = event["body"].as_str() else {
        return html! { p.hint { "Not stored (ephemeral bucket) or not readable." } };
    };
    let base64 = event["bodyEncoding"].as_str() == Some("base64");
    let pretty = if base64 {
        None
    } else {
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
    };
    html! {
        p { a #download href={ "/ui/events/" (id) "/raw" } download { "Download the body (exact bytes)" } }
        @if let Some(pretty) = &pretty {
            details open { summary { "Formatted JSON" } pre #pretty-body { (pretty) } }
        }
        details open[pretty.is_none()] {
            summary { @if base64 { "Raw (not UTF-8: base64)" } @else { "Raw, byte-exact" } }
            pre #raw-body { (text) }
        }
    }
}

/// Output ids to URLs, for callers that may read outputs.
async fn output_urls(ui: &Ui, caller: &Caller<'_>, event: &Value) -> HashMap<String, String> {
    let mut urls = HashMap::new();
    for delivery in event["deliveries"].as_array().into_iter().flatten() {
        let Some(output) = delivery["output"].as_str() else {
            continue;
        };
        if urls.contains_key(output) {
            continue;
        }
        let path = format!("/v1/outputs/{}", urlencoding(output));
        if let Ok(found) = ui.api.get(caller, &path).await {
            let url = found["url"].as_str().unwrap_or_default().to_owned();
            urls.insert(output.to_owned(), url);
        }
    }
    urls
}

fn deliveries(
    signed: &Signed,
    event: &Value,
    outputs: &HashMap<String, String>,
    admin: bool,
    id: &str,
) -> Markup {
    let list = event["deliveries"].as_array().cloned().unwrap_or_default();
    html! {
        @if list.is_empty() { p.hint { "None: the bucket has no outputs, or the event was not forwarded." } }
        @for (n, d) in list.iter().enumerate() {
            @let output = d["output"].as_str().unwrap_or_default();
            section.delivery aria-labelledby={ "delivery-" (n) } {
                h3 #{ "delivery-" (n) } {
                    (page::badge(d["state"].as_str().unwrap_or("unknown"))) " "
                    code { (output) }
                    @if let Some(url) = outputs.get(output) { " → " code { (url) } }
                    @if let Some(group) = d["group"].as_str() { " (group " code { (group) } ")" }
                }
                @if admin {
                    form.inline method="post" action={ "/ui/events/" (id) "/resend" } {
                        (page::csrf(signed))
                        input type="hidden" name="output" value=(output);
                        button.secondary type="submit" { "Resend to this output" }
                    }
                }
                (attempts(d))
            }
        }
    }
}

fn attempts(delivery: &Value) -> Markup {
    let list = delivery["attempts"].as_array().cloned().unwrap_or_default();
    html! {
        @if list.is_empty() { p.hint { "No attempt yet." } } @else {
            div.scroll { table.attempts {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "At (UTC)" } th scope="col" { "Status" }
                    th scope="col" { "Latency" } th scope="col" { "Error" }
                } }
                tbody { @for (n, a) in list.iter().enumerate() {
                    tr {
                        td.num { (n + 1) }
                        td { (page::time(a["at"].as_i64().unwrap_or(0))) }
                        td.num { (a["status"].as_u64().map_or("—".to_owned(), |s| s.to_string())) }
                        td.num { (a["latencyMs"].as_u64().unwrap_or(0)) " ms" }
                        td { (a["error"].as_str().unwrap_or("")) }
                    }
                } }
            } }
        }
    }
}

/// The request as a shell command, every header and the exact body.
pub(super) fn curl(event: &Value) -> String {
    let path = event["path"].as_str().unwrap_or_default();
    let query = event["query"].as_str().filter(|q| !q.is_empty());
    let target = format!(
        "${{URL:-http://localhost:3000}}{path}{}",
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let mut out = format!(
        "curl -X {} \"{}\"",
        event["method"].as_str().unwrap_or("POST"),
        target.replace('"', "\\\"")
    );
    if event["headerEncoding"].as_str() != Some("base64") {
        for (name, value) in event["headers"].as_object().into_iter().flatten() {
            let skip = ["host", "content-length", "connection", "transfer-encoding"];
            if !skip.contains(&name.as_str()) {
                out.push_str(&format!(
                    " \\\n  -H {}",
                    quote(&format!("{name}: {}", value.as_str().unwrap_or_default()))
                ));
            }
        }
    }
    match (event["body"].as_str(), event["bodyEncoding"].as_str()) {
        (Some(body), Some("base64")) => format!(
            "printf %s {} | base64 -d | {out} --data-binary @-",
            quote(body)
        ),
        (Some(body), _) if !body.is_empty() => format!("{out} \\\n  --data-binary {}", quote(body)),
        _ => out,
    }
}

/// Single-quotes `text` for a POSIX shell.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

async fn raw(State(ui): State<Ui>, signed: Signed, Path(id): Path<String>) -> Response {
    let path = format!("/v1/events/{}", urlencoding(&id));
    let event = match ui.api.get(&signed.caller(), &path).await {
        Ok(event) => event,
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let text = event["body"].as_str().unwrap_or_default();
    let bytes = if event["bodyEncoding"].as_str() == Some("base64") {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let name = event["id"].as_str().unwrap_or("event");
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.body\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

async fn resend(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let signed = &checked.signed;
    let mut path = format!("/v1/events/{}/resend", urlencoding(&id));
    if let Some(output) = checked.fields.get("output") {
        path.push_str(&format!("?output={}", urlencoding(output)));
    }
    match ui
        .api
        .call(&signed.caller(), Method::POST, &path, None)
        .await
    {
        Ok(answer) => {
            let n = answer["deliveries"].as_u64().unwrap_or(0);
            signed.flash(&ui, false, format!("Resending: {n} deliveries queued."));
        }
        Err(refusal) => signed.flash(&ui, true, refusal.message),
    }
    Redirect::to(&format!("/ui/events/{}", urlencoding(&id))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn curl_quotes_headers_and_keeps_the_body_exact() {
        let event = json!({"method": "POST", "path": "/x", "query": "a=1",
            "headers": {"content-type": "application/json", "x-q": "it's"},
            "body": "{\"a\":\"it's\"}", "bodyEncoding": "utf8"});
        let cmd = curl(&event);
        assert!(
            cmd.starts_with("curl -X POST \"${URL:-http://localhost:3000}/x?a=1\""),
            "{cmd}"
        );
        assert!(cmd.contains("-H 'x-q: it'\\''s'"), "{cmd}");
        assert!(
            cmd.ends_with("--data-binary '{\"a\":\"it'\\''s\"}'"),
            "{cmd}"
        );
        let binary = json!({"method": "PUT", "path": "", "body": "AAE=", "bodyEncoding": "base64"});
        assert!(curl(&binary).starts_with("printf %s 'AAE=' | base64 -d | curl -X PUT"));
    }
}
