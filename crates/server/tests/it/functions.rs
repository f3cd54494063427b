//! Functions through the real server (issue 16, DESIGN §9, §14): the
//! objects and their checks, `invoke`, input functions (answer the
//! sender, reshape, drop), output functions (change one destination's
//! request, skip it), and the failure rules: whatever a function does,
//! the event is stored and the answer is the input's policy. The README's
//! cookbook scripts are the ones these tests run.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{Destination, Relay};

const WAIT: Duration = Duration::from_secs(10);

/// README cookbook: Facebook's `hub.challenge` GET handshake.
pub(crate) const FACEBOOK: &str = r#"
if r.RequestMethod == "GET" then
  if r.RequestQuery["hub.verify_token"] == cfg.get("VERIFY_TOKEN") then
    r:SetResponseStatusCode(200)
    r:SetResponseBody(r.RequestQuery["hub.challenge"])
  else
    r:SetResponseStatusCode(403)
  end
  r:StopForwarding()
end
"#;

/// README cookbook: a GitHub push reshaped into a Slack (or Discord)
/// message.
pub(crate) const SLACK: &str = r#"
local push, err = json.decode(r.RequestBody)
if err then error("not JSON: " .. err) end
local text = push.pusher.name .. " pushed to " .. push.ref
r:SetRequestHeader("content-type", "application/json")
r:DeleteRequestHeader("x-hub-signature-256")
r:SetRequestBody(json.encode({text = text, content = text}))
"#;

/// README cookbook: drop noisy events by type.
pub(crate) const DROP: &str = r#"
local noisy = { ping = true, watch = true, star = true }
if noisy[r.RequestHeader["X-GitHub-Event"]] then
  r:StopForwarding()
end
"#;

/// README cookbook: an auth header for one output.
pub(crate) const AUTH: &str = r#"
r:SetRequestHeader("Authorization", "Bearer " .. cfg.get("API_TOKEN"))
"#;

struct World {
    relay: Relay,
    destination: Destination,
    bucket: String,
}

async fn world() -> World {
    let relay = Relay::builder()
        .config(|c| c.allow_private_destinations = true)
        .spawn()
        .await;
    let destination = Destination::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "fns"})).await;
    let bucket = bucket["id"].as_str().unwrap().to_owned();
    World {
        relay,
        destination,
        bucket,
    }
}

impl World {
    async fn function(&self, source: &str, config: Value) -> String {
        let f = self
            .relay
            .admin(
                Method::POST,
                "/v1/functions",
                Some(json!({"name": "f", "source": source, "config": config})),
                StatusCode::CREATED,
            )
            .await;
        f["id"].as_str().unwrap().to_owned()
    }

    async fn output(&self, extra: Value) -> Value {
        let mut body = json!({"url": self.destination.url, "internal": false});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.relay
            .admin(
                Method::POST,
                &format!("/v1/buckets/{}/outputs", self.bucket),
                Some(body),
                StatusCode::CREATED,
            )
            .await
    }

    async fn input(&self, body: Value) -> Value {
        self.relay.create_input(&self.bucket, body).await
    }

    async fn event(&self, id: &str) -> Value {
        self.relay
            .admin(
                Method::GET,
                &format!("/v1/events/{id}"),
                None,
                StatusCode::OK,
            )
            .await
    }

    /// The only stored event, with its deliveries.
    async fn only_event(&self) -> Value {
        let events = self.relay.events().await;
        assert_eq!(events.len(), 1, "{events:?}");
        self.event(events[0]["id"].as_str().unwrap()).await
    }

    /// Waits until the only event's deliveries all left `pending`.
    async fn settled_event(&self) -> Value {
        testkit::wait_until(WAIT, "the deliveries to settle", || async {
            let events = self.relay.events().await;
            if events.len() != 1 {
                return false;
            }
            let event = self.event(events[0]["id"].as_str().unwrap()).await;
            event["deliveries"].as_array().is_some_and(|d| {
                !d.is_empty()
                    && d.iter()
                        .all(|d| d["state"] != "pending" && d["state"] != "in_flight")
            })
        })
        .await;
        self.only_event().await
    }
}

