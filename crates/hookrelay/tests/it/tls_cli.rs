//! Issue 18: the command-line clients against a relay serving TLS.
//! `admin` and `events` take `--ca-file` (a private CA), and a relay whose
//! certificate is itself a CA (`openssl req -x509` without
//! `basicConstraints=CA:FALSE`) gets an error saying so from `admin` and
//! from the agent, not "is it running?".

use std::path::Path;
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::{Serve, BIN};

const ADMIN: &str = "admin-tls";

/// Writes `text` to `dir/name`; its path.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs `hookrelay args` against `serve`; (exit code, stdout, stderr).
fn run(serve: &Serve, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("HOOKRELAY_URL", &serve.url)
        .env("HOOKRELAY_TOKEN", ADMIN)
        .env_remove("HOOKRELAY_CA_FILE")
        .output()
        .expect("run hookrelay");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn serve_tls(dir: &Path, cert: &str, key: &str) -> Serve {
    let cert = write(dir, "cert.pem", cert);
    let key = write(dir, "key.pem", key);
    Serve::start_with(
        &dir.join("relay"),
        &[
            "--admin-secret",
            ADMIN,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        &[],
    )
}

#[test]
fn r18_admin_and_events_take_a_ca_file() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_tls(dir.path(), &leaf.pem(), &key.serialize_pem());
    assert!(serve.url.starts_with("https://"), "{}", serve.url);
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());

    let (code, out, err) = run(&serve, &["admin", "bucket", "list", "--ca-file", &ca_file]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("NAME"), "{out}");
    let (code, _, err) = run(&serve, &["events", "list", "--json", "--ca-file", &ca_file]);
    assert_eq!(code, Some(0), "{err}");
    // Without it the relay's certificate is not trusted.
    let (code, _, err) = run(&serve, &["admin", "bucket", "list"]);
    assert_ne!(code, Some(0));
    assert!(!err.contains("CA certificate"), "{err}");
}

#[test]
fn r18_a_ca_certificate_serving_as_the_relays_own_is_named() {
    // What `openssl req -x509 -newkey ... -subj /CN=127.0.0.1` makes.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serve = serve_tls(dir.path(), &cert.pem(), &key.serialize_pem());
    let ca_file = write(dir.path(), "self.pem", &cert.pem());

    let (code, _, err) = run(&serve, &["admin", "bucket", "list", "--ca-file", &ca_file]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("is a CA certificate") && err.contains("CA:FALSE"),
        "admin: {err}"
    );
    assert!(!err.contains("is it running"), "admin: {err}");

    // The agent stops at once with the same words (it would never get
    // through by reconnecting).
    let mut agent = Command::new(BIN)
        .args(["agent", "--server", &serve.url, "--token", "tok_a.b"])
        .args(["--bucket", "prod", "--ca-file", &ca_file])
        .env_remove("HOOKRELAY_URL")
        .env_remove("HOOKRELAY_SERVER")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the agent");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent keeps retrying a certificate that cannot work"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut agent.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("is a CA certificate"), "agent: {err}");
}
