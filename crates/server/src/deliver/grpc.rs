//! The gRPC transport: service `hookrelay.v1.Agent`, method `Connect`, a
//! bidirectional stream of `AgentMessage` / `ServerMessage`, served on the
//! relay's one port beside the HTTP routes (HTTP/2, with or without TLS).

use std::net::SocketAddr;

use async_trait::async_trait;
use axum::extract::ConnectInfo;
use proto::pb::agent_server::{Agent, AgentServer};
use proto::{agent_message, AgentMessage, ServerMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::session::{self, AgentLink, LinkError};
use crate::state::AppState;

/// Messages buffered towards a gRPC agent before the session waits: the
/// session already bounds deliveries by `max_in_flight`.
const OUTBOUND_BUFFER: usize = 16;

pub(crate) struct AgentService {
    state: AppState,
}

/// The tower service mounted at `/hookrelay.v1.Agent/Connect`.
pub(crate) fn service(state: AppState) -> AgentServer<AgentService> {
    AgentServer::new(AgentService { state })
        .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(proto::MAX_MESSAGE_BYTES)
}

#[async_trait]
impl Agent for AgentService {
    type ConnectStream = ReceiverStream<Result<ServerMessage, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let (outbound, rx) = mpsc::channel(OUTBOUND_BUFFER);
        let link = GrpcLink {
            inbound: request.into_inner(),
            outbound,
        };
        tokio::spawn(session::run(self.state.clone(), link, peer));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct GrpcLink {
    inbound: Streaming<AgentMessage>,
    outbound: mpsc::Sender<Result<ServerMessage, Status>>,
}

#[async_trait]
impl AgentLink for GrpcLink {
    async fn recv(&mut self) -> Option<Result<agent_message::Kind, LinkError>> {
        match self.inbound.message().await {
            Ok(Some(message)) => Some(
                message
                    .kind
                    .ok_or_else(|| LinkError::Protocol("a message without a kind".into())),
            ),
            Ok(None) => None,
            Err(status) => Some(Err(LinkError::Transport(status.message().to_owned()))),
        }
    }

    async fn send(&mut self, message: ServerMessage) -> Result<(), LinkError> {
        self.outbound
            .send(Ok(message))
            .await
            .map_err(|_| LinkError::Transport("the agent's stream is closed".into()))
    }

    fn transport(&self) -> &'static str {
        "grpc"
    }
}
