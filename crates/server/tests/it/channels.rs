//! Channels (DESIGN §12, issue 20) with the clients people run: the real
//! `smee-client` 5 from npm forwarding to a recording destination, and a
//! reader of the gosmee stream that parses it as gosmee's client source
//! does (`gosmee/client.go`: `consumeSSEStream`, `parse`).
//!
//! smee-client is installed once into `target/tmp/smee-client` with npm;
//! without npm these tests fail, they never skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{Destination, Relay};

const DEADLINE: Duration = Duration::from_secs(20);

/// The smee-client major version the tests pin.
const SMEE_CLIENT: &str = "smee-client@5";

/// `smee.js` of smee-client, installed with npm on first use.
fn smee_bin() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smee-client");
            let bin = dir.join("node_modules/smee-client/bin/smee.js");
            if bin.exists() {
                return bin;
            }
            // Installed beside and renamed into place, so the Redis rerun
            // (another process) never sees a half-made directory.
            let staging = dir.with_extension(format!("staging-{}", std::process::id()));
            std::fs::create_dir_all(&staging).unwrap();
            let status = std::process::Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&staging)
                .arg(SMEE_CLIENT)
                .status()
                .expect("npm must be installed (apt-get install npm): the smee tests use the real smee-client");
            assert!(status.success(), "npm install {SMEE_CLIENT} failed");
            if std::fs::rename(&staging, &dir).is_err() {
                // Another process got there first.
                let _ = std::fs::remove_dir_all(&staging);
            }
            assert!(bin.exists(), "{} is missing after npm install", bin.display());
            bin
        })
        .clone()
}

/// A running `smee --url <channel> --target <destination>`; killed on drop.
struct Smee(tokio::process::Child);

impl Smee {
    fn start(url: &str, target: &str) -> Smee {
        let child = tokio::process::Command::new("node")
            .arg(smee_bin())
            .args(["--url", url, "--target", target])
            // undici's proxy agent reads these; the relay is local.
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env("NO_PROXY", "*")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed: the smee tests run the real smee-client");
        Smee(child)
    }

    async fn stop(mut self) {
        self.0.kill().await.unwrap();
    }
}

/// A relay with a plain input in bucket `b`, and a channel of `b`.
async fn setup(relay: &Relay, bucket: Value) -> (String, Value) {
    let bucket = relay.create_bucket(bucket).await;
    let id = bucket["id"].as_str().unwrap();
    let input = relay.create_input(id, json!({"name": "plain"})).await;
    let channel = relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{id}/channels"),
            None,
            StatusCode::CREATED,
        )
        .await;
    (input["url"].as_str().unwrap().to_owned(), channel)
}

async fn clients(relay: &Relay, channel: &Value) -> u64 {
    let list = relay
        .admin(
            Method::GET,
            &format!(
                "/v1/buckets/{}/channels",
                channel["bucket"].as_str().unwrap()
            ),
            None,
            StatusCode::OK,
        )
        .await;
    list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == channel["id"])
        .map_or(0, |c| c["clients"].as_u64().unwrap())
}

async fn wait_clients(relay: &Relay, channel: &Value, n: u64) {
    testkit::wait_until(
        DEADLINE,
        &format!("the channel has {n} clients"),
        || async { clients(relay, channel).await == n },
    )
    .await;
}

