//! Tenant A's credentials (tenant, agent and poll tokens, poll secret) name
//! tenant B's real ids on every route the routers declare. Each answer must
//! be the one a random id of the same kind gets: same status, same body
//! (byte for byte once the id itself, where echoed, is masked), and about
//! the same time. `isolation` checks statuses on the common routes; this is
//! the exhaustive sweep, driven by a table checked against the routers'
//! source so a new route cannot be left out.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use proto::{agent_message::Kind as Up, pb, server_message::Kind as Down};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::Relay;
use tokio_tungstenite::tungstenite::Message;

use super::routes::{Cred, Probe, Transport, ROUTES};

const PAIRS: usize = 11;
/// Fewer for the poll secret: each costs bcrypt checks, and a client gets
/// 20 a minute before 429.
const SECRET_PAIRS: usize = 2;
const PATIENCE: Duration = Duration::from_secs(15);

/// Tenant B's objects and tenant A's credentials.
struct World {
    relay: Relay,
    b: Vec<(&'static str, String)>,
    /// Ids of B that must never appear in A's answers.
    b_ids: Vec<String>,
    a_tenant: String,
    a_agent: String,
    /// A tunnel-mode agent token of A.
    a_tunnel: String,
    a_poll: String,
    a_poll_key: String,
    a_poll_secret: String,
}

impl World {
    fn b(&self, placeholder: &str) -> &str {
        &self
            .b
            .iter()
            .find(|(p, _)| *p == placeholder)
            .expect("a B value")
            .1
    }

    fn cred(&self, cred: Cred) -> Option<&str> {
        match cred {
            Cred::Tenant => Some(&self.a_tenant),
            Cred::Agent => Some(&self.a_agent),
            Cred::Poll => Some(&self.a_poll),
            Cred::PollSecret => Some(&self.a_poll_secret),
            Cred::Anonymous => None,
        }
    }
}

/// An admin call on behalf of `tenant`.
async fn as_admin(relay: &Relay, tenant: &str, method: Method, path: &str, body: Value) -> Value {
    let mut request = relay
        .http
        .request(method.clone(), format!("{}{path}", relay.url))
        .bearer_auth(&relay.admin)
        .header("x-hookrelay-tenant", tenant);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the relay answers");
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status.is_success(),
        "{method} {path} as {tenant}: {status} {value}"
    );
    value
}

