//! Agents connected now (`GET /v1/agents`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use maud::html;
use serde_json::Value;

use crate::dashboard::guard::Signed;
use crate::dashboard::page::{self, Nav};
use crate::dashboard::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new().route("/ui/agents", get(list))
}

async fn list(State(ui): State<Ui>, signed: Signed) -> Response {
    let agents = match ui.api.get(&signed.caller(), "/v1/agents").await {
        Ok(answer) => answer["agents"].as_array().cloned().unwrap_or_default(),
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let text = |a: &Value, k: &str| match &a[k] {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        v => v.to_string(),
    };
    let main = html! {
        h1 { "Agents connected" }
        @if agents.is_empty() {
            p { "No agent is connected. Start one with " code { "hookrelay listen" } " or " code { "hookrelay agent" } "." }
        } @else {
            div.scroll { table #agents {
                thead { tr {
                    th scope="col" { "Agent" } th scope="col" { "Group" } th scope="col" { "Buckets" }
                    th.wide scope="col" { "Transport" } th.wide scope="col" { "Address" }
                    th.wide scope="col" { "Connected since (UTC)" } th scope="col" { "In flight" }
                } }
                tbody { @for a in &agents {
                    tr {
                        td.mono { (text(a, "id")) }
                        td.mono { (text(a, "group")) }
                        td { (text(a, "buckets")) }
                        td.wide { (text(a, "transport")) }
                        td.wide.mono { (text(a, "address")) }
                        td.wide { (a["connectedSince"].as_i64().map_or_else(|| text(a, "connectedSince"), page::time)) }
                        td.num { (text(a, "inFlight")) }
                    }
                } }
            } }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame("Agents", Some(&signed), Nav::Agents, main),
    )
}
