//! The §9 API as Webhook Relay scripts use it.

use super::*;

#[tokio::test]
async fn reads_the_request_and_changes_it() {
    let pool = pool();
    let source = r#"
        local body, err = json.decode(r.RequestBody)
        log("event", r.RequestHeader["X-GitHub-Event"], r.RequestMethod, r.RequestPath)
        print(r.RequestRawQuery, r.RequestQuery["b"], r.Metadata.tenant_id, cfg.get("TOKEN"), cfg.get("NONE"))
        local out = json.encode({text = "pushed " .. body.ref})
        r:SetRequestBody(out)
        r:SetRequestMethod("PUT")
        r:SetRequestPath("/slack")
        r:SetRequestRawQuery("x=1")
        r:SetRequestHeader("Content-Type", "text/plain")
        r:DeleteRequestHeader("X-GitHub-Event")
    "#;
    let o = run(&pool, source, r#"{"ref":"main"}"#).await;
    assert_eq!(o.error, None);
    assert_eq!(
        o.logs,
        [
            "event\tpush\tPOST\t/hook",
            "a=1&b=two+words\ttwo words\tdefault\ts3cret\tnil"
        ]
    );
    assert_eq!(o.request.body, br#"{"text":"pushed main"}"#);
    assert_eq!(
        (
            o.request.method.as_str(),
            o.request.path.as_str(),
            o.request.query.as_str()
        ),
        ("PUT", "/slack", "x=1")
    );
    assert_eq!(
        o.request.headers,
        [("content-type".to_owned(), "text/plain".to_owned())]
    );
    assert!(o.response.is_none() && !o.stop_forwarding);
    assert!(o.changed);
}

#[tokio::test]
async fn answers_the_sender_and_stops_forwarding() {
    let pool = pool();
    let source = r#"
        r:SetResponseStatusCode(202)
        r:SetResponseHeader("Content-Type", "application/json")
        r:SetResponseBody('{"ok":true}')
        r:StopForwarding()
    "#;
    let o = run(&pool, source, "{}").await;
    assert_eq!(o.error, None);
    let response = o.response.clone().unwrap();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (202, &br#"{"ok":true}"#[..])
    );
    assert_eq!(
        response.headers,
        [("content-type".to_owned(), "application/json".to_owned())]
    );
    assert!(o.stop_forwarding);
    assert!(!o.changed, "the request itself is unchanged");
    // A setter that sets what was already there changes nothing either.
    let o = run(&pool, "r:SetRequestBody(r.RequestBody)", "{}").await;
    assert!(o.error.is_none() && !o.changed);
    // Output functions change what a destination receives, never the answer.
    let o = run_as(&pool, "r:SetResponseBody('x')", "{}", Attachment::Output).await;
    assert_failed(&o, "input functions only");
}

#[tokio::test]
async fn modules_by_global_and_by_require() {
    let pool = pool();
    let source = r#"
        local j = require("json")
        local c = require("crypto")
        local t = require("time")
        assert(j == json and c == crypto and t == time)
        print(crypto.sha256("abc"))
        print(crypto.md5(""), crypto.sha1("abc"))
        print(crypto.hmac("sha256", "The quick brown fox jumps over the lazy dog", "key"))
        print(crypto.base64_encode("hello"), (crypto.base64_decode("aGVsbG8=")))
        print(select(2, crypto.base64_decode("***")) ~= nil)
        print(time.format(1136239445, "2006-01-02T15:04:05Z07:00"))
        print(math.abs(time.unix() - os.time()) <= 1)
        local v, err = json.decode("{bad")
        print(v == nil, err ~= nil)
        print((json.encode({1, 2, 3})))
    "#;
    let o = run(&pool, source, "{}").await;
    assert_eq!(o.error, None, "{o:?}");
    assert_eq!(
        o.logs,
        [
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "d41d8cd98f00b204e9800998ecf8427e\ta9993e364706816aba3e25717850c26c9cd0d89d",
            // RFC 4231-style check value published by Wikipedia's HMAC page.
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
            "aGVsbG8=\thello",
            "true",
            "2006-01-02T22:04:05Z",
            "true",
            "true\ttrue",
            "[1,2,3]",
        ]
    );
}

#[tokio::test]
async fn nothing_carries_over_between_calls() {
    let pool = pool();
    let first = run(
        &pool,
        "leaked = 'yes'; counter = (counter or 0) + 1; print(counter)",
        "{}",
    )
    .await;
    assert_eq!(first.logs, ["1"]);
    let second = run(
        &pool,
        "leaked = 'yes'; counter = (counter or 0) + 1; print(counter)",
        "{}",
    )
    .await;
    assert_eq!(second.logs, ["1"], "same script, same VM, fresh globals");
    let other = run(&pool, "print(leaked)", "{}").await;
    assert_eq!(other.logs, ["nil"]);
    // Libraries are read-only: a script cannot change them for the next.
    let o = run(&pool, "string.upper = function() return 'pwned' end", "{}").await;
    assert!(o.error.is_some());
    let o = run(&pool, "json.encode = nil", "{}").await;
    assert!(o.error.is_some());
    let o = run(&pool, "print(string.upper('a'), json.encode ~= nil)", "{}").await;
    assert_eq!(o.logs, ["A\ttrue"]);
}

#[tokio::test]
async fn logs_are_bounded() {
    let pool = pool();
    let o = run(
        &pool,
        "for i = 1, 300 do print(string.rep('x', 2000)) end",
        "{}",
    )
    .await;
    assert_eq!(o.error, None);
    assert_eq!(o.logs.len(), 101);
    assert!(o.logs[..100].iter().all(|l| l.len() == 1024));
    assert_eq!(o.logs[100], "... 200 more lines not kept");
}

#[test]
fn a_source_that_does_not_compile_names_its_line() {
    let e = Script::compile("f", 1, "local x = 1\nr:SetRequestBody(\n").unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
    let big = "-- ".repeat(30_000);
    assert!(Script::compile("f", 1, &big)
        .unwrap_err()
        .message
        .contains("65536"));
}

#[tokio::test]
async fn many_calls_at_once_on_a_small_pool() {
    let pool = Arc::new(Pool::new(2, Limits::default()));
    let calls = (0..40).map(|i| {
        let pool = pool.clone();
        tokio::spawn(async move { run(&pool, &format!("r:SetRequestBody('{i}')"), "{}").await })
    });
    for (i, handle) in calls.enumerate() {
        let o = handle.await.unwrap();
        assert_eq!(o.request.body, i.to_string().as_bytes());
    }
}
