//! The table: one entry per route the routers declare (the server's tests
//! compare the two). Keep it in the order of DESIGN §3.

use utoipa::openapi::path::HttpMethod::{Delete, Get, Options, Patch, Post, Put};

use super::{op, Doc, ANY};
use crate::api::bodies as b;
use crate::api::views as v;
use crate::ingest::Received;
use crate::ops::{Health, Ready};

/// Every route.
pub(super) fn describe(doc: &mut Doc) {
    ingest(doc);
    events(doc);
    admin(doc);
    tenants(doc);
    agents(doc);
    channels(doc);
    socket(doc);
    tunnels(doc);
    operations(doc);
}

const INPUT_ID: &str = "the input's id (a UUID)";
const BUCKET: &str = "a bucket's id or name";
const TENANT: &str = "a tenant's id";

fn ingest(doc: &mut Doc) {
    let webhook = || {
        op("Send a webhook to an input")
            .says(
                "Any method. The path suffix and query are kept and appended to the output's \
                 URL. An unknown input answers as a known one (200, empty) so inputs cannot be \
                 enumerated. The answer follows the input's response policy.",
            )
            .path_param("input_id", INPUT_ID)
            .raw_body("the webhook, as the provider sends it")
            .empty(200, "accepted (default policy), or an unknown input")
            .answer_as(
                504,
                "application/json",
                "`destination_timeout` (wait policy)",
            )
            .errors(&[400, 401, 409, 413, 415, 429, 503])
    };
    doc.add(ANY, "/v1/webhooks/{input_id}", webhook());
    doc.add(
        ANY,
        "/v1/webhooks/{input_id}/{rest}",
        webhook().path_param("rest", "kept and appended to the output URL"),
    );
    let named = |tenant: bool| {
        let o = op("Send a webhook to a named (Radarboard-style) input")
            .path_param("name", "the input's name")
            .raw_body("the webhook, as the provider sends it")
            .answer::<Received>(200, "accepted")
            .errors(&[400, 401, 404, 409, 413, 415, 429, 503]);
        if tenant {
            o.path_param("tenant", TENANT)
        } else {
            o.says("An input of the `default` tenant.")
        }
    };
    doc.add(&[Post], "/api/webhooks/{name}", named(false));
    doc.add(&[Post], "/api/t/{tenant}/webhooks/{name}", named(true));
}

fn events(doc: &mut Doc) {
    let poll = || {
        op("Poll events received since a time (Radarboard)")
            .says(
                "Bearer: a poll token or the tenant's poll secret. A bare array, oldest first; \
                 `X-Relay-Timestamp` is the `since` of the next poll. 20 / min per client IP.",
            )
            .bearer()
            .query::<b::PollQuery>()
            .answer_list::<v::EventOut>(200, "the events")
            .errors(&[400, 401, 429])
    };
    let preflight =
        || op("CORS preflight of the poll").empty(204, "CORS headers for the allowed origin");
    doc.add(&[Get], "/api/events", poll());
    doc.add(&[Options], "/api/events", preflight());
    doc.add(
        &[Get],
        "/api/t/{tenant}/events",
        poll().path_param("tenant", TENANT),
    );
    doc.add(
        &[Options],
        "/api/t/{tenant}/events",
        preflight().path_param("tenant", TENANT),
    );
    doc.add(
        &[Get],
        "/v1/events",
        op("Read events by cursor")
            .says(
                "Exactly once for a careful client: pass `next` as `after`. `wait` long-polls \
                 up to 60 s for the first matching event. `order=desc` reads newest first \
                 instead: pass `next` as `before` for older pages (`after` and `wait` are \
                 refused with it). Filters are answered by a bounded \
                 scan (5,000 events and 64 MiB of bodies per request): `next` is the last \
                 event examined, so a page may be empty with a `next` to continue from.",
            )
            .bearer()
            .query::<b::EventListQuery>()
            .answer::<v::EventPage>(
                200,
                "a page of events, oldest first (newest first with order=desc)",
            )
            .errors(&[400, 401, 404]),
    );
    doc.add(
        &[Get],
        "/v1/events/{event}",
        op("Read one event with its deliveries")
            .bearer()
            .path_param("event", "the event's id")
            .answer::<v::EventDetail>(200, "the event")
            .errors(&[401, 404]),
    );
    doc.add(
        &[Post],
        "/v1/events/{event}/resend",
        op("Send an event again")
            .says("To every output, or to `output` only.")
            .bearer()
            .path_param("event", "the event's id")
            .query::<b::ResendQuery>()
            .answer::<v::Resent>(202, "the deliveries reset to pending")
            .errors(&[401, 404]),
    );
    doc.add(
        &[Post],
        "/v1/events/resend",
        op("Send again every event a filter matches")
            .says(
                "The filters of `GET /v1/events`, oldest first, at most 1,000 events per call \
                 within the same scan bound; `next` (null when done) is the `after` of the \
                 next call.",
            )
            .bearer()
            .body::<b::ResendBody>()
            .answer::<v::ResentMatching>(202, "how many events were resent")
            .errors(&[400, 401, 404]),
    );
    doc.add(
        &[Get],
        "/v1/buckets/{bucket}/stream",
        op("Follow a bucket's events live (Server-Sent Events)")
            .says("Each event is an SSE `webhook` event whose data is an event as `GET /v1/events/{event}` shows it (without deliveries) and whose id is the event id; `Last-Event-ID` resumes after it, within retention.")
            .bearer()
            .path_param("bucket", BUCKET)
            .answer_as(200, "text/event-stream", "the stream")
            .errors(&[401, 404]),
    );
}

