//! `hookrelay keys` on both stores, with real `serve` processes (issue 18):
//! rotation moves every sealed record (event payloads, input secrets,
//! bucket and tunnel auth, function configs, and on Redis the cluster's
//! key canary) to the new key beside a running server, and after the old
//! key is retired a server holding only the new key starts and reads all
//! of it.

use std::process::Command;

use serde_json::Value;

use super::{cli_json, send_github, Serve, BIN, SECRET};

const ADMIN: &str = "admin-keys";
const OLD: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A relay's data directory and, on Redis, its namespace (deleted on drop).
struct Place {
    data: tempfile::TempDir,
    namespace: Option<String>,
}

impl Place {
    fn new(redis: bool) -> Place {
        let data = tempfile::tempdir().unwrap();
        let namespace = redis.then(|| testkit::namespace_for(data.path()));
        Place { data, namespace }
    }

    /// What `serve` and `keys` read: the admin secret, the keys, the store.
    fn env(&self, keys: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("HOOKRELAY_ADMIN_SECRET", ADMIN.to_owned()),
            ("HOOKRELAY_MASTER_KEY", keys.to_owned()),
        ];
        if let Some(ns) = &self.namespace {
            env.push(("HOOKRELAY_STORE", testkit::redis_url()));
            env.push(("HOOKRELAY_REDIS_NAMESPACE", ns.clone()));
        }
        env
    }

    fn serve(&self, keys: &str) -> Serve {
        let env = self.env(keys);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Serve::start(self.data.path(), &env)
    }

    /// Runs `hookrelay keys ARGS`; returns (success, stdout, stderr).
    fn keys(&self, keys: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .arg("keys")
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .envs(self.env(keys))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `keys list`'s counts for key `id`: events, inputs, buckets,
    /// functions, tunnels.
    fn counts(&self, keys: &str, id: &str) -> Vec<u64> {
        let (ok, out, err) = self.keys(keys, &["list"]);
        assert!(ok, "{err}");
        let line = out
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no key {id} in:\n{out}"));
        line.split_whitespace()
            .skip(2)
            .map(|n| n.parse().unwrap())
            .collect()
    }

    /// The active key's id.
    fn active(&self, keys: &str) -> String {
        let (ok, out, err) = self.keys(keys, &["list"]);
        assert!(ok, "{err}");
        out.lines()
            .find(|l| l.contains(" active "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no active key in:\n{out}"))
            .to_owned()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(ns) = &self.namespace {
            testkit::delete_redis_namespace(ns);
        }
    }
}

/// Sends one signed GitHub webhook with `hookrelay send` to the input at
/// `path` of this server (its port changes at each start).
fn send(serve: &Serve, path: &str) {
    let url = format!("{}{path}", serve.url);
    let (ok, out, err) = send_github(serve, ADMIN, &url, SECRET);
    assert!(ok, "send: {out} {err}");
}

/// The function's answer to a sample request: its config value.
fn greeting(serve: &Serve, function: &str) -> Value {
    cli_json(
        serve,
        ADMIN,
        &[
            "admin", "--json", "function", "invoke", function, "--body", "{}",
        ],
    )["response"]["body"]
        .clone()
}

fn rotation_covers_every_sealed_record(redis: bool) {
    let place = Place::new(redis);
    let serve = place.serve(OLD);
    cli_json(
        &serve,
        ADMIN,
        &["admin", "--json", "bucket", "create", "open"],
    );
    let input = cli_json(
        &serve,
        ADMIN,
        &[
            "admin",
            "--json",
            "input",
            "create",
            "--bucket",
            "open",
            "--integration",
            "github",
            "--secret",
            SECRET,
        ],
    );
    let url = input["url"].as_str().unwrap().replace(&serve.url, "");
    cli_json(
        &serve,
        ADMIN,
        &[
            "admin",
            "--json",
            "bucket",
            "create",
            "locked",
            "--auth",
            "token",
            "--auth-token",
            "bucket-token",
        ],
    );
    let source = place.data.path().join("greet.lua");
    std::fs::write(&source, "r:SetResponseBody(cfg.get(\"GREETING\"))\n").unwrap();
    let function = cli_json(
        &serve,
        ADMIN,
        &[
            "admin",
            "--json",
            "function",
            "create",
            "--name",
            "greet",
            "--file",
            &source.display().to_string(),
            "--config",
            "GREETING=hello-sealed",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cli_json(
        &serve,
        ADMIN,
        &[
            "admin",
            "--json",
            "tunnel",
            "create",
            "shop",
            "--auth",
            "basic",
            "--username",
            "u",
            "--password",
            "tunnel-pass",
        ],
    );
    send(&serve, &url);
    assert_eq!(greeting(&serve, &function), "hello-sealed");

    let old = place.active(OLD);
    assert_eq!(
        place.counts(OLD, &old),
        [1, 1, 2, 1, 1],
        "events, inputs, buckets, functions, tunnels under the first key"
    );
    // With the keys in the variable, `rotate` prints the key to add.
    let (ok, out, err) = place.keys(OLD, &["rotate"]);
    assert!(ok, "{err}");
    let new = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 44 && l.ends_with('='))
        .unwrap_or_else(|| panic!("no new key in:\n{out}"))
        .to_owned();
    let both = format!("{new},{OLD}");
    let (ok, _, err) = place.keys(&both, &["reencrypt"]);
    assert!(
        !ok && err.contains("restart"),
        "the running server does not have the new key yet: {err}"
    );

    // Restarted with both keys: it seals with the new one, reads both, and
    // re-encryption runs beside it.
    assert!(serve.terminate().success());
    let serve = place.serve(&both);
    send(&serve, &url);
    let (ok, out, err) = place.keys(&both, &["reencrypt", "--batch", "1"]);
    assert!(ok, "{err}");
    let moved = if redis { 7 } else { 6 };
    assert!(
        out.contains(&format!("re-encrypted {moved} records")),
        "one event, one input, two buckets, a function, a tunnel{}: {out}",
        if redis { " and the canary" } else { "" }
    );
    let (ok, out, err) = place.keys(&both, &["list"]);
    assert!(ok, "{err}");
    assert_eq!(
        place.counts(&both, &place.active(&both)),
        [2, 1, 2, 1, 1],
        "{out}"
    );
    let (ok, out, err) = place.keys(&both, &["retire", &old]);
    assert!(ok, "{out} {err}");
    assert!(out.contains("HOOKRELAY_MASTER_KEY"), "{out}");
    assert!(serve.terminate().success());

    // Only the new key now: the server starts (on Redis, it opens the
    // canary) and every record reads.
    let new_only = new.clone();
    let serve = place.serve(&new_only);
    let events = cli_json(&serve, ADMIN, &["events", "--json", "list"]);
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    for e in events {
        assert_eq!(e["body"], r#"{"zen":"hookrelay test"}"#, "{e}");
        assert!(e.get("error").is_none(), "{e}");
    }
    assert_eq!(greeting(&serve, &function), "hello-sealed");
    let buckets = cli_json(&serve, ADMIN, &["admin", "--json", "bucket", "list"]);
    assert_eq!(buckets["buckets"].as_array().map(Vec::len), Some(2));
    let tunnels = cli_json(&serve, ADMIN, &["admin", "--json", "tunnel", "list"]);
    assert_eq!(tunnels["tunnels"][0]["name"], "shop", "{tunnels}");
    // The input's secret still verifies a signature.
    send(&serve, &url);
    assert!(serve.terminate().success());
}

#[test]
fn r18_keys_rotation_covers_every_sealed_record_on_sqlite() {
    rotation_covers_every_sealed_record(false);
}

#[test]
fn r18_keys_rotation_covers_every_sealed_record_on_redis() {
    rotation_covers_every_sealed_record(true);
}

/// `keys` names a store it cannot use as a usage error.
#[test]
fn r18_keys_refuses_an_unknown_store() {
    let place = Place::new(false);
    let out = Command::new(BIN)
        .args(["keys", "--store", "postgres://db/x", "list", "--data-dir"])
        .arg(place.data.path())
        .env("HOOKRELAY_MASTER_KEY", OLD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}
