//! `hookrelay listen` with an agent token and `hookrelay agent
//! install-service` as a user runs them: real processes, a real relay, a
//! real destination (`listen` with the other tokens: `listen.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{cli_json, Serve, BIN};

/// A one-request HTTP destination on 127.0.0.1:0: answers 201 and hands
/// the request it read to the test.
fn destination() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = Vec::new();
            // Headers and the small body arrive in a few reads.
            while !String::from_utf8_lossy(&got).contains("listen-me") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(
                b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            let _ = tx.send(String::from_utf8_lossy(&got).into_owned());
        }
    });
    (url, rx)
}

/// POSTs `body` with a bare HTTP/1.1 request; returns the status code.
fn post_raw(url: &str, body: &str) -> u16 {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the relay");
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn listen_forwards_and_prints_one_line_per_request() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let admin = serve.admin_token.clone().expect("admin token");
    let bucket = cli_json(
        &serve,
        &admin,
        &["admin", "--json", "bucket", "create", "dev"],
    );
    let bucket_id = bucket["id"].as_str().unwrap().to_owned();
    let input = cli_json(
        &serve,
        &admin,
        &["admin", "--json", "input", "create", "--bucket", "dev"],
    );
    let (dest, requests) = destination();
    cli_json(
        &serve,
        &admin,
        &[
            "admin",
            "--json",
            "output",
            "create",
            "--bucket",
            &bucket_id,
            "--url",
            "http://unused.internal/",
        ],
    );
    let token = cli_json(
        &serve,
        &admin,
        &["admin", "--json", "token", "create", "--scope", "agent"],
    );
    let token = token["token"].as_str().unwrap().to_owned();

    let mut listen = Command::new(BIN)
        .args([
            "listen",
            "--server",
            &serve.url,
            "--token",
            &token,
            "dev",
            "--forward",
        ])
        .arg(format!("{dest}/hook"))
        .env("RUST_LOG", "warn")
        .env_remove("HOOKRELAY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hookrelay listen");
    let stdout = listen.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The relay keeps what arrives before the agent connects, so one post
    // is enough whenever the agent comes up.
    let url = format!("{}/path?x=1", input["url"].as_str().unwrap());
    assert_eq!(post_raw(&url, "listen-me"), 200);
    let request = requests
        .recv_timeout(Duration::from_secs(30))
        .expect("the destination receives the webhook");
    assert!(
        request.starts_with("POST /hook/path?x=1 HTTP/1.1"),
        "{request}"
    );
    let line = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("a line per request");
    assert!(
        line.contains("POST") && line.contains("/path?x=1") && line.contains("201"),
        "{line}"
    );
    let _ = listen.kill();
    let _ = listen.wait();
}

#[test]
fn install_service_writes_a_unit_and_keeps_the_token_in_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (units, envs) = (dir.path().join("units"), dir.path().join("env"));
    let out = Command::new(BIN)
        .args([
            "agent",
            "install-service",
            "--platform",
            "systemd",
            "--service-name",
            "relay-agent",
        ])
        .args([
            "--server",
            "https://relay.example",
            "--token",
            "tok_abc.very-secret",
        ])
        .args([
            "--bucket",
            "prod",
            "--bucket",
            "staging",
            "--group",
            "blue",
            "--transport",
            "ws",
        ])
        // A binary every user can run wherever the test tree is (under
        // /home on CI, which the unit's ProtectHome would hide).
        .args(["--exe", "/bin/sh"])
        .arg("--unit-dir")
        .arg(&units)
        .arg("--env-dir")
        .arg(&envs)
        .env_remove("HOOKRELAY_TOKEN")
        .output()
        .expect("run install-service");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("systemctl enable --now relay-agent"),
        "{printed}"
    );

    let unit = std::fs::read_to_string(units.join("relay-agent.service")).unwrap();
    let env_file = envs.join("relay-agent.env");
    assert!(
        unit.contains(&format!("EnvironmentFile={}", env_file.display())),
        "{unit}"
    );
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    for word in [
        "\"agent\"",
        "\"--server\" \"https://relay.example\"",
        "\"--bucket\" \"prod\"",
        "\"--bucket\" \"staging\"",
        "\"--group\" \"blue\"",
        "\"--transport\" \"ws\"",
    ] {
        assert!(exec.contains(word), "{word} missing from {exec}");
    }
    assert!(
        !unit.contains("very-secret"),
        "the secret stays out of the unit"
    );
    assert!(unit.contains("WantedBy=multi-user.target"));

    let env = std::fs::read_to_string(&env_file).unwrap();
    assert_eq!(env, "HOOKRELAY_TOKEN=tok_abc.very-secret\n");
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Plain http:// to another machine is refused before anything is written.
    let refused = Command::new(BIN)
        .args([
            "agent",
            "install-service",
            "--server",
            "http://relay.example",
            "--token",
            "a.b",
        ])
        .arg("--unit-dir")
        .arg(dir.path().join("never"))
        .env_remove("HOOKRELAY_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(64));
    assert!(!dir.path().join("never").exists());
}

