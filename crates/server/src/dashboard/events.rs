//! The events page: newest first, filters, the live tail's panel, and the
//! bulk "resend everything this filter matches" with a count and a
//! confirmation.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use model::EventId;
use serde::Deserialize;
use serde_json::Value;

use super::client::{Caller, Refusal};
use super::guard::{Checked, Signed};
use super::newest::{self, Window};
use super::page::{self, Nav};
use super::signin::urlencoding;
use super::Ui;

/// Events on one page.
const PAGE: usize = 50;
/// The most events one bulk resend touches: each is one API call, so this
/// bounds a click to seconds of work.
const BULK_MAX: usize = 10_000;
/// A page read while counting or resending a filter (the API's cap).
const BULK_READ: usize = 500;
/// The most API reads one count takes: each examines at most 5,000
/// events, so a rare filter is followed through 1,000,000 before the page
/// says "run it again for the rest".
const BULK_CALLS: usize = 200;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/", get(list))
        .route("/ui/events/resend", get(confirm).post(resend_all))
}

/// The filters of the page, as the form and the query string carry them:
/// the API's own filters (DESIGN §3.2, README "Event filters") plus a time
/// range typed in UTC, which the page turns into the API's cursor bounds.
#[derive(Deserialize, Default, Clone)]
pub(super) struct Filters {
    #[serde(default)]
    pub(super) bucket: String,
    #[serde(default)]
    pub(super) input: String,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default, rename = "type")]
    pub(super) event_type: String,
    #[serde(default)]
    pub(super) search: String,
    #[serde(default)]
    pub(super) from: String,
    #[serde(default)]
    pub(super) to: String,
    #[serde(default)]
    pub(super) before: String,
}

/// The delivery states the status filter offers (the API's names).
const STATES: [&str; 5] = ["pending", "in_flight", "delivered", "failed", "expired"];

impl Filters {
    /// The filters a form posted (the bulk resend's confirmation).
    fn from_fields(fields: &super::guard::Fields) -> Self {
        let get = |name: &str| fields.get(name).unwrap_or_default().to_owned();
        Filters {
            bucket: get("bucket"),
            input: get("input"),
            status: get("status"),
            event_type: get("type"),
            search: get("search"),
            from: get("from"),
            to: get("to"),
            before: String::new(),
        }
    }

    /// The page's fields by their names in the page's own query string.
    fn pairs(&self) -> [(&'static str, &String); 7] {
        [
            ("bucket", &self.bucket),
            ("input", &self.input),
            ("status", &self.status),
            ("type", &self.event_type),
            ("search", &self.search),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }

    /// The API query of the filters the API answers (`&bucket=…`); the
    /// time range is the caller's cursor bounds, not part of it.
    pub(super) fn api_query(&self) -> String {
        let api = [
            ("bucket", &self.bucket),
            ("input", &self.input),
            ("status", &self.status),
            ("eventType", &self.event_type),
            ("search", &self.search),
        ];
        api.iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("&{k}={}", urlencoding(v.trim())))
            .collect()
    }

    /// The time range typed in the form, in ms: `from` inclusive, `to`
    /// exclusive (a minute's start).
    fn range(&self) -> Result<(Option<i64>, Option<i64>), String> {
        let parse = |name: &str, text: &str| match text.trim() {
            "" => Ok(None),
            text => page::parse_local(text)
                .map(Some)
                .ok_or_else(|| format!("{name}: not a time: {text}")),
        };
        Ok((parse("from", &self.from)?, parse("to", &self.to)?))
    }

    /// This page's filters as a query string (without the cursor).
    fn link(&self) -> String {
        self.pairs()
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", urlencoding(v.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The filters as hidden fields of a form that acts on them.
    fn hidden(&self) -> Markup {
        html! {
            @for (name, value) in self.pairs() {
                input type="hidden" name=(name) value=(value);
            }
        }
    }
}

async fn list(State(ui): State<Ui>, signed: Signed, Query(filters): Query<Filters>) -> Response {
    let caller = signed.caller();
    let (from_ms, to_ms) = match filters.range() {
        Ok(range) => range,
        Err(e) => return bad_filter(&signed, &e),
    };
    let before = filters.before.parse::<EventId>().ok();
    let api_query = filters.api_query();
    let want = Window {
        filters: &api_query,
        before,
        from_ms,
        // The page's `to` is a minute's start, exclusive.
        to_ms: to_ms.map(|ms| ms - 1),
        page: PAGE,
    };
    let found = match newest::page(&ui, &caller, &want).await {
        Ok(found) => found,
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let names = bucket_names(&ui, &caller).await;
    let live = before.is_none() && filters.to.trim().is_empty();
    let newest_id = found
        .events
        .first()
        .and_then(|e| e["id"].as_str())
        .map(str::to_owned);
    let after = newest_id.unwrap_or_else(|| EventId::floor_at(store::clock::now_ms()).to_string());
    let main = html! {
        h1 { "Events" }
        (filter_form(&filters, &names))
        div.toolbar {
            @if live {
                div #tail data-src={ "/ui/tail?" (filters.link()) } data-after=(after) {
                    span #live-state .live data-state="off" role="status" aria-live="polite" {
                        "Live tail needs JavaScript: reload for new events"
                    }
                    " "
                    button #pause .secondary type="button" aria-pressed="false" hidden { "Pause" }
                }
            }
            @if signed.session.reach != super::session::Reach::Read {
                a.button.secondary href={ "/ui/events/resend?" (filters.link()) } { "Resend everything this filter matches…" }
            }
        }
        div.scroll {
            table {
                caption.hint { "Newest first; times in UTC." }
                thead { tr {
                    th scope="col" { "Received" } th scope="col" { "Request" }
                    th scope="col" { "Bucket" } th.wide scope="col" { "Type" }
                    th.wide scope="col" { "Verified" } th.wide scope="col" { "Size" }
                } }
                tbody #event-rows {
                    @for event in &found.events { (row(event, &names)) }
                    @if found.events.is_empty() {
                        tr #no-events { td colspan="6" { "No events match." } }
                    }
                }
            }
        }
        @if let Some(older) = &found.older {
            nav.pager aria-label="Pages" {
                a href={ "/ui/?" (filters.link()) "&before=" (older) } { "Older events →" }
            }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame("Events", Some(&signed), Nav::Events, main),
    )
}

fn bad_filter(signed: &Signed, message: &str) -> Response {
    let refusal = Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request".into(),
        message: message.to_owned(),
    };
    page::refusal(signed, &refusal)
}

