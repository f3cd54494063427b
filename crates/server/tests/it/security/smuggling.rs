//! Request smuggling on the ingest route, over raw TCP: ambiguous framing
//! (`Content-Length` against `Transfer-Encoding`, two lengths, a coding
//! after `chunked`, obs-fold) is refused with 400 or read one safe way,
//! and a request hidden in a body is never processed as a second request.
//!
//! What hyper 1.x does (`proto/h1/role.rs`, `Server::parse`): with both
//! `Transfer-Encoding` and `Content-Length` the transfer coding wins, the
//! length header is dropped, and the connection is closed after the answer
//! (RFC 9112 §6.3 ¶3), so bytes after the chunked body are never parsed.
//! `Transfer-Encoding` whose last coding is not `chunked`, on HTTP/1.0, or
//! differing `Content-Length`s, or a length that is not all digits, is a
//! parse error: hyper answers `400 Bad Request` with an empty body and
//! closes, before the request reaches the relay (so not the JSON error
//! body; there is no request to answer yet). httparse refuses obs-fold and
//! whitespace before the colon the same way.
//!
//! Each case ends with a request that asks to close, so that if the
//! connection stayed open every request on it is answered and then EOF
//! comes; the answers are counted, and so are the events stored.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::super::plain_input;

const PATIENCE: Duration = Duration::from_secs(20);

/// A case: its name, the bytes sent, the statuses answered, how many
/// events it stored, and a body one of them must have.
struct Case<'a>(&'a str, String, Vec<u16>, usize, Option<&'a str>);

/// Sends `bytes` on a fresh connection and reads until the relay closes
/// it; returns the status of every answer.
async fn exchange(addr: &str, bytes: &[u8]) -> (Vec<u16>, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut got = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_all)
        .await
        .expect("the relay closes the connection");
    let text = String::from_utf8_lossy(&got).into_owned();
    let statuses = text
        .split("\r\n")
        .filter_map(|line| line.strip_prefix("HTTP/1.1 "))
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect();
    (statuses, text)
}

