//! What every dashboard request passes: the session cookie ([`Signed`]),
//! and for every state-changing form the same-origin check and the CSRF
//! token ([`Checked`]); the security headers of every answer
//! ([`security_headers`]).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::client::Caller;
use super::session::{Flash, Session, COOKIE};
use super::{page, Ui};

/// No script or style but our own files, no frames, forms post only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the dashboard's security headers to every answer under `/ui`.
pub(super) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // `same-origin`, not `no-referrer`: the origin check below reads
        // the Referer when a browser sends no Origin.
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The value of cookie `name` in a `Cookie` header.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A signed-in browser's request.
pub(super) struct Signed {
    pub(super) cookie: String,
    pub(super) session: Session,
    peer: Option<ConnectInfo<SocketAddr>>,
    forwarded_for: Option<HeaderValue>,
}

impl Signed {
    /// The API caller this request acts as.
    pub(super) fn caller(&self) -> Caller<'_> {
        Caller {
            session: &self.session,
            peer: self.peer,
            forwarded_for: self.forwarded_for.clone(),
        }
    }

    /// Leaves a message for the next page of this session.
    pub(super) fn flash(&self, ui: &Ui, error: bool, text: impl Into<String>) {
        let text = text.into();
        ui.sessions
            .update(&self.cookie, |s| s.flash = Some(Flash { error, text }));
    }
}

/// Sends a browser without a session to the sign-in page.
pub(super) struct SignIn;

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        Redirect::to("/ui/signin").into_response()
    }
}

impl FromRequestParts<Ui> for Signed {
    type Rejection = SignIn;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, SignIn> {
        let value = cookie(&parts.headers, COOKIE).ok_or(SignIn)?.to_owned();
        let session = ui.sessions.touch(&value).ok_or(SignIn)?;
        Ok(Signed {
            cookie: value,
            session,
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().copied(),
            forwarded_for: parts.headers.get("x-forwarded-for").cloned(),
        })
    }
}

/// The origins this relay answers on: the request's own `Host` (with our
/// scheme) and the configured public URL.
fn same_origin(ui: &Ui, headers: &HeaderMap) -> bool {
    let scheme = if ui.app.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let ours = |origin: &str| {
        host.is_some_and(|h| origin == format!("{scheme}://{h}"))
            || origin == origin_of(&ui.app.config.public_url)
    };
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return ours(origin);
    }
    // No Origin (older browsers on same-origin POSTs): the Referer's.
    headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|referer| ours(origin_of(referer)))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The fields of a submitted form, in order (repeated names kept).
pub(super) struct Fields(pub(super) Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; `None` when absent or empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`.
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// Whether a checkbox `name` was ticked.
    pub(super) fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A state-changing form from a signed-in browser of this origin, with
/// the session's CSRF token. Every POST handler but sign-in takes one, so
/// none can forget the checks.
pub(super) struct Checked {
    pub(super) signed: Signed,
    pub(super) fields: Fields,
}

impl FromRequest<Ui> for Checked {
    type Rejection = Response;

    async fn from_request(request: Request, ui: &Ui) -> Result<Self, Response> {
        if !same_origin(ui, request.headers()) {
            return Err(refused("the form did not come from this site"));
        }
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, ui)
            .await
            .map_err(IntoResponse::into_response)?;
        let request = Request::from_parts(parts, body);
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, ui)
            .await
            .map_err(|e| page::error_page(e.status(), &e.body_text()))?;
        let fields = Fields(pairs);
        let sent = fields.get("csrf").unwrap_or_default();
        if !crate::secrets::ct_eq(sent.as_bytes(), signed.session.csrf.as_bytes()) {
            return Err(refused(
                "the form's CSRF token is missing or stale; reload the page",
            ));
        }
        Ok(Checked { signed, fields })
    }
}

/// 403 with a page saying why.
fn refused(why: &str) -> Response {
    page::error_page(StatusCode::FORBIDDEN, why)
}

/// Whether a form posted to sign-in came from this origin (it has no
/// session, hence no CSRF token yet; SameSite=Strict and this check stop
/// a foreign page from signing a browser in to its own credential).
pub(super) fn sign_in_allowed(ui: &Ui, headers: &HeaderMap) -> bool {
    same_origin(ui, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_cookies_are_read_exactly() {
        assert_eq!(origin_of("http://a:1/ui/x?y"), "http://a:1");
        assert_eq!(origin_of("https://a"), "https://a");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; hookrelay_session=abc"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "hookrelay"), None);
    }
}
