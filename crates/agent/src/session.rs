//! One connection to the relay: `Hello`, `Welcome` (or `Error`), then the
//! loop that hands deliveries to the forwarding workers and their acks back,
//! and keeps the heartbeat (a `Ping` every [`proto::HEARTBEAT`]; silence
//! for [`proto::SILENCE_LIMIT`] ends the session).

use std::sync::Arc;

use forward::Forwarder;
use proto::{agent_message::Kind as ToRelay, pb, server_message::Kind as FromRelay};
use tokio::sync::mpsc;
use tokio::time::{interval, timeout, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::forwarding::{Forwarded, Forwarding};
use crate::link::{self, ServerLink};
use crate::{AgentConfig, AgentError, SessionEnd};

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
    relay(config, link.as_mut(), forwarding, acks, shutdown).await
}

async fn relay(
    config: &AgentConfig,
    link: &mut dyn ServerLink,
    mut forwarding: Forwarding,
    mut acks: mpsc::Receiver<pb::Ack>,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let mut heartbeat = interval(proto::HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let end = loop {
        tokio::select! {
            () = shutdown.cancelled() => break SessionEnd::Stopped,
            message = link.recv() => {
                let kind = match message {
                    None => break lost("the relay closed the stream"),
                    Some(Err(e)) => break lost(&e),
                    Some(Ok(kind)) => kind,
                };
                last_heard = Instant::now();
                match kind {
                    FromRelay::Deliver(deliver) => {
                        if let Err(ack) = forwarding.submit(deliver) {
                            if link.send(ToRelay::Ack(ack).into()).await.is_err() {
                                break lost("the stream closed");
                            }
                        }
                    }
                    FromRelay::Ping(ping) => {
                        let pong = ToRelay::Pong(pb::Pong { sent_at_ms: ping.sent_at_ms });
                        if link.send(pong.into()).await.is_err() {
                            break lost("the stream closed");
                        }
                    }
                    FromRelay::Pong(_) | FromRelay::Welcome(_) => {}
                    FromRelay::Error(e) => break refused(e),
                }
            }
            Some(ack) = acks.recv() => {
                if link.send(ToRelay::Ack(ack).into()).await.is_err() {
                    break lost("the stream closed");
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > proto::SILENCE_LIMIT {
                    break lost("the relay was silent for three heartbeats");
                }
                let ping = ToRelay::Ping(pb::Ping { sent_at_ms: now_ms() });
                if link.send(ping.into()).await.is_err() {
                    break lost("the stream closed");
                }
            }
        }
    };
    if matches!(end, SessionEnd::Stopped) {
        // Finish what is under way and ack it; the rest is released by
        // the relay when the stream closes.
        let stopping = forwarding.stop(config.stop_grace);
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                () = &mut stopping => break,
                Some(ack) = acks.recv() => {
                    let _ = link.send(ToRelay::Ack(ack).into()).await;
                }
            }
        }
        while let Ok(ack) = acks.try_recv() {
            let _ = link.send(ToRelay::Ack(ack).into()).await;
        }
        link.close().await;
    } else {
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
