//! `GET /v1/socket`: Webhook Relay's socket server (DESIGN §15), so a
//! consumer written for it works against hookrelay by changing the host.
//!
//! It is one more agent transport: [`SocketLink`] turns the JSON text
//! frames into the session's messages (`session`), so authentication,
//! subscription, the group's pump, catch-up and heartbeats are the agents'
//! own. Webhook Relay's protocol has no acknowledgement, so every
//! `webhook` frame written is acknowledged `delivered` by the link itself;
//! `PUT /v1/logs/{id}` (`logs`) records what the client then reports. The
//! connections of one token key form the agent group `socket:<key>`.
//!
//! Before `auth` verifies, the stream is read through the agents'
//! pre-authentication meter (`preauth`: a few KiB, the same places among
//! unauthenticated sessions) and must complete `auth` and `subscribe`
//! within [`proto::HELLO_TIMEOUT`].
//!
//! Layout: `mod.rs` (the upgrade and the link), `frames` (the JSON frames,
//! pure and fuzzed), `logs` (`PUT /v1/logs/{id}`).

pub(crate) mod frames;
pub(crate) mod logs;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use model::{AgentMode, EventId, InputId, OutputId};
use proto::{agent_message::Kind as FromAgent, pb, server_message::Kind as ToAgent};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::preauth::Gate;
use super::session::{self, AgentLink, LinkError, LinkReader, LinkWriter};
use super::ws::Socket;
use crate::state::AppState;
use frames::Action;

pub(crate) use logs::router as logs_router;

/// How often the client is sent `{"type":"status","status":"ping"}`, as
/// Webhook Relay does. The session's heartbeat ticks every 15 s; every
/// other tick reaches the client, whose `pong` well within the session's
/// 45 s silence limit keeps the socket.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(30);

/// The largest frame a client may send once authenticated: its frames are
/// small actions (a `subscribe` naming 256 long buckets fits).
const MAX_CLIENT_FRAME: usize = 128 * 1024;

/// Deliveries a socket may hold unacknowledged: none stay held, as the
/// link acknowledges each frame once written.
const MAX_IN_FLIGHT: u32 = 64;

/// Input names remembered per socket (for `meta.input_name`).
const INPUT_NAMES: usize = 1024;

/// The version reported in `GET /v1/agents`.
const VERSION: &str = "webhookrelay-socket";

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let client = crate::client::client_ip(&state.config.trusted_proxies, peer, request.headers());
    let budget = state.preauth.budget();
    super::ws::accept(
        request,
        MAX_CLIENT_FRAME,
        budget,
        move |socket, gate| async move {
            let link = SocketLink {
                socket,
                gate,
                client,
                acks: VecDeque::new(),
                out: Outgoing {
                    state: state.clone(),
                    key: None,
                    buckets: HashMap::new(),
                    inputs: HashMap::new(),
                    last_ping: Instant::now(),
                },
            };
            session::run(state, link, Some(peer)).await;
        },
    )
}

/// `meta.id` of a frame, the `{id}` of `PUT /v1/logs/{id}`: the delivery's
/// event and output (its group is the token's).
pub(crate) fn delivery_ref(event: &str, output: &str) -> String {
    format!("{event}.{output}")
}

/// The event and output a `meta.id` names.
pub(crate) fn parse_delivery_ref(id: &str) -> Option<(EventId, OutputId)> {
    let (event, output) = id.split_once('.')?;
    Some((event.parse().ok()?, output.parse().ok()?))
}

/// The agent group of a token key's sockets.
pub(crate) fn group_of(key: &str) -> String {
    format!("socket:{key}")
}

/// The whole link, until the session splits it after the `Welcome`.
struct SocketLink {
    socket: Socket,
    gate: Arc<Gate>,
    client: IpAddr,
    /// Acks of frames written, for the session's next `recv`.
    acks: VecDeque<FromAgent>,
    out: Outgoing,
}

/// What turns the session's messages into frames, and the state it needs.
struct Outgoing {
    state: AppState,
    /// The token key, once `auth` verified it.
    key: Option<String>,
    /// Subscribed bucket id → name, from the `Welcome`.
    buckets: HashMap<String, String>,
    /// Input id → name, looked up on first use.
    inputs: HashMap<String, String>,
    /// When the client was last sent a ping (or the socket opened).
    last_ping: Instant,
}

/// One session message as the client sees it: the frame to write (if
/// any), the ack of a webhook frame once written, and whether the socket
/// closes after it.
#[derive(Default)]
struct Rendered {
    text: Option<String>,
    ack: Option<FromAgent>,
    close: bool,
}

async fn write<S>(sink: &mut S, text: String) -> Result<(), LinkError>
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    sink.send(Message::Text(text.into()))
        .await
        .map_err(|e| LinkError::Transport(e.to_string()))
}

