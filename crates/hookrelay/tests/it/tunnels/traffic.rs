//! Bodies both ways through a tunnel, streamed: 0 B, 1 MiB and 100 MiB
//! (the relay's and the agent's RSS stay under 64 MiB meanwhile), a
//! chunked answer, SSE events that arrive one by one, and a WebSocket echo,
//! on the gRPC and the WebSocket transport.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::{destination, rss, wait_connected, Agent, Relay};

const MIB: usize = 1024 * 1024;
const BIG: usize = 100 * MIB;
/// DESIGN's bound for each process during the 100 MiB transfer.
const RSS_LIMIT: u64 = 64 * MIB as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_stream_both_ways_on_both_transports() {
    let relay = Relay::start();
    let dest = destination::spawn("a").await;
    for transport in ["grpc", "ws"] {
        let name = format!("big-{transport}");
        let (_, token) = relay.tunnel(&name, serde_json::json!({})).await;
        let agent = Agent::spawn(&relay, &token, &name, &dest.url, transport);
        wait_connected(&relay, &relay.url(&name, "/echo")).await;

        let empty: Value = relay
            .http
            .get(relay.url(&name, "/echo"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (empty["method"].as_str(), empty["len"].as_u64()),
            (Some("GET"), Some(0))
        );
        let one: Value = relay
            .http
            .post(relay.url(&name, "/echo"))
            .body(vec![7u8; MIB])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(one["len"].as_u64(), Some(MIB as u64), "{transport}");

        let watch = Watch::start(&[relay.serve.pid(), agent.pid()]);
        let chunks =
            futures_util::stream::iter(0..100).map(|_| Ok::<_, std::io::Error>(vec![1u8; MIB]));
        let up: Value = relay
            .http
            .put(relay.url(&name, "/echo"))
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(up["len"].as_u64(), Some(BIG as u64), "{transport}");
        let down = relay
            .http
            .get(relay.url(&name, &format!("/bytes/{BIG}")))
            .send()
            .await
            .unwrap();
        assert_eq!(down.status(), 200);
        let mut stream = down.bytes_stream();
        let mut received = 0usize;
        while let Some(chunk) = stream.next().await {
            received += chunk.unwrap().len();
        }
        assert_eq!(received, BIG, "{transport}");
        let peaks = watch.stop();
        for (pid, peak) in peaks {
            assert!(
                peak > 0 && peak < RSS_LIMIT,
                "{transport}: pid {pid} peaked at {peak} bytes"
            );
        }
        agent.kill9();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chunked_sse_and_websocket_answers_stream_on_both_transports() {
    let relay = Relay::start();
    let dest = destination::spawn("a").await;
    for transport in ["grpc", "ws"] {
        let name = format!("live-{transport}");
        let (_, token) = relay.tunnel(&name, serde_json::json!({})).await;
        let _agent = Agent::spawn(&relay, &token, &name, &dest.url, transport);
        wait_connected(&relay, &relay.url(&name, "/echo")).await;

        let chunked = relay
            .http
            .get(relay.url(&name, "/chunked"))
            .send()
            .await
            .unwrap();
        assert_eq!(chunked.headers().get("content-length"), None);
        assert_eq!(chunked.text().await.unwrap(), "one,two,three");

        let sse = relay
            .http
            .get(relay.url(&name, "/sse"))
            .send()
            .await
            .unwrap();
        assert_eq!(sse.headers()["content-type"], "text/event-stream");
        let mut events = sse.bytes_stream();
        let mut seen = String::new();
        while !seen.contains("data: first\n\n") {
            let chunk = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
            seen.push_str(&String::from_utf8_lossy(
                &chunk.expect("the first event streams").unwrap().unwrap(),
            ));
        }
        // The second event exists only after the first reached the visitor.
        dest.go.notify_one();
        while let Some(chunk) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        assert_eq!(seen, "data: first\n\ndata: second\n\n");

        let ws_url = relay.url(&name, "/ws").replacen("http://", "ws://", 1);
        let (mut socket, response) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("upgrade through the tunnel");
        assert_eq!(response.status(), 101);
        for text in ["hello", "again"] {
            socket.send(Message::Text(text.into())).await.unwrap();
            let reply = socket.next().await.unwrap().unwrap();
            assert_eq!(reply.into_text().unwrap().as_str(), format!("echo: {text}"));
        }
        socket
            .send(Message::Binary(vec![0u8, 1, 2].into()))
            .await
            .unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap().into_data().as_ref(),
            &[0u8, 1, 2]
        );
        let _ = socket.close(None).await;
    }
}

/// Samples processes' RSS every 20 ms until stopped; answers the peaks.
struct Watch {
    stop: Arc<AtomicBool>,
    peaks: Vec<(u32, Arc<AtomicU64>)>,
    task: std::thread::JoinHandle<()>,
}

impl Watch {
    fn start(pids: &[u32]) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks: Vec<_> = pids
            .iter()
            .map(|p| (*p, Arc::new(AtomicU64::new(0))))
            .collect();
        let (flag, watched) = (Arc::clone(&stop), peaks.clone());
        let task = std::thread::spawn(move || {
            // Bounded: ten minutes of samples at most.
            for _ in 0..30_000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                for (pid, peak) in &watched {
                    peak.fetch_max(rss(*pid), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Watch { stop, peaks, task }
    }

    fn stop(self) -> Vec<(u32, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.join();
        self.peaks
            .iter()
            .map(|(p, v)| (*p, v.load(Ordering::Relaxed)))
            .collect()
    }
}
