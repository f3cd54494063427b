//! Callers held by the `wait` response policy (DESIGN §3.3): ingest waits
//! on the event's first destination answer, which the pump hands over when
//! an ack carries it. An answer can arrive before ingest starts waiting
//! (the agent is fast, the append's return is not), so an unclaimed answer
//! is kept for [`KEEP_UNCLAIMED`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use model::EventId;
use proto::pb;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// How long an answer nobody waits for yet is kept.
const KEEP_UNCLAIMED: Duration = Duration::from_secs(60);

/// At most this many unclaimed answers are kept.
const MAX_UNCLAIMED: usize = 10_000;

/// A destination's answer, as the caller will get it.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn from_pb(r: pb::HttpResponse) -> Self {
        Answer {
            status: u16::try_from(r.status).unwrap_or(502),
            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: r.body,
        }
    }

    /// The answer as it crosses between nodes (a `Signal::Answer`).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let wire = WireAnswer {
            status: self.status,
            headers: self.headers.clone(),
            body: base64::engine::general_purpose::STANDARD.encode(&self.body),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Answer> {
        let wire: WireAnswer = serde_json::from_slice(bytes).ok()?;
        let body = base64::engine::general_purpose::STANDARD
            .decode(wire.body)
            .ok()?;
        Some(Answer {
            status: wire.status,
            headers: wire.headers,
            body,
        })
    }
}

/// An answer as it crosses between nodes.
#[derive(Serialize, Deserialize)]
struct WireAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64: the destination's body is any bytes.
    body: String,
}

enum Slot {
    Waiting(oneshot::Sender<Answer>),
    Answered(Answer, Instant),
}

pub(crate) struct Waiters {
    slots: Mutex<HashMap<EventId, Slot>>,
}

impl Waiters {
    pub(crate) fn new() -> Self {
        Waiters {
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Waits up to `timeout` for the event's first answer.
    pub(crate) async fn wait(&self, event: EventId, timeout: Duration) -> Option<Answer> {
        let rx = {
            let mut slots = super::lock(&self.slots);
            if let Some(Slot::Answered(answer, _)) = slots.remove(&event) {
                return Some(answer);
            }
            let (tx, rx) = oneshot::channel();
            slots.insert(event, Slot::Waiting(tx));
            rx
        };
        // However this wait ends (answer, timeout, or the caller hanging up
        // and this future being dropped), the slot goes with it.
        let _cleanup = Cleanup {
            waiters: self,
            event,
        };
        tokio::time::timeout(timeout, rx)
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Hands the event's answer to its caller; the first answer wins.
    pub(crate) fn answer(&self, event: EventId, answer: Answer) {
        let mut slots = super::lock(&self.slots);
        match slots.remove(&event) {
            Some(Slot::Waiting(tx)) => {
                let _ = tx.send(answer);
            }
            Some(first @ Slot::Answered(..)) => {
                slots.insert(event, first);
            }
            None => {
                if slots.len() >= MAX_UNCLAIMED {
                    slots.retain(|_, s| {
                        matches!(s, Slot::Waiting(_))
                            || matches!(s, Slot::Answered(_, at) if at.elapsed() < KEEP_UNCLAIMED)
                    });
                }
                if slots.len() < MAX_UNCLAIMED {
                    slots.insert(event, Slot::Answered(answer, Instant::now()));
                }
            }
        }
    }
}

/// Removes a waiter's slot when its wait ends, unless an answer took it.
struct Cleanup<'a> {
    waiters: &'a Waiters,
    event: EventId,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let mut slots = super::lock(&self.waiters.slots);
        if matches!(slots.get(&self.event), Some(Slot::Waiting(_))) {
            slots.remove(&self.event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: b"hi".to_vec(),
        }
    }

    #[tokio::test]
    async fn an_early_answer_is_kept_for_its_caller_and_the_first_wins() {
        let w = Waiters::new();
        let id = EventId::floor_at(5);
        w.answer(id, answer(201));
        w.answer(id, answer(500));
        let got = w.wait(id, Duration::from_secs(1)).await.expect("answer");
        assert_eq!(got.status, 201);
    }

    #[tokio::test]
    async fn a_waiting_caller_gets_the_answer_or_times_out() {
        let w = std::sync::Arc::new(Waiters::new());
        let id = EventId::floor_at(6);
        let waiter = {
            let w = w.clone();
            tokio::spawn(async move { w.wait(id, Duration::from_secs(10)).await })
        };
        // Answer once the waiter is registered.
        wait_for(|| {
            matches!(
                super::super::lock(&w.slots).get(&id),
                Some(Slot::Waiting(_))
            )
        })
        .await;
        w.answer(id, answer(202));
        assert_eq!(waiter.await.unwrap().expect("answer").status, 202);

        // A caller that hangs up leaves nothing behind.
        let gone = EventId::floor_at(8);
        let abandoned = tokio::time::timeout(
            Duration::from_millis(10),
            w.wait(gone, Duration::from_secs(60)),
        )
        .await;
        assert!(abandoned.is_err());
        assert!(super::super::lock(&w.slots).get(&gone).is_none());

        let lonely = EventId::floor_at(7);
        assert!(w.wait(lonely, Duration::from_millis(20)).await.is_none());
        assert!(super::super::lock(&w.slots).get(&lonely).is_none());
    }

    async fn wait_for(cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "condition not met in time");
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn answers_cross_nodes_byte_exact() {
        let answer = Answer {
            status: 201,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: vec![0, 159, 146, 150, 255],
        };
        let back = Answer::decode(&answer.encode()).expect("decodes");
        assert_eq!(back.status, 201);
        assert_eq!(back.headers, answer.headers);
        assert_eq!(back.body, answer.body);
        assert!(Answer::decode(b"{not json").is_none());
    }
}