async fn post(url: &str, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).body(body.to_owned());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn function_objects_are_checked_sealed_and_guarded() {
    let w = world().await;
    let created = w
        .relay
        .admin(
            Method::POST,
            "/v1/functions",
            Some(json!({"name": "one", "source": "r:StopForwarding()", "config": {"KEY": "hunter2"}})),
            StatusCode::CREATED,
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("fn_"), "{created}");
    assert_eq!(created["configKeys"], json!(["KEY"]));
    assert_eq!(created["language"], "lua");
    assert_eq!(created["version"], 1);
    assert!(!created.to_string().contains("hunter2"));

    let listed = w
        .relay
        .admin(Method::GET, "/v1/functions", None, StatusCode::OK)
        .await;
    assert_eq!(listed["functions"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("hunter2"));

    // A source that does not compile is refused naming the line.
    let (status, bad) = w
        .relay
        .call(
            Method::POST,
            "/v1/functions",
            &w.relay.admin,
            Some(json!({"name": "bad", "source": "local a = 1\nlocal = 2"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["error"], "invalid_request");
    assert!(bad["message"].as_str().unwrap().contains("line 2"), "{bad}");
    let (status, big) = w
        .relay
        .call(
            Method::POST,
            "/v1/functions",
            &w.relay.admin,
            Some(json!({"name": "big", "source": "-".repeat(64 * 1024 + 1)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{big}");
    assert!(big["message"].as_str().unwrap().starts_with("source"));
    let (status, _) = w
        .relay
        .call(
            Method::POST,
            "/v1/functions",
            &w.relay.admin,
            Some(json!({"name": "js", "language": "js", "source": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A patch bumps the version; a broken patch changes nothing.
    let patched = w
        .relay
        .admin(
            Method::PATCH,
            &format!("/v1/functions/{id}"),
            Some(json!({"source": "r:SetRequestBody('x')"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["configKeys"], json!(["KEY"]));
    let (status, _) = w
        .relay
        .call(
            Method::PATCH,
            &format!("/v1/functions/{id}"),
            &w.relay.admin,
            Some(json!({"source": "end end"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Inputs name only functions of their tenant; one in use stays.
    let (status, unknown) = w
        .relay
        .call(
            Method::POST,
            &format!("/v1/buckets/{}/inputs", w.bucket),
            &w.relay.admin,
            Some(json!({"functionId": "fn_doesnotexist"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{unknown}");
    let (status, _) = w
        .relay
        .call(
            Method::POST,
            &format!("/v1/buckets/{}/inputs", w.bucket),
            &w.relay.admin,
            Some(json!({"response": {"type": "function"}})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "function policy needs a functionId"
    );
    let input = w
        .input(json!({"functionId": id, "response": {"type": "function"}}))
        .await;
    assert_eq!(input["functionId"], id);
    let (status, in_use) = w
        .relay
        .call(
            Method::DELETE,
            &format!("/v1/functions/{id}"),
            &w.relay.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{in_use}");
    assert_eq!(in_use["error"], "in_use");
    let input_id = input["id"].as_str().unwrap();
    let detached = w
        .relay
        .admin(
            Method::PATCH,
            &format!("/v1/inputs/{input_id}"),
            Some(json!({"functionId": null, "response": {"type": "default"}})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(detached["functionId"], Value::Null);
    w.relay
        .admin(
            Method::DELETE,
            &format!("/v1/functions/{id}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    w.relay
        .admin(
            Method::GET,
            &format!("/v1/functions/{id}"),
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
}

#[tokio::test]
async fn invoke_runs_a_sample_request_and_answers_the_outcome() {
    let w = world().await;
    let id = w.function(SLACK, json!({})).await;
    let push = r#"{"ref":"refs/heads/main","pusher":{"name":"octocat"}}"#;
    let out = w
        .relay
        .admin(
            Method::POST,
            &format!("/v1/functions/{id}/invoke"),
            Some(json!({"method": "POST", "path": "/x", "query": "a=1",
                        "headers": {"X-Hub-Signature-256": "sha256=00", "X-A": "b"}, "body": push})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(out["error"], Value::Null, "{out}");
    let body: Value = serde_json::from_str(out["request"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["text"], "octocat pushed to refs/heads/main");
    assert_eq!(out["request"]["headers"]["x-a"], "b");
    assert_eq!(out["request"]["headers"].get("x-hub-signature-256"), None);
    assert_eq!(out["request"]["query"], "a=1");
    assert_eq!(out["response"], Value::Null);
    assert_eq!(out["stopForwarding"], false);
    assert!(out["durationMicros"].as_u64().is_some());

    // A failing script answers its error, not a 500.
    let bad = w.function("error('boom')", json!({})).await;
    let out = w
        .relay
        .admin(
            Method::POST,
            &format!("/v1/functions/{bad}/invoke"),
            Some(json!({"body": "x"})),
            StatusCode::OK,
        )
        .await;
    assert!(out["error"].as_str().unwrap().contains("boom"), "{out}");
    assert_eq!(out["request"]["body"], "x");
    let (status, refused) = w
        .relay
        .call(
            Method::POST,
            &format!("/v1/functions/{bad}/invoke"),
            &w.relay.admin,
            Some(json!({"method": "GE T"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
}

#[tokio::test]
async fn facebook_hub_challenge_is_answered_by_the_input_function() {
    let w = world().await;
    w.output(json!({})).await;
    let id = w.function(FACEBOOK, json!({"VERIFY_TOKEN": "tok"})).await;
    let input = w
        .input(json!({"functionId": id, "response": {"type": "function"}}))
        .await;
    let url = input["url"].as_str().unwrap();
    let answer = reqwest::Client::new()
        .get(format!(
            "{url}?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=tok"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.text().await.unwrap(), "1158201444");
    let wrong = reqwest::Client::new()
        .get(format!("{url}?hub.challenge=1&hub.verify_token=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // Both are stored, stopped, with no deliveries; a POST goes through.
    let events = w.relay.events().await;
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e["stopped"], true, "{e}");
        let detail = w.event(e["id"].as_str().unwrap()).await;
        assert_eq!(detail["deliveries"], json!([]));
    }
    let answer = post(url, &[], "{\"entry\":[]}").await;
    assert_eq!(answer.status(), StatusCode::OK);
    let got = w.destination.wait_for(1, WAIT).await;
    assert_eq!(got[0].body, "{\"entry\":[]}");
}

#[tokio::test]
async fn an_input_function_reshapes_what_is_delivered_and_the_original_is_kept() {
    let w = world().await;
    w.output(json!({})).await;
    let id = w.function(SLACK, json!({})).await;
    let input = w.input(json!({"functionId": id})).await;
    let push = r#"{"ref":"refs/heads/main","pusher":{"name":"octocat"}}"#;
    let answer = post(
        &format!("{}/deep?x=1", input["url"].as_str().unwrap()),
        &[
            ("x-hub-signature-256", "sha256=abc"),
            ("content-type", "text/plain"),
        ],
        push,
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.text().await.unwrap(), "");
    let got = w.destination.wait_for(1, WAIT).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["text"], "octocat pushed to refs/heads/main");
    assert_eq!(body["content"], body["text"]);
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(got[0].header("x-hub-signature-256"), None);
    assert_eq!(got[0].target, "/deep?x=1");
    let event = w.settled_event().await;
    assert_eq!(event["body"], push, "the original is stored");
    assert_eq!(event["headers"]["x-hub-signature-256"], "sha256=abc");
    let forwarded: Value =
        serde_json::from_str(event["forwarded"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(forwarded, body);
    assert_eq!(event["forwarded"]["path"], "/deep");
    assert_eq!(event["deliveries"][0]["state"], "delivered");
}

#[tokio::test]
async fn an_unchanged_request_is_delivered_byte_exact_and_noisy_events_are_dropped() {
    let w = world().await;
    w.output(json!({})).await;
    let id = w.function(DROP, json!({})).await;
    let input = w.input(json!({"functionId": id})).await;
    let url = input["url"].as_str().unwrap();
    let answer = post(url, &[("x-github-event", "star")], "{\"starred\": 1}").await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body = "{\"a\":  1}\n";
    post(url, &[("x-github-event", "push")], body).await;
    let got = w.destination.wait_for(1, WAIT).await;
    assert_eq!(got[0].body, body, "byte for byte");
    let events = w.relay.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["stopped"], true);
    assert_eq!(events[0].get("forwarded"), None);
    assert_eq!(events[1].get("stopped"), None);
    assert_eq!(events[1].get("forwarded"), None, "nothing changed");
    let stopped = w.event(events[0]["id"].as_str().unwrap()).await;
    assert_eq!(stopped["deliveries"], json!([]));
    assert_eq!(w.destination.received().len(), 1);
}

#[tokio::test]
async fn output_functions_change_one_destination_and_skip_another() {
    let w = world().await;
    let auth = w.function(AUTH, json!({"API_TOKEN": "t0k"})).await;
    let skip = w.function("r:StopForwarding()", json!({})).await;
    let with_auth = w
        .output(json!({"functionId": auth, "url": format!("{}/auth", w.destination.url)}))
        .await;
    w.output(json!({"functionId": skip, "url": format!("{}/skip", w.destination.url)}))
        .await;
    let input = w.input(json!({})).await;
    post(input["url"].as_str().unwrap(), &[], "hello").await;
    let event = w.settled_event().await;
    let states: Vec<(String, String)> = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["output"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states.len(), 2);
    for (output, state) in &states {
        let expected = if output == with_auth["id"].as_str().unwrap() {
            "delivered"
        } else {
            "skipped"
        };
        assert_eq!(state, expected, "{event}");
    }
    let got = w.destination.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, "/auth");
    assert_eq!(got[0].header("authorization"), Some("Bearer t0k"));
    assert_eq!(got[0].body, "hello");
}

#[tokio::test]
async fn a_failing_input_function_loses_nothing() {
    let w = world().await;
    w.output(json!({})).await;
    for (source, why) in [
        ("error('boom')", "boom"),
        ("while true do end", "time"),
        ("local s = string.rep('x', 1024 * 1024 * 1024)", "memory"),
        ("r:SetResponseStatusCode(99)", "status"),
        ("r:SetRequestHeader('x-a', 'b\\r\\nc: d')", "header"),
    ] {
        let id = w.function(source, json!({})).await;
        let input = w
            .input(json!({"functionId": id, "response": {"type": "static", "status": 202, "body": "policy"}}))
            .await;
        let answer = post(input["url"].as_str().unwrap(), &[], why).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED, "{source}");
        assert_eq!(answer.text().await.unwrap(), "policy");
    }
    let events = w.relay.events().await;
    assert_eq!(events.len(), 5);
    for e in &events {
        let error = e["functionError"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        let why = e["body"].as_str().unwrap();
        assert!(!error.is_empty(), "{e}");
        if why != "boom" {
            assert!(error.contains(why), "{why}: {error}");
        } else {
            assert!(error.contains("boom"), "{error}");
        }
        assert_eq!(e.get("forwarded"), None);
    }
    // Delivered unchanged, every one of them.
    let mut bodies: Vec<String> = w
        .destination
        .wait_for(5, WAIT)
        .await
        .iter()
        .map(|r| String::from_utf8(r.body.to_vec()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["boom", "header", "memory", "status", "time"]);
}

#[tokio::test]
async fn a_failing_output_function_fails_its_delivery_only() {
    let w = world().await;
    let bad = w.function("error('nope')", json!({})).await;
    w.output(json!({"functionId": bad, "url": format!("{}/bad", w.destination.url)}))
        .await;
    w.output(json!({"url": format!("{}/good", w.destination.url)}))
        .await;
    let input = w.input(json!({})).await;
    post(input["url"].as_str().unwrap(), &[], "x").await;
    let event = w.settled_event().await;
    let mut states: Vec<&str> = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    states.sort();
    assert_eq!(states, ["delivered", "failed"], "{event}");
    let failed = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["state"] == "failed")
        .unwrap();
    let error = failed["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("function_error") && error.contains("nope"),
        "{error}"
    );
    assert_eq!(w.destination.received().len(), 1);
}
