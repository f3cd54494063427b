//! Entry points for the targets in `fuzz/`, not an API (hidden from the
//! docs): the server's own parsers of untrusted input, called the way their
//! routes call them, so the targets duplicate no logic.
//!
//! - [`create`] and [`Object::patch`]: the admin API's JSON bodies, parsed
//!   by axum's `Json` and checked as the create and PATCH routes do.
//! - [`ingest_request`]: what the ingest pipeline reads from a request's
//!   path, query and headers besides the provider's scheme (path suffix,
//!   bucket auth, the query and headers it stores, the client address).
//! - [`http1_framing`]: the HTTP/1 framing guard in front of hyper.
//! - [`tunnel_route`]: which tunnel a public request names (Host, absolute
//!   target, `/t/{name}`), as the tunnel routes decide it.
//! - [`socket_frame`]: a Webhook Relay socket client's frame (`/v1/socket`);
//!   [`channel_messages`]: an event in the smee and gosmee formats, and a
//!   gosmee `Last-Event-ID`.
//! - [`invoke_body`]: the sample request of a function's `invoke`.

use std::net::{IpAddr, SocketAddr};

use model::{BucketAuth, BucketId, InputId, OutputId, Secret, TenantId};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::api::bodies;
use crate::api::views::{BucketOut, InputOut, OutputOut};
use crate::error::ApiError;

/// The public URL views are rendered with.
const PUBLIC_URL: &str = "https://relay.example";

/// Which body a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminBody {
    /// `POST /v1/buckets`.
    Bucket,
    /// `POST /v1/buckets/{id}/inputs`.
    Input,
    /// `POST /v1/buckets/{id}/outputs`.
    Output,
    /// `POST /v1/tokens`, by a tenant token (not the administrator).
    Token,
    /// `PATCH /v1/tokens/{key}`.
    TokenPatch,
    /// `POST /api/tenants`.
    Tenant,
    /// `PATCH /api/tenants/{id}`.
    TenantPatch,
    /// `PUT /api/tenants/{id}/secrets`.
    TenantSecrets,
}

/// A refused body, as the route answers it.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// The `error` field of the body.
    pub code: &'static str,
    /// The `message` field of the body.
    pub message: String,
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused {
            status: e.status.as_u16(),
            code: e.code,
            message: e.message,
        }
    }
}

/// What an accepted body became.
#[derive(Debug, Clone)]
pub enum Object {
    /// A bucket, as created or patched.
    Bucket(model::Bucket),
    /// An input, as created or patched.
    Input(model::Input),
    /// An output, as created or patched.
    Output(model::Output),
    /// Bodies whose route needs the store to go further: what the checks
    /// that need none made of them.
    Checked(Value),
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    axum::Json::<T>::from_bytes(body)
        .map(|axum::Json(value)| value)
        .map_err(|rejection| crate::error::json_rejection(&rejection))
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// Parses and checks `body` as the route for `kind` does before it
/// touches the store.
pub fn create(kind: AdminBody, body: &[u8]) -> Result<Object, Refused> {
    Ok(match kind {
        AdminBody::Bucket => Object::Bucket(parse::<bodies::BucketBody>(body)?.into_bucket(
            BucketId::generate(),
            tenant(),
            1,
        )?),
        AdminBody::Input => Object::Input(parse::<bodies::InputBody>(body)?.into_input(
            InputId::generate(),
            tenant(),
            (BucketId::generate(), &BucketAuth::None),
            1,
        )?),
        AdminBody::Output => Object::Output(parse::<bodies::OutputBody>(body)?.into_output(
            OutputId::generate(),
            tenant(),
            BucketId::generate(),
            1,
        )?),
        AdminBody::Token => {
            let body = parse::<bodies::TokenBody>(body)?;
            let mode = bodies::check_token(&body, false)?;
            Object::Checked(json!({ "scope": body.scope, "mode": mode }))
        }
        AdminBody::TokenPatch => {
            let patch = parse::<bodies::TokenPatch>(body)?;
            Object::Checked(json!({ "buckets": patch.buckets, "description": patch.description }))
        }
        AdminBody::Tenant => {
            let (id, label) = bodies::tenant_identity(parse::<bodies::TenantBody>(body)?)?;
            Object::Checked(json!({ "id": id, "label": label }))
        }
        AdminBody::TenantPatch => {
            let patch = parse::<bodies::TenantPatch>(body)?;
            Object::Checked(json!({ "label": patch.label, "enabled": patch.enabled }))
        }
        AdminBody::TenantSecrets => {
            let body = parse::<bodies::SecretsBody>(body)?;
            let mut names = Vec::new();
            for (raw_name, list) in &body.webhook_secrets {
                let secrets = bodies::split_secrets(list);
                let (name, kind) = bodies::named_integration(raw_name, &secrets)?;
                names.push(json!({ "name": name, "integration": kind, "secrets": secrets.len() }));
            }
            Object::Checked(Value::Array(names))
        }
    })
}

impl Object {
    /// What the API shows of it (a create answer, minus the secrets echoed
    /// only then).
    pub fn view(&self) -> Value {
        let view = match self {
            Object::Bucket(b) => serde_json::to_value(BucketOut::from(b)),
            Object::Input(i) => serde_json::to_value(InputOut::new(i, PUBLIC_URL)),
            Object::Output(o) => serde_json::to_value(OutputOut::from(o)),
            Object::Checked(v) => Ok(v.clone()),
        };
        view.unwrap_or_default()
    }