/// The next client action; `None` when the socket ends. Cancel safe.
async fn next_action<S>(frames: &mut S) -> Option<Result<Action, LinkError>>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = match frames.next().await? {
            Ok(frame) => frame,
            Err(err) => return Some(Err(LinkError::Transport(err.to_string()))),
        };
        return match frame {
            Message::Text(text) => {
                Some(frames::parse(&text).map_err(|e| LinkError::Protocol(e.to_string())))
            }
            Message::Binary(_) => Some(Err(LinkError::Protocol(
                "binary frames are not part of the protocol".into(),
            ))),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Close(_) => None,
        };
    }
}

impl SocketLink {
    async fn write(&mut self, text: String) -> Result<(), LinkError> {
        write(&mut self.socket, text).await
    }

    /// The next client action; `None` when the socket ends.
    async fn action(&mut self) -> Option<Result<Action, LinkError>> {
        next_action(&mut self.socket).await
    }

    /// `auth` (verified here, so the client hears `authenticated` before
    /// it subscribes, as Webhook Relay answers), then `subscribe`: the
    /// session's `Hello`.
    async fn handshake(&mut self) -> Option<Result<FromAgent, LinkError>> {
        let (key, secret) = match self.action().await? {
            Ok(Action::Auth { key, secret }) => (key, secret),
            Ok(_) => return Some(Err(LinkError::Protocol("authenticate first".into()))),
            Err(err) => return Some(Err(err)),
        };
        let token =
            crate::auth::authenticate_agent(&self.out.state, &key, &secret, self.client).await;
        match token {
            Ok(token) if token.mode != Some(AgentMode::Tunnel) => {}
            Ok(_) => {
                return Some(Err(LinkError::Protocol(
                    "a tunnel token opens tunnels and never receives webhooks".into(),
                )))
            }
            Err(_) => return Some(Err(LinkError::Protocol("invalid key or secret".into()))),
        }
        let hello = format!("authenticated as {key}");
        if let Err(err) = self.write(frames::status("authenticated", &hello)).await {
            return Some(Err(err));
        }
        self.out.key = Some(key.clone());
        let buckets = loop {
            match self.action().await? {
                Ok(Action::Subscribe(buckets)) => break buckets.unwrap_or_default(),
                Ok(Action::Pong | Action::Other) => continue,
                Ok(Action::Auth { .. }) => {
                    return Some(Err(LinkError::Protocol("already authenticated".into())))
                }
                Err(err) => return Some(Err(err)),
            }
        };
        Some(Ok(FromAgent::Hello(pb::Hello {
            token_key: key,
            token_secret: secret,
            buckets,
            group: String::new(),
            mode: pb::Mode::Forward as i32,
            version: VERSION.into(),
            max_in_flight: MAX_IN_FLIGHT,
            tunnel: String::new(),
        })))
    }
}

impl Outgoing {
    async fn input_name(&mut self, id: &str) -> String {
        if let Some(name) = self.inputs.get(id) {
            return name.clone();
        }
        let name = match id.parse::<InputId>() {
            Ok(input) => match self.state.store.input_by_id(&input).await {
                Ok(input) => input.name.unwrap_or_default(),
                Err(_) => String::new(),
            },
            Err(_) => String::new(),
        };
        if self.inputs.len() >= INPUT_NAMES {
            self.inputs.clear();
        }
        self.inputs.insert(id.to_owned(), name.clone());
        name
    }

    async fn webhook(&mut self, d: pb::Deliver) -> Rendered {
        let event = d.event.unwrap_or_default();
        let bucket_name = self.buckets.get(&event.bucket).cloned().unwrap_or_default();
        let input_name = self.input_name(&event.input).await;
        // The socket protocol's JSON has no way to say bytes: a value that
        // is not UTF-8 goes as its lossy text (`value` of the header).
        let headers: Vec<(String, String)> = event
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        let meta = frames::Meta {
            id: delivery_ref(&event.id, &d.output_id),
            event_id: event.id,
            bucked_id: event.bucket.clone(),
            bucket_id: event.bucket,
            bucket_name,
            input_id: event.input,
            input_name,
            output_name: d.output_id,
            output_destination: d.url,
        };
        let frame = frames::webhook(meta, &headers, &event.query, &event.body, &event.method);
        Rendered {
            text: Some(frame),
            ack: Some(FromAgent::Ack(pb::Ack {
                delivery_id: d.delivery_id,
                status: pb::AckStatus::Delivered as i32,
                ..Default::default()
            })),
            close: false,
        }
    }

