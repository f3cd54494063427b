//! Issue 16's bad input: each script is stopped or refused with a clear
//! error, the request stays as it was, the caps hold, and the same
//! one-thread pool (one VM) serves a good call right after.

use std::time::Instant;

use super::*;

/// Runs `source`, checks it failed with `needle` within the time cap plus
/// slack, and that the pool is still good.
async fn refused(pool: &Pool, source: &str, needle: &str) {
    let started = Instant::now();
    let o = run(pool, source, "{}").await;
    let took = started.elapsed();
    assert_failed(&o, needle);
    assert!(
        took < Limits::default().time + LIMIT_SLACK,
        "{source}: {took:?}"
    );
    assert_alive(pool).await;
}

#[tokio::test]
async fn a_loop_forever_is_stopped_at_the_deadline() {
    let pool = pool();
    refused(&pool, "while true do end", "time limit of 100 ms exceeded").await;
    refused(
        &pool,
        "local i = 0 repeat i = i + 1 until false",
        "time limit",
    )
    .await;
    // Catching the interrupt's error changes nothing.
    refused(
        &pool,
        "while true do pcall(function() while true do end end) end",
        "time limit",
    )
    .await;
    let o = run(&pool, "pcall(function() while true do end end)", "{}").await;
    assert_failed(&o, "time limit");
}

#[tokio::test]
async fn a_catastrophic_pattern_is_stopped_at_the_deadline() {
    let pool = pool();
    // Backtracking over 4 lazy wildcards on 20k characters: O(n^4), hours.
    let source = r#"local s = string.rep("a", 20000) print(string.find(s, ".-.-.-.-b"))"#;
    refused(&pool, source, "time limit").await;
    let gsub = r#"local s = string.rep("a", 20000) print(s:gsub("a-a-a-a-b", ""))"#;
    refused(&pool, gsub, "time limit").await;
}

#[tokio::test]
async fn a_1_gib_allocation_hits_the_memory_limit() {
    let pool = pool();
    refused(
        &pool,
        r#"local s = string.rep("x", 1024 * 1024 * 1024)"#,
        "memory limit of 16 MiB exceeded",
    )
    .await;
    // 1 GiB in 1 MiB pieces: stopped at 16 MiB, after 16 of them.
    let grow = r#"local k = string.rep("y", 1024) local t = {} for i = 1, 1024 do t[i] = string.rep(k, 1024) .. i end"#;
    // Given the time (a debug build copies ~200 MB/s inside Luau's
    // allocator, so 16 MiB of pieces can outlast 100 ms), memory stops it.
    let patient = Pool::new(
        1,
        Limits {
            time: Duration::from_secs(10),
            ..Limits::default()
        },
    );
    assert_failed(
        &run(&patient, grow, "{}").await,
        "memory limit of 16 MiB exceeded",
    );
    assert_alive(&patient).await;
    assert_alive(&pool).await;
}

#[tokio::test]
async fn endless_recursion_is_stopped() {
    let pool = pool();
    refused(
        &pool,
        "local function f() return 1 + f() end f()",
        "stack overflow",
    )
    .await;
    refused(
        &pool,
        "local function f(n) local t = {n} f(n + 1) end f(1)",
        "",
    )
    .await;
}

