//! A full disk: `serve` runs on a small tmpfs (mounted by the test, which
//! runs as root; a failed mount fails the test with the reason). A filler
//! file takes the remaining space; ingest must then answer 503
//! `unavailable` with a JSON body, and any 2xx it still gives must be for
//! an event that is readable. Removing the filler must bring 2xx answers
//! back, with events stored, without a restart.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ingest_url, start_serve, Api, Load};

/// The tmpfs size: room for the store's first pages and a little WAL.
const SIZE: &str = "size=16m";
/// Events stored before the disk fills.
const PRIOR_EVENTS: usize = 300;
/// Concurrent senders while the disk fills.
const SENDERS: usize = 4;
/// Requests after the first 503s, while the disk is still full (twice:
/// one at a time, then all at once).
const POSTS_WHILE_FULL: usize = 50;

/// A tmpfs mounted on a directory; unmounted on drop (lazily if busy).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "hookrelay-faults"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "the full-disk test needs to mount a tmpfs (run as root, or with CAP_SYS_ADMIN): \
             mount -t tmpfs -o {options} on {} failed: {}",
            at.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Writes zeros into `path` until the file system refuses: `ENOSPC`.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("create the filler");
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let zeros = vec![0u8; chunk];
        // Bounded: a 16 MiB tmpfs takes at most a few thousand chunks.
        for _ in 0..100_000 {
            match file.write(&zeros) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "filling: {e}");
                    break;
                }
            }
        }
    }
    let _ = file.sync_all();
    written
}

/// One POST: its status and JSON body (`Null` if none).
async fn post(http: &reqwest::Client, url: &str, marker: &str) -> (u16, Value) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "marker": marker }).to_string())
        .send()
        .await
        .expect("the relay answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn assert_unavailable(status: u16, body: &Value, marker: &str) {
    assert_eq!(status, 503, "{marker}: a full disk answers 503, got {body}");
    assert_eq!(body["error"], "unavailable", "{marker}: {body}");
    assert!(body["message"].is_string(), "{marker}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_recovers() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a mount point");
    let mount = Tmpfs::mount(dir.path(), SIZE);
    let serve = start_serve(dir.path().to_owned(), &[]).await;
    let api = Api::new(&serve.url);
    let setup = api.setup("disk", None).await;
    let url = ingest_url(&serve.url, &setup.input);
    let http = reqwest::Client::new();
    // Some history first, so the WAL has grown and been checkpointed and
    // holds pages SQLite may reuse once the disk is full.
    let mut before = HashSet::new();
    for n in 0..PRIOR_EVENTS {
        let marker = format!("before-{n}");
        let (status, body) = post(&http, &url, &marker).await;
        assert_eq!(status, 200, "ingest works before the disk fills: {body}");
        before.insert(marker);
    }

    // The disk fills under load, so group commits fail part-way through
    // their WAL writes. SQLite may still append into WAL pages it already
    // owns: those 2xx are fine if the event is stored. 503s must come.
    let load = Load::start(SENDERS, url.clone());
    testkit::wait_until(
        Duration::from_secs(30),
        "the load is acknowledged",
        || async { load.ledger.acked_count() >= 20 },
    )
    .await;
    let filler = dir.path().join("filler");
    let filled = {
        let filler = filler.clone();
        tokio::task::spawn_blocking(move || fill(&filler))
            .await
            .expect("fill the disk")
    };
    let acked_when_full = load.ledger.acked_count();
    testkit::wait_until(Duration::from_secs(30), "ingest answers 503", || async {
        load.ledger.refused.lock().expect("ledger").get(&503) >= Some(&20)
    })
    .await;
    let ledger = load.finish().await;
    let accepted_while_filling: HashSet<String> = ledger.acked().into_iter().collect();
    let acked_after_full = accepted_while_filling.len() - acked_when_full;
    let refused = ledger.refused.lock().expect("ledger").clone();
    assert_eq!(refused.keys().collect::<Vec<_>>(), [&503], "{refused:?}");

    // While the disk stays full: nothing but 503 `unavailable`, one at a
    // time and concurrently.
    for n in 0..POSTS_WHILE_FULL {
        let marker = format!("full-{n}");
        let (status, body) = post(&http, &url, &marker).await;
        assert_unavailable(status, &body, &marker);
    }
    let mut concurrent = tokio::task::JoinSet::new();
    for n in 0..POSTS_WHILE_FULL {
        let (http, url) = (http.clone(), url.clone());
        concurrent.spawn(async move {
            let marker = format!("full-concurrent-{n}");
            let (status, body) = post(&http, &url, &marker).await;
            assert_unavailable(status, &body, &marker);
        });
    }
    while let Some(done) = concurrent.join_next().await {
        done.expect("a concurrent post");
    }
    let stored = api.stored_markers(&setup.bucket).await;
    for marker in &accepted_while_filling {
        assert!(
            stored.contains(marker),
            "{marker} was answered 2xx but is not stored"
        );
    }
    assert!(
        !stored.iter().any(|m| m.starts_with("full-")),
        "an event answered 503 was stored"
    );

    // Space returns: the same process recovers.
    std::fs::remove_file(&filler).expect("remove the filler");
    let recovery = Instant::now();
    let mut recovered = None;
    for n in 0..1_000 {
        let marker = format!("after-{n}");
        let (status, body) = post(&http, &url, &marker).await;
        if status == 200 {
            recovered = Some(n);
            break;
        }
        assert_unavailable(status, &body, &marker);
        assert!(
            recovery.elapsed() < Duration::from_secs(30),
            "still 503 30 s after space returned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = recovered.expect("ingest answers 200 again once space returns");
    let recovered_ms = recovery.elapsed().as_millis();
    let mut after = HashSet::new();
    for n in 0..20 {
        let marker = format!("recovered-{n}");
        let (status, body) = post(&http, &url, &marker).await;
        assert_eq!(status, 200, "{marker}: {body}");
        after.insert(marker);
    }
    let stored = api.stored_markers(&setup.bucket).await;
    assert!(
        after.is_subset(&stored),
        "events accepted after recovery are stored"
    );

    // And all of it survives a kill -9 of the server that lived through it.
    let serve = {
        tokio::task::spawn_blocking(move || serve.kill9())
            .await
            .expect("kill -9");
        start_serve(dir.path().to_owned(), &[]).await
    };
    let stored = Api::new(&serve.url).stored_markers(&setup.bucket).await;
    let acked = before.iter().chain(&accepted_while_filling).chain(&after);
    let lost: Vec<&String> = acked.filter(|m| !stored.contains(*m)).collect();
    assert!(lost.is_empty(), "lost after a restart: {lost:?}");
    println!(
        "faults: full disk ({SIZE}): filler {filled} bytes written under load from {SENDERS} \
         senders, {} accepted under load (and stored), {acked_after_full} of them after the \
         filler was complete, {} answered 503; then {POSTS_WHILE_FULL} sequential and \
         {POSTS_WHILE_FULL} concurrent: all 503 unavailable; recovered {} ms after the filler was removed \
         ({recovered} 503s meanwhile), 20/20 accepted and stored after, all {} 2xx still stored after a kill -9 and restart, {:.1} s",
        accepted_while_filling.len(),
        refused[&503],
        recovered_ms,
        before.len() + accepted_while_filling.len() + after.len(),
        started.elapsed().as_secs_f64(),
    );
    drop(serve);
    drop(mount);
}
