//! `GET /openapi.json`: the OpenAPI 3.1 description of every route the
//! server answers, as one table (`routes`) of method, path, credentials,
//! parameters, body and answers. Bodies, queries and answers are the typed
//! request and view structs' derived schemas (utoipa), so the description
//! follows the code; the server's tests check the table against the
//! routers' source (every routed path and method is described) and parse
//! the document with an OpenAPI 3.1 parser.
//!
//! - here: the route, and `Op`, a small builder over utoipa's.
//! - `routes`: the table.
//!
//! Reads `api`'s and `ingest`'s request and view types; nothing depends on
//! it but the router that serves it.

mod routes;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, Parameter, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, Paths, Ref, RefOr,
    Required, ResponseBuilder,
};
use utoipa::{IntoParams, ToSchema};

use crate::error::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

/// The document, rendered once per process: it depends on nothing but the
/// code.
async fn document() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        // Every part is a plain value type; were it ever not to serialise,
        // answer an empty object rather than failing the route.
        describe().to_json().unwrap_or_else(|_| "{}".to_owned())
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

/// The name of the one security scheme: `Authorization: Bearer ...` with a
/// token (`<key>.<secret>`), the admin secret, or a poll secret.
const BEARER: &str = "bearer";

/// The whole description.
pub(crate) fn describe() -> OpenApi {
    let mut doc = Doc::default();
    routes::describe(&mut doc);
    let mut components = Components::new();
    components.schemas.extend(doc.schemas);
    components.security_schemes.insert(
        BEARER.to_owned(),
        RefOr::T(SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer))),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("hookrelay")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "A self-hosted webhook relay. Errors are always \
                     {\"error\": \"<code>\", \"message\": \"<sentence>\"}.",
                ))
                .build(),
        )
        .paths(doc.paths)
        .components(Some(components))
        .build()
}

/// The paths and the schemas they refer to, as the table fills them.
#[derive(Default)]
pub(crate) struct Doc {
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Doc {
    /// Describes `op` under each of `methods` at `path` (OpenAPI's
    /// `{name}` templates; axum's `{*rest}` is written `{rest}`).
    fn add(&mut self, methods: &[HttpMethod], path: &str, op: Op) {
        self.schemas.extend(op.schemas);
        let item = PathItem::from_http_methods(methods.iter().cloned(), op.operation.build());
        let mut one = Paths::new();
        one.paths.insert(path.to_owned(), item);
        self.paths.merge(one);
    }
}

/// One operation being described.
pub(crate) struct Op {
    operation: OperationBuilder,
    /// Schemas its body and answers refer to, with theirs.
    schemas: Vec<(String, RefOr<Schema>)>,
}

/// Starts an operation: `summary` is its first line.
fn op(summary: &str) -> Op {
    Op {
        operation: OperationBuilder::new().summary(Some(summary)),
        schemas: Vec::new(),
    }
}

impl Op {
    fn refer<T: ToSchema>(&mut self) -> Ref {
        self.schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(&mut self.schemas);
        Ref::from_schema_name(T::name())
    }

    /// A longer description, markdown.
    fn says(mut self, description: &str) -> Self {
        self.operation = self.operation.description(Some(description));
        self
    }

    /// Needs `Authorization: Bearer ...`.
    fn bearer(mut self) -> Self {
        self.operation = self
            .operation
            .security(SecurityRequirement::new::<_, [&str; 0], &str>(BEARER, []));
        self
    }

    /// A `{name}` of the path.
    fn path_param(mut self, name: &str, description: &str) -> Self {
        let param = Parameter::builder()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(Schema::from(
                utoipa::openapi::ObjectBuilder::new().schema_type(SchemaType::new(Type::String)),
            )));
        self.operation = self.operation.parameter(param);
        self
    }

    /// The query parameters of `Q`.
    fn query<Q: IntoParams>(mut self) -> Self {
        for param in Q::into_params(|| Some(ParameterIn::Query)) {
            self.operation = self.operation.parameter(param);
        }
        self
    }

    /// A JSON body of type `T`.
    fn body<T: ToSchema>(mut self) -> Self {
        let schema = self.refer::<T>();
        self.operation = self.operation.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(schema)).build(),
                )
                .required(Some(Required::True))
                .build(),
        ));
        self
    }

    /// A body of any bytes (the ingest routes).
    fn raw_body(mut self, description: &str) -> Self {
        self.operation = self.operation.request_body(Some(
            RequestBodyBuilder::new()
                .description(Some(description))
                .content("*/*", ContentBuilder::new().build())
                .build(),
        ));
        self
    }

    /// Answers `status` with a JSON `T`.
    fn answer<T: ToSchema>(mut self, status: u16, description: &str) -> Self {
        let schema = self.refer::<T>();
        let content = ContentBuilder::new().schema(Some(schema)).build();
        self.respond(
            status,
            ResponseBuilder::new()
                .description(description)
                .content("application/json", content),
        )
    }

    /// Answers `status` with a JSON array of `T`.
    fn answer_list<T: ToSchema>(mut self, status: u16, description: &str) -> Self {
        let item = self.refer::<T>();
        let array = ArrayBuilder::new().items(item).build();
        let content = ContentBuilder::new().schema(Some(array)).build();
        self.respond(
            status,
            ResponseBuilder::new()
                .description(description)
                .content("application/json", content),
        )
    }

    /// Answers `status` with content of `content_type` that no schema
    /// describes (metrics text, an event stream, a relayed answer).
    fn answer_as(self, status: u16, content_type: &str, description: &str) -> Self {
        let response = ResponseBuilder::new()
            .description(description)
            .content(content_type, ContentBuilder::new().build());
        self.respond(status, response)
    }

    /// Answers `status` with no body.
    fn empty(self, status: u16, description: &str) -> Self {
        self.respond(status, ResponseBuilder::new().description(description))
    }

    /// The error answers it may give, each `{"error", "message"}`.
    fn errors(mut self, statuses: &[u16]) -> Self {
        let schema = self.refer::<ErrorBody<'static>>();
        for &status in statuses {
            let content = ContentBuilder::new().schema(Some(schema.clone())).build();
            let response = ResponseBuilder::new()
                .description(error_meaning(status))
                .content("application/json", content);
            self = self.respond(status, response);
        }
        self
    }

    fn respond(mut self, status: u16, response: ResponseBuilder) -> Self {
        self.operation = self
            .operation
            .response(status.to_string(), response.build());
        self
    }
}

/// What an error status means on this API (DESIGN §3).
fn error_meaning(status: u16) -> &'static str {
    match status {
        400 => "`invalid_request`: a bad body or query; the message names the field",
        401 => "`unauthorized`: missing or invalid credentials",
        404 => "`not_found`: absent, or outside the caller's tenant (never 403)",
        409 => "`conflict`: a name or id already exists",
        413 => "`payload_too_large`",
        415 => "`unsupported_media_type`",
        429 => "`rate_limited`, with `Retry-After` in seconds",
        502 => "`tunnel_offline` (no agent serves the tunnel), `tunnel_error` (the agent went away) or the agent's `destination_unreachable`",
        503 => "`unavailable` (the store) or `disabled` (a kill switch)",
        504 => "`destination_timeout`: no answer head within 60 s",
        _ => "an error",
    }
}

/// The methods an `ANY` route is described under.
const ANY: &[HttpMethod] = &[
    HttpMethod::Get,
    HttpMethod::Post,
    HttpMethod::Put,
    HttpMethod::Patch,
    HttpMethod::Delete,
];