    /// Everything stored, secrets included: equal values are equal objects
    /// (a view shows every field but the secrets).
    pub fn stored(&self) -> Value {
        match self {
            Object::Checked(v) => v.clone(),
            _ => json!({ "view": self.view(), "secrets": self.secrets() }),
        }
    }

    /// The secrets it holds: a bucket's password or token, an input's
    /// secrets.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Object::Bucket(b) => match &b.auth {
                BucketAuth::None => Vec::new(),
                BucketAuth::Basic { password, .. } => vec![password.expose().to_owned()],
                BucketAuth::Token { token } => vec![token.expose().to_owned()],
            },
            Object::Input(i) => i.secrets.iter().map(|s| s.expose().to_owned()).collect(),
            _ => Vec::new(),
        }
    }

    /// The same object with each secret `s` replaced by `f(s)`.
    pub fn with_secrets(&self, f: impl Fn(&str) -> String) -> Object {
        let mut changed = self.clone();
        match &mut changed {
            Object::Bucket(b) => match &mut b.auth {
                BucketAuth::None => {}
                BucketAuth::Basic { password, .. } => *password = Secret::new(f(password.expose())),
                BucketAuth::Token { token } => *token = Secret::new(f(token.expose())),
            },
            Object::Input(i) => {
                for s in &mut i.secrets {
                    *s = Secret::new(f(s.expose()));
                }
            }
            _ => {}
        }
        changed
    }

    /// `PATCH` of this object with `patch`, as its route does it; objects
    /// without a PATCH route answer themselves.
    pub fn patch(&self, patch: &[u8]) -> Result<Object, Refused> {
        Ok(match self {
            Object::Bucket(b) => Object::Bucket(parse::<bodies::BucketPatch>(patch)?.apply(b)?),
            Object::Input(i) => {
                Object::Input(parse::<bodies::InputPatch>(patch)?.apply(i, &BucketAuth::None)?)
            }
            Object::Output(o) => Object::Output(parse::<bodies::OutputPatch>(patch)?.apply(o)?),
            Object::Checked(_) => self.clone(),
        })
    }
}

/// What the ingest pipeline made of one request, before the provider's
/// scheme and the store.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The path after `/v1/webhooks/{input_id}`, encoding kept.
    pub suffix: String,
    /// Whether the bucket's auth (step 6) let it through.
    pub authorized: bool,
    /// The query as stored and forwarded (the bucket's `token` removed).
    pub stored_query: String,
    /// The headers as stored and forwarded.
    pub stored_headers: Vec<(String, Vec<u8>)>,
    /// The address rate limits count against.
    pub client_ip: IpAddr,
}