async fn send(relay: &Relay, url: &str, headers: &[(&str, &str)], body: &[u8]) {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (status, _) = testkit::post(&relay.http, &format!("{url}?a=1"), &headers, body).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn smee_client_forwards_every_event_and_catches_up_after_a_restart() {
    let relay = Relay::spawn().await;
    let (input, channel) = setup(&relay, json!({"name": "b"})).await;
    let smee_url = channel["smeeUrl"].as_str().unwrap().to_owned();
    let destination = Destination::spawn().await;
    let target = format!("{}/hook", destination.url);
    let client = Smee::start(&smee_url, &target);
    wait_clients(&relay, &channel, 1).await;

    let json_ct = [
        ("content-type", "application/json"),
        ("x-github-event", "push"),
    ];
    // Compact JSON that JavaScript round-trips: byte for byte.
    let compact =
        br#"{"action":"opened","number":7,"ok":true,"list":[1,"two",null],"nested":{"k":"v"}}"#;
    send(&relay, &input, &json_ct, compact).await;
    let got = destination.wait_for(1, DEADLINE).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].target, "/hook?a=1", "the query rides along");
    assert_eq!(&got[0].body[..], compact);
    assert_eq!(got[0].header("x-github-event"), Some("push"));
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert!(
        got[0].header("timestamp").is_some(),
        "smee.io's timestamp key is a header too"
    );
    assert!(got[0].header("authorization").is_none());

    // Pretty JSON: smee-client re-serialises it (documented drift).
    let pretty = b"{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n";
    send(&relay, &input, &json_ct, pretty).await;
    let got = destination.wait_for(2, DEADLINE).await;
    assert_eq!(&got[1].body[..], br#"{"a":1,"b":[1,2]}"#);

    // A form body: smee-client sends JSON.stringify of the string.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    send(&relay, &input, &form, b"a=1&b=two").await;
    let got = destination.wait_for(3, DEADLINE).await;
    assert_eq!(&got[2].body[..], br#""a=1&b=two""#);
    assert_eq!(got[2].header("content-type"), Some("application/json"));

    // Stopped: what arrives meanwhile is caught up after the restart,
    // though smee-client sends no Last-Event-ID.
    client.stop().await;
    wait_clients(&relay, &channel, 0).await;
    send(&relay, &input, &json_ct, br#"{"while":"away"}"#).await;
    let client = Smee::start(&smee_url, &target);
    let got = destination.wait_for(4, DEADLINE).await;
    assert_eq!(&got[3].body[..], br#"{"while":"away"}"#);
    send(&relay, &input, &json_ct, br#"{"after":"restart"}"#).await;
    let got = destination.wait_for(5, DEADLINE).await;
    assert_eq!(&got[4].body[..], br#"{"after":"restart"}"#);
    assert_eq!(got.len(), 5, "nothing twice");

    // Revoked: the stream ends at once and the URL is gone.
    let path = format!(
        "/v1/buckets/{}/channels/{}",
        channel["bucket"].as_str().unwrap(),
        channel["id"].as_str().unwrap()
    );
    relay
        .admin(Method::DELETE, &path, None, StatusCode::NO_CONTENT)
        .await;
    wait_clients(&relay, &channel, 0).await;
    let answer = relay.http.get(&smee_url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    client.stop().await;
}

/// One SSE event as gosmee's `consumeSSEStream` assembles it.
#[derive(Debug, Default, Clone)]
struct SseEvent {
    id: String,
    event: String,
    data: String,
}

/// Reads `count` events (or fewer if the stream ends) the way gosmee does:
/// lines split on `\n`, `:` comments skipped, `data` lines joined.
async fn read_events(response: reqwest::Response, count: usize) -> (Vec<SseEvent>, bool) {
    let mut stream = response.bytes_stream();
    let (mut buffer, mut events, mut current, mut data) = (
        String::new(),
        Vec::new(),
        SseEvent::default(),
        Vec::<String>::new(),
    );
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while events.len() < count {
        let Some(chunk) = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events arrive in time")
        else {
            return (events, true);
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() || !current.event.is_empty() || !current.id.is_empty() {
                    current.data = data.join("\n");
                    events.push(std::mem::take(&mut current));
                    data.clear();
                }
            } else if !line.starts_with(':') {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => current.id = value.to_owned(),
                    "event" => current.event = value.to_owned(),
                    "data" => data.push(value.to_owned()),
                    _ => {}
                }
            }
        }
    }
    (events, false)
}

/// gosmee's `isValidRedisStreamID`: `<uint64>-<uint64>`.
fn gosmee_stream_id(id: &str) -> bool {
    id.split_once('-')
        .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok())
}

async fn open(relay: &Relay, url: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = relay.http.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
}

#[tokio::test]
async fn the_gosmee_stream_parses_as_gosmee_does_and_resumes_by_its_ids() {
    let relay = Relay::spawn().await;
    let (input, channel) = setup(&relay, json!({"name": "b"})).await;
    let url = channel["gosmeeUrl"].as_str().unwrap().to_owned();
    let first = open(&relay, &url, None).await;
    let second = open(&relay, &url, None).await;
    wait_clients(&relay, &channel, 2).await;
    let binary = [0_u8, 159, 146, 150, b'\r', b'\n'];
    send(
        &relay,
        &input,
        &[
            ("x-github-event", "push"),
            ("content-type", "application/octet-stream"),
        ],
        &binary,
    )
    .await;

    for stream in [first, second] {
        let (events, _) = read_events(stream, 2).await;
        // The opening control event: {"message":"ready"}, unnamed.
        assert_eq!(events[0].event, "");
        assert_eq!(
            serde_json::from_str::<Value>(&events[0].data).unwrap(),
            json!({"message": "ready"})
        );
        let event = &events[1];
        assert!(gosmee_stream_id(&event.id), "{:?}", event.id);
        let payload: Value = serde_json::from_str(&event.data).unwrap();
        let map = payload.as_object().unwrap();
        assert!(!map.contains_key("body"), "never body beside bodyB");
        let body = base64::engine::general_purpose::STANDARD
            .decode(map["bodyB"].as_str().unwrap())
            .unwrap();
        assert_eq!(body, binary, "exact bytes");
        let ts: i64 = map["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(ts > 1_600_000_000_000);
        assert_eq!(map["x-github-event"], "push");
        assert_eq!(map["content-type"], "application/octet-stream");
        // Every other key gosmee turns into a header is a string.
        assert!(map.values().all(Value::is_string), "{map:?}");
    }

    // An id older than the catch-up window: `gosmee-gap`, then the
    // window from its start.
    let (events, _) = read_events(open(&relay, &url, Some("1-0")).await, 3).await;
    assert_eq!(events[1].event, "gosmee-gap", "{events:?}");
    let first_id = events[2].id.clone();
    assert!(gosmee_stream_id(&first_id));
    // Resuming after an id gives what came after it only.
    send(&relay, &input, &[], b"second").await;
    let (events, _) = read_events(open(&relay, &url, Some(&first_id)).await, 2).await;
    let second: Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(
        second["bodyB"],
        base64::engine::general_purpose::STANDARD.encode("second")
    );
}

#[tokio::test]
async fn smee_streams_resume_by_last_event_id_and_fan_out() {
    let relay = Relay::spawn().await;
    let (input, channel) = setup(&relay, json!({"name": "b"})).await;
    let url = channel["smeeUrl"].as_str().unwrap().to_owned();
    let a = open(&relay, &url, None).await;
    let b = open(&relay, &url, None).await;
    wait_clients(&relay, &channel, 2).await;
    send(
        &relay,
        &input,
        &[("content-type", "application/json")],
        br#"{"n":1}"#,
    )
    .await;
    send(
        &relay,
        &input,
        &[("content-type", "application/json")],
        br#"{"n":2}"#,
    )
    .await;
    let mut ids = Vec::new();
    for stream in [a, b] {
        let (events, _) = read_events(stream, 3).await;
        assert_eq!(events[0].event, "ready", "named, so smee-client ignores it");
        let data: Vec<Value> = events[1..]
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect();
        assert_eq!(data[0]["body"], json!({"n": 1}));
        assert_eq!(data[1]["body"], json!({"n": 2}));
        assert!(data[0]["timestamp"].is_i64());
        assert_eq!(data[0]["query"], json!({"a": "1"}));
        assert!(events[1..].iter().all(|e| e.event.is_empty()));
        ids.push(events[1].id.clone());
    }
    assert_eq!(ids[0], ids[1]);
    assert!(ids[0].starts_with("evt_"));
    let (events, _) = read_events(open(&relay, &url, Some(&ids[0])).await, 2).await;
    let data: Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(data["body"], json!({"n": 2}));

    // POSTs to the channel are refused; unknown capabilities are 404.
    let post = relay.http.post(&url).body("x").send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    for bad in ["0123456789abcdef0123456789abcdef", "nope", "events"] {
        let answer = relay
            .http
            .get(format!("{}/smee/{bad}", relay.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{bad}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }

    // Revocation ends an open stream at once.
    let open_stream = open(&relay, &url, None).await;
    let path = format!(
        "/v1/buckets/{}/channels/{}",
        channel["bucket"].as_str().unwrap(),
        channel["id"].as_str().unwrap()
    );
    relay
        .admin(Method::DELETE, &path, None, StatusCode::NO_CONTENT)
        .await;
    let (_, ended) = read_events(open_stream, 100).await;
    assert!(ended, "the stream ended");
    let gone = relay.http.get(&url).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    relay
        .admin(Method::DELETE, &path, None, StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test]
async fn channels_are_listed_without_urls_and_capped() {
    let relay = Relay::spawn().await;
    let (_, channel) = setup(&relay, json!({"name": "b"})).await;
    let bucket = channel["bucket"].as_str().unwrap();
    assert!(channel["id"].as_str().unwrap().starts_with("chn_"));
    let smee = channel["smeeUrl"].as_str().unwrap();
    let cap = smee.rsplit('/').next().unwrap();
    assert_eq!(cap.len(), 32);
    assert_eq!(
        channel["gosmeeUrl"],
        format!("{}/smee/events/{cap}", relay.url)
    );
    let list = relay
        .admin(Method::GET, "/v1/buckets/b/channels", None, StatusCode::OK)
        .await;
    assert_eq!(list["channels"][0]["id"], channel["id"]);
    assert!(
        !list.to_string().contains(cap),
        "the capability is shown once"
    );
    for _ in 1..model::MAX_CHANNELS_PER_BUCKET {
        relay
            .admin(
                Method::POST,
                &format!("/v1/buckets/{bucket}/channels"),
                None,
                StatusCode::CREATED,
            )
            .await;
    }
    let full = relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{bucket}/channels"),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(full["error"], "invalid_request");
    // Deleting the bucket takes its channels with it.
    relay
        .admin(
            Method::DELETE,
            &format!("/v1/buckets/{bucket}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    let gone = relay.http.get(smee).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}
