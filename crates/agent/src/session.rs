//! One connection to the relay: `Hello`, `Welcome` (or `Error`), then two
//! halves: the reader hands deliveries to the forwarding workers and keeps
//! the heartbeat (a `Ping` every [`proto::HEARTBEAT`]; silence for
//! [`proto::SILENCE_LIMIT`] ends the session); the writer, a task of its
//! own, sends their acks, pings and pongs. A send waiting on a relay that
//! reads slowly therefore never delays reading its deliveries.

use std::sync::Arc;

use forward::Forwarder;
use proto::{agent_message::Kind as ToRelay, pb, server_message::Kind as FromRelay};
use tokio::sync::mpsc;
use tokio::time::{interval, timeout, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::forwarding::{Forwarded, Forwarding};
use crate::link::{self, LinkReader, LinkWriter};
use crate::{AgentConfig, AgentError, SessionEnd};

/// Pings, pongs and refusals queued for the writer beside the acks. A
/// writer this far behind is stuck on a relay that the heartbeat gives up
/// on, so what does not fit is dropped rather than waited for.
const CONTROL_BUFFER: usize = 8;

/// Errors from the relay that reconnecting cannot fix.
const FATAL_CODES: &[&str] = &["unauthorized", "forbidden", "not_found", "bad_request"];

pub(crate) async fn run(
    config: &AgentConfig,
    forwarder: &Arc<Forwarder>,
    shutdown: &CancellationToken,
    report: Option<mpsc::Sender<Forwarded>>,
) -> SessionEnd {
    let hello = ToRelay::Hello(pb::Hello {
        token_key: config.token_key.clone(),
        token_secret: config.token_secret.clone(),
        buckets: config.buckets.clone(),
        group: config.group.clone(),
        mode: pb::Mode::Forward as i32,
        version: proto::VERSION.to_owned(),
        max_in_flight: config.max_in_flight,
        tunnel: String::new(),
    });
    let connecting = tokio::select! {
        () = shutdown.cancelled() => return SessionEnd::Stopped,
        link = link::connect(config, hello.into()) => link,
    };
    let mut link = match connecting {
        Ok(link) => link,
        // An untrusted certificate or a bad CA file will not fix itself.
        Err(reason) if reason.contains("CaUsedAsEndEntity") => {
            return SessionEnd::Fatal(AgentError::Tls(format!("{reason}: {}", crate::CA_AS_LEAF)))
        }
        Err(reason) if reason.contains("certificate") || reason.starts_with("TLS") => {
            return SessionEnd::Fatal(AgentError::Tls(reason))
        }
        Err(reason) => return early(&reason),
    };
    match timeout(proto::HELLO_TIMEOUT, link.recv()).await {
        Ok(Some(Ok(FromRelay::Welcome(welcome)))) => {
            let buckets: Vec<&str> = welcome
                .subscriptions
                .iter()
                .map(|s| s.bucket_name.as_str())
                .collect();
            tracing::info!(agent = %welcome.agent_id, ?buckets, "connected to the relay");
        }
        Ok(Some(Ok(FromRelay::Error(e)))) => return refused(e),
        Ok(Some(Ok(_))) => return early("the relay did not answer Hello with Welcome"),
        Ok(Some(Err(e))) => return early(&e),
        Ok(None) => return early("the relay closed the stream before Welcome"),
        Err(_) => return early("no Welcome in time"),
    }
    let (acks_tx, acks) = mpsc::channel(config.max_in_flight.max(1) as usize * 2);
    let forwarding = Forwarding::new(
        Arc::clone(forwarder),
        config.destination.clone(),
        report,
        acks_tx,
        config.max_in_flight,
    );
    let (reader, writer) = link.split();
    let (control, queued) = mpsc::channel(CONTROL_BUFFER);
    let writer_ended = CancellationToken::new();
    let writing = tokio::spawn(write_loop(writer, acks, queued, writer_ended.clone()));
    let halves = Halves {
        reader,
        control,
        writer_ended,
        writing,
    };
    relay(config, halves, forwarding, shutdown).await
}

/// The session's link once split: the reader (here) and what it shares
/// with the writer task.
struct Halves {
    reader: Box<dyn LinkReader>,
    /// Pings, pongs and refusals for the writer.
    control: mpsc::Sender<proto::AgentMessage>,
    /// Cancelled when the writer stops (its send failed, or it closed).
    writer_ended: CancellationToken,
    writing: tokio::task::JoinHandle<()>,
}

/// The writing half: acks as the forwarding workers make them, and the
/// reader's pings and pongs. Stops when a send fails, or once both the
/// reader and every worker are done, after closing the stream from this
/// side; `ended` tells the reader.
async fn write_loop(
    mut link: Box<dyn LinkWriter>,
    mut acks: mpsc::Receiver<pb::Ack>,
    mut control: mpsc::Receiver<proto::AgentMessage>,
    ended: CancellationToken,
) {
    let _ended = ended.drop_guard();
    let mut reader_gone = false;
    loop {
        let message = tokio::select! {
            biased;
            queued = control.recv(), if !reader_gone => match queued {
                Some(message) => message,
                None => {
                    reader_gone = true;
                    continue;
                }
            },
            ack = acks.recv() => match ack {
                Some(ack) => ToRelay::Ack(ack).into(),
                // Every worker is done: the forwarding stopped.
                None => break,
            },
        };
        if link.send(message).await.is_err() {
            return;
        }
    }
    link.close().await;
}

async fn relay(
    config: &AgentConfig,
    halves: Halves,
    mut forwarding: Forwarding,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let Halves {
        mut reader,
        control,
        writer_ended,
        writing,
    } = halves;
    let mut heartbeat = interval(proto::HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let end = loop {
        tokio::select! {
            () = shutdown.cancelled() => break SessionEnd::Stopped,
            () = writer_ended.cancelled() => break lost("the stream closed"),
            message = reader.recv() => {
                let kind = match message {
                    None => break lost("the relay closed the stream"),
                    Some(Err(e)) => break lost(&e),
                    Some(Ok(kind)) => kind,
                };
                last_heard = Instant::now();
                match kind {
                    FromRelay::Deliver(deliver) => {
                        if let Err(ack) = forwarding.submit(deliver) {
                            // Only a relay past the in-flight limit it was
                            // given gets here; if even this ack finds no
                            // room, its own ack timeout takes the delivery
                            // back.
                            let _ = control.try_send(ToRelay::Ack(ack).into());
                        }
                    }
                    FromRelay::Ping(ping) => {
                        let pong = ToRelay::Pong(pb::Pong { sent_at_ms: ping.sent_at_ms });
                        let _ = control.try_send(pong.into());
                    }
                    FromRelay::Pong(_) | FromRelay::Welcome(_) => {}
                    FromRelay::Error(e) => break refused(e),
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > proto::SILENCE_LIMIT {
                    break lost("the relay was silent for three heartbeats");
                }
                let ping = ToRelay::Ping(pb::Ping { sent_at_ms: now_ms() });
                let _ = control.try_send(ping.into());
            }
        }
    };
    drop(control);
    if matches!(end, SessionEnd::Stopped) {
        // Finish what is under way; the writer sends each ack as it comes,
        // then closes the stream once the last worker is done. What is
        // not acked is released by the relay when the stream closes.
        forwarding.stop(config.stop_grace).await;
        let mut writing = writing;
        if timeout(config.stop_grace, &mut writing).await.is_err() {
            // The relay stopped reading: the acks left wait with it.
            writing.abort();
        }
        link::wait_for_end(reader.as_mut()).await;
    } else {
        writing.abort();
        forwarding.stop(std::time::Duration::ZERO).await;
    }
    end
}

fn lost(reason: &str) -> SessionEnd {
    SessionEnd::Lost {
        connected: true,
        reason: reason.to_owned(),
    }
}

/// Lost before `Welcome`: does not reset the backoff.
fn early(reason: &str) -> SessionEnd {
    SessionEnd::Lost {
        connected: false,
        reason: reason.to_owned(),
    }
}

fn refused(e: pb::Error) -> SessionEnd {
    if FATAL_CODES.contains(&e.code.as_str()) {
        SessionEnd::Fatal(AgentError::Refused {
            code: e.code,
            message: e.message,
        })
    } else {
        SessionEnd::Lost {
            connected: true,
            reason: format!("{}: {}", e.code, e.message),
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
