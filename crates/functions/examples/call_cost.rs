//! The cost of one call through [`Pool::run`], the way ingest makes it:
//! the bench's script (decode a 1 KiB JSON body, set a header) on a
//! GitHub-like request, `N` calls one after another from one task, then
//! the wall time per call (hand-off included) and the function thread's
//! own `durationMicros`, medians. For profiling: run it under `perf` or
//! `valgrind --tool=callgrind`.
//!
//! ```sh
//! cargo run --release -p functions --example call_cost -- 20000
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use functions::{Attachment, Call, Limits, Pool, Request, Script};

const SOURCE: &str = r#"
local body = json.decode(r.RequestBody)
r:SetRequestHeader("x-bench", body and "json" or "other")
"#;

fn request() -> Request {
    let head = r#"{"ref":"refs/heads/main","repository":{"full_name":"octo/hello"},"pusher":{"name":"octocat"},"padding":""#;
    let mut body = head.as_bytes().to_vec();
    body.resize(1022, b'x');
    body.extend_from_slice(b"\"}");
    let headers = [
        ("host", "127.0.0.1:8080"),
        ("content-type", "application/json"),
        ("content-length", "1024"),
        ("user-agent", "GitHub-Hookshot/bench"),
        ("x-github-event", "push"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("x-github-hook-id", "292430182"),
        (
            "x-hub-signature-256",
            "sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        ("accept", "*/*"),
    ];
    Request {
        method: "POST".into(),
        path: String::new(),
        query: String::new(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let pool = Pool::per_core(Limits::default());
    let script = Script::compile("fn_bench", 1, SOURCE).expect("the bench script compiles");
    let config = Arc::new(Vec::new());
    let original = request();
    let (mut wall, mut inside) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let call = Call {
            request: original.clone(),
            metadata: vec![
                ("tenant_id", "ten_bench".into()),
                ("input_id", "in_bench".into()),
            ],
            config: config.clone(),
            attachment: Attachment::Input,
        };
        let t0 = Instant::now();
        let outcome = pool.run(&script, call).await;
        wall.push(t0.elapsed());
        assert!(
            outcome.error.is_none() && outcome.changed,
            "{:?}",
            outcome.error
        );
        inside.push(Duration::from_micros(outcome.duration_micros));
    }
    println!(
        "{n} calls: wall p50 {:?}, on the function thread p50 {:?}",
        median(wall),
        median(inside)
    );
}