/// Bucket ids to names, for callers that may list buckets (a poll token
/// may not: it sees ids).
pub(super) async fn bucket_names(ui: &Ui, caller: &Caller<'_>) -> HashMap<String, String> {
    let Ok(answer) = ui.api.get(caller, "/v1/buckets").await else {
        return HashMap::new();
    };
    answer["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b["id"].as_str()?.to_owned(), b["name"].as_str()?.to_owned())))
        .collect()
}

fn filter_form(filters: &Filters, names: &HashMap<String, String>) -> Markup {
    let mut buckets: Vec<(&String, &String)> = names.iter().collect();
    buckets.sort_by(|a, b| a.1.cmp(b.1));
    html! {
        form.filters method="get" action="/ui/" aria-label="Filter events" {
            div {
                label for="f-bucket" { "Bucket" }
                @if buckets.is_empty() {
                    input #f-bucket name="bucket" value=(filters.bucket) placeholder="name or id";
                } @else {
                    select #f-bucket name="bucket" {
                        option value="" { "All buckets" }
                        @for (id, name) in buckets {
                            option value=(id) selected[filters.bucket == *id || filters.bucket == *name] { (name) }
                        }
                    }
                }
            }
            div {
                label for="f-input" { "Input" }
                input #f-input name="input" value=(filters.input) placeholder="input id";
            }
            div {
                label for="f-status" { "Delivery" }
                select #f-status name="status" {
                    option value="" { "Any state" }
                    @for state in STATES {
                        option value=(state) selected[filters.status == state] { (state.replace('_', " ")) }
                    }
                }
            }
            div {
                label for="f-type" { "Type" }
                input #f-type name="type" value=(filters.event_type) placeholder="push";
            }
            div {
                label for="f-search" { "Body contains" }
                input #f-search type="search" name="search" value=(filters.search) maxlength="256";
            }
            div {
                label for="f-from" { "From (UTC)" }
                input #f-from type="datetime-local" name="from" value=(filters.from);
            }
            div {
                label for="f-to" { "To (UTC)" }
                input #f-to type="datetime-local" name="to" value=(filters.to);
            }
            div { button type="submit" { "Filter" } }
            div { a href="/ui/" { "Clear" } }
        }
    }
}

