//! One agent's session, whatever its transport: `Hello` within
//! [`proto::HELLO_TIMEOUT`], authentication and subscription, `Welcome`,
//! then two halves until either ends: the reader hands acks to the group's
//! pump and watches the heartbeat; the writer, a task of its own, sends
//! the pump's deliveries, pings and pongs. A send that waits on a slow
//! agent (its socket full) therefore never delays reading its acks, which
//! are what frees room for the next deliveries. On any end, the pump takes
//! back what the agent held.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use async_trait::async_trait;
use model::{AgentMode, Bucket, Token};
use proto::{agent_message::Kind as FromAgent, pb, server_message::Kind as ToAgent};
use tokio::sync::mpsc;
use tokio::time::{interval, timeout, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::pump::GroupCmd;
use super::{AgentInfo, Slot};
use crate::state::AppState;

/// A transport failure or a message that breaks the protocol.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("{0}")]
    Protocol(String),
    #[error("the stream failed: {0}")]
    Transport(String),
}

/// The message-level seam between the session and its transport (gRPC or
/// WebSocket).
#[async_trait]
pub(crate) trait AgentLink: Send {
    /// The next message from the agent; `None` once the stream has ended.
    /// Cancel safe: dropping the future loses no message.
    async fn recv(&mut self) -> Option<Result<FromAgent, LinkError>>;
    async fn send(&mut self, message: proto::ServerMessage) -> Result<(), LinkError>;
    fn transport(&self) -> &'static str;
    /// The agent's `Hello` was verified: lift the pre-authentication
    /// limits (`preauth`) off its stream.
    fn authenticated(&mut self);
    /// The two directions apart, so that each can wait without the other.
    fn split(self) -> (Box<dyn LinkReader>, Box<dyn LinkWriter>)
    where
        Self: Sized;
    /// The agent group the transport imposes, whatever the `Hello` asks
    /// (Webhook Relay's sockets: one group per token key).
    fn group(&self) -> Option<String> {
        None
    }
}

/// The reading half of an [`AgentLink`].
#[async_trait]
pub(crate) trait LinkReader: Send {
    /// As [`AgentLink::recv`]; cancel safe.
    async fn recv(&mut self) -> Option<Result<FromAgent, LinkError>>;
}

/// The writing half of an [`AgentLink`].
#[async_trait]
pub(crate) trait LinkWriter: Send {
    async fn send(&mut self, message: proto::ServerMessage) -> Result<(), LinkError>;
}

/// Pings, pongs and the closing `Error` queued for the writer. A writer
/// this far behind is stuck in a send that [`proto::SILENCE_LIMIT`] ends,
/// so what does not fit is dropped rather than waited for.
const CONTROL_BUFFER: usize = 8;

/// A refusal sent as `Error` before closing.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// Runs a session to its end.
pub(crate) async fn run(state: AppState, link: impl AgentLink, peer: Option<SocketAddr>) {
    let span =
        tracing::info_span!("agent", transport = link.transport(), peer = %super::address(peer));
    serve(state, link, peer).instrument(span).await;
}

async fn serve(state: AppState, mut link: impl AgentLink, peer: Option<SocketAddr>) {
    let client = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.ip());
    // Until its Hello is verified the session holds a place among the
    // unauthenticated, and gives way when newer ones need it.
    let admission = state
        .preauth
        .admit(peer.unwrap_or_else(|| SocketAddr::from((client, 0))));
    let greeted = tokio::select! {
        () = admission.evicted.cancelled() => return,
        greeted = hello_and_accept(&state, &mut link, client, &admission) => greeted,
    };
    let (hello, accepted) = match greeted {
        Ok(greeted) => greeted,
        Err(None) => return,
        Err(Some(refusal)) => {
            // Still unauthenticated: the refusal gives way like the rest.
            tokio::select! {
                () = admission.evicted.cancelled() => {}
                () = refuse(&mut link, refusal) => {}
            }
            return;
        }
    };
    drop(admission);
    link.authenticated();
    let number = state.hub.next_agent_number();
    let max_in_flight = match hello.max_in_flight {
        0 => proto::DEFAULT_MAX_IN_FLIGHT,
        n => n.min(proto::MAX_IN_FLIGHT_CAP),
    };
    let info = Arc::new(AgentInfo {
        id: state.hub.agent_id(number),
        tenant: accepted.token.tenant.clone(),
        group: accepted.group.clone(),
        buckets: accepted.buckets.iter().map(|b| b.id.clone()).collect(),
        transport: link.transport(),
        address: super::address(peer),
        version: hello.version.chars().take(64).collect(),
        connected_since: store::clock::now_ms(),
        max_in_flight,
        in_flight: AtomicUsize::new(0),
    });
    let welcome = welcome(&state, &info, &accepted.buckets).await;
    if send_bounded(&mut link, welcome.into()).await.is_err() {
        return;
    }
    tracing::info!(agent = %info.id, group = %info.group, buckets = info.buckets.len(), "agent connected");
    let (tx, rx) = mpsc::channel(max_in_flight as usize);
    let slot = Slot {
        info: Arc::clone(&info),
        number,
        buckets: accepted.buckets,
        tx,
    };
    let cmds = state.hub.join(&state, slot).await;
    let (reader, writer) = link.split();
    let (control, queued) = mpsc::channel(CONTROL_BUFFER);
    let writer_ended = CancellationToken::new();
    let writing = tokio::spawn(
        write_loop(writer, rx, queued, writer_ended.clone()).instrument(tracing::Span::current()),
    );
    let end = read_loop(&state, reader, number, &cmds, &control, &writer_ended).await;
    if let Some(refusal) = end {
        let _ = control.try_send(Box::new(error(refusal)));
    }
    // The writer sends what is queued (the refusal last) and stops.
    drop(control);
    let _ = writing.await;
    state.hub.leave(state.store.as_ref(), number, &cmds).await;
    tracing::info!(agent = %info.id, "agent disconnected");
}

