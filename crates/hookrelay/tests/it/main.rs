//! The `hookrelay` binary end to end: the README's quick start driven
//! through the real CLI against a real `hookrelay serve` process on an
//! ephemeral loopback port, then a SIGTERM shutdown and a restart.
//! `protection`: payloads in no file or debug log, `hookrelay keys`
//! rotation, token rotation. `listen`: `hookrelay listen` as DESIGN §2
//! says, and commands that end quietly on a closed stdout. `faults`: kill -9 under load, agents killed,
//! a full disk, slow-loris and 10,000 idle connections (issue 7).
//! `sentry`: error reports to a stand-in Sentry, scrubbed (issue 20).
//! `tunnels`: HTTP tunnels through real relay and agent processes (issue 15).
//! `tls_cli`: the CLI's `--ca-file`, and a CA certificate serving as the
//! relay's own named as such (issue 18). `keys`: `hookrelay keys` on
//! SQLite and on Redis, every kind of sealed record (issue 18). `send`:
//! `hookrelay send` signs for every integration as the relay verifies.
//! `function_cli`: `hookrelay admin function ...` and the function limit
//! flags (issue 16).

mod keys;
mod protection;
mod send;

mod agent_cli;
mod cluster;
mod listen;

mod faults;

mod sentry;

mod tunnels;

mod tls_cli;

mod function_cli;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hookrelay");
const SECRET: &str = "It's a Secret to Everybody";

/// A `hookrelay serve` child process and what it printed at start.
struct Serve {
    /// `None` once `terminate` has taken it to wait for its exit.
    child: Option<Child>,
    url: String,
    admin_token: Option<String>,
}

impl Serve {
    fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Serve {
        Self::start_logging(data_dir, extra_env, "warn", Stdio::null())
    }

    /// Starts with extra `serve` flags (after the test defaults).
    fn start_with(data_dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Serve {
        Self::spawn(data_dir, args, extra_env, "warn", Stdio::null())
    }

    /// Starts with `RUST_LOG=rust_log`, the log (stderr) going to `log`.
    fn start_logging(
        data_dir: &Path,
        extra_env: &[(&str, &str)],
        rust_log: &str,
        log: Stdio,
    ) -> Serve {
        Self::spawn(data_dir, &[], extra_env, rust_log, log)
    }

    fn spawn(
        data_dir: &Path,
        args: &[&str],
        extra_env: &[(&str, &str)],
        rust_log: &str,
        log: Stdio,
    ) -> Serve {
        // bcrypt cost 4 saves CPU, unless the test asks for another.
        let cost = if args.contains(&"--bcrypt-cost") {
            &[][..]
        } else {
            &["--bcrypt-cost", "4"][..]
        };
        // An ephemeral port, unless the test restarts a relay where it was.
        let listen = if args.contains(&"--listen") {
            &[][..]
        } else {
            &["--listen", "127.0.0.1:0"][..]
        };
        let child = Command::new(BIN)
            .arg("serve")
            .args(listen)
            .args(cost)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .envs(extra_env.iter().copied())
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start hookrelay serve");
        // Owned by `Serve` from here on, so a failed start still kills and
        // reaps the process when the half-built fixture drops.
        let mut serve = Serve {
            child: Some(child),
            url: String::new(),
            admin_token: None,
        };
        let stdout = serve
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .expect("serve prints its address within 30 s");
            if let Some(token) = line.strip_prefix("admin token (shown once, keep it safe): ") {
                serve.admin_token = Some(token.trim().to_owned());
            }
            if let Some(url) = line.strip_prefix("hookrelay listening on ") {
                serve.url = url.trim().to_owned();
                return serve;
            }
        }
    }

    /// The process id, while it runs.
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running serve").id()
    }

    /// SIGKILL (no chance to flush or drain) and reap.
    fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL hookrelay serve");
            child.wait().expect("reap hookrelay serve");
        }
    }

    /// SIGTERM, then the exit status within a deadline.
    fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running serve");
        let pid = child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let (exited, status) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exited.send(child.wait());
        });
        status
            .recv_timeout(Duration::from_secs(30))
            .expect("serve stops within 30 s of SIGTERM")
            .expect("exit status")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a client subcommand; returns (success, stdout, stderr).
