//! What the destination answers (or fails to), and the verdict on it.

use std::time::Duration;

use bytes::Bytes;
use forward::{verdict, EgressPolicy, Forwarder, Outbound, Outcome, Verdict, INVALID_REQUEST};

use crate::recorder::Recorder;

async fn post(forwarder: &Forwarder, url: String, timeout: Duration, want_body: bool) -> Outcome {
    let req = Outbound {
        method: "POST".to_owned(),
        url,
        headers: Vec::new(),
        body: Bytes::from_static(b"{}"),
        timeout,
    };
    forwarder.send(req, want_body).await
}

fn allow_all() -> Forwarder {
    Forwarder::new(EgressPolicy::AllowAll).expect("forwarder")
}

#[tokio::test]
async fn statuses_map_to_verdicts() {
    let mut dest = Recorder::spawn().await;
    let forwarder = allow_all();
    let cases = [
        (200, Verdict::Delivered),
        (201, Verdict::Delivered),
        (204, Verdict::Delivered),
        (400, Verdict::Fail),
        (404, Verdict::Fail),
        (408, Verdict::Retry),
        (429, Verdict::Retry),
        (500, Verdict::Retry),
        (503, Verdict::Retry),
    ];
    for (status, want) in cases {
        let url = dest.url(&format!("/status/{status}"));
        let outcome = post(&forwarder, url, Duration::from_secs(10), false).await;
        assert_eq!(outcome.status, Some(status), "{:?}", outcome.error);
        assert_eq!(outcome.error, None);
        assert_eq!(verdict(&outcome), want, "{status}");
        dest.received();
    }
}

#[tokio::test]
async fn redirect_is_the_answer_and_not_followed() {
    let mut dest = Recorder::spawn().await;
    let outcome = post(
        &allow_all(),
        dest.url("/redirect"),
        Duration::from_secs(10),
        true,
    )
    .await;
    assert_eq!(outcome.status, Some(302));
    assert!(outcome
        .headers
        .iter()
        .any(|(n, v)| n == "location" && v == "/landing"));
    assert_eq!(verdict(&outcome), Verdict::Fail);
    assert_eq!(dest.received().path_and_query, "/redirect");
    // The destination records before answering, so a followed redirect
    // would be in the channel by now.
    assert!(dest.is_idle(), "the redirect was followed");
}

#[tokio::test]
async fn timeout_is_retried() {
    let mut dest = Recorder::spawn().await;
    let timeout = Duration::from_millis(200);
    let outcome = post(&allow_all(), dest.url("/hang"), timeout, false).await;
    assert_eq!(outcome.status, None);
    assert_eq!(outcome.error.as_deref(), Some("timed out after 200 ms"));
    assert!(outcome.latency >= timeout, "{:?}", outcome.latency);
    assert_eq!(verdict(&outcome), Verdict::Retry);
    dest.received();
}

#[tokio::test]
async fn connection_refused_is_retried() {
    // A port that was just free: nothing listens on it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("ephemeral port");
    let url = format!("http://{addr}/x?token=secret-in-query");
    let outcome = post(&allow_all(), url, Duration::from_secs(10), false).await;
    assert_eq!(outcome.status, None);
    let error = outcome.error.clone().expect("an error");
    assert!(error.starts_with("connection failed"), "{error}");
    assert!(!error.contains("secret-in-query"), "{error}");
    assert_eq!(verdict(&outcome), Verdict::Retry);
}

#[tokio::test]
async fn body_is_returned_only_when_wanted_and_bounded() {
    let mut dest = Recorder::spawn().await;
    let forwarder = allow_all();

    let small = post(
        &forwarder,
        dest.url("/small"),
        Duration::from_secs(10),
        true,
    )
    .await;
    assert_eq!(small.body, Bytes::from_static(b"ok"));
    assert!(!small.body_truncated);

    let big = post(&forwarder, dest.url("/big"), Duration::from_secs(10), true).await;
    assert_eq!(big.status, Some(200));
    assert_eq!(big.body.len(), forward::MAX_RESPONSE_BODY);
    assert!(big.body_truncated);
    assert_eq!(big.error, None);
    assert_eq!(verdict(&big), Verdict::Delivered);

    let unwanted = post(&forwarder, dest.url("/big"), Duration::from_secs(10), false).await;
    assert_eq!(unwanted.status, Some(200));
    assert!(unwanted.body.is_empty());
    assert!(!unwanted.body_truncated);
    let length = crate::recorder::BIG.to_string();
    assert!(unwanted
        .headers
        .iter()
        .any(|(n, v)| n == "content-length" && *v == length));

    for _ in 0..3 {
        dest.received();
    }
}

#[tokio::test]
async fn malformed_requests_fail_without_sending() {
    let mut dest = Recorder::spawn().await;
    let forwarder = allow_all();
    let base = Outbound {
        method: "POST".to_owned(),
        url: dest.url("/x"),
        headers: Vec::new(),
        body: Bytes::new(),
        timeout: Duration::from_secs(10),
    };
    let cases = [
        Outbound {
            method: "BAD METHOD".to_owned(),
            ..base.clone()
        },
        Outbound {
            url: "ftp://127.0.0.1/x".to_owned(),
            ..base.clone()
        },
        Outbound {
            url: "not a url".to_owned(),
            ..base.clone()
        },
        Outbound {
            headers: vec![("bad name".to_owned(), b"v".to_vec())],
            ..base.clone()
        },
        Outbound {
            headers: vec![("x-a".to_owned(), b"secret\r\nx-b: 1".to_vec())],
            ..base.clone()
        },
    ];
    for req in cases {
        let outcome = forwarder.send(req, false).await;
        assert_eq!(outcome.status, None);
        let error = outcome.error.clone().expect("an error");
        assert!(error.starts_with(INVALID_REQUEST), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert_eq!(verdict(&outcome), Verdict::Fail);
    }
    assert!(dest.is_idle());
}

#[test]
fn root_certificates_must_be_pem() {
    let err = Forwarder::with_root_certificates(EgressPolicy::AllowAll, b"not a certificate");
    assert!(err.is_err());
}
