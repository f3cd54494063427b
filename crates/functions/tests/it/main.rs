//! The functions crate through its public API, on a real pool: the §9 API
//! as scripts use it, the sandbox (§14), and every bad input of issue 16
//! stopped or refused with a clear error while the pool keeps serving.

use std::sync::Arc;
use std::time::Duration;

use functions::{Attachment, Call, Limits, Outcome, Pool, Request, Script};

mod api;
mod bad_input;
mod sandbox;

/// A one-thread pool: every call below runs on the same VM, so a leak from
/// one call to the next, or a VM a bad script broke, would show.
fn pool() -> Pool {
    Pool::new(1, Limits::default())
}

fn request(body: &str) -> Request {
    Request {
        method: "POST".into(),
        path: "/hook".into(),
        query: "a=1&b=two+words".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-github-event".into(), "push".into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn call(body: &str, attachment: Attachment) -> Call {
    Call {
        request: request(body),
        metadata: vec![("tenant_id", "default".into()), ("input_id", "in-1".into())],
        config: Arc::new(vec![("TOKEN".into(), "s3cret".into())]),
        attachment,
    }
}

/// Runs `source` as an input function on `body`.
async fn run(pool: &Pool, source: &str, body: &str) -> Outcome {
    run_as(pool, source, body, Attachment::Input).await
}

async fn run_as(pool: &Pool, source: &str, body: &str, attachment: Attachment) -> Outcome {
    let script = Script::compile("fn_test", version(source), source).expect("compiles");
    pool.run(&script, call(body, attachment)).await
}

/// A version per source, as the store's would be.
fn version(source: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    h.finish()
}

/// The call failed with an error containing `needle`, left the request as
/// it was and set nothing.
fn assert_failed(outcome: &Outcome, needle: &str) {
    let error = outcome
        .error
        .as_deref()
        .unwrap_or_else(|| panic!("no error: {outcome:?}"));
    assert!(error.contains(needle), "{error:?} lacks {needle:?}");
    assert_eq!(
        outcome.request,
        request(std::str::from_utf8(&outcome.request.body).unwrap())
    );
    assert!(outcome.response.is_none() && !outcome.stop_forwarding);
}

/// The pool still runs a good script correctly.
async fn assert_alive(pool: &Pool) {
    let o = run(pool, r#"r:SetRequestHeader("x-alive", "yes")"#, "{}").await;
    assert_eq!(o.error, None);
    assert!(o
        .request
        .headers
        .contains(&("x-alive".into(), "yes".into())));
}

const LIMIT_SLACK: Duration = Duration::from_secs(2);
