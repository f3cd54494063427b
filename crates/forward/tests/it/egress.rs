//! `PublicOnly` refuses every non-public destination before connecting,
//! whether named by an IP literal or by a name that resolves to one.

use std::time::Duration;

use bytes::Bytes;
use forward::{verdict, EgressPolicy, Forwarder, Outbound, Verdict, NOT_PUBLIC};

use crate::recorder::Recorder;

#[tokio::test]
async fn public_only_refuses_non_public_destinations() {
    // A live destination on loopback, so a request that got through would be
    // answered (and recorded) rather than fail to connect.
    let mut dest = Recorder::spawn().await;
    let port = dest.addr.port();
    let forwarder = Forwarder::new(EgressPolicy::PublicOnly).expect("forwarder");
    assert_eq!(forwarder.policy(), EgressPolicy::PublicOnly);

    let urls = [
        format!("http://127.0.0.1:{port}/x"),
        format!("http://[::1]:{port}/x"),
        format!("http://localhost:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        format!("http://[::ffff:7f00:1]:{port}/x"),
        format!("http://2130706433:{port}/x"),
        format!("http://0x7f.1:{port}/x"),
        format!("http://0.0.0.0:{port}/x"),
        "http://10.0.0.1/x".to_owned(),
        "http://192.168.1.1/x".to_owned(),
        "http://100.64.0.1/x".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "https://169.254.169.254/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
        "http://[fe80::1]/".to_owned(),
    ];
    for url in urls {
        let req = Outbound {
            method: "POST".to_owned(),
            url: url.clone(),
            headers: Vec::new(),
            body: Bytes::from_static(b"{}"),
            timeout: Duration::from_secs(10),
        };
        let outcome = forwarder.send(req, true).await;
        assert_eq!(outcome.status, None, "{url} was reached");
        let error = outcome.error.clone().expect("an error");
        assert!(error.starts_with(NOT_PUBLIC), "{url}: {error}");
        assert_eq!(verdict(&outcome), Verdict::Fail, "{url}");
    }
    assert!(dest.is_idle(), "a refused destination was reached");
}

#[tokio::test]
async fn allow_all_reaches_what_public_only_refuses() {
    let mut dest = Recorder::spawn().await;
    let forwarder = Forwarder::new(EgressPolicy::AllowAll).expect("forwarder");
    let req = Outbound {
        method: "POST".to_owned(),
        url: dest.url("/x"),
        headers: Vec::new(),
        body: Bytes::new(),
        timeout: Duration::from_secs(10),
    };
    let outcome = forwarder.send(req, false).await;
    assert_eq!(outcome.status, Some(200), "{:?}", outcome.error);
    assert_eq!(dest.received().path_and_query, "/x");
}