/// Runs the ingest pipeline's own request parsers on `uri` and `headers`
/// for a bucket with `auth`, from `peer`, behind `trusted` proxies.
pub fn ingest_request(
    auth: &BucketAuth,
    trusted: &[IpAddr],
    peer: SocketAddr,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> Ingested {
    let query = uri.query().unwrap_or("");
    Ingested {
        suffix: crate::ingest::raw_suffix(uri.path()),
        authorized: crate::ingest::bucket_auth::check(auth, headers, query).is_ok(),
        stored_query: crate::ingest::bucket_auth::strip_query_token(query),
        stored_headers: crate::ingest::stored_headers(headers, matches!(auth, BucketAuth::None)),
        client_ip: crate::client::client_ip(trusted, peer, headers),
    }
}

/// Which tunnel a request for `target` with `host` names under `domain`:
/// `Some((name, path_and_query, by_host))`, or `None` when it is not a
/// tunnel's (the relay's own routes answer, or `unknown_tunnel`). Routes
/// exactly as the server does: host routing first, then `/t/{name}`.
pub fn tunnel_route(
    target: &http::Uri,
    host: Option<&str>,
    domain: &str,
) -> Option<(String, String, bool)> {
    use crate::tunnel::route;
    let mut headers = http::HeaderMap::new();
    if let Some(value) = host.and_then(|h| http::HeaderValue::from_str(h).ok()) {
        headers.insert(http::header::HOST, value);
    }
    if let Some(host) = route::request_host(target, &headers) {
        if let Some(found) = route::by_host(&host, domain, target) {
            let t = found?;
            return Some((t.name, t.path_and_query.as_str().to_owned(), true));
        }
    }
    let t = route::by_path(target)?;
    Some((t.name, t.path_and_query.as_str().to_owned(), false))
}

/// The HTTP/1 framing guard (`framing`) fed `bytes` in pieces of `piece`
/// bytes, as socket reads would: how many bytes reach hyper, and whether
/// the connection goes on (`"go"`), waits or stops (`"stop"`) or fails
/// (`"refuse"`).
pub fn http1_framing(bytes: &[u8], piece: usize) -> (usize, &'static str) {
    let (passed, verdict) = crate::framing::feed_in_pieces(bytes, piece);
    let verdict = match verdict {
        crate::framing::Verdict::Go => "go",
        crate::framing::Verdict::Stop => "stop",
        crate::framing::Verdict::Refuse => "refuse",
    };
    (passed, verdict)
}

/// A Webhook Relay socket client's frame, as `GET /v1/socket` parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAction {
    Auth {
        key: String,
        secret: String,
    },
    /// `None`: every bucket the token may read.
    Subscribe(Option<Vec<String>>),
    Pong,
    Other,
}

/// Parses one text frame as the socket server does; `Err` is the refusal
/// it would send.
pub fn socket_frame(text: &str) -> Result<SocketAction, String> {
    use crate::deliver::socket::frames::{self, Action};
    Ok(match frames::parse(text).map_err(|e| e.to_string())? {
        Action::Auth { key, secret } => SocketAction::Auth { key, secret },
        Action::Subscribe(buckets) => SocketAction::Subscribe(buckets),
        Action::Pong => SocketAction::Pong,
        Action::Other => SocketAction::Other,
    })
}

/// The bucket names one `subscribe` may carry at most.
pub const SOCKET_MAX_BUCKETS: usize = crate::deliver::socket::frames::MAX_BUCKETS;

/// A stored event with these headers, query and body in a channel's two
/// formats: `(smee data, gosmee data, gosmee id)`; and the `Last-Event-ID`
/// parse of `last_event_id` as the gosmee stream reads it.
pub fn channel_messages(
    headers: Vec<(String, String)>,
    query: &str,
    body: &[u8],
    last_event_id: &str,
) -> (String, String, String, Option<(u64, u64)>) {
    use crate::channels::format;
    let event = model::Event {
        id: model::EventId::floor_at(1_700_000_000_000),
        tenant: TenantId::default_tenant(),
        bucket: BucketId::generate(),
        input: InputId::generate(),
        integration: None,
        received_at: 1_700_000_000_000,
        method: "POST".into(),
        path: String::new(),
        query: Some(query.to_owned()),
        headers: Some(
            headers
                .into_iter()
                .map(|(n, v)| (n, v.into_bytes()))
                .collect(),
        ),
        body: model::EventBody::Stored(body.to_vec()),
        client_ip: "127.0.0.1".into(),
        delivery_id: None,
        event_type: None,
        event_count: 1,
        verified: false,
        marks: Default::default(),
        forwarded: None,
    };
    (
        format::smee(&event),
        format::gosmee(&event),
        format::gosmee_id(event.id),
        format::parse_gosmee_id(last_event_id),
    )
}

/// The body of `POST /v1/functions/{id}/invoke`, parsed and checked as
/// the route does before it runs anything: the request the function would
/// see, and whether it runs as an output function.
pub fn invoke_body(body: &[u8]) -> Result<(functions::Request, bool), Refused> {
    parse::<bodies::InvokeBody>(body)?
        .into_request()
        .map_err(Refused::from)
}
