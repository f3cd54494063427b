//! `ApiError`, the one error answer of every route: a status and the body
//! `{"error": "<code>", "message": "<sentence>"}` (DESIGN §3), plus extractor
//! wrappers so axum's own rejections take the same shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// Seconds for a `Retry-After` header (429).
    pub(crate) retry_after: Option<u64>,
    /// Realm for a `WWW-Authenticate: Basic` challenge (401 on basic auth).
    pub(crate) basic_challenge: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            basic_challenge: false,
        }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid credentials",
        )
    }

    /// Anything outside the caller's reach is "not found", never 403, so
    /// existence does not leak across tenants.
    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub(crate) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the store is unavailable; nothing was accepted, try again",
        )
    }

    pub(crate) fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry after {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    fn is_own_failure(&self) -> bool {
        self.status == StatusCode::INTERNAL_SERVER_ERROR
            || (self.code == "unavailable" && self.retry_after.is_none())
    }
}

/// Every error answer: a machine code and a human sentence (DESIGN §3).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    /// The machine code: `invalid_request`, `not_found`, `unauthorized`, ...
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The relay's own failures (a bug, a store that does not answer) are
        // errors, which the binary may report (Sentry); a kill switch, an
        // overload answered with Retry-After or a slow destination is the
        // relay working as configured.
        if self.is_own_failure() {
            tracing::error!(status = %self.status, code = self.code, message = %self.message, "request failed");
        } else if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.basic_challenge {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"hookrelay\""),
            );
        }
        response
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NotFound => ApiError::not_found("object"),
            store::Error::Conflict(field) => ApiError::conflict(format!("{field} already exists")),
            store::Error::Duplicate => ApiError::new(
                StatusCode::CONFLICT,
                "replay",
                "this delivery id was already accepted",
            ),
            store::Error::Unavailable(_) => ApiError::unavailable(),
            store::Error::Corrupt(msg) => {
                ApiError::internal(format!("stored data is corrupt: {msg}"))
            }
        }
    }
}

impl From<model::ValidationError> for ApiError {
    fn from(e: model::ValidationError) -> Self {
        ApiError::invalid_request(e.to_string())
    }
}

/// The fallback route: JSON 404 instead of axum's empty one.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// Middleware: axum answers a known path with the wrong method by an empty
/// 405; give it the contract's JSON body, keeping its `Allow` header.
pub(crate) async fn json_method_not_allowed(
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response.headers().get(http::header::ALLOW).cloned();
    let mut json = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method",
    )
    .into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(http::header::ALLOW, allow);
    }
    json
}

/// `axum::Json` whose rejections are [`ApiError`]s naming what is wrong.
pub(crate) struct Json<T>(pub(crate) T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// The answer to a JSON body axum could not take (wrong content type, not
/// JSON, not the expected shape).
pub(crate) fn json_rejection(rejection: &axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::invalid_request(redact_strings(&rejection.body_text()))
}

/// A deserialisation error message with the string values it quotes taken
/// out: serde says `invalid type: string "hunter2", expected a sequence`,
/// and the value may be a secret put in the wrong field.
pub(crate) fn redact_strings(message: &str) -> String {
    const MARK: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        out.push_str("a string");
        // serde quotes with Debug formatting: skip to the first unescaped
        // closing quote.
        let quoted = &rest[at + MARK.len()..];
        let mut escaped = false;
        let mut end = quoted.len();
        for (i, c) in quoted.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` whose rejections (say, bad percent-encoding) are
/// [`ApiError`]s: anything in a path that does not decode names nothing.
pub(crate) struct Path<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(_) => Err(ApiError::not_found("route")),
        }
    }
}

/// `axum::extract::Query` whose rejections are [`ApiError`]s.
pub(crate) struct Query<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::invalid_request(redact_strings(
                &rejection.body_text(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_are_redacted_from_messages() {
        assert_eq!(
            redact_strings(r#"secrets: invalid type: string "hunter2", expected a sequence"#),
            "secrets: invalid type: a string, expected a sequence"
        );
        assert_eq!(
            redact_strings(r#"x: string "a \"quoted\" one" and string "b""#),
            "x: a string and a string"
        );
        assert_eq!(
            redact_strings(r#"unterminated string "abc"#),
            "unterminated a string"
        );
        assert_eq!(
            redact_strings("unknown field `colour`"),
            "unknown field `colour`"
        );
    }
}
