//! TLS end to end: the relay serves HTTPS, gRPC and WSS on its one port
//! with a certificate from a CA made at test time; an agent trusting that
//! CA delivers, one trusting another CA is refused and stops.

use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::{post, Destination, Relay};

use super::{agents_connected, Running, PATIENCE};

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA and a certificate it signed for localhost and 127.0.0.1.
fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_deliver_over_tls_and_refuse_a_relay_signed_by_another_ca() {
    let ours = pki();
    let tls = server::config::tls_from_pem(ours.cert_pem.as_bytes(), ours.key_pem.as_bytes())
        .expect("server TLS config");
    let relay = Relay::builder().tls(tls, &ours.ca_pem).spawn().await;
    assert!(relay.url.starts_with("https://"), "{}", relay.url);
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ours.ca_pem).expect("write CA");
    let stranger = dir.path().join("other-ca.pem");
    std::fs::write(&stranger, pki().ca_pem).expect("write other CA");

    let destination = Destination::spawn().await;
    let bucket = relay.create_bucket(json!({"name": "prod"})).await;
    let id = bucket["id"].as_str().unwrap().to_owned();
    let input = relay.create_input(&id, json!({})).await;
    relay
        .admin(
            Method::POST,
            &format!("/v1/buckets/{id}/outputs"),
            Some(json!({"url": destination.url, "internal": true})),
            StatusCode::CREATED,
        )
        .await;
    let token = super::new_token(&relay).await;
    let (key, secret) = token.split_once('.').unwrap();
    let config = |transport, ca: &std::path::Path| agent::AgentConfig {
        server: relay.url.clone(),
        token_key: key.into(),
        token_secret: secret.into(),
        buckets: vec!["prod".into()],
        group: String::new(),
        transport,
        destination: None,
        max_in_flight: 4,
        stop_grace: Duration::from_secs(5),
        ca_file: Some(ca.to_path_buf()),
    };

    for (i, transport) in super::TRANSPORTS.into_iter().enumerate() {
        let refused = tokio::time::timeout(
            PATIENCE,
            agent::run(config(transport, &stranger), Default::default(), None),
        )
        .await
        .expect("a wrong CA ends the agent instead of retrying");
        assert!(
            matches!(refused, Err(agent::AgentError::Tls(_))),
            "{transport:?}: {refused:?}"
        );

        let agent = Running::start(config(transport, &ca_file));
        agents_connected(&relay, 1).await;
        let url = input["url"].as_str().unwrap();
        assert!(url.starts_with("https://"));
        let (status, _) = post(&relay.http, url, &[], format!("secret {i}").as_bytes()).await;
        assert_eq!(status, StatusCode::OK);
        let got = destination.wait_for(i + 1, PATIENCE).await;
        assert_eq!(got[i].body.as_ref(), format!("secret {i}").as_bytes());
        agent.stop().await;
        agents_connected(&relay, 0).await;
    }
}
