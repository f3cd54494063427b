//! `hookrelay listen` as DESIGN §2 says (issue 18): real `serve` and
//! `listen` processes, real destinations. The token printed at first start
//! is enough; each event arrives once whether the bucket has no output or
//! two; a restart resumes; two listens to different places each get every
//! event; Ctrl-C ends it at once; and a closed stdout ends any command
//! quietly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use testkit::Destination;

use super::{cli, cli_json, Serve, BIN};

const DEADLINE: Duration = Duration::from_secs(30);

/// A running `hookrelay listen` and its stdout lines.
struct Listen {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Listen {
    /// Starts `listen args...` against `serve` with `token`; the URL comes
    /// from `HOOKRELAY_URL`, as for every other subcommand.
    fn start(serve: &Serve, token: &str, state: &std::path::Path, args: &[&str]) -> Listen {
        let mut child = Command::new(BIN)
            .arg("listen")
            .args(args)
            .env("HOOKRELAY_URL", &serve.url)
            .env("HOOKRELAY_TOKEN", token)
            .env("HOOKRELAY_STATE_DIR", state)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hookrelay listen");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Listen { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .expect("listen prints a line per forward")
    }

    /// SIGINT (Ctrl-C), then the exit status within `within`. Async: the
    /// destinations run on the test's runtime and must go on answering
    /// what `listen` finishes sending.
    async fn interrupt(mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success());
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < within, "listen still runs after Ctrl-C");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay with bucket `dev` and a plain input; returns (serve, admin
/// token, the input's URL).
fn relay(data: &std::path::Path) -> (Serve, String, String) {
    let serve = Serve::start(data, &[]);
    let admin = serve
        .admin_token
        .clone()
        .expect("first start prints a token");
    cli_json(
        &serve,
        &admin,
        &["admin", "--json", "bucket", "create", "dev"],
    );
    let input = cli_json(
        &serve,
        &admin,
        &["admin", "--json", "input", "create", "--bucket", "dev"],
    );
    let url = input["url"].as_str().unwrap().to_owned();
    (serve, admin, url)
}

async fn post(url: &str, body: &str) {
    let status = reqwest::Client::new()
        .post(url)
        .body(body.to_owned())
        .send()
        .await
        .expect("post to the relay")
        .status();
    assert_eq!(status, 200);
}

/// The bodies `dest` received, in order.
fn bodies(dest: &Destination) -> Vec<String> {
    dest.received()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// Posts until every destination has received something (a first
/// `listen` starts at the relay's present, whenever it is up), then a
/// marker, and waits for the marker everywhere: events are forwarded in
/// order, so everything posted before has arrived by then.
async fn warm_up(input: &str, dests: &[&Destination]) {
    for i in 0..100 {
        post(input, &format!("warm-up-{i}")).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while tokio::time::Instant::now() < deadline {
            if dests.iter().all(|d| !d.received().is_empty()) {
                return sync(input, dests).await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("listen never forwarded");
}

async fn sync(input: &str, dests: &[&Destination]) {
    post(input, "sync").await;
    testkit::wait_until(DEADLINE, "the marker arrives", || async {
        dests
            .iter()
            .all(|d| bodies(d).last().map(String::as_str) == Some("sync"))
    })
    .await;
}

fn add_output(serve: &Serve, admin: &str, url: &str) {
    cli_json(
        serve,
        admin,
        &[
            "admin", "--json", "output", "create", "--bucket", "dev", "--url", url,
        ],
    );
}

#[tokio::test]
async fn r18_listen_with_the_first_start_token_gets_each_event_once_whatever_the_outputs() {
    let (data, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (serve, admin, input) = relay(data.path());
    let dest = Destination::spawn().await;
    let forward = format!("{}/hook", dest.url);
    let listen = Listen::start(
        &serve,
        &admin,
        state.path(),
        &["dev", "--forward", &forward],
    );

    // No output at all: the event still arrives.
    warm_up(&format!("{input}/x?a=1"), &[&dest]).await;
    let line = listen.next_line();
    assert!(
        line.contains("  -  evt_")
            && line.contains("POST /x?a=1 -> 200")
            && line.ends_with("(attempt 1)"),
        "{line}"
    );
    assert_eq!(dest.received()[0].target, "/hook/x?a=1");

    // Two outputs: still once. Events are forwarded in order, so when the
    // marker posted last has arrived, a duplicate would have too.
    add_output(&serve, &admin, "http://127.0.0.1:9/a");
    add_output(&serve, &admin, "http://127.0.0.1:9/b");
    let before = dest.received().len();
    post(&input, "two-outputs").await;
    post(&input, "marker").await;
    dest.wait_for(before + 2, DEADLINE).await;
    let got = bodies(&dest);
    assert_eq!(got[before..], ["two-outputs", "marker"], "{got:?}");
    drop(listen);
}

#[tokio::test]
async fn r18_a_restarted_listen_resumes_and_two_listens_each_get_every_event() {
    let (data, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (serve, admin, input) = relay(data.path());
    let (a, b) = (Destination::spawn().await, Destination::spawn().await);
    // One session, two pairs: the same bucket to two places.
    let pairs = [format!("dev={}/a", a.url), format!("dev={}/b", b.url)];
    let listen = Listen::start(&serve, &admin, state.path(), &[&pairs[0], &pairs[1]]);
    warm_up(&input, &[&a, &b]).await;
    let stopped = listen.interrupt(DEADLINE).await;
    assert!(stopped.success(), "{stopped:?}");

    // While nothing listens, two events arrive; a restart sends both, to
    // each place, and nothing it had already sent.
    let (na, nb) = (bodies(&a).len(), bodies(&b).len());
    post(&input, "while-away-1").await;
    post(&input, "while-away-2").await;
    let _listen = Listen::start(&serve, &admin, state.path(), &[&pairs[0], &pairs[1]]);
    a.wait_for(na + 2, DEADLINE).await;
    b.wait_for(nb + 2, DEADLINE).await;
    assert_eq!(bodies(&a)[na..], ["while-away-1", "while-away-2"]);
    assert_eq!(bodies(&b)[nb..], ["while-away-1", "while-away-2"]);
}

#[tokio::test]
async fn listen_filters_event_types_prints_json_and_stops_at_once_on_ctrl_c() {
    let (data, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (serve, admin, _) = relay(data.path());
    let github = cli_json(
        &serve,
        &admin,
        &[
            "admin",
            "--json",
            "input",
            "create",
            "--bucket",
            "dev",
            "--integration",
            "github",
            "--secret",
            super::SECRET,
        ],
    );
    let url = github["url"].as_str().unwrap();
    let dest = Destination::spawn().await;
    let listen = Listen::start(
        &serve,
        &admin,
        state.path(),
        &[
            "dev",
            "--forward",
            &dest.url,
            "--events",
            "push,release",
            "--print-json",
        ],
    );
    let send = |event: &str| {
        let (ok, _, err) = cli(
            &serve,
            &admin,
            &[
                "send",
                "--url",
                url,
                "--integration",
                "github",
                "--secret",
                super::SECRET,
                "--event",
                event,
            ],
        );
        assert!(ok, "{err}");
    };
    testkit::wait_until(DEADLINE, "a push is forwarded", || async {
        send("ping");
        send("push");
        !dest.received().is_empty()
    })
    .await;
    let json: serde_json::Value = serde_json::from_str(&listen.next_line()).unwrap();
    assert_eq!(json["event"]["eventType"], "push");
    assert_eq!(json["status"], 200);
    assert_eq!(json["attempt"], 1);
    assert!(
        dest.received()
            .iter()
            .all(|r| r.header("x-github-event") == Some("push")),
        "ping is filtered out"
    );

    let status = listen.interrupt(Duration::from_secs(5)).await;
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let data = tempfile::tempdir().unwrap();
    let (serve, admin, _) = relay(data.path());
    for args in [
        &["admin", "bucket", "list"][..],
        &["events", "list"],
        &["--help"],
    ] {
        let mut child = Command::new(BIN)
            .args(args)
            .env("HOOKRELAY_URL", &serve.url)
            .env("HOOKRELAY_TOKEN", &admin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -0`: the reader is gone before the first write.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}");
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_cli() {
    for (args, expect) in [
        (&["completions", "bash"][..], "hookrelay"),
        (&["completions", "zsh"], "#compdef hookrelay"),
        (&["completions", "fish"], "complete -c hookrelay"),
        (&["man"], ".TH hookrelay"),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(expect),
            "{args:?}: {text:.200}"
        );
    }
}

#[test]
fn logs_carry_no_colour_off_a_terminal_and_are_json_on_request() {
    for format in ["text", "json"] {
        let data = tempfile::tempdir().unwrap();
        let log_path = data.path().join("serve.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let serve = Serve::start_logging(
            &data.path().join("data"),
            &[("HOOKRELAY_LOG_FORMAT", format)],
            "info",
            Stdio::from(log),
        );
        let status = serve.terminate();
        let text = std::fs::read_to_string(&log_path).unwrap();
        assert!(status.success(), "{status:?}: {text}");
        assert!(text.contains("master keys loaded"), "{text}");
        assert!(!text.contains('\u{1b}'), "ANSI codes in a file: {text}");
        if format == "json" {
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
            }
        }
    }
}

/// Lines a child writes to stderr, read on a thread.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Waits for a line containing `wanted`; the lines before it are skipped.
fn wait_for_line(lines: &mpsc::Receiver<String>, wanted: &str, who: &str) {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(wanted) => return,
            Ok(_) => {}
            Err(_) => panic!("{who} never logged {wanted:?}"),
        }
    }
}

/// Issue 18: `listen` and the agent log their connection state at info,
/// on the default log level: a relay that goes away and comes back (the
/// same data directory at the same address) is reported both ways, and
/// what arrives after is forwarded.
#[tokio::test]
async fn r18_listen_and_the_agent_say_when_they_lose_and_regain_the_relay() {
    let (data, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (serve, admin, input) = relay(data.path());
    let (a, b) = (Destination::spawn().await, Destination::spawn().await);
    add_output(&serve, &admin, &format!("{}/agent", b.url));
    let agent_token = cli_json(
        &serve,
        &admin,
        &["admin", "--json", "token", "create", "--scope", "agent"],
    )["token"]
        .as_str()
        .expect("an agent token")
        .to_owned();
    let spawn = |args: &[&str], token: &str| {
        Command::new(BIN)
            .args(args)
            .env("HOOKRELAY_URL", &serve.url)
            .env("HOOKRELAY_TOKEN", token)
            .env("HOOKRELAY_STATE_DIR", state.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a client")
    };
    let mut listen = spawn(&["listen", "dev", "--forward", &a.url], &admin);
    let mut agent = spawn(
        &["agent", "--bucket", "dev", "--destination", &b.url],
        &agent_token,
    );
    let (listen_log, agent_log) = (stderr_lines(&mut listen), stderr_lines(&mut agent));
    wait_for_line(&agent_log, "connected to the relay", "the agent");
    warm_up(&input, &[&a, &b]).await;

    let address = serve.url.trim_start_matches("http://").to_owned();
    serve.kill9();
    wait_for_line(&listen_log, "disconnected from the relay", "listen");
    wait_for_line(&agent_log, "connection to the relay lost", "the agent");

    let _serve = Serve::start_with(data.path(), &["--listen", &address], &[]);
    wait_for_line(&listen_log, "reconnected to the relay", "listen");
    wait_for_line(&agent_log, "connected to the relay", "the agent");
    let (na, nb) = (bodies(&a).len(), bodies(&b).len());
    post(&input, "after-the-restart").await;
    a.wait_for(na + 1, DEADLINE).await;
    b.wait_for(nb + 1, DEADLINE).await;
    for child in [&mut listen, &mut agent] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