fn admin(doc: &mut Doc) {
    doc.add(
        &[Get],
        "/v1/buckets",
        op("List buckets")
            .bearer()
            .answer::<v::BucketList>(200, "the tenant's buckets")
            .errors(&[401]),
    );
    doc.add(
        &[Post],
        "/v1/buckets",
        op("Create a bucket")
            .bearer()
            .body::<b::BucketBody>()
            .answer::<v::BucketOut>(201, "the bucket")
            .errors(&[400, 401, 409]),
    );
    one_object::<b::BucketPatch, v::BucketOut>(doc, "/v1/buckets/{bucket}", "bucket", BUCKET);
    doc.add(
        &[Get],
        "/v1/buckets/{bucket}/inputs",
        op("List a bucket's inputs")
            .bearer()
            .path_param("bucket", BUCKET)
            .answer::<v::InputList>(200, "the inputs")
            .errors(&[401, 404]),
    );
    doc.add(
        &[Post],
        "/v1/buckets/{bucket}/inputs",
        op("Create an input")
            .says("The answer shows the secrets this once.")
            .bearer()
            .path_param("bucket", BUCKET)
            .body::<b::InputBody>()
            .answer::<v::InputCreated>(201, "the input, with its URL and secrets")
            .errors(&[400, 401, 404, 409]),
    );
    one_object::<b::InputPatch, v::InputOut>(doc, "/v1/inputs/{input}", "input", INPUT_ID);
    doc.add(
        &[Get],
        "/v1/buckets/{bucket}/outputs",
        op("List a bucket's outputs")
            .bearer()
            .path_param("bucket", BUCKET)
            .answer::<v::OutputList>(200, "the outputs")
            .errors(&[401, 404]),
    );
    doc.add(
        &[Post],
        "/v1/buckets/{bucket}/outputs",
        op("Create an output")
            .bearer()
            .path_param("bucket", BUCKET)
            .body::<b::OutputBody>()
            .answer::<v::OutputOut>(201, "the output")
            .errors(&[400, 401, 404]),
    );
    one_object::<b::OutputPatch, v::OutputOut>(
        doc,
        "/v1/outputs/{output}",
        "output",
        "the output's id",
    );
    doc.add(
        &[Get],
        "/v1/tokens",
        op("List tokens")
            .bearer()
            .answer::<v::TokenList>(200, "the tenant's tokens")
            .errors(&[401]),
    );
    doc.add(
        &[Post],
        "/v1/tokens",
        op("Create a token")
            .says("The answer shows the secret and the bearer string this once; only a bcrypt hash is kept.")
            .bearer()
            .body::<b::TokenBody>()
            .answer::<v::TokenIssued>(201, "the token and its secret")
            .errors(&[400, 401, 404]),
    );
    one_object::<b::TokenPatch, v::TokenOut>(doc, "/v1/tokens/{key}", "token", "the token's key");
    functions(doc);
    doc.add(
        &[Post],
        "/v1/tokens/{key}/rotate",
        op("Replace a token's secret")
            .says("The old secret stops working at once; the answer shows the new one, once.")
            .bearer()
            .path_param("key", "the token's key")
            .answer::<v::TokenIssued>(200, "the token and its new secret")
            .errors(&[401, 404]),
    );
}