/// The pre-authentication phase: `Hello` within [`proto::HELLO_TIMEOUT`],
/// then its credentials and subscription. `Err(None)`: the stream ended.
async fn hello_and_accept(
    state: &AppState,
    link: &mut impl AgentLink,
    client: IpAddr,
    admission: &super::preauth::Admission,
) -> Result<(pb::Hello, Accepted), Option<Refusal>> {
    let hello = match timeout(proto::HELLO_TIMEOUT, link.recv()).await {
        Ok(Some(Ok(FromAgent::Hello(hello)))) => hello,
        Ok(Some(Ok(_))) => {
            return Err(Some(Refusal::new(
                "bad_request",
                "the first message must be Hello",
            )))
        }
        Ok(Some(Err(err))) => return Err(Some(Refusal::new("bad_request", err.to_string()))),
        Ok(None) => return Err(None),
        Err(_) => return Err(Some(Refusal::new("too_slow", "no Hello in time"))),
    };
    admission.verifying();
    let accepted = accept(state, &hello, link.group(), client)
        .await
        .map_err(Some)?;
    Ok((hello, accepted))
}

/// Sends within [`proto::SILENCE_LIMIT`]: a peer that stops reading must not
/// pin the session (and its shutdown) in a send.
async fn send_bounded(link: &mut impl AgentLink, message: proto::ServerMessage) -> Result<(), ()> {
    match timeout(proto::SILENCE_LIMIT, link.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// The reading half: acks to the pump, pongs to pings, the heartbeat.
/// Returns, when the stream ends or breaks the protocol, the `Error` to
/// send, if any; also returns once the writer has stopped.
async fn read_loop(
    state: &AppState,
    mut link: Box<dyn LinkReader>,
    number: u64,
    cmds: &mpsc::Sender<GroupCmd>,
    control: &mpsc::Sender<Box<proto::ServerMessage>>,
    writer_ended: &CancellationToken,
) -> Option<Refusal> {
    let mut heartbeat = interval(proto::HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => {
                return Some(Refusal::new("shutting_down", "the server is shutting down"));
            }
            () = writer_ended.cancelled() => return None,
            message = link.recv() => {
                let kind = match message {
                    None => return None,
                    Some(Err(err)) => return Some(Refusal::new("bad_request", err.to_string())),
                    Some(Ok(kind)) => kind,
                };
                last_heard = Instant::now();
                match kind {
                    FromAgent::Ack(ack) => {
                        if cmds.send(GroupCmd::Ack { agent: number, ack: Box::new(ack) }).await.is_err() {
                            return Some(Refusal::new("shutting_down", "delivery stopped"));
                        }
                    }
                    FromAgent::Ping(ping) => {
                        let pong = ToAgent::Pong(pb::Pong { sent_at_ms: ping.sent_at_ms });
                        let _ = control.try_send(Box::new(pong.into()));
                    }
                    FromAgent::Pong(_) => {}
                    FromAgent::Hello(_) => {
                        return Some(Refusal::new("bad_request", "Hello may be sent only once"));
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > proto::SILENCE_LIMIT {
                    tracing::info!("agent silent for three heartbeats; closing");
                    return None;
                }
                let ping = ToAgent::Ping(pb::Ping { sent_at_ms: store::clock::now_ms() });
                let _ = control.try_send(Box::new(ping.into()));
            }
        }
    }
}

/// The writing half: the pump's deliveries and the reader's pings, pongs
/// and closing `Error`, each within [`proto::SILENCE_LIMIT`]. Ends when a
/// send fails or times out, when the pump lets go of the agent (after
/// telling it why), or once the reader is done and what it queued is sent;
/// `ended` tells the reader.
async fn write_loop(
    mut link: Box<dyn LinkWriter>,
    mut deliveries: mpsc::Receiver<Box<proto::ServerMessage>>,
    mut control: mpsc::Receiver<Box<proto::ServerMessage>>,
    ended: CancellationToken,
) {
    let _ended = ended.drop_guard();
    loop {
        let message = tokio::select! {
            biased;
            queued = control.recv() => match queued {
                Some(message) => message,
                None => return,
            },
            delivery = deliveries.recv() => match delivery {
                Some(message) => message,
                // The pump let go of this agent: it sat on a delivery too long.
                None => {
                    let refusal = Refusal::new("too_slow", "a delivery was not acknowledged in time");
                    let _ = timeout(proto::SILENCE_LIMIT, link.send(error(refusal))).await;
                    return;
                }
            },
        };
        // A peer that stops reading must not pin the session (and its
        // shutdown) in a send.
        if !matches!(
            timeout(proto::SILENCE_LIMIT, link.send(*message)).await,
            Ok(Ok(()))
        ) {
            return;
        }
    }
}

struct Accepted {
    token: Token,
    group: String,
    buckets: Vec<Bucket>,
}

async fn accept(
    state: &AppState,
    hello: &pb::Hello,
    imposed_group: Option<String>,
    client: IpAddr,
) -> Result<Accepted, Refusal> {
    let token =
        crate::auth::authenticate_agent(state, &hello.token_key, &hello.token_secret, client)
            .await
            .map_err(|e| Refusal::new(e.code, e.message))?;
    if token.mode == Some(AgentMode::Tunnel) || hello.mode == pb::Mode::Tunnel as i32 {
        return Err(Refusal::new(
            "forbidden",
            "a tunnel token opens tunnels (`hookrelay tunnel`) and never receives webhooks",
        ));
    }
    let group = if let Some(group) = imposed_group {
        group
    } else if hello.group.is_empty() {
        token.key.to_string()
    } else {
        model::validate_slug("group", &hello.group)
            .map_err(|e| Refusal::new("bad_request", e.to_string()))?;
        hello.group.clone()
    };
    let buckets = subscribed_buckets(state, &token, &hello.buckets).await?;
    Ok(Accepted {
        token,
        group,
        buckets,
    })
}

/// The buckets asked for (ids or names), each one the token may read;
/// none asked for means all the token may read.
async fn subscribed_buckets(
    state: &AppState,
    token: &Token,
    asked: &[String],
) -> Result<Vec<Bucket>, Refusal> {
    let unavailable = |e: store::Error| Refusal::new("unavailable", e.to_string());
    let mut buckets = Vec::new();
    if asked.is_empty() {
        let all = state
            .store
            .list_buckets(&token.tenant)
            .await
            .map_err(unavailable)?;
        buckets.extend(
            all.into_iter()
                .filter(|b| token.buckets.is_empty() || token.buckets.contains(&b.id)),
        );
    }
    for id_or_name in asked.iter().take(256) {
        let bucket = crate::lookup::resolve_bucket(state, &token.tenant, id_or_name)
            .await
            .ok()
            .filter(|b| token.buckets.is_empty() || token.buckets.contains(&b.id))
            .ok_or_else(|| Refusal::new("not_found", format!("no bucket {id_or_name:?}")))?;
        if !buckets.iter().any(|b: &Bucket| b.id == bucket.id) {
            buckets.push(bucket);
        }
    }
    if buckets.is_empty() {
        return Err(Refusal::new("not_found", "the token may read no bucket"));
    }
    Ok(buckets)
}

async fn welcome(state: &AppState, info: &AgentInfo, buckets: &[Bucket]) -> ToAgent {
    let mut subscriptions = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        let outputs = state
            .store
            .list_outputs(&bucket.tenant, &bucket.id)
            .await
            .unwrap_or_default();
        subscriptions.push(pb::Subscription {
            bucket: bucket.id.to_string(),
            bucket_name: bucket.name.clone(),
            outputs: outputs
                .into_iter()
                .filter(|o| o.internal)
                .map(|o| pb::OutputRef {
                    id: o.id.to_string(),
                    url: o.url,
                })
                .collect(),
        });
    }
    ToAgent::Welcome(pb::Welcome {
        agent_id: info.id.clone(),
        subscriptions,
        heartbeat_ms: u32::try_from(proto::HEARTBEAT.as_millis()).unwrap_or(u32::MAX),
        tunnel_urls: Vec::new(),
    })
}

fn error(refusal: Refusal) -> proto::ServerMessage {
    ToAgent::Error(pb::Error {
        code: refusal.code.to_owned(),
        message: refusal.message,
    })
    .into()
}

async fn refuse(link: &mut impl AgentLink, refusal: Refusal) {
    tracing::info!(code = refusal.code, "agent refused");
    let _ = send_bounded(link, error(refusal)).await;
}