async fn world() -> World {
    let relay = Relay::builder()
        .config(|c| {
            // Probing sends many polls and must not be cut off by the poll
            // rate limit or the auth cache expiring mid-test.
            c.poll_rate_limit = model::RateLimit {
                requests: 1_000_000,
                window_seconds: 60,
            };
            c.auth_cache_ttl = Duration::from_secs(600);
        })
        .spawn()
        .await;
    let mut secrets = Vec::new();
    for label in ["Alpha", "Bravo"] {
        let created = relay
            .admin(
                Method::POST,
                "/api/tenants",
                Some(json!({ "label": label })),
                StatusCode::CREATED,
            )
            .await;
        secrets.push(created["pollSecret"].as_str().unwrap().to_owned());
    }
    let b = "bravo";
    let bucket = as_admin(
        &relay,
        b,
        Method::POST,
        "/v1/buckets",
        json!({"name": "prod"}),
    )
    .await;
    let bucket_id = bucket["id"].as_str().unwrap().to_owned();
    let input = as_admin(
        &relay,
        b,
        Method::POST,
        &format!("/v1/buckets/{bucket_id}/inputs"),
        json!({"name": "plain"}),
    )
    .await;
    let output = as_admin(
        &relay,
        b,
        Method::POST,
        &format!("/v1/buckets/{bucket_id}/outputs"),
        json!({"url": "http://hooks.internal.example/x"}),
    )
    .await;
    let b_poll = as_admin(
        &relay,
        b,
        Method::POST,
        "/v1/tokens",
        json!({"scope": "poll"}),
    )
    .await;
    let function = as_admin(
        &relay,
        b,
        Method::POST,
        "/v1/functions",
        json!({"name": "b's", "source": "r:SetRequestBody('b')", "config": {"K": "b-secret"}}),
    )
    .await;
    let answer = relay
        .http
        .post(input["url"].as_str().unwrap())
        .body("b's event")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let events = as_admin(&relay, b, Method::GET, "/v1/events", Value::Null).await;
    let event = events["events"][0]["id"].as_str().unwrap().to_owned();
    let tunnel = as_admin(
        &relay,
        b,
        Method::POST,
        "/v1/tunnels",
        json!({"name": "bravo-app"}),
    )
    .await;

    let token = |scope: &str| json!({ "scope": scope });
    let a_tenant = as_admin(&relay, "alpha", Method::POST, "/v1/tokens", token("tenant")).await;
    let a_agent = as_admin(&relay, "alpha", Method::POST, "/v1/tokens", token("agent")).await;
    let a_tunnel = as_admin(
        &relay,
        "alpha",
        Method::POST,
        "/v1/tokens",
        json!({"scope": "agent", "mode": "tunnel"}),
    )
    .await;
    let a_poll = as_admin(&relay, "alpha", Method::POST, "/v1/tokens", token("poll")).await;
    let text = |v: &Value, field: &str| v[field].as_str().unwrap().to_owned();
    let b_values = vec![
        ("{bucket}", bucket_id.clone()),
        ("{bucket_name}", "prod".to_owned()),
        ("{input}", text(&input, "id")),
        ("{output}", text(&output, "id")),
        ("{function}", text(&function, "id")),
        ("{key}", text(&b_poll, "key")),
        ("{event}", event),
        ("{tenant}", b.to_owned()),
        ("{tunnel}", text(&tunnel, "id")),
        ("{tunnel_name}", "bravo-app".to_owned()),
    ];
    let mut b_ids: Vec<String> = b_values
        .iter()
        .filter(|(p, _)| !matches!(*p, "{bucket_name}" | "{tunnel_name}"))
        .map(|(_, v)| v.clone())
        .collect();
    b_ids.push(secrets[1].clone());
    World {
        relay,
        b: b_values,
        b_ids,
        a_tenant: text(&a_tenant, "token"),
        a_agent: text(&a_agent, "token"),
        a_tunnel: text(&a_tunnel, "token"),
        a_poll: text(&a_poll, "token"),
        a_poll_key: text(&a_poll, "key"),
        a_poll_secret: secrets[0].clone(),
    }
}

/// A random value of the kind `placeholder` stands for, of the same form.
fn random_like(placeholder: &str, real: &str) -> String {
    let noise = || model::BucketId::generate().as_str()["bkt_".len()..].to_owned();
    match placeholder {
        "{bucket}" => model::BucketId::generate().to_string(),
        "{input}" => model::InputId::generate().to_string(),
        "{output}" => model::OutputId::generate().to_string(),
        "{tunnel}" => model::TunnelId::generate().to_string(),
        "{function}" => model::FunctionId::generate().to_string(),
        "{key}" => model::TokenKey::generate().to_string(),
        // Same time part, random rest: an id B could have had.
        "{event}" => {
            let hex: String = model::InputId::generate().to_string().replace('-', "");
            format!("{}{}", &real[..14], hex[..16].to_uppercase())
        }
        "{bucket_name}" | "{tenant}" => format!("t{}", noise()),
        // A DNS label of B's name's length.
        "{tunnel_name}" => format!("t{}", &noise().to_lowercase()[..real.len() - 1]),
        other => panic!("no random form for {other}"),
    }
}

/// One answer, as compared between B's id and a random one.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