fn cli(serve: &Serve, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("HOOKRELAY_URL", &serve.url)
        .env("HOOKRELAY_TOKEN", token)
        .output()
        .expect("run the hookrelay client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hookrelay send` of a GitHub webhook signed with `secret` to `url`:
/// (success, stdout, stderr).
fn send_github(serve: &Serve, token: &str, url: &str, secret: &str) -> (bool, String, String) {
    cli(
        serve,
        token,
        &[
            "send",
            "--url",
            url,
            "--integration",
            "github",
            "--secret",
            secret,
        ],
    )
}

fn cli_json(serve: &Serve, token: &str, args: &[&str]) -> Value {
    let (ok, stdout, stderr) = cli(serve, token, args);
    assert!(ok, "hookrelay {args:?} failed: {stderr}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stdout}"))
}

#[test]
fn the_readme_quick_start_works_end_to_end() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[]);
    let token = serve
        .admin_token
        .clone()
        .expect("first start prints an admin token");

    let (ok, table, _) = cli(&serve, &token, &["admin", "bucket", "create", "prod"]);
    assert!(ok && table.contains("prod"), "{table}");
    let input = cli_json(
        &serve,
        &token,
        &[
            "admin",
            "--json",
            "input",
            "create",
            "--bucket",
            "prod",
            "--name",
            "github",
            "--integration",
            "github",
            "--secret",
            SECRET,
        ],
    );
    let url = input["url"].as_str().expect("the input's URL").to_owned();
    assert!(url.starts_with(&serve.url));

    let (ok, stdout, stderr) = send_github(&serve, &token, &url, SECRET);
    assert!(ok, "signed send refused: {stdout} {stderr}");
    let (ok, _, _) = send_github(&serve, &token, &url, "wrong");
    assert!(!ok, "a wrong secret must be refused");

    let page = cli_json(&serve, &token, &["events", "--json", "list"]);
    let events = page["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["verified"], true);
    assert_eq!(events[0]["eventType"], "ping");
    let id = events[0]["id"].as_str().unwrap().to_owned();
    let (ok, shown, _) = cli(&serve, &token, &["events", "show", &id]);
    assert!(ok && shown.contains(&id), "{shown}");

    // The token is not shown again on a restart, and everything persists.
    assert!(serve.terminate().success(), "SIGTERM is a clean exit");
    let serve = Serve::start(data.path(), &[]);
    assert!(serve.admin_token.is_none());
    let page = cli_json(&serve, &token, &["events", "--json", "list"]);
    assert_eq!(page["events"][0]["id"], id.as_str());
    assert!(serve.terminate().success());
}

#[test]
fn radarboard_environment_configures_named_inputs() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        data.path(),
        &[
            (
                "WEBHOOK_SECRET_GITHUB",
                "newest, It's a Secret to Everybody",
            ),
            ("RELAY_POLL_SECRET", "poll-me"),
            ("RELAY_ADMIN_SECRET", "admin-me"),
        ],
    );
    assert!(serve.admin_token.is_none(), "an admin secret is configured");
    let url = format!("{}/api/webhooks/github", serve.url);
    let (ok, stdout, stderr) = send_github(&serve, "", &url, SECRET);
    assert!(ok, "{stdout} {stderr}");
    assert!(
        stdout.contains("\"received\":true") || stdout.contains("\"received\": true"),
        "{stdout}"
    );
    let buckets = cli_json(&serve, "admin-me", &["admin", "--json", "bucket", "list"]);
    assert_eq!(buckets["buckets"][0]["name"], "default");

    let out = Command::new(BIN)
        .args([
            "serve",
            "--store",
            "postgres://db.example/hookrelay",
            "--data-dir",
        ])
        .arg(data.path().join("unused"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "an unsupported store is a usage error"
    );
    drop(serve);
}
