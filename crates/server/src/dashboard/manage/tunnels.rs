//! Tunnels (DESIGN §10): the list with a create form, and one tunnel's
//! page with its public URLs, settings, deletion and request log (the
//! metadata ring of `GET /v1/tunnels/{id}/requests`, newest first).

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::{act, auth, auth_fields, body, delete, delete_form, enabled, save, state_badge};
use crate::dashboard::guard::{Checked, Fields, Signed};
use crate::dashboard::page::{self, Nav};
use crate::dashboard::signin::urlencoding;
use crate::dashboard::Ui;

/// Requests of the log a page shows (the ring holds up to 1,000).
const LOG_SHOWN: usize = 100;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/tunnels", get(list).post(create))
        .route("/ui/tunnels/{id}", get(show).post(update))
        .route("/ui/tunnels/{id}/delete", post(remove))
}

fn urls(tunnel: &Value) -> Vec<&str> {
    tunnel["urls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

async fn list(State(ui): State<Ui>, signed: Signed) -> Response {
    let tunnels = match ui.api.get(&signed.caller(), "/v1/tunnels").await {
        Ok(answer) => answer["tunnels"].as_array().cloned().unwrap_or_default(),
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let main = html! {
        h1 { "Tunnels" }
        p.hint { "A local HTTP service published through the relay: run " code { "hookrelay tunnel --name NAME --destination http://localhost:3000" } " beside it." }
        @if tunnels.is_empty() { p { "No tunnel yet: create one below." } } @else {
            div.scroll { table #tunnels {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "State" } th scope="col" { "Agents" }
                    th.wide scope="col" { "URL" }
                } }
                tbody { @for t in &tunnels {
                    @let id = t["id"].as_str().unwrap_or_default();
                    tr {
                        td { a href={ "/ui/tunnels/" (id) } { (t["name"].as_str().unwrap_or(id)) } }
                        td { (state_badge(t)) }
                        td.num { (t["agents"].as_u64().unwrap_or(0)) }
                        td.wide.mono { (urls(t).first().copied().unwrap_or_default()) }
                    }
                } }
            } }
        }
        h2 { "Create a tunnel" }
        (form(&signed, None))
    };
    page::respond(
        StatusCode::OK,
        page::frame("Tunnels", Some(&signed), Nav::Tunnels, main),
    )
}

/// The create form, or the edit form of `current`.
fn form(signed: &Signed, current: Option<&Value>) -> Markup {
    let action = match current {
        Some(t) => format!("/ui/tunnels/{}", t["id"].as_str().unwrap_or_default()),
        None => "/ui/tunnels".to_owned(),
    };
    html! {
        form.stack method="post" action=(action) {
            (page::csrf(signed))
            label for="t-name" { "Name" }
            input #t-name name="name" required pattern="[a-z0-9][a-z0-9\\-]*" value=[current.and_then(|t| t["name"].as_str())]
                aria-describedby="t-name-hint";
            p.hint #t-name-hint { "A DNS label, unique on the relay: lower-case letters, digits and dashes." }
            (auth_fields(current))
            label for="t-host" { "Host header sent to the service (empty: the visitor's)" }
            input #t-host name="hostHeader" placeholder="localhost:3000" value=[current.and_then(|t| t["hostHeader"].as_str())];
            input type="hidden" name="has-enabled" value="1";
            label { input name="enabled" type="checkbox" value="1" checked[current.and_then(|t| t["enabled"].as_bool()) != Some(false)]; " Enabled" }
            button type="submit" { @if current.is_some() { "Save" } @else { "Create tunnel" } }
        }
    }
}

fn tunnel_body(fields: &Fields, editing: bool) -> Value {
    let mut map = body(fields, &["name"], &[]);
    if let Some(auth) = auth(fields, editing) {
        map.insert("auth".into(), auth);
    }
    // Empty clears the rewrite.
    map.insert(
        "hostHeader".into(),
        fields.get("hostHeader").map_or(Value::Null, |h| json!(h)),
    );
    if let Some(enabled) = enabled(fields) {
        map.insert("enabled".into(), enabled);
    }
    Value::Object(map)
}

