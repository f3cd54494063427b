//! Data protection through the real binary (issue 4): a payload marker in no
//! file of the data directory after a clean stop, an ephemeral bucket's
//! marker in no debug log either, and key rotation with `hookrelay keys`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{cli, cli_json, Serve, BIN};

const ADMIN: &str = "admin-protection";

/// A marker no other test or library text contains.
fn marker(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{label}-{nanos:x}-{}", std::process::id())
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    hits
}

/// A plain input in a new bucket (`extra` bucket flags); returns its URL.
fn input_in_new_bucket(serve: &Serve, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["admin", "--json", "bucket", "create", name];
    args.extend_from_slice(extra);
    cli_json(serve, ADMIN, &args);
    let input = cli_json(
        serve,
        ADMIN,
        &["admin", "--json", "input", "create", "--bucket", name],
    );
    input["url"].as_str().unwrap().to_owned()
}

/// POSTs `body` to `url` + `?m=<query>` with header `x-marker`, over a raw
/// socket; returns the status line.
fn post(url: &str, query: &str, header: &str, body: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    let request = format!(
        "POST {path}?m={query} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n\
         x-marker: {header}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

fn events(serve: &Serve) -> Vec<Value> {
    cli_json(serve, ADMIN, &["events", "--json", "list"])["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn payload_markers_reach_no_file_and_ephemeral_ones_no_debug_log() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let serve = Serve::start_logging(
        data.path(),
        &[("HOOKRELAY_ADMIN_SECRET", ADMIN)],
        "debug",
        Stdio::from(log),
    );
    let kept_url = input_in_new_bucket(&serve, "kept", &[]);
    let eph_url = input_in_new_bucket(&serve, "eph", &["--ephemeral"]);
    let (kept, eph) = (marker("KEPT"), marker("EPHEMERAL"));
    for (url, m) in [(&kept_url, &kept), (&eph_url, &eph)] {
        let status = post(
            url,
            &format!("q{m}"),
            &format!("h{m}"),
            &format!("{{\"b\":\"{m}\"}}"),
        );
        assert!(status.contains(" 200 "), "{status}");
    }

    // The control: the relay did receive both markers, and gives the kept
    // one back decrypted, so the scans below look for bytes that were there.
    let listed = events(&serve);
    assert_eq!(listed.len(), 2);
    let kept_event = listed.iter().find(|e| e.get("body").is_some()).unwrap();
    assert!(kept_event["body"].as_str().unwrap().contains(&kept));
    assert_eq!(kept_event["query"], format!("m=q{kept}"));
    assert_eq!(kept_event["headers"]["x-marker"], format!("h{kept}"));
    let eph_event = listed.iter().find(|e| e.get("body").is_none()).unwrap();
    for field in ["body", "headers", "query"] {
        assert!(eph_event.get(field).is_none(), "{field}: {eph_event}");
    }
    assert_eq!(eph_event["size"], format!("{{\"b\":\"{eph}\"}}").len());

    assert!(serve.terminate().success(), "a clean stop");
    for m in [&kept, &eph] {
        assert_eq!(
            files_containing(data.path(), m),
            Vec::<String>::new(),
            "{m}"
        );
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("DEBUG") && log.contains("event stored"),
        "the log ran at debug level and saw both events:\n{log}"
    );
    assert!(log.contains("stopped cleanly"));
    for m in [&kept, &eph] {
        assert!(!log.contains(m.as_str()), "{m} is in the debug log");
    }
}

/// Runs `hookrelay keys ...` on `data`; returns (success, stdout, stderr).
fn keys(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("keys")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("HOOKRELAY_MASTER_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The active key's id, from `keys list`.
fn active_key(data: &Path) -> String {
    let (ok, out, err) = keys(data, &["list"]);
    assert!(ok, "{err}");
    out.lines()
        .find(|l| l.contains(" active "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no active key in:\n{out}"))
        .to_owned()
}

fn bodies(serve: &Serve) -> Vec<String> {
    events(serve)
        .iter()
        .map(|e| e["body"].as_str().unwrap_or("<none>").to_owned())
        .collect()
}

#[test]
fn keys_rotate_reencrypt_retire_and_everything_still_reads() {
    let data = tempfile::tempdir().unwrap();
    let env = [("HOOKRELAY_ADMIN_SECRET", ADMIN)];
    let serve = Serve::start(data.path(), &env);
    let path = input_in_new_bucket(&serve, "b", &[]).replace(&serve.url, "");
    assert!(post(&format!("{}{path}", serve.url), "1", "1", "\"old\"").contains(" 200 "));
    assert!(serve.terminate().success());
    let old = active_key(data.path());

    let (ok, out, err) = keys(data.path(), &["rotate"]);
    assert!(ok, "{err}");
    let new = active_key(data.path());
    assert_ne!(new, old, "{out}");
    let (ok, _, err) = keys(data.path(), &["reencrypt"]);
    assert!(
        !ok && err.contains("restart"),
        "re-encrypting before the server knows the key: {err}"
    );

    // Restarted, the server encrypts with the new key and reads both.
    let serve = Serve::start(data.path(), &env);
    assert!(post(&format!("{}{path}", serve.url), "2", "2", "\"new\"").contains(" 200 "));
    assert_eq!(bodies(&serve), ["\"old\"", "\"new\""]);
    let (ok, _, err) = keys(data.path(), &["retire", &old]);
    assert!(
        !ok && err.contains("reencrypt"),
        "retire while records use the key: {err}"
    );
    // Re-encryption runs beside the running server.
    let (ok, out, err) = keys(data.path(), &["reencrypt", "--batch", "1"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("re-encrypted 3 records"),
        "the old event, the input's secrets and the bucket's auth: {out}"
    );
    let (ok, out, err) = keys(data.path(), &["retire", &old]);
    assert!(ok, "{out} {err}");
    let (ok, _, err) = keys(data.path(), &["retire", &new]);
    assert!(!ok && err.contains("active"), "{err}");
    assert_eq!(bodies(&serve), ["\"old\"", "\"new\""]);
    assert!(serve.terminate().success());

    // Only the new key is left, and everything still reads after a restart.
    let (_, listed, _) = keys(data.path(), &["list"]);
    assert!(!listed.contains(&old), "{listed}");
    let serve = Serve::start(data.path(), &env);
    assert_eq!(bodies(&serve), ["\"old\"", "\"new\""]);
    drop(serve);
}

#[test]
fn a_bad_master_key_or_an_open_key_file_is_a_usage_error() {
    let data = tempfile::tempdir().unwrap();
    let serve = |env: &[(&str, &str)]| {
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .output()
            .unwrap()
    };
    let out = serve(&[("HOOKRELAY_MASTER_KEY", "bm90IDMyIGJ5dGVz")]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HOOKRELAY_MASTER_KEY") && !err.contains("bm90IDMy"),
        "{err}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let (ok, _, err) = keys(data.path(), &["list"]);
        assert!(!ok && err.contains("master.key"), "no key file yet: {err}");
        std::fs::create_dir_all(data.path()).unwrap();
        let path = data.path().join("master.key");
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        std::fs::write(&path, format!("{key}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = serve(&[]);
        assert_eq!(out.status.code(), Some(64));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("chmod 600") && !err.contains(key), "{err}");
    }
}

#[test]
fn a_rotated_token_secret_replaces_the_old_one() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[("HOOKRELAY_ADMIN_SECRET", ADMIN)]);
    let created = cli_json(
        &serve,
        ADMIN,
        &["admin", "--json", "token", "create", "--scope", "tenant"],
    );
    let (key, old) = (
        created["key"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
    let (ok, _, err) = cli(&serve, old, &["admin", "bucket", "list"]);
    assert!(ok, "{err}");
    let rotated = cli_json(&serve, ADMIN, &["admin", "--json", "token", "rotate", key]);
    let new = rotated["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(rotated["key"], key);
    let (ok, _, _) = cli(&serve, old, &["admin", "bucket", "list"]);
    assert!(!ok, "the old secret no longer works");
    let (ok, _, err) = cli(&serve, new, &["admin", "bucket", "list"]);
    assert!(ok, "{err}");
    let (ok, table, _) = cli(&serve, ADMIN, &["admin", "token", "rotate", key]);
    assert!(ok && table.contains("will not be shown again"), "{table}");
    drop(serve);
}
