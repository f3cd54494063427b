//! What the destination receives is the event: method, joined path and
//! query, headers and body, byte for byte.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use forward::{outbound_headers, target_url, verdict, EgressPolicy, Forwarder, Outbound, Verdict};

use crate::recorder::Recorder;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
        .collect()
}

fn outbound(method: &str, url: String, headers: Vec<(String, Vec<u8>)>, body: Bytes) -> Outbound {
    Outbound {
        method: method.to_owned(),
        url,
        headers,
        body,
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn event_arrives_byte_identical() {
    let mut dest = Recorder::spawn().await;
    let forwarder = Forwarder::new(EgressPolicy::AllowAll).expect("forwarder");

    let event_headers = pairs(&[
        ("Host", "relay.example.com"),
        ("Content-Type", "application/octet-stream"),
        ("X-Hub-Signature-256", "sha256=00ff  AB=="),
        ("Stripe-Signature", "t=1,v1=abc,v0=def"),
        ("Connection", "keep-alive, X-Hop"),
        ("X-Hop", "dropped"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic eA=="),
        ("Upgrade", "h2c"),
        ("TE", "trailers"),
        ("Content-Length", "3"),
        ("Transfer-Encoding", "chunked"),
        ("X-Repeated", "first"),
        ("X-Note", "café, naïve"),
        ("x-repeated", "second"),
        ("Authorization", "Bearer from-provider"),
        ("User-Agent", "GitHub-Hookshot/abc"),
    ]);
    // A value that is not UTF-8 (obs-text, RFC 9110 §5.5) goes as it came.
    let mut event_headers = event_headers;
    event_headers.push(("X-Raw".to_owned(), b"a\xff\xfeb".to_vec()));
    let extra: BTreeMap<String, String> =
        [("authorization", "Bearer from-output"), ("x-added", "1")]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
    // Every byte value, and a sequence that is not UTF-8.
    let mut body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    body.extend_from_slice(&[0xC3, 0x28, 0xFF, 0xFE, 0x00]);
    let body = Bytes::from(body);

    let url = target_url(
        &dest.url("/hook?a=1"),
        "/extra/pa th",
        "b=2&b=3&s=%F0%9F%A6%80",
    )
    .expect("target url");
    let req = outbound(
        "PATCH",
        url,
        outbound_headers(&event_headers, &extra),
        body.clone(),
    );
    let outcome = forwarder.send(req, false).await;

    assert_eq!(outcome.status, Some(200), "{:?}", outcome.error);
    assert_eq!(verdict(&outcome), Verdict::Delivered);
    assert_eq!(outcome.error, None);
    assert!(outcome.body.is_empty(), "body not wanted");
    assert!(outcome
        .headers
        .iter()
        .any(|(n, v)| n == "x-reply" && v == "yes"));

    let got = dest.received();
    assert_eq!(got.method, "PATCH");
    assert_eq!(
        got.path_and_query,
        "/hook/extra/pa%20th?a=1&b=2&b=3&s=%F0%9F%A6%80"
    );
    assert_eq!(got.body, body);

    let h = &got.headers;
    let all = |name: &str| -> Vec<&[u8]> { h.get_all(name).iter().map(|v| v.as_bytes()).collect() };
    assert_eq!(all("host"), [dest.addr.to_string().as_bytes()]);
    assert_eq!(all("content-length"), [body.len().to_string().as_bytes()]);
    assert_eq!(
        all("x-hub-signature-256"),
        [b"sha256=00ff  AB==".as_slice()]
    );
    assert_eq!(all("stripe-signature"), [b"t=1,v1=abc,v0=def".as_slice()]);
    assert_eq!(all("x-repeated"), [b"first".as_slice(), b"second"]);
    assert_eq!(all("x-note"), ["café, naïve".as_bytes()]);
    assert_eq!(all("x-raw"), [b"a\xff\xfeb".as_slice()]);
    assert_eq!(
        all("content-type"),
        [b"application/octet-stream".as_slice()]
    );
    assert_eq!(all("user-agent"), [b"GitHub-Hookshot/abc".as_slice()]);
    assert_eq!(all("authorization"), [b"Bearer from-output".as_slice()]);
    assert_eq!(all("x-added"), [b"1".as_slice()]);
    for dropped in [
        "x-hop",
        "keep-alive",
        "proxy-authorization",
        "upgrade",
        "te",
        "transfer-encoding",
    ] {
        assert!(h.get(dropped).is_none(), "{dropped} was forwarded");
    }
    // Nothing but what was sent, the framing headers, and the HTTP client's
    // `accept: */*` default.
    let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "authorization",
            "content-length",
            "content-type",
            "host",
            "stripe-signature",
            "user-agent",
            "x-added",
            "x-hub-signature-256",
            "x-note",
            "x-raw",
            "x-repeated",
        ]
    );
}

#[tokio::test]
async fn headers_that_reach_send_unfiltered_are_still_not_forwarded() {
    let mut dest = Recorder::spawn().await;
    let forwarder = Forwarder::new(EgressPolicy::AllowAll).expect("forwarder");
    let headers = pairs(&[
        ("host", "evil.example"),
        ("content-length", "1"),
        ("transfer-encoding", "chunked"),
        ("connection", "close"),
        ("accept", "application/json"),
    ]);
    let outcome = forwarder
        .send(
            outbound("POST", dest.url("/x"), headers, Bytes::from_static(b"{}")),
            false,
        )
        .await;
    assert_eq!(outcome.status, Some(200), "{:?}", outcome.error);
    let got = dest.received();
    assert_eq!(got.headers["host"], dest.addr.to_string().as_str());
    assert_eq!(got.headers["content-length"], "2");
    assert_eq!(got.headers["accept"], "application/json");
    assert!(got.headers.get("transfer-encoding").is_none());
    assert_eq!(got.body, Bytes::from_static(b"{}"));
}

#[tokio::test]
async fn get_without_body_sends_none() {
    let mut dest = Recorder::spawn().await;
    let forwarder = Forwarder::new(EgressPolicy::AllowAll).expect("forwarder");
    let outcome = forwarder
        .send(
            outbound("GET", dest.url("/x?y=1"), Vec::new(), Bytes::new()),
            false,
        )
        .await;
    assert_eq!(outcome.status, Some(200), "{:?}", outcome.error);
    let got = dest.received();
    assert_eq!(got.method, "GET");
    assert_eq!(got.path_and_query, "/x?y=1");
    assert!(got.headers.get("content-length").is_none());
    assert!(got.body.is_empty());
}

#[tokio::test]
async fn allow_all_reaches_loopback_by_name() {
    let mut dest = Recorder::spawn().await;
    let forwarder = Forwarder::new(EgressPolicy::AllowAll).expect("forwarder");
    let url = format!("http://localhost:{}/by-name", dest.addr.port());
    let outcome = forwarder
        .send(
            outbound("POST", url, Vec::new(), Bytes::from_static(b"x")),
            false,
        )
        .await;
    assert_eq!(outcome.status, Some(200), "{:?}", outcome.error);
    assert_eq!(dest.received().path_and_query, "/by-name");
}