async fn create(State(ui): State<Ui>, checked: Checked) -> Response {
    let body = tunnel_body(&checked.fields, false);
    act(
        &ui,
        &checked,
        (Method::POST, "/v1/tunnels", Some(body)),
        "Tunnel created.",
        "/ui/tunnels",
        |t| t["id"].as_str().map(|id| format!("/ui/tunnels/{id}")),
    )
    .await
}

async fn update(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let body = tunnel_body(&checked.fields, true);
    save(&ui, &checked, ("tunnels", &id), body, "Tunnel saved.").await
}

async fn remove(State(ui): State<Ui>, Path(id): Path<String>, checked: Checked) -> Response {
    let object = ("tunnels", id.as_str());
    delete(
        &ui,
        &checked,
        object,
        "Tunnel deleted.",
        "/ui/tunnels".into(),
    )
    .await
}

async fn show(State(ui): State<Ui>, signed: Signed, Path(id): Path<String>) -> Response {
    let caller = signed.caller();
    let path = format!("/v1/tunnels/{}", urlencoding(&id));
    let tunnel = match ui.api.get(&caller, &path).await {
        Ok(tunnel) => tunnel,
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let log = match ui
        .api
        .get(&caller, &format!("{path}/requests?limit={LOG_SHOWN}"))
        .await
    {
        Ok(answer) => answer["requests"].as_array().cloned().unwrap_or_default(),
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let id = tunnel["id"].as_str().unwrap_or_default().to_owned();
    let name = tunnel["name"].as_str().unwrap_or(&id).to_owned();
    let main = html! {
        p { a href="/ui/tunnels" { "← Tunnels" } }
        h1 { "Tunnel " (name) " " (state_badge(&tunnel)) }
        p.mono { (id) }
        h2 { "Public URLs" }
        ul #tunnel-urls { @for url in urls(&tunnel) { li.mono { (url) } } }
        p { (tunnel["agents"].as_u64().unwrap_or(0)) " agent(s) serving it on this node." }
        h2 { "Requests" }
        (request_log(&log))
        h2 { "Settings" }
        (form(&signed, Some(&tunnel)))
        h2 { "Delete" }
        (delete_form(&signed, &format!("/ui/tunnels/{id}/delete"), None, "Delete this tunnel (its URLs stop working)"))
    };
    page::respond(
        StatusCode::OK,
        page::frame(&name, Some(&signed), Nav::Tunnels, main),
    )
}

fn request_log(log: &[Value]) -> Markup {
    html! {
        @if log.is_empty() {
            p.hint #no-requests { "No request yet on this node (the log keeps metadata only: no headers, no bodies)." }
        } @else {
            div.scroll { table #requests {
                caption.hint { "Newest first, on this node; metadata only. Times in UTC." }
                thead { tr {
                    th scope="col" { "At" } th scope="col" { "Request" } th scope="col" { "Status" }
                    th.wide scope="col" { "Latency" } th.wide scope="col" { "In / out" } th.wide scope="col" { "Client" }
                } }
                tbody { @for r in log {
                    tr {
                        td { (page::time(r["at"].as_i64().unwrap_or(0))) }
                        td.mono { (r["method"].as_str().unwrap_or_default()) " " (r["path"].as_str().unwrap_or_default()) }
                        td.num { @match r["status"].as_u64() { Some(0) | None => "—", Some(s) => (s) } }
                        td.wide.num { (r["latencyMs"].as_u64().unwrap_or(0)) " ms" }
                        td.wide.num { (r["bytesIn"].as_u64().unwrap_or(0)) " B / " (r["bytesOut"].as_u64().unwrap_or(0)) " B" }
                        td.wide.mono { (r["clientIp"].as_str().unwrap_or_default()) }
                    }
                } }
            } }
        }
    }
}
