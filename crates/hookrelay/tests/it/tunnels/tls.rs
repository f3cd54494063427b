//! Tunnels through TLS: the relay serves HTTPS, gRPC and WSS on one port
//! with a certificate from a CA made at test time; `hookrelay tunnel`
//! trusts that CA (`--ca-file`) on both transports, and a visitor reaches
//! the service over HTTPS. An `https://` destination is reached through
//! TLS checked against `--destination-ca-file`, and refused without it.

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

/// An HTTPS front for the plain destination at `plain` (a TLS-terminating
/// TCP proxy on an ephemeral loopback port), serving `cert` and `key`.
async fn https_front(plain: &str, cert: &str, key: &str) -> (String, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let plain = plain.trim_start_matches("http://").to_owned();
    let front = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, plain) = (acceptor.clone(), plain.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut inner) = tokio::net::TcpStream::connect(&plain).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
                }
            });
        }
    });
    (url, front)
}

/// Issue 15: `--destination https://…` forwards over TLS, verified against
/// `--destination-ca-file`; without it the system's roots do not know the
/// private CA, and the visitor gets 502 `destination_unreachable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_destination_is_reached_through_verified_tls() {
    let (ca, cert, key) = pki();
    let data = tempfile::tempdir().unwrap();
    let ca_file = data.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let ca_file = ca_file.display().to_string();
    let relay = Relay::start();
    let dest = destination::spawn("tls").await;
    let (https_url, front) = https_front(&dest.url, &cert, &key).await;

    let (_, token) = relay.tunnel("secure", json!({})).await;
    let agent = Agent::spawn_with(
        &relay,
        &token,
        "secure",
        &https_url,
        "grpc",
        &["--destination-ca-file", &ca_file],
    );
    let url = relay.url("secure", "/echo");
    wait_connected(&relay, &url).await;
    let answer = relay
        .http
        .post(&url)
        .body(vec![7u8; 300_000])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let seen: Value = answer.json().await.unwrap();
    assert_eq!(seen["len"], 300_000);
    assert_eq!(seen["dest"], "tls", "{seen}");
    drop(agent);

    // Without the CA file the destination's certificate is not trusted.
    let (_, token) = relay.tunnel("untrusted", json!({})).await;
    let _agent = Agent::spawn(&relay, &token, "untrusted", &https_url, "ws");
    let url = relay.url("untrusted", "/echo");
    testkit::wait_until(
        std::time::Duration::from_secs(20),
        "the agent refused the untrusted destination",
        || async {
            let Ok(answer) = relay.http.get(&url).send().await else {
                return false;
            };
            let body: Value = answer.json().await.unwrap_or_default();
            body["error"] == "destination_unreachable"
        },
    )
    .await;
    front.abort();
}