/// Functions (DESIGN §9).
fn functions(doc: &mut Doc) {
    const FUNCTION: &str = "the function's id (`fn_...`)";
    doc.add(
        &[Get],
        "/v1/functions",
        op("List functions")
            .bearer()
            .answer::<b::FunctionList>(200, "the tenant's functions")
            .errors(&[401]),
    );
    doc.add(
        &[Post],
        "/v1/functions",
        op("Create a function")
            .says(
                "A Luau script (≤ 64 KiB) that inputs and outputs name by `functionId`. A source \
                 that does not compile is refused naming the line. Config values are secrets: \
                 sealed at rest, never shown (only their keys). At most 100 per tenant \
                 (409 `limit_reached`).",
            )
            .bearer()
            .body::<b::FunctionBody>()
            .answer::<b::FunctionOut>(201, "the function")
            .errors(&[400, 401, 409]),
    );
    one_object::<b::FunctionPatch, b::FunctionOut>(
        doc,
        "/v1/functions/{function}",
        "function",
        FUNCTION,
    );
    doc.add(
        &[Post],
        "/v1/functions/{function}/invoke",
        op("Run a function on a sample request")
            .says(
                "Runs it as an input function (or, with `output: true`, an output function) \
                 on the request given and answers what it did; nothing is stored or sent.",
            )
            .bearer()
            .path_param("function", FUNCTION)
            .body::<b::InvokeBody>()
            .answer::<b::InvokeOut>(200, "the outcome")
            .errors(&[400, 401, 404]),
    );
}

/// `GET`, `PATCH` and `DELETE` of one object at `path` (one `{name}`).
fn one_object<P: utoipa::ToSchema, V: utoipa::ToSchema>(
    doc: &mut Doc,
    path: &str,
    what: &str,
    id: &str,
) {
    let param = path
        .rsplit('{')
        .next()
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or_default();
    doc.add(
        &[Get],
        path,
        op(&format!("Read a {what}"))
            .bearer()
            .path_param(param, id)
            .answer::<V>(200, what)
            .errors(&[401, 404]),
    );
    doc.add(
        &[Patch],
        path,
        op(&format!("Change a {what}"))
            .says("Fields absent from the body are kept; the result is checked as a create.")
            .bearer()
            .path_param(param, id)
            .body::<P>()
            .answer::<V>(200, what)
            .errors(&[400, 401, 404, 409]),
    );
    doc.add(
        &[Delete],
        path,
        op(&format!("Delete a {what}"))
            .bearer()
            .path_param(param, id)
            .empty(204, "deleted")
            .errors(&[401, 404]),
    );
}

fn tenants(doc: &mut Doc) {
    let admin = "The administrator only (admin token or admin secret).";
    doc.add(
        &[Get],
        "/api/tenants",
        op("List tenants")
            .says(admin)
            .bearer()
            .answer::<v::TenantList>(200, "every tenant")
            .errors(&[401]),
    );
    doc.add(
        &[Post],
        "/api/tenants",
        op("Create a tenant (Radarboard provisioning)")
            .says(admin)
            .bearer()
            .body::<b::TenantBody>()
            .answer::<v::TenantCreated>(201, "the tenant and its poll secret, shown once")
            .errors(&[400, 401, 409]),
    );
    let path = "/api/tenants/{tenant}";
    doc.add(
        &[Get],
        path,
        op("Read a tenant")
            .says(admin)
            .bearer()
            .path_param("tenant", TENANT)
            .answer::<v::TenantOut>(200, "the tenant")
            .errors(&[401, 404]),
    );
    doc.add(
        &[Patch],
        path,
        op("Change a tenant's label or kill switch")
            .says(admin)
            .bearer()
            .path_param("tenant", TENANT)
            .body::<b::TenantPatch>()
            .answer::<v::TenantOut>(200, "the tenant")
            .errors(&[400, 401, 404]),
    );
    doc.add(
        &[Delete],
        path,
        op("Delete a tenant and every byte of it")
            .says(admin)
            .bearer()
            .path_param("tenant", TENANT)
            .empty(204, "deleted")
            .errors(&[400, 401, 404]),
    );
    doc.add(
        &[Put],
        "/api/tenants/{tenant}/secrets",
        op("Set the secrets of a tenant's named inputs")
            .says("Each value may be a comma-separated list, newest first. The answer names the integrations, never the secrets.")
            .bearer()
            .path_param("tenant", TENANT)
            .body::<b::SecretsBody>()
            .answer::<v::SecretsSet>(200, "the integrations that now have secrets")
            .errors(&[400, 401, 404]),
    );
}

