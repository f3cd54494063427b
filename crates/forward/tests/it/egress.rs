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
        format!("http://127.1:{port}/x"),
        format!("http://0x7f000001:{port}/x"),
        format!("http://0177.0.0.1:{port}/x"),
        format!("http://[::]:{port}/x"),
        format!("http://[::127.0.0.1]:{port}/x"),
        "http://172.16.0.1/x".to_owned(),
        "http://[fc00::1]/x".to_owned(),
        "http://[::ffff:169.254.169.254]/x".to_owned(),
        "http://10.0.0.1/x".to_owned(),
        "http://192.168.1.1/x".to_owned(),
        "http://100.64.0.1/x".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "https://169.254.169.254/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
        "http://[fe80::1]/".to_owned(),
    ];
    // Names the system resolver answers from /etc/hosts with a non-public
    // address (`localhost` at least), without DNS.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let names: Vec<String> = hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let ip: std::net::IpAddr = fields.next()?.parse().ok()?;
            (!forward::is_public(ip)).then(|| fields.map(str::to_owned).collect::<Vec<_>>())
        })
        .flatten()
        .take(8)
        .collect();
    assert!(names.iter().any(|n| n == "localhost"), "{names:?}");
    let urls = urls
        .into_iter()
        .chain(names.iter().map(|n| format!("http://{n}:{port}/x")));
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

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    // Under `PublicOnly` the first hop would have to be public, which no
    // test can run; both policies build the one client with redirects
    // off, so `AllowAll` shows what happens to the Location.
    let mut internal = Recorder::spawn().await;
    let mut bouncer = Recorder::spawn().await;
    let forwarder = Forwarder::new(EgressPolicy::AllowAll).expect("forwarder");
    let target = internal.url("/admin?secret=1");
    let req = Outbound {
        method: "POST".to_owned(),
        url: bouncer.url(&format!("/redirect-to?{target}")),
        headers: Vec::new(),
        body: Bytes::from_static(b"{}"),
        timeout: Duration::from_secs(10),
    };
    let outcome = forwarder.send(req, false).await;
    assert_eq!(outcome.status, Some(302), "{:?}", outcome.error);
    assert!(outcome
        .headers
        .iter()
        .any(|(n, v)| n == "location" && *v == target));
    assert_eq!(verdict(&outcome), Verdict::Fail);
    assert!(bouncer
        .received()
        .path_and_query
        .starts_with("/redirect-to"));
    assert!(internal.is_idle(), "the redirect was followed");
}
