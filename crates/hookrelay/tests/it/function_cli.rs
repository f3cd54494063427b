//! `hookrelay admin function create|list|show|update|invoke|delete` as a
//! user runs them (DESIGN §9), against a real `hookrelay serve` started
//! with lowered function limits (`--function-timeout-ms`,
//! `--function-memory-mib`), which the failing scripts then meet.

use std::path::Path;

use super::{cli, cli_json, Serve};

const GREET: &str = r#"
local body = json.decode(r.RequestBody)
r:SetRequestHeader("x-greeting", cfg.get("GREETING") or "none")
r:SetRequestHeader("x-kind", body and body.kind or "unknown")
print("greeted", r.RequestMethod)
"#;

const LOOPS: &str = "while true do end\n";

/// Allocates far more than 4 MiB, quickly (well inside the time limit):
/// 64 KiB at a time, so the limit is reached in ~64 steps. With 64-byte
/// strings it took ~40,000, which under the full suite's load sometimes
/// ran past the 40 ms time limit first.
const HOARDS: &str = r#"
local t = {}
for i = 1, 100000 do t[i] = string.rep("x", 65536) .. i end
"#;

fn write(dir: &Path, name: &str, source: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn admin_function_verbs_end_to_end_with_lowered_limits() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let serve = Serve::start_with(
        data.path(),
        &["--function-timeout-ms", "40", "--function-memory-mib", "4"],
        &[],
    );
    let admin = serve.admin_token.clone().expect("admin token");
    let run = |args: &[&str]| cli_json(&serve, &admin, args);

    let greet = write(files.path(), "greet.lua", GREET);
    let created = run(&[
        "admin",
        "--json",
        "function",
        "create",
        "--name",
        "greet",
        "--file",
        &greet,
        "--config",
        "GREETING=sealed-hello",
    ]);
    let id = created["id"].as_str().expect("a function id").to_owned();
    assert!(id.starts_with("fn_"), "{created}");
    assert_eq!(created["configKeys"], serde_json::json!(["GREETING"]));
    assert!(!created.to_string().contains("sealed-hello"), "{created}");

    let listed = run(&["admin", "--json", "function", "list"]);
    let functions = listed["functions"].as_array().expect("functions");
    assert_eq!(functions.len(), 1, "{listed}");
    assert_eq!(functions[0]["id"], id.as_str());
    let (ok, table, stderr) = cli(&serve, &admin, &["admin", "function", "list"]);
    assert!(
        ok && table.contains(&id) && table.contains("greet"),
        "{table} {stderr}"
    );

    let shown = run(&["admin", "--json", "function", "show", &id]);
    assert_eq!(shown["source"], GREET);
    assert_eq!(shown["name"], "greet");
    assert!(!shown.to_string().contains("sealed-hello"), "{shown}");

    let invoked = run(&[
        "admin",
        "--json",
        "function",
        "invoke",
        &id,
        "--header",
        "Content-Type: application/json",
        "--body",
        r#"{"kind":"push"}"#,
    ]);
    assert_eq!(invoked["error"], serde_json::Value::Null, "{invoked}");
    assert_eq!(invoked["request"]["headers"]["x-greeting"], "sealed-hello");
    assert_eq!(invoked["request"]["headers"]["x-kind"], "push");
    assert_eq!(invoked["logs"], serde_json::json!(["greeted\tPOST"]));
    assert_eq!(invoked["stopForwarding"], false);

    // The body from a file, a method, and the table view.
    let sample = write(files.path(), "sample.json", r#"{"kind":"issue"}"#);
    let (ok, out, stderr) = cli(
        &serve,
        &admin,
        &[
            "admin",
            "function",
            "invoke",
            &id,
            "--method",
            "PUT",
            "--body-file",
            &sample,
        ],
    );
    assert!(
        ok && out.contains("issue") && out.contains("PUT"),
        "{out} {stderr}"
    );

    // A source that does not compile is refused, naming its line, and
    // changes nothing.
    let broken = write(files.path(), "broken.lua", "local a = 1\nif then\n");
    let (ok, _, stderr) = cli(
        &serve,
        &admin,
        &["admin", "function", "update", &id, "--file", &broken],
    );
    assert!(!ok && stderr.contains("line 2"), "{stderr}");
    assert_eq!(
        run(&["admin", "--json", "function", "show", &id])["source"],
        GREET
    );

    // Lowered limits take effect: 40 ms of time, 4 MiB of memory.
    let loops = write(files.path(), "loops.lua", LOOPS);
    let updated = run(&[
        "admin", "--json", "function", "update", &id, "--file", &loops,
    ]);
    assert_eq!(updated["source"], LOOPS);
    let invoked = run(&["admin", "--json", "function", "invoke", &id]);
    assert_eq!(
        invoked["error"], "time limit of 40 ms exceeded",
        "{invoked}"
    );
    let micros = invoked["durationMicros"].as_u64().expect("durationMicros");
    assert!(
        (40_000..100_000).contains(&micros),
        "stopped at its 40 ms deadline, not the default 100 ms: {micros} us"
    );
    let hoards = write(files.path(), "hoards.lua", HOARDS);
    run(&[
        "admin", "--json", "function", "update", &id, "--file", &hoards, "--name", "hoards",
    ]);
    let invoked = run(&["admin", "--json", "function", "invoke", &id]);
    assert_eq!(
        invoked["error"], "memory limit of 4 MiB exceeded",
        "{invoked}"
    );

    // In use by an input: delete is refused until it is detached.
    run(&["admin", "--json", "bucket", "create", "dev"]);
    let input = run(&[
        "admin",
        "--json",
        "input",
        "create",
        "--bucket",
        "dev",
        "--function",
        &id,
    ]);
    assert_eq!(input["functionId"], id.as_str(), "{input}");
    let input_id = input["id"].as_str().unwrap().to_owned();
    let (ok, _, stderr) = cli(&serve, &admin, &["admin", "function", "delete", &id]);
    assert!(!ok && stderr.contains("in_use"), "{stderr}");
    run(&[
        "admin",
        "--json",
        "input",
        "update",
        &input_id,
        "--function",
        "none",
    ]);
    let (ok, out, stderr) = cli(&serve, &admin, &["admin", "function", "delete", &id]);
    assert!(
        ok && out.contains(&format!("deleted function {id}")),
        "{out} {stderr}"
    );
    let listed = run(&["admin", "--json", "function", "list"]);
    assert_eq!(listed["functions"], serde_json::json!([]), "{listed}");
    let (ok, _, stderr) = cli(&serve, &admin, &["admin", "function", "show", &id]);
    assert!(!ok && stderr.contains("not_found"), "{stderr}");
}