fn agents(doc: &mut Doc) {
    doc.add(
        &[Get],
        "/v1/agents",
        op("List the agents connected now")
            .bearer()
            .answer::<v::AgentList>(200, "the agents")
            .errors(&[401]),
    );
    doc.add(
        &[Get],
        "/v1/agent/ws",
        op("Agent protocol over WebSocket")
            .says("Upgrades to a WebSocket whose binary frames carry the agent protocol's protobuf messages (DESIGN §5); credentials travel in `Hello`.")
            .empty(101, "switching protocols"),
    );
    doc.add(
        &[Post],
        "/hookrelay.v1.Agent/Connect",
        op("Agent protocol over gRPC")
            .says("The bidirectional stream `hookrelay.v1.Agent/Connect` (HTTP/2, `application/grpc`), described by the repository's `.proto`.")
            .answer_as(200, "application/grpc", "the stream"),
    );
}

fn channels(doc: &mut Doc) {
    use crate::channels::{ChannelCreated, ChannelList};
    doc.add(
        &[Post],
        "/v1/buckets/{bucket}/channels",
        op("Make a channel for smee and gosmee clients")
            .says("No body. The answer is the only one that carries the channel's URLs: their random part is a read capability on the bucket's events, stored only as its SHA-256. At most 16 channels per bucket.")
            .bearer()
            .path_param("bucket", BUCKET)
            .answer::<ChannelCreated>(201, "the channel, with its URLs")
            .errors(&[400, 401, 404]),
    );
    doc.add(
        &[Get],
        "/v1/buckets/{bucket}/channels",
        op("List a bucket's channels")
            .bearer()
            .path_param("bucket", BUCKET)
            .answer::<ChannelList>(200, "the channels, without their URLs")
            .errors(&[401, 404]),
    );
    doc.add(
        &[Delete],
        "/v1/buckets/{bucket}/channels/{id}",
        op("Revoke a channel")
            .says("Its open streams end at once (on the other nodes of a cluster within 10 s) and both URLs answer 404.")
            .bearer()
            .path_param("bucket", BUCKET)
            .path_param("id", "the channel's id (`chn_...`)")
            .empty(204, "revoked")
            .errors(&[401, 404]),
    );
    doc.add(
        &[Get],
        "/smee/{cap}",
        op("A channel's events in smee.io's format (smee-client)")
            .says("No credentials: the URL is the capability. Unnamed SSE events whose data is one JSON object: the request's lower-cased headers as strings, `body` (a JSON body spliced in as sent; other UTF-8 bodies as a string; `null` otherwise), `query` as an object and a numeric `timestamp`. Ids are event ids; `Last-Event-ID` resumes within the bucket's catch-up window, and a client without one that is the channel's only client resumes after the channel's cursor.")
            .path_param("cap", "the channel's capability")
            .answer_as(200, "text/event-stream", "the stream")
            .errors(&[404, 429, 503]),
    );
    doc.add(
        &[Get],
        "/smee/events/{cap}",
        op("A channel's events in gosmee's format")
            .says("As `/smee/{cap}`, but: a `{\"message\":\"ready\"}` event first, `bodyB` (the exact bytes, base64) and never `body`, a string `timestamp`, no `query`, ids `<ms>-<n>`, and a `gosmee-gap` event when `Last-Event-ID` is older than the catch-up window.")
            .path_param("cap", "the channel's capability")
            .answer_as(200, "text/event-stream", "the stream")
            .errors(&[404, 429, 503]),
    );
}

fn socket(doc: &mut Doc) {
    use crate::deliver::socket::logs::{LogBody, LogRecorded};
    doc.add(
        &[Get],
        "/v1/socket",
        op("Webhook Relay's socket server")
            .says("Upgrades to a WebSocket of JSON text frames, as Webhook Relay's socket server: `{\"action\":\"auth\",\"key\",\"secret\"}` (a `forward` agent token), `{\"action\":\"subscribe\",\"buckets\":[...]}`, then `webhook` frames (DESIGN §15) and `{\"type\":\"status\",\"status\":\"ping\"}` every 30 s, answered `{\"action\":\"pong\"}`. The sockets of one token key share the work as the agent group `socket:<key>`.")
            .empty(101, "switching protocols"),
    );
    doc.add(
        &[Put],
        "/v1/logs/{id}",
        op("Record what a socket client's destination answered")
            .says("`{id}` is a `webhook` frame's `meta.id`. Credentials: `Authorization: Basic base64(key:secret)` (Webhook Relay's form) or `Bearer <key>.<secret>`, the socket's token. The answer becomes an attempt of the delivery: `delivered` for 2xx and 3xx, else `failed` (resendable).")
            .bearer()
            .path_param("id", "the frame's `meta.id`")
            .body::<LogBody>()
            .answer::<LogRecorded>(200, "the attempt as recorded")
            .errors(&[400, 401, 404]),
    );
}