/// A request head for the ingest path with these extra header lines.
fn head(path: &str, lines: &[&str]) -> String {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: relay\r\n");
    for line in lines {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

/// A well-framed request carrying `body` that asks to close the connection.
fn plain(path: &str, body: &str) -> String {
    let length = format!("Content-Length: {}", body.len());
    head(path, &[&length, "Connection: close"]) + body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused_or_read_safely_and_never_smuggles() {
    let relay = testkit::Relay::spawn().await;
    let (_, path) = plain_input(&relay).await;
    let addr = relay.url.trim_start_matches("http://").to_owned();
    let hidden = plain(&path, "smuggled");

    // CL.TE: a front end that reads Content-Length passes the hidden
    // request on as body; a back end that reads chunked would see it as a
    // second request.
    let cl_te_body = format!("0\r\n\r\n{hidden}");
    let cl_te = head(
        &path,
        &[
            &format!("Content-Length: {}", cl_te_body.len()),
            "Transfer-Encoding: chunked",
        ],
    ) + &cl_te_body;
    // TE.CL: the reverse; the hidden request sits in the chunk.
    let te_cl_body = format!("{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len());
    let te_cl = head(&path, &["Transfer-Encoding: chunked", "Content-Length: 4"]) + &te_cl_body;
    let chunked = |lines: &[&str]| head(&path, lines) + "8\r\nsmuggled\r\n0\r\n\r\n" + &hidden;
    let sized = |lines: &[&str]| head(&path, lines) + "smuggled" + &hidden;

    // (case, bytes, answers, events stored, a body that must be stored)
    let cases: Vec<Case> = vec![
        // The control: a real pipelined second request is answered and
        // stored, so the counts below would see a smuggled one.
        Case(
            "pipelined control",
            sized(&["Content-Length: 8"]),
            vec![200, 200],
            2,
            Some("smuggled"),
        ),
        Case("CL.TE hidden request", cl_te, vec![200], 1, Some("")),
        Case(
            "TE.CL hidden request",
            te_cl,
            vec![200],
            1,
            Some(hidden.as_str()),
        ),
        Case(
            "two different Content-Lengths",
            sized(&["Content-Length: 8", "Content-Length: 48"]),
            vec![400],
            0,
            None,
        ),
        Case(
            "Content-Length list",
            sized(&["Content-Length: 8, 48"]),
            vec![400],
            0,
            None,
        ),
        Case(
            "Content-Length +8",
            sized(&["Content-Length: +8"]),
            vec![400],
            0,
            None,
        ),
        Case(
            "Transfer-Encoding: chunked, identity",
            chunked(&["Transfer-Encoding: chunked, identity"]),
            vec![400],
            0,
            None,
        ),
        Case(
            "two Transfer-Encoding lines, chunked first",
            chunked(&["Transfer-Encoding: chunked", "Transfer-Encoding: identity"]),
            vec![400],
            0,
            None,
        ),
        Case(
            "Transfer-Encoding: xchunked",
            chunked(&["Transfer-Encoding: xchunked", "Content-Length: 8"]),
            vec![400],
            0,
            None,
        ),
        Case(
            "obs-fold Transfer-Encoding",
            chunked(&["Content-Length: 8", "Transfer-Encoding:", " chunked"]),
            vec![400],
            0,
            None,
        ),
        Case(
            "obs-fold on another header",
            sized(&["Content-Length: 8", "X-Folded: a", " b"]),
            vec![400],
            0,
            None,
        ),
        Case(
            "space before the colon",
            chunked(&["Content-Length: 8", "Transfer-Encoding : chunked"]),
            vec![400],
            0,
            None,
        ),
    ];
    let mut http10 =
        head(&path, &["Transfer-Encoding: chunked"]).replacen("HTTP/1.1", "HTTP/1.0", 1);
    http10.push_str("8\r\nsmuggled\r\n0\r\n\r\n");
    let mut cases = cases;
    cases.push(Case(
        "Transfer-Encoding on HTTP/1.0",
        http10,
        vec![400],
        0,
        None,
    ));

    for Case(case, bytes, want_answers, want_events, want_body) in cases {
        let before = relay.events().await.len();
        let (answers, text) = exchange(&addr, bytes.as_bytes()).await;
        let events = relay.events().await;
        let stored = &events[before..];
        println!(
            "smuggling: {case:<45} answers {answers:?}, events stored {}",
            stored.len()
        );
        assert_eq!(answers, want_answers, "{case}: {text}");
        assert_eq!(stored.len(), want_events, "{case}: {stored:?}");
        if let Some(body) = want_body {
            assert!(
                stored.iter().any(|e| e["body"] == json!(body)),
                "{case}: no event with body {body:?}: {stored:?}"
            );
        }
        if want_events < 2 {
            assert!(
                !stored.iter().any(|e| e["body"] == json!("smuggled")),
                "{case}: the hidden request was processed: {stored:?}"
            );
        }
    }
}

/// Sends `bytes` (a write the relay cuts short is fine) and reads until
/// the relay closes; the statuses answered.
async fn exchange_cut(addr: &str, bytes: &[u8]) -> Vec<u16> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.split();
    let write = async {
        let _ = writer.write_all(bytes).await;
    };
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    };
    let (_, got) = tokio::time::timeout(PATIENCE, async { tokio::join!(write, read) })
        .await
        .expect("the relay closes the connection");
    String::from_utf8_lossy(&got)
        .split("\r\n")
        .filter_map(|line| line.strip_prefix("HTTP/1.1 "))
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect()
}

/// Issue 19, finding 6: hyper reads a chunk size with any number of
/// leading zeros; a front proxy may frame it otherwise. The relay cuts the
/// connection at a size of more than 16 hex digits (every `u64`): no 2xx,
/// nothing stored. 16 digits, leading zeros included, still pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_chunk_sizes_with_long_runs_of_leading_zeros_are_refused() {
    let relay = testkit::Relay::spawn().await;
    let (_, path) = plain_input(&relay).await;
    let addr = relay.url.trim_start_matches("http://").to_owned();
    let request = |size: &str| {
        head(&path, &["Transfer-Encoding: chunked", "Connection: close"])
            + &format!("{size}\r\nsmuggled\r\n0\r\n\r\n")
    };
    let cases = [
        (
            "a million leading zeros",
            "0".repeat(1_000_000) + "8",
            false,
        ),
        ("17 digits", "0".repeat(16) + "8", false),
        ("16 digits", "0".repeat(15) + "8", true),
        ("one digit", "8".to_owned(), true),
    ];
    for (case, size, ok) in cases {
        let before = relay.events().await.len();
        let answers = exchange_cut(&addr, request(&size).as_bytes()).await;
        let stored = relay.events().await.len() - before;
        println!("smuggling: chunk size {case:<25} answers {answers:?}, events stored {stored}");
        if ok {
            assert_eq!(answers, vec![200], "{case}");
            assert_eq!(stored, 1, "{case}");
        } else {
            assert!(
                answers.iter().all(|s| *s >= 400),
                "{case}: answered {answers:?}"
            );
            assert_eq!(stored, 0, "{case}");
        }
    }
}
