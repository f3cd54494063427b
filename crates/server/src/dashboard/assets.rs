//! The dashboard's static files, embedded in the binary: the stylesheet,
//! the one script (live tail, copy buttons) and the tab icon. Nothing else is loaded:
//! no fonts, no images, no CDN.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Ui;

const CSS: &[u8] = include_bytes!("assets/ui.css");
const JS: &[u8] = include_bytes!("assets/ui.js");
const ICON: &[u8] = include_bytes!("assets/icon.svg");

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route(
            "/ui/assets/ui.css",
            get(|| async { file(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/ui/assets/ui.js",
            get(|| async { file(JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/assets/icon.svg",
            get(|| async { file(ICON, "image/svg+xml") }),
        )
}

fn file(bytes: &'static [u8], content_type: &'static str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // An hour: a relay upgrade is picked up soon after without revalidating
    // on every page.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    response
}