    /// What the client is sent for one of the session's messages.
    async fn render(&mut self, message: proto::ServerMessage) -> Rendered {
        let Some(kind) = message.kind else {
            return Rendered::default();
        };
        match kind {
            ToAgent::Welcome(welcome) => {
                self.buckets = welcome
                    .subscriptions
                    .into_iter()
                    .map(|s| (s.bucket, s.bucket_name))
                    .collect();
                let mut names: Vec<&str> = self.buckets.values().map(String::as_str).collect();
                names.sort_unstable();
                let message = format!("subscribed to buckets: {}", names.join(", "));
                Rendered {
                    text: Some(frames::status("subscribed", &message)),
                    ..Rendered::default()
                }
            }
            ToAgent::Deliver(d) => self.webhook(d).await,
            ToAgent::Ping(_) if self.last_ping.elapsed() >= PING_INTERVAL => {
                self.last_ping = Instant::now();
                Rendered {
                    text: Some(frames::ping()),
                    ..Rendered::default()
                }
            }
            ToAgent::Error(error) => {
                // Before `auth` verified, every refusal is Webhook Relay's
                // `unauthorized`; afterwards it is an error of ours.
                let status = if self.key.is_none() || error.code == "unauthorized" {
                    "unauthorized"
                } else {
                    "error"
                };
                Rendered {
                    text: Some(frames::status(status, &error.message)),
                    ack: None,
                    close: true,
                }
            }
            _ => Rendered::default(),
        }
    }
}

#[async_trait]
impl AgentLink for SocketLink {
    async fn recv(&mut self) -> Option<Result<FromAgent, LinkError>> {
        if let Some(ack) = self.acks.pop_front() {
            return Some(Ok(ack));
        }
        if self.out.key.is_none() {
            return self.handshake().await;
        }
        loop {
            return match self.action().await? {
                Ok(Action::Pong) => Some(Ok(FromAgent::Pong(pb::Pong {
                    sent_at_ms: store::clock::now_ms(),
                }))),
                // A repeated auth or subscribe changes nothing.
                Ok(Action::Auth { .. } | Action::Subscribe(_) | Action::Other) => continue,
                Err(err) => Some(Err(err)),
            };
        }
    }

    async fn send(&mut self, message: proto::ServerMessage) -> Result<(), LinkError> {
        let rendered = self.out.render(message).await;
        if let Some(text) = rendered.text {
            self.write(text).await?;
        }
        self.acks.extend(rendered.ack);
        if rendered.close {
            let _ = self.socket.close(None).await;
        }
        Ok(())
    }

    fn transport(&self) -> &'static str {
        "socket"
    }

    fn authenticated(&mut self) {
        self.gate.open();
    }

    fn group(&self) -> Option<String> {
        self.out.key.as_deref().map(group_of)
    }

    fn split(self) -> (Box<dyn LinkReader>, Box<dyn LinkWriter>) {
        let (sink, frames) = self.socket.split();
        // Unbounded in type only: the session sends at most the agent's
        // in-flight limit (64 here) of deliveries before their acks, which
        // the reader takes from here.
        let (acks_out, acks) = mpsc::unbounded_channel();
        for ack in self.acks {
            let _ = acks_out.send(ack);
        }
        let reader = SocketReader { frames, acks };
        let writer = SocketWriter {
            sink,
            acks: acks_out,
            out: self.out,
        };
        (Box::new(reader), Box::new(writer))
    }
}

/// The reading half: client actions, and the acks of frames written.
struct SocketReader {
    frames: SplitStream<Socket>,
    acks: mpsc::UnboundedReceiver<FromAgent>,
}

#[async_trait]
impl LinkReader for SocketReader {
    async fn recv(&mut self) -> Option<Result<FromAgent, LinkError>> {
        loop {
            tokio::select! {
                biased;
                Some(ack) = self.acks.recv() => return Some(Ok(ack)),
                action = next_action(&mut self.frames) => return match action? {
                    Ok(Action::Pong) => Some(Ok(FromAgent::Pong(pb::Pong {
                        sent_at_ms: store::clock::now_ms(),
                    }))),
                    // A repeated auth or subscribe changes nothing.
                    Ok(Action::Auth { .. } | Action::Subscribe(_) | Action::Other) => continue,
                    Err(err) => Some(Err(err)),
                },
            }
        }
    }
}

/// The writing half: frames, and the ack of each webhook frame written.
struct SocketWriter {
    sink: SplitSink<Socket, Message>,
    acks: mpsc::UnboundedSender<FromAgent>,
    out: Outgoing,
}

#[async_trait]
impl LinkWriter for SocketWriter {
    async fn send(&mut self, message: proto::ServerMessage) -> Result<(), LinkError> {
        let rendered = self.out.render(message).await;
        if let Some(text) = rendered.text {
            write(&mut self.sink, text).await?;
        }
        if let Some(ack) = rendered.ack {
            let _ = self.acks.send(ack);
        }
        if rendered.close {
            let _ = self.sink.close().await;
        }
        Ok(())
    }
}