#[tokio::test]
async fn errors_and_garbage() {
    let pool = pool();
    refused(&pool, r#"error("boom")"#, "boom").await;
    refused(&pool, "error({code = 1})", "").await;
    refused(&pool, "local x = nil; x.y = 1", "attempt to index nil").await;
    refused(&pool, "r:SetRequestBody({})", "").await;
    refused(
        &pool,
        "r:SetResponseStatusCode('200')",
        "a status code is a number",
    )
    .await;
    // Whatever a script returns is ignored: only what it set counts.
    for garbage in [
        "return function() end",
        "return coroutine",
        "return 1, 2, 3",
        "return r",
    ] {
        let o = run(&pool, garbage, "{}").await;
        assert_eq!(o.error, None, "{garbage}");
        assert_eq!(o.request, request("{}"));
    }
}

#[tokio::test]
async fn statuses_outside_100_to_599_are_refused() {
    let pool = pool();
    refused(
        &pool,
        "r:SetResponseStatusCode(99)",
        "status 99 is outside 100..=599",
    )
    .await;
    refused(
        &pool,
        "r:SetResponseStatusCode(1000)",
        "status 1000 is outside",
    )
    .await;
    refused(&pool, "r:SetResponseStatusCode(200.5)", "outside").await;
    let o = run(&pool, "r:SetResponseStatusCode(599)", "{}").await;
    assert_eq!(o.response.map(|r| r.status), Some(599));
}

#[tokio::test]
async fn a_100_mib_body_is_refused() {
    // Larger memory and time caps, so the body bound refuses it.
    let limits = Limits {
        memory: 256 << 20,
        time: Duration::from_secs(10),
        ..Limits::default()
    };
    let pool = Pool::new(1, limits);
    let source = r#"r:SetResponseBody(string.rep(string.rep("x", 1024), 100 * 1024))"#;
    let o = run(&pool, source, "{}").await;
    assert_failed(&o, "is over the limit of 16777216 bytes");
    let source = r#"r:SetRequestBody(string.rep(string.rep("x", 1024), 100 * 1024))"#;
    assert_failed(&run(&pool, source, "{}").await, "over the limit");
    assert_alive(&pool).await;
    // Under the default caps, memory stops it first.
    refused(&super::pool(), source, "memory limit").await;
}

#[tokio::test]
async fn headers_that_break_http_are_refused() {
    let pool = pool();
    refused(
        &pool,
        r#"r:SetRequestHeader("x-a", "v\r\nx-injected: 1")"#,
        "invalid header value",
    )
    .await;
    refused(
        &pool,
        r#"r:SetResponseHeader("x-a", "v\nx")"#,
        "invalid header value",
    )
    .await;
    refused(
        &pool,
        r#"r:SetRequestHeader("bad name", "v")"#,
        "invalid header name",
    )
    .await;
    refused(
        &pool,
        r#"r:SetRequestHeader("x-a\r\n", "v")"#,
        "invalid header name",
    )
    .await;
    refused(
        &pool,
        r#"r:SetRequestMethod("GET /x HTTP/1.1\r\n")"#,
        "invalid method",
    )
    .await;
    refused(&pool, r#"r:SetRequestPath("/a b")"#, "must not contain").await;
    refused(
        &pool,
        r#"r:SetRequestRawQuery("a=1\r\n")"#,
        "must not contain",
    )
    .await;
}

#[tokio::test]
async fn the_pool_survives_a_run_of_bad_scripts_on_every_thread() {
    let pool = Arc::new(Pool::new(2, Limits::default()));
    let bad = [
        "while true do end",
        r#"string.rep("x", 2^30)"#,
        "error('x')",
        "local function f() f() end f()",
    ];
    let handles = bad.iter().cycle().take(8).map(|source| {
        let pool = pool.clone();
        let source = source.to_string();
        tokio::spawn(async move { run(&pool, &source, "{}").await })
    });
    for h in handles {
        assert!(h.await.unwrap().error.is_some());
    }
    for _ in 0..4 {
        assert_alive(&pool).await;
    }
}

/// Lower limits (the server's `--function-timeout-ms`,
/// `--function-memory-mib`) take effect as given.
#[tokio::test]
async fn lower_limits_take_effect() {
    let limits = Limits {
        time: Duration::from_millis(20),
        memory: 2 << 20,
        ..Limits::default()
    };
    let pool = Pool::new(1, limits);
    let started = Instant::now();
    let o = run(&pool, "while true do end", "{}").await;
    assert_failed(&o, "time limit of 20 ms exceeded");
    assert!(
        (20_000..Limits::default().time.as_micros() as u64).contains(&o.duration_micros),
        "stopped at 20 ms, not at the default 100 ms: {} us",
        o.duration_micros
    );
    assert!(started.elapsed() < LIMIT_SLACK);
    let o = run(&pool, r#"local s = string.rep("x", 3 * 1024 * 1024)"#, "{}").await;
    assert_failed(&o, "memory limit of 2 MiB exceeded");
    // 1.5 MiB fits, again and again: what one call leaves for the
    // collector is not taken from the next call's allowance.
    for _ in 0..6 {
        let o = run(&pool, r#"local s = string.rep("y", 1536 * 1024)"#, "{}").await;
        assert_eq!(o.error, None);
    }
    assert_alive(&pool).await;
}

/// A thread stuck in slow calls does not hold up calls the other thread
/// is free for (it takes at most 4 before the next thread gets one); a
/// full pool refuses at once and keeps the request.
#[tokio::test]
async fn calls_go_to_a_free_thread_and_a_full_pool_refuses() {
    let pool = Arc::new(Pool::new(2, Limits::default()));
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { run(&pool, "while true do end", "{}").await })
        })
        .collect();
    // The first quick calls may be sent before all the slow ones and wait
    // behind them; once the slow ones are all sent, a quick call runs at
    // once on the other thread, while the slow ones still run (400 ms).
    let started = Instant::now();
    let mut quick = Duration::MAX;
    while started.elapsed() < LIMIT_SLACK && quick > Duration::from_millis(50) {
        tokio::task::yield_now().await;
        let t0 = Instant::now();
        assert_alive(&pool).await;
        quick = t0.elapsed();
    }
    assert!(quick < Duration::from_millis(50), "{quick:?}");
    assert!(
        !slow.iter().all(|s| s.is_finished()),
        "the quick call ran while slow ones were still queued"
    );
    for s in slow {
        assert_failed(&s.await.unwrap(), "time limit");
    }

    // Two threads, 32 calls queued each: of 200 loops sent at once, those
    // beyond the queues are refused without waiting, request unchanged.
    let limits = Limits {
        time: Duration::from_millis(10),
        ..Limits::default()
    };
    let pool = Arc::new(Pool::new(2, limits));
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                (run(&pool, "while true do end", "{}").await, t0.elapsed())
            })
        })
        .collect();
    let mut busy = 0;
    for call in calls {
        let (o, took) = call.await.unwrap();
        if o.error.as_deref() == Some("the function pool is busy") {
            busy += 1;
            assert_failed(&o, "busy");
            assert!(took < Duration::from_millis(500), "{took:?}");
        }
    }
    assert!(busy >= 200 - 2 * (32 + 1), "{busy} refused");
}