fn tunnels(doc: &mut Doc) {
    use crate::tunnel::schemas as t;
    const TUNNEL: &str = "the tunnel's id (`tun_...`)";
    doc.add(
        &[Get],
        "/v1/tunnels",
        op("List tunnels")
            .bearer()
            .answer::<t::TunnelList>(200, "the tenant's tunnels")
            .errors(&[401]),
    );
    doc.add(
        &[Post],
        "/v1/tunnels",
        op("Create a tunnel")
            .says("Names are unique on the whole server (they are public addresses): a taken name answers 409 whichever tenant holds it.")
            .bearer()
            .body::<t::CreateBody>()
            .answer::<t::TunnelView>(201, "the tunnel, with its public URLs")
            .errors(&[400, 401, 409]),
    );
    one_object::<t::PatchBody, t::TunnelView>(doc, "/v1/tunnels/{id}", "tunnel", TUNNEL);
    doc.add(
        &[Get],
        "/v1/tunnels/{id}/requests",
        op("A tunnel's recent requests on this node")
            .says("Metadata only (time, method, path without the query, status, latency, bytes, client IP), newest first, from a ring of the last 1,000.")
            .bearer()
            .path_param("id", TUNNEL)
            .query::<t::RequestsQuery>()
            .answer::<t::RequestList>(200, "the requests")
            .errors(&[401, 404]),
    );
    doc.add(
        ANY,
        "/t/{rest}",
        op("A visitor's request through a tunnel (path routing)")
            .says("`/t/{name}/...`: sent to an agent of tunnel `name` with the prefix stripped (and `X-Forwarded-Prefix: /t/{name}`); the answer is the tunnelled service's own. With `serve --tunnel-domain D`, the same for any path on host `{name}.D`. Bodies stream both ways; upgrades (WebSocket) pass through. The tunnel's auth, if any, is checked first and removed.")
            .path_param("rest", "the tunnel's name, then the path sent to the service")
            .raw_body("the request, as the service expects it")
            .answer_as(200, "*/*", "the service's answer, whatever its status")
            .errors(&[401, 404, 413, 502, 503, 504]),
    );
    doc.add(
        &[Get],
        "/v1/tunnel/ws",
        op("Tunnel agent connection over WebSocket")
            .says("Upgrades to a WebSocket whose binary frames are one byte stream: a length-prefixed `Hello`/`Welcome` (protobuf, DESIGN §5), then HTTP/2 with the relay as the client (DESIGN §10).")
            .empty(101, "switching protocols"),
    );
    doc.add(
        ANY,
        "/v1/tunnel/node/{rest}",
        op("A tunnel request carried from another node")
            .says("`/v1/tunnel/node/{tunnel id}/...`: with a shared store, a node that has none of a tunnel's agents sends the visitor's request (already routed, authorised and given its `X-Forwarded-*` headers) here, to a node that has one (`serve --node-url`). Only for the cluster's nodes: the `X-Hookrelay-Node-Key` header carries a key derived from the shared master key.")
            .path_param("rest", "the tunnel's id, then the path sent to the service")
            .raw_body("the visitor's request")
            .answer_as(200, "*/*", "the service's answer, whatever its status")
            .errors(&[401, 404, 502, 504]),
    );
    doc.add(
        &[Post],
        "/hookrelay.v1.Tunnel/Open",
        op("Tunnel agent connection over gRPC")
            .says("The bidirectional stream `hookrelay.v1.Tunnel/Open` of `TunnelChunk`s, one byte stream as over WebSocket; described by the repository's `.proto`.")
            .answer_as(200, "application/grpc", "the stream"),
    );
}

fn operations(doc: &mut Doc) {
    let health = || op("Liveness").answer::<Health>(200, "the server answers");
    doc.add(&[Get], "/api/health", health());
    doc.add(&[Get], "/healthz", health());
    doc.add(
        &[Get],
        "/readyz",
        op("Readiness: the store answers")
            .answer::<Ready>(200, "ready")
            .errors(&[503]),
    );
    doc.add(
        &[Get],
        "/metrics",
        op("Prometheus metrics").answer_as(200, "text/plain", "the metrics, text format 0.0.4"),
    );
    doc.add(
        &[Get],
        "/openapi.json",
        op("This description").answer_as(200, "application/json", "OpenAPI 3.1"),
    );
}
