//! The gRPC transport: service `hookrelay.v1.Agent`, method `Connect`, a
//! bidirectional stream of `AgentMessage` / `ServerMessage`, served on the
//! relay's one port beside the HTTP routes (HTTP/2, with or without TLS).
//! Each stream's body goes through the pre-authentication meter
//! (`preauth`) before tonic decodes it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use axum::extract::ConnectInfo;
use proto::pb::agent_server::{Agent, AgentServer};
use proto::{agent_message, AgentMessage, ServerMessage};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::preauth::{self, Gate, GatedBody, Meter};
use super::session::{self, AgentLink, LinkError, LinkReader, LinkWriter};
use crate::state::AppState;

/// Messages buffered towards a gRPC agent before the session waits: the
/// session already bounds deliveries by `max_in_flight`.
const OUTBOUND_BUFFER: usize = 16;

pub(crate) struct AgentService {
    state: AppState,
}

/// The tower service mounted at `/hookrelay.v1.Agent/Connect`: tonic's
/// service behind the pre-authentication meter.
pub(crate) fn service(state: AppState) -> Metered {
    let budget = state.preauth.budget();
    let grpc = AgentServer::new(AgentService { state })
        .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);
    Metered { grpc, budget }
}

/// Gives every stream a [`Gate`] (in its extensions, for the session) and
/// meters its body with it.
#[derive(Clone)]
pub(crate) struct Metered {
    grpc: AgentServer<AgentService>,
    budget: Arc<tokio::sync::Semaphore>,
}

impl tower::Service<http::Request<axum::body::Body>> for Metered {
    type Response =
        <AgentServer<AgentService> as tower::Service<http::Request<GatedBody>>>::Response;
    type Error = Infallible;
    type Future = <AgentServer<AgentService> as tower::Service<http::Request<GatedBody>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<http::Request<GatedBody>>::poll_ready(&mut self.grpc, cx)
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let gate = Arc::new(Gate::default());
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(Arc::clone(&gate));
        let meter = Meter::new(preauth::Grpc::default(), gate, Arc::clone(&self.budget));
        let request = http::Request::from_parts(parts, GatedBody::new(body, meter));
        self.grpc.call(request)
    }
}

#[async_trait]
impl Agent for AgentService {
    type ConnectStream = Outbound;

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        // Always there (`Metered` puts it); a missing one would only mean
        // a stream that keeps the pre-authentication limits.
        let gate = request
            .extensions()
            .get::<Arc<Gate>>()
            .cloned()
            .unwrap_or_default();
        let (outbound, rx) = mpsc::channel(OUTBOUND_BUFFER);
        let link = GrpcLink {
            inbound: request.into_inner(),
            outbound,
            gate,
        };
        tokio::spawn(session::run(self.state.clone(), link, peer));
        Ok(Response::new(Outbound(rx)))
    }
}

/// The stream tonic sends to the agent. The channel carries boxed
/// messages: its first block holds [`OUTBOUND_BUFFER`]-ish slots, and a
/// `Result<ServerMessage, Status>` is ~480 bytes, most of an idle gRPC
/// agent's own memory before (massif).
pub(crate) struct Outbound(mpsc::Receiver<Box<ServerMessage>>);

impl tokio_stream::Stream for Outbound {
    type Item = Result<ServerMessage, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        self.0
            .poll_recv(cx)
            .map(|next| next.map(|message| Ok(*message)))
    }
}

struct GrpcLink {
    inbound: Streaming<AgentMessage>,
    outbound: mpsc::Sender<Box<ServerMessage>>,
    gate: Arc<Gate>,
}

async fn next_message(
    inbound: &mut Streaming<AgentMessage>,
) -> Option<Result<agent_message::Kind, LinkError>> {
    match inbound.message().await {
        Ok(Some(message)) => Some(
            message
                .kind
                .ok_or_else(|| LinkError::Protocol("a message without a kind".into())),
        ),
        Ok(None) => None,
        Err(status) => Some(Err(LinkError::Transport(status.message().to_owned()))),
    }
}

async fn send_on(
    outbound: &mpsc::Sender<Box<ServerMessage>>,
    message: ServerMessage,
) -> Result<(), LinkError> {
    outbound
        .send(Box::new(message))
        .await
        .map_err(|_| LinkError::Transport("the agent's stream is closed".into()))
}

#[async_trait]
impl AgentLink for GrpcLink {
    async fn recv(&mut self) -> Option<Result<agent_message::Kind, LinkError>> {
        next_message(&mut self.inbound).await
    }

    async fn send(&mut self, message: ServerMessage) -> Result<(), LinkError> {
        send_on(&self.outbound, message).await
    }

    fn transport(&self) -> &'static str {
        "grpc"
    }

    fn authenticated(&mut self) {
        self.gate.open();
    }

    fn split(self) -> (Box<dyn LinkReader>, Box<dyn LinkWriter>) {
        (
            Box::new(GrpcReader(self.inbound)),
            Box::new(GrpcWriter(self.outbound)),
        )
    }
}

struct GrpcReader(Streaming<AgentMessage>);

#[async_trait]
impl LinkReader for GrpcReader {
    async fn recv(&mut self) -> Option<Result<agent_message::Kind, LinkError>> {
        next_message(&mut self.0).await
    }
}

struct GrpcWriter(mpsc::Sender<Box<ServerMessage>>);

#[async_trait]
impl LinkWriter for GrpcWriter {
    async fn send(&mut self, message: ServerMessage) -> Result<(), LinkError> {
        send_on(&self.0, message).await
    }
}
