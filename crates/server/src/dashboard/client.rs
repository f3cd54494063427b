//! The JSON API, called in-process with a session's credential: the same
//! router, extractors and handlers as a bearer client over HTTP, so what a
//! token may not see or do through the API it may not through the pages.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use super::session::Session;
use crate::auth::TENANT_HEADER;

/// The largest API answer read back: an event view holds its body (up to
/// an input's 25 MiB limit) base64-encoded at worst, plus headers.
const ANSWER_LIMIT: usize = 40 * 1024 * 1024;

/// The API's router with its state applied.
pub(super) struct Api {
    router: Router,
}

/// Who calls: the session, and the browser's connection (for the bcrypt
/// budget per client address and the trusted-proxy rule).
pub(super) struct Caller<'a> {
    pub(super) session: &'a Session,
    pub(super) peer: Option<ConnectInfo<SocketAddr>>,
    pub(super) forwarded_for: Option<HeaderValue>,
}

/// A refusal by the API: its status and `{"error", "message"}`.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) code: String,
    pub(super) message: String,
}

impl Refusal {
    fn from_answer(status: StatusCode, body: &Value) -> Self {
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        Self {
            status,
            code: text("error"),
            message: text("message"),
        }
    }
}

impl Api {
    pub(super) fn new(router: Router) -> Self {
        Self { router }
    }

    /// Calls `method path` (path with its query) with an optional JSON body.
    /// A 2xx answer gives its JSON (`Null` when empty, as for 204).
    pub(super) async fn call(
        &self,
        caller: &Caller<'_>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Refusal> {
        let credential = format!("Bearer {}", caller.session.credential.expose());
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, credential)
            .header(TENANT_HEADER, caller.session.tenant.as_str());
        if let Some(value) = &caller.forwarded_for {
            request = request.header("x-forwarded-for", value.clone());
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).map_err(|e| Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request".into(),
            message: e.to_string(),
        })?;
        if let Some(peer) = caller.peer {
            request.extensions_mut().insert(peer);
        }
        let answer = match self.router.clone().oneshot(request).await {
            Ok(answer) => answer,
            Err(never) => match never {},
        };
        let status = answer.status();
        let bytes = axum::body::to_bytes(answer.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|_| Refusal {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal".into(),
                message: "the answer was too large to show".into(),
            })?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(json)
        } else {
            Err(Refusal::from_answer(status, &json))
        }
    }

    pub(super) async fn get(&self, caller: &Caller<'_>, path: &str) -> Result<Value, Refusal> {
        self.call(caller, Method::GET, path, None).await
    }
}