/// Issue 15: a tunnel installs as a service the way an agent does: the
/// unit runs `hookrelay tunnel` with its name and destination, named after
/// the tunnel, and the token stays in the 0600 environment file. The
/// relay's URL is read from `HOOKRELAY_URL`, as every command reads it.
#[test]
fn tunnel_install_service_writes_a_unit_named_after_the_tunnel() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (units, envs) = (dir.path().join("units"), dir.path().join("env"));
    let out = Command::new(BIN)
        .args(["tunnel", "install-service", "--platform", "systemd"])
        .args(["--name", "myapp", "--destination", "http://localhost:3000"])
        .args(["--token", "tok_t.tunnel-secret", "--transport", "ws"])
        .args(["--exe", "/bin/sh"])
        .arg("--unit-dir")
        .arg(&units)
        .arg("--env-dir")
        .arg(&envs)
        .env("HOOKRELAY_URL", "https://relay.example")
        .env_remove("HOOKRELAY_SERVER")
        .env_remove("HOOKRELAY_TOKEN")
        .output()
        .expect("run tunnel install-service");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("systemctl enable --now hookrelay-tunnel-myapp"),
        "{printed}"
    );
    let unit = std::fs::read_to_string(units.join("hookrelay-tunnel-myapp.service")).unwrap();
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    for word in [
        "\"/bin/sh\" \"tunnel\"",
        "\"--name\" \"myapp\"",
        "\"--destination\" \"http://localhost:3000\"",
        "\"--server\" \"https://relay.example\"",
        "\"--transport\" \"ws\"",
    ] {
        assert!(exec.contains(word), "{word} missing from {exec}");
    }
    assert!(unit.contains("Description=hookrelay tunnel"), "{unit}");
    assert!(!unit.contains("tunnel-secret"), "the secret stays out");
    let env_file = envs.join("hookrelay-tunnel-myapp.env");
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "HOOKRELAY_TOKEN=tok_t.tunnel-secret\n"
    );
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A name that is not a DNS label is refused before anything is written.
    let refused = Command::new(BIN)
        .args(["tunnel", "install-service", "--name", "My_App"])
        .args(["--destination", "http://localhost:3000"])
        .args(["--server", "https://relay.example", "--token", "a.b"])
        .arg("--unit-dir")
        .arg(dir.path().join("never"))
        .env_remove("HOOKRELAY_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(64));
    assert!(!dir.path().join("never").exists());
}

/// Issue 18: install-service writes absolute paths only (systemd ignores a
/// relative `EnvironmentFile=`, and the service would start without its
/// token), and refuses a binary the unit's sandboxing hides or its
/// dynamic user cannot run.
#[test]
fn r18_install_service_writes_absolute_paths_and_checks_the_binary() {
    use std::os::unix::fs::PermissionsExt;
    // Not under /tmp, which the unit's PrivateTmp hides.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let install = |exe: &std::path::Path, cwd: &std::path::Path, extra: &[&str]| {
        Command::new(BIN)
            .args(["agent", "install-service", "--platform", "systemd"])
            .args(["--server", "https://relay.example", "--token", "tok_a.b"])
            .args(["--env-dir", "env"])
            .args(extra)
            .arg("--exe")
            .arg(exe)
            .current_dir(cwd)
            .env_remove("HOOKRELAY_TOKEN")
            .output()
            .unwrap()
    };
    let out = install(
        std::path::Path::new("/bin/sh"),
        &cwd,
        &["--unit-dir", "units"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = std::fs::read_to_string(cwd.join("units/hookrelay-agent.service")).unwrap();
    let env_file = cwd.join("env/hookrelay-agent.env");
    assert!(
        unit.contains(&format!("EnvironmentFile={}\n", env_file.display())),
        "{unit}"
    );

    // A binary, or a CA file, under /tmp: PrivateTmp=yes gives the service
    // another /tmp. A relative CA file is named by its absolute path.
    let tmp = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
    let hidden = tmp.path().join("hookrelay");
    std::fs::copy("/bin/sh", &hidden).unwrap();
    let out = install(&hidden, &cwd, &["--unit-dir", "units-2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("PrivateTmp") && err.contains("hookrelay"),
        "{err}"
    );
    assert!(!cwd.join("units-2").exists(), "nothing written");
    std::fs::write(tmp.path().join("ca.pem"), "a CA").unwrap();
    let out = install(
        std::path::Path::new("/bin/sh"),
        tmp.path(),
        &["--unit-dir", "units-3", "--ca-file", "ca.pem"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("--ca-file /tmp/") && err.contains("PrivateTmp"),
        "{err}"
    );

    // A binary only its owner may run: the unit's dynamic user could not.
    let private = cwd.join("private-hookrelay");
    std::fs::copy("/bin/sh", &private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    if !cwd.starts_with("/home") && !cwd.starts_with("/root") {
        let out = install(&private, &cwd, &["--unit-dir", "units-4"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(err.contains("DynamicUser"), "{err}");
    }
}
