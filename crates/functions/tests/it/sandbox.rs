//! The sandbox of DESIGN §14: nothing of the OS, the filesystem, the
//! network or the VM's internals is reachable.

use super::*;

/// Prints `expr` and answers what it printed, or the error.
async fn eval(pool: &Pool, expr: &str) -> Result<String, String> {
    let o = run(pool, &format!("print({expr})"), "{}").await;
    match o.error {
        Some(e) => Err(e),
        None => Ok(o.logs.join("\n")),
    }
}

#[tokio::test]
async fn what_is_gone() {
    let pool = pool();
    for name in [
        "io",
        "load",
        "loadstring",
        "dofile",
        "loadfile",
        "getfenv",
        "setfenv",
        "collectgarbage",
        "string.dump",
        "package",
        "os.execute",
        "os.getenv",
        "os.remove",
        "os.exit",
        "debug.getinfo",
        "debug.info",
        "debug.sethook",
        "os.difftime",
    ] {
        assert_eq!(eval(&pool, name).await.as_deref(), Ok("nil"), "{name}");
    }
}

#[tokio::test]
async fn what_is_left_of_os_and_debug() {
    let pool = pool();
    assert_eq!(
        eval(&pool, "type(os.time()), type(os.clock()), type(os.date())")
            .await
            .unwrap(),
        "number\tnumber\tstring"
    );
    assert_eq!(eval(&pool, "debug.traceback('m')").await.unwrap(), "m");
}

#[tokio::test]
async fn require_knows_three_names() {
    let pool = pool();
    for name in [
        "os",
        "io",
        "debug",
        "socket",
        "./x",
        "/etc/passwd",
        "@self/x",
        "string",
    ] {
        let o = run(&pool, &format!("require({name:?})"), "{}").await;
        assert_failed(&o, "is not available");
    }
}

#[tokio::test]
async fn calling_what_is_gone_fails_cleanly() {
    let pool = pool();
    for source in [
        "io.open('/etc/passwd')",
        "loadstring('return 1')()",
        "getfenv(1).x = 1",
        "collectgarbage('collect')",
        "string.dump(print)",
        "os.execute('true')",
        "debug.getinfo(1)",
        "setmetatable(_G, nil)",
        "rawset(string, 'x', 1)",
    ] {
        let o = run(&pool, source, "{}").await;
        assert!(o.error.is_some(), "{source} ran: {o:?}");
        assert_eq!(o.request, request("{}"));
    }
    assert_alive(&pool).await;
}