/// One event's row (also what the live tail sends).
pub(super) fn row(event: &Value, names: &HashMap<String, String>) -> Markup {
    let text = |k: &str| event[k].as_str().unwrap_or_default().to_owned();
    let id = text("id");
    let bucket = text("bucket");
    let query = text("query");
    html! {
        tr {
            td { a href={ "/ui/events/" (id) } { (page::time(event["receivedAt"].as_i64().unwrap_or(0))) } }
            td.mono {
                (text("method")) " " (if text("path").is_empty() { "/".to_owned() } else { text("path") })
                @if !query.is_empty() { "?" (query) }
            }
            td { (names.get(&bucket).cloned().unwrap_or(bucket)) }
            td.wide { (event["eventType"].as_str().unwrap_or("—")) }
            td.wide { (page::badge(if event["verified"].as_bool() == Some(true) { "yes" } else { "no" })) }
            td.wide.num { (event["size"].as_u64().unwrap_or(0)) " B" }
        }
    }
}

/// The events a filter matches, oldest first, at most `BULK_MAX` (and
/// whether there were more).
async fn matching(
    ui: &Ui,
    caller: &Caller<'_>,
    filters: &Filters,
) -> Result<(Vec<String>, bool), Refusal> {
    let (from_ms, until_ms) = match filters.range() {
        // A minute ahead when open: an event stamped by a node whose clock
        // is a little ahead still counts.
        Ok((from, to)) => (
            from.unwrap_or(0),
            to.unwrap_or_else(|| store::clock::now_ms() + 60_000),
        ),
        Err(message) => {
            return Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_request".into(),
                message,
            })
        }
    };
    let upper = EventId::floor_at(until_ms).to_string();
    let mut cursor = EventId::floor_at(from_ms).to_string();
    let mut ids = Vec::new();
    let query = filters.api_query();
    for _ in 0..BULK_CALLS {
        let path = format!("/v1/events?after={cursor}&limit={BULK_READ}{query}");
        let answer = ui.api.get(caller, &path).await?;
        let found = answer["events"].as_array().into_iter().flatten();
        for id in found.filter_map(|e| e["id"].as_str()) {
            if *id >= *upper.as_str() {
                return Ok((ids, false));
            }
            if ids.len() == BULK_MAX {
                return Ok((ids, true));
            }
            ids.push(id.to_owned());
        }
        // A filtered read's `next` is the last event it examined, past
        // the matches: follow it, not the last match.
        match answer["next"].as_str() {
            Some(next) if next > cursor.as_str() && next < upper.as_str() => {
                cursor = next.to_owned()
            }
            _ => return Ok((ids, false)),
        }
    }
    Ok((ids, true))
}

async fn confirm(State(ui): State<Ui>, signed: Signed, Query(filters): Query<Filters>) -> Response {
    let caller = signed.caller();
    let (ids, more) = match matching(&ui, &caller, &filters).await {
        Ok(found) => found,
        Err(refusal) => return page::refusal(&signed, &refusal),
    };
    let main = html! {
        h1 { "Resend everything this filter matches" }
        p #bulk-count {
            "This filter matches " strong { (ids.len()) } " event" (if ids.len() == 1 { "" } else { "s" })
            @if more { " (the first " (BULK_MAX) "; run it again for the rest)" }
            ". Each is sent again to every output of its bucket."
        }
        form.stack method="post" action="/ui/events/resend" {
            (page::csrf(&signed))
            (filters.hidden())
            input type="hidden" name="expected" value=(ids.len());
            div.toolbar {
                button #bulk-confirm type="submit" disabled[ids.is_empty()] { "Resend " (ids.len()) " events" }
                a href={ "/ui/?" (filters.link()) } { "Cancel" }
            }
        }
    };
    page::respond(
        StatusCode::OK,
        page::frame("Resend", Some(&signed), Nav::Events, main),
    )
}

async fn resend_all(State(ui): State<Ui>, checked: Checked) -> Response {
    let signed = &checked.signed;
    let fields = &checked.fields;
    let filters = Filters::from_fields(fields);
    let caller = signed.caller();
    let ids = match matching(&ui, &caller, &filters).await {
        Ok((ids, _)) => ids,
        Err(refusal) => return page::refusal(signed, &refusal),
    };
    let (mut events, mut deliveries) = (0usize, 0u64);
    for id in &ids {
        let path = format!("/v1/events/{id}/resend");
        match ui.api.call(&caller, Method::POST, &path, None).await {
            Ok(answer) => {
                events += 1;
                deliveries += answer["deliveries"].as_u64().unwrap_or(0);
            }
            Err(refusal) if refusal.status == StatusCode::NOT_FOUND => {}
            Err(refusal) => return page::refusal(signed, &refusal),
        }
    }
    signed.flash(
        &ui,
        false,
        format!("Resent {events} events ({deliveries} deliveries)."),
    );
    Redirect::to(&format!("/ui/?{}", filters.link())).into_response()
}
