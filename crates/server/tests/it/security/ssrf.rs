//! SSRF on public outputs (`internal: false`, delivered by the server
//! itself through `forward` in `PublicOnly` mode, DESIGN §7): every
//! spelling of a loopback, link-local or private address, and every name
//! the system resolver maps to one, is refused after one attempt, never
//! retried, and the destination behind it sees nothing. A public
//! destination cannot run here, so the redirect case runs with
//! `allow_private_destinations` and shows the relay answers with the 3xx
//! instead of following it; `forward`'s own tests cover the guard per URL.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{Destination, Relay};

const PATIENCE: Duration = Duration::from_secs(30);

/// Names in `/etc/hosts` mapped to an address `PublicOnly` refuses (at most
/// eight): the system resolver answers them without DNS.
fn private_names_in_hosts_file() -> Vec<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut names = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<std::net::IpAddr>) else {
            continue;
        };
        if forward::is_public(ip) {
            continue;
        }
        for name in fields {
            if !names.iter().any(|n| n == name) && names.len() < 8 {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// The deliveries of `event`, by output id.
async fn deliveries(relay: &Relay, event: &str) -> BTreeMap<String, Value> {
    let v = relay
        .admin(
            Method::GET,
            &format!("/v1/events/{event}"),
            None,
            StatusCode::OK,
        )
        .await;
    v["deliveries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d["output"].as_str().unwrap_or_default().to_owned(), d))
        .collect()
}

/// A bucket with one public output per URL and a plain input; posts one
/// event and waits until every delivery settled. Returns the deliveries by
/// URL.
async fn deliver_once(relay: &Relay, urls: &[String]) -> Vec<(String, Value)> {
    let bucket = relay.create_bucket(json!({"name": "pub"})).await;
    let id = bucket["id"].as_str().unwrap();
    let mut outputs = Vec::new();
    for url in urls {
        let output = relay
            .admin(
                Method::POST,
                &format!("/v1/buckets/{id}/outputs"),
                Some(json!({"url": url, "internal": false, "retry": {"maxAttempts": 3, "initialDelayMs": 10}})),
                StatusCode::CREATED,
            )
            .await;
        outputs.push((url.clone(), output["id"].as_str().unwrap().to_owned()));
    }
    let input = relay.create_input(id, json!({})).await;
    let (status, _) =
        testkit::post(&relay.http, input["url"].as_str().unwrap(), &[], b"ssrf?").await;
    assert_eq!(status, StatusCode::OK);
    let event = relay.events().await[0]["id"].as_str().unwrap().to_owned();
    testkit::wait_until(PATIENCE, "every delivery settled", || async {
        let d = deliveries(relay, &event).await;
        d.len() == urls.len()
            && d.values()
                .all(|d| d["state"] == "failed" || d["state"] == "delivered")
    })
    .await;
    let d = deliveries(relay, &event).await;
    outputs
        .into_iter()
        .map(|(url, output)| (url, d[&output].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_outputs_refuse_every_private_spelling_without_retrying() {
    let relay = Relay::spawn().await;
    // Listening on loopback: a request that got through would be recorded.
    let destination = Destination::spawn().await;
    let port = destination.url.rsplit(':').next().unwrap().to_owned();
    let mut urls: Vec<String> = [
        "127.0.0.1",
        "[::1]",
        "127.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "0.0.0.0",
        "[::]",
        "localhost",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/x"))
    .collect();
    for host in [
        "169.254.169.254",
        "[fe80::1]",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.0.1",
        "[fc00::1]",
        "[fd00:ec2::254]",
        "100.64.0.1",
        "[::ffff:169.254.169.254]",
    ] {
        urls.push(format!("http://{host}/latest/meta-data/"));
    }
    let names = private_names_in_hosts_file();
    assert!(names.iter().any(|n| n == "localhost"), "{names:?}");
    for name in &names {
        urls.push(format!("https://{name}:{port}/x"));
    }

    for (url, delivery) in deliver_once(&relay, &urls).await {
        assert_eq!(delivery["state"], "failed", "{url}: {delivery}");
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{url} was retried: {delivery}");
        let error = attempts[0]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(forward::NOT_PUBLIC), "{url}: {error}");
        assert!(attempts[0]["status"].is_null(), "{url}: {delivery}");
    }
    assert!(
        destination.received().is_empty(),
        "a refused destination was reached"
    );
    println!("ssrf: {} URLs refused: {urls:?}", urls.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_an_internal_address_is_the_answer_not_followed() {
    // Private destinations allowed, so the first hop is reachable here; the
    // redirect must still not be followed.
    let relay = Relay::builder()
        .config(|c| c.allow_private_destinations = true)
        .spawn()
        .await;
    let internal = Destination::spawn().await;
    let bouncer = Destination::spawn().await;
    let location = format!("{}/admin?secret=1", internal.url);
    bouncer.answer_next([(302, vec![("location".to_owned(), location)], String::new())]);

    let url = format!("{}/hook", bouncer.url);
    let delivered = deliver_once(&relay, std::slice::from_ref(&url)).await;
    let delivery = &delivered[0].1;
    assert_eq!(delivery["state"], "failed", "{delivery}");
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "a 3xx is final: {delivery}");
    assert_eq!(attempts[0]["status"], 302, "{delivery}");
    assert_eq!(bouncer.received().len(), 1);
    assert!(internal.received().is_empty(), "the redirect was followed");
}
