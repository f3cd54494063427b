//! Tunnels through TLS: the relay serves HTTPS, gRPC and WSS on one port
//! with a certificate from a CA made at test time; `hookrelay tunnel`
//! trusts that CA (`--ca-file`) on both transports, and a visitor reaches
//! the service over HTTPS.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::{json, Value};

use super::{destination, wait_connected, Agent, Relay, ADMIN, DOMAIN};
use crate::Serve;

/// (CA PEM, certificate PEM, key PEM) for localhost and 127.0.0.1.
fn pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_work_through_tls_with_a_private_ca_on_both_transports() {
    let (ca, cert, key) = pki();
    let data = tempfile::tempdir().unwrap();
    let path = |name: &str, text: &str| {
        let p = data.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (ca_file, cert_file, key_file) = (
        path("ca.pem", &ca),
        path("cert.pem", &cert),
        path("key.pem", &key),
    );
    let serve = Serve::start_with(
        &data.path().join("relay"),
        &[
            "--tunnel-domain",
            DOMAIN,
            "--admin-secret",
            ADMIN,
            "--tls-cert",
            &cert_file,
            "--tls-key",
            &key_file,
        ],
        &[],
    );
    assert!(serve.url.starts_with("https://"), "{}", serve.url);
    let http = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let relay = Relay::from_parts(serve, http);
    let dest = destination::spawn("a").await;
    for transport in ["grpc", "ws"] {
        let name = format!("tls-{transport}");
        let (_, token) = relay.tunnel(&name, json!({})).await;
        let _agent = Agent::spawn_with(
            &relay,
            &token,
            &name,
            &dest.url,
            transport,
            &["--ca-file", &ca_file],
        );
        wait_connected(&relay, &relay.url(&name, "/echo")).await;
        let seen: Value = relay
            .http
            .post(relay.url(&name, "/echo"))
            .body(vec![1u8; 300_000])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(seen["len"], 300_000, "{transport}");
        assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    }
}