async fn ask(
    relay: &Relay,
    method: &Method,
    path: &str,
    cred: Option<&str>,
    body: Option<&str>,
    mask: &str,
) -> (Answer, Duration) {
    let mut request = relay
        .http
        .request(method.clone(), format!("{}{path}", relay.url));
    if let Some(cred) = cred {
        request = request.bearer_auth(cred);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let start = Instant::now();
    let response = request.send().await.expect("the relay answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("<binary>").to_owned());
    let bytes = response.bytes().await.expect("a whole body");
    let took = start.elapsed();
    let body = String::from_utf8_lossy(&bytes).replace(mask, "<probed>");
    (
        Answer {
            status,
            content_type,
            body,
        },
        took,
    )
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2
    }
}

/// A timing line, and the one bound asserted: generous enough never to
/// flake on a loaded machine (B's median within 5x + 25 ms of the random
/// one), tight enough to catch a lookup that does real work (a bcrypt at
/// production cost, a slow scan) only for existing ids. Not asserted for
/// the poll secret: three pairs of bcrypt checks on a busy machine are
/// noise; `poll_oracle` counts its bcrypt work exactly instead.
fn report(label: &str, real: Vec<Duration>, random: Vec<Duration>, bound: bool) {
    let (real, random) = (median(real), median(random));
    let ratio = real.as_secs_f64() / random.as_secs_f64().max(1e-9);
    println!(
        "timing {label:<60} B {:>8.3} ms  random {:>8.3} ms  ratio {ratio:.2}",
        real.as_secs_f64() * 1e3,
        random.as_secs_f64() * 1e3,
    );
    assert!(
        !bound || real <= random * 5 + Duration::from_millis(25),
        "{label}: B's id answers in {real:?}, a random one in {random:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_ids_answer_like_random_ones_on_every_route() {
    let w = world().await;
    // Keep one of B's agents connected, so A's agent list has one to leak.
    let b_agent = as_admin(
        &w.relay,
        "bravo",
        Method::POST,
        "/v1/tokens",
        json!({"scope": "agent"}),
    )
    .await;
    let mut b_socket = open(&w.relay).await;
    let welcome = hello(
        &mut b_socket,
        b_agent["token"].as_str().unwrap(),
        w.b("{bucket}"),
    )
    .await;
    let Down::Welcome(welcome) = welcome else {
        panic!("B's agent was refused: {welcome:?}");
    };
    let mut b_ids = w.b_ids.clone();
    b_ids.push(welcome.agent_id.clone());
    b_ids.push(b_agent["key"].as_str().unwrap().to_owned());

    for route in ROUTES {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        match &route.probe {
            Probe::Foreign {
                path,
                body,
                creds,
                status,
            } => {
                let named: Vec<&str> =
                    w.b.iter()
                        .map(|(p, _)| *p)
                        .filter(|p| path.contains(p) || body.is_some_and(|b| b.contains(p)))
                        .collect();
                assert_eq!(named.len(), 1, "{path} must name one of B's objects");
                let placeholder = named[0];
                let real = w.b(placeholder).to_owned();
                let fill = |value: &str, template: &str| {
                    template
                        .replace(placeholder, value)
                        .replace("{own_key}", &w.a_poll_key)
                };
                for &cred in *creds {
                    let pairs = if cred == Cred::PollSecret {
                        SECRET_PAIRS
                    } else {
                        PAIRS
                    };
                    let (mut real_times, mut random_times) = (Vec::new(), Vec::new());
                    for i in 0..pairs {
                        let random = random_like(placeholder, &real);
                        let mut answers = Vec::new();
                        // Alternate which goes first, so drift favours neither.
                        let order = if i % 2 == 0 {
                            [&real, &random]
                        } else {
                            [&random, &real]
                        };
                        for value in order {
                            let body = body.map(|b| fill(value, b));
                            let (answer, took) = ask(
                                &w.relay,
                                &method,
                                &fill(value, path),
                                w.cred(cred),
                                body.as_deref(),
                                value,
                            )
                            .await;
                            if value == &real {
                                real_times.push(took);
                            } else {
                                random_times.push(took);
                            }
                            answers.push(answer);
                        }
                        let what = format!("{} {path} as A's {cred:?}", route.method);
                        assert_eq!(
                            answers[0], answers[1],
                            "{what}: B's id and a random one differ"
                        );
                        assert!(
                            status.contains(&answers[0].status),
                            "{what}: {:?}",
                            answers[0]
                        );
                        if answers[0].status >= 400 {
                            let error: Value = serde_json::from_str(&answers[0].body)
                                .unwrap_or_else(|_| panic!("{what}: not JSON: {:?}", answers[0]));
                            assert!(
                                error["error"].is_string() && error["message"].is_string(),
                                "{what}: {error}"
                            );
                        }
                    }
                    let label = format!("{} {path} {cred:?}", route.method);
                    report(&label, real_times, random_times, cred != Cred::PollSecret);
                }
            }
            Probe::Listing { path, body, creds } => {
                for &cred in *creds {
                    let (answer, _) = ask(&w.relay, &method, path, w.cred(cred), *body, "\0").await;
                    for id in &b_ids {
                        assert!(
                            !answer.body.contains(id.as_str()),
                            "{} {path} as A's {cred:?} shows B's {id}: {}",
                            route.method,
                            answer.body
                        );
                    }
                    if answer.status >= 400 {
                        let error: Value =
                            serde_json::from_str(&answer.body).expect("a JSON error");
                        assert!(error["error"].is_string(), "{error}");
                    }
                }
            }
            Probe::AgentHello(transport) => {
                for placeholder in ["{bucket}", "{bucket_name}"] {
                    let real = w.b(placeholder).to_owned();
                    let (mut real_times, mut random_times) = (Vec::new(), Vec::new());
                    for i in 0..PAIRS {
                        let random = random_like(placeholder, &real);
                        let order = if i % 2 == 0 {
                            [&real, &random]
                        } else {
                            [&random, &real]
                        };
                        let mut answers = Vec::new();
                        for value in order {
                            let start = Instant::now();
                            let answer = match transport {
                                Transport::WebSocket => {
                                    let mut socket = open(&w.relay).await;
                                    hello(&mut socket, &w.a_agent, value).await
                                }
                                Transport::Grpc => grpc_hello(&w.relay, &w.a_agent, value).await,
                            };
                            let took = start.elapsed();
                            if value == &real {
                                real_times.push(took);
                            } else {
                                random_times.push(took);
                            }
                            answers.push(format!("{answer:?}").replace(value.as_str(), "<probed>"));
                        }
                        assert_eq!(answers[0], answers[1], "agent Hello for {placeholder}");
                        assert!(answers[0].contains("not_found"), "{}", answers[0]);
                    }
                    report(
                        &format!("{transport:?} Hello {placeholder} Agent"),
                        real_times,
                        random_times,
                        true,
                    );
                }
            }
            Probe::TunnelHello(transport) => {
                let placeholder = "{tunnel_name}";
                let real = w.b(placeholder).to_owned();
                let (mut real_times, mut random_times) = (Vec::new(), Vec::new());
                for i in 0..PAIRS {
                    let random = random_like(placeholder, &real);
                    let order = if i % 2 == 0 {
                        [&real, &random]
                    } else {
                        [&random, &real]
                    };
                    let mut answers = Vec::new();
                    for value in order {
                        let start = Instant::now();
                        let answer = super::tunnel_hello::tunnel_hello(
                            &w.relay.url,
                            *transport,
                            &w.a_tunnel,
                            value,
                        )
                        .await;
                        let took = start.elapsed();
                        if value == &real {
                            real_times.push(took);
                        } else {
                            random_times.push(took);
                        }
                        answers.push(answer.replace(value.as_str(), "<probed>"));
                    }
                    assert_eq!(answers[0], answers[1], "tunnel Hello for B's tunnel");
                    assert!(answers[0].contains("not_found"), "{}", answers[0]);
                }
                report(
                    &format!("{transport:?} tunnel Hello {placeholder}"),
                    real_times,
                    random_times,
                    true,
                );
            }
            Probe::Outside(_) => {}
        }
    }

    // Nothing of B's was changed by A's PATCH, DELETE, POST and rotate.
    let b = &w.relay;
    for path in [
        format!("/v1/buckets/{}", w.b("{bucket}")),
        format!("/v1/inputs/{}", w.b("{input}")),
        format!("/v1/outputs/{}", w.b("{output}")),
        format!("/v1/tokens/{}", w.b("{key}")),
        format!("/v1/events/{}", w.b("{event}")),
        format!("/v1/tunnels/{}", w.b("{tunnel}")),
    ] {
        as_admin(b, "bravo", Method::GET, &path, Value::Null).await;
    }
    let tenant = b
        .admin(Method::GET, "/api/tenants/bravo", None, StatusCode::OK)
        .await;
    assert_eq!(tenant["enabled"], json!(true), "{tenant}");
    let inputs = as_admin(
        b,
        "bravo",
        Method::GET,
        &format!("/v1/buckets/{}/inputs", w.b("{bucket}")),
        Value::Null,
    )
    .await;
    assert_eq!(inputs["inputs"].as_array().unwrap().len(), 1, "{inputs}");
    let events = as_admin(b, "bravo", Method::GET, "/v1/events", Value::Null).await;
    let deliveries = as_admin(
        b,
        "bravo",
        Method::GET,
        &format!("/v1/events/{}", w.b("{event}")),
        Value::Null,
    )
    .await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    assert_eq!(
        deliveries["deliveries"][0]["attempts"],
        json!([]),
        "not resent: {deliveries}"
    );
    drop(b_socket);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(relay: &Relay) -> Socket {
    let url = format!("{}/v1/agent/ws", relay.url.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket handshake")
        .0
}

fn hello_message(token: &str, bucket: &str) -> proto::AgentMessage {
    let (key, secret) = token.split_once('.').unwrap();
    proto::AgentMessage::from(Up::Hello(pb::Hello {
        token_key: key.into(),
        token_secret: secret.into(),
        buckets: vec![bucket.into()],
        group: String::new(),
        mode: pb::Mode::Forward as i32,
        version: "probe".into(),
        max_in_flight: 1,
        tunnel: String::new(),
    }))
}

/// The gRPC transport's first answer to a `Hello` for `bucket`.
async fn grpc_hello(relay: &Relay, token: &str, bucket: &str) -> Down {
    let channel = tonic::transport::Endpoint::from_shared(relay.url.clone())
        .expect("the relay's URL")
        .connect()
        .await
        .expect("an HTTP/2 connection");
    let mut client = proto::pb::agent_client::AgentClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(hello_message(token, bucket))
        .await
        .expect("queue Hello");
    let response = client
        .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("the relay takes the stream");
    let mut inbound = response.into_inner();
    loop {
        let message = tokio::time::timeout(PATIENCE, inbound.message())
            .await
            .expect("an answer in time")
            .expect("a message")
            .expect("an answer before the end");
        match message.kind.expect("a message kind") {
            Down::Ping(_) | Down::Pong(_) => continue,
            other => return other,
        }
    }
}

/// Sends a `Hello` for `bucket` and returns the server's first answer that
/// is not a heartbeat.
async fn hello(socket: &mut Socket, token: &str, bucket: &str) -> Down {
    let frame = proto::encode(&hello_message(token, bucket));
    socket
        .send(Message::Binary(frame.into()))
        .await
        .expect("send Hello");
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("an answer in time")
            .expect("an answer before close")
            .expect("a frame");
        if let Message::Binary(bytes) = frame {
            match proto::decode_server(&bytes).expect("a valid frame") {
                Down::Ping(_) | Down::Pong(_) => continue,
                other => return other,
            }
        }
    }
}
