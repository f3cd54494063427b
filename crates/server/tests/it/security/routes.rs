//! The table of every route the routers declare and how `probing` probes
//! it, and the test that keeps it complete: it scans `src/` for `.route(`
//! and `.route_service(` calls, so a new route without a probe (or a probe
//! of a route that is gone) fails.

use std::collections::BTreeSet;
use std::path::Path;
/// Which of tenant A's credentials a probe presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cred {
    Tenant,
    Agent,
    Poll,
    /// A's Radarboard poll secret (not a token).
    PollSecret,
    /// No `Authorization` header.
    Anonymous,
}

const TOKENS: &[Cred] = &[Cred::Tenant, Cred::Agent, Cred::Poll];
const POLLERS: &[Cred] = &[Cred::Tenant, Cred::Agent, Cred::Poll, Cred::PollSecret];

pub(super) enum Probe {
    /// The path, query or body names one of B's objects through exactly one
    /// placeholder (`{bucket}`, `{bucket_name}`, `{input}`, `{output}`, `{tunnel}`,
    /// `{key}`, `{event}`, `{tenant}`); `{own_key}` is A's poll token. The
    /// answer is one of `status` and equals the answer for a random value.
    Foreign {
        path: &'static str,
        body: Option<&'static str>,
        creds: &'static [Cred],
        status: &'static [u16],
    },
    /// A route that names no object: A's answer holds none of B's ids.
    Listing {
        path: &'static str,
        body: Option<&'static str>,
        creds: &'static [Cred],
    },
    /// An agent transport: a `Hello` with A's agent token asks for B's
    /// bucket (by id and by name).
    AgentHello(Transport),
    /// A tunnel agent transport: a `Hello` with A's tunnel-mode token asks
    /// for B's tunnel by name.
    TunnelHello(Transport),
    /// Not tenant-scoped: why, and where it is tested.
    Outside(&'static str),
}

/// The agent transports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    WebSocket,
    Grpc,
}

pub(super) struct Route {
    pub(super) method: &'static str,
    pub(super) route: &'static str,
    pub(super) probe: Probe,
}

const fn foreign(method: &'static str, route: &'static str, path: &'static str) -> Route {
    Route {
        method,
        route,
        probe: Probe::Foreign {
            path,
            body: None,
            creds: TOKENS,
            status: &[404],
        },
    }
}

const fn foreign_with(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: &'static str,
) -> Route {
    Route {
        method,
        route,
        probe: Probe::Foreign {
            path,
            body: Some(body),
            creds: TOKENS,
            status: &[404],
        },
    }
}

const fn listing(method: &'static str, route: &'static str, body: Option<&'static str>) -> Route {
    Route {
        method,
        route,
        probe: Probe::Listing {
            path: route,
            body,
            creds: TOKENS,
        },
    }
}

const fn outside(method: &'static str, route: &'static str, why: &'static str) -> Route {
    Route {
        method,
        route,
        probe: Probe::Outside(why),
    }
}

const PUBLIC_INGEST: &str =
    "public ingest takes no credentials; unknown ids answer like known ones (ingest tests)";
const CHANNEL_STREAMS: &str = "a channel's stream takes a capability, not a tenant's \
    credential: tests/it/channels (unknown and revoked capabilities answer 404)";
const SOCKET: &str = "Webhook Relay's socket server: JSON frames, not a Hello; a socket \
    of tenant A subscribing to B's bucket by id or name is refused in tests/it/socket";
const OPERATIONS: &str = "operations route: no credentials, no tenant data";
const TUNNEL_VISITORS: &str = "tunnel visitors: a tunnel's name is its public address, not a \
    tenant's secret, and visitors present no tenant credential; routing, auth and crafted \
    targets in crates/hookrelay/tests/it/tunnels";
const NODES: &str = "nodes of a cluster: no tenant credential but the key derived from the \
    master key (401 without it); a tunnel's id is the address, and the request was routed and \
    authorised on the visitor's node; tested in crates/hookrelay/tests/it/tunnels/nodes.rs";
const DASHBOARD: &str = "dashboard: a cookie session that calls the API in-process with its \
    credential (the API's own checks); tenant isolation in tests/browser";

/// Every route the routers declare, and how it is probed.
pub(super) const ROUTES: &[Route] = &[
    listing("GET", "/v1/agents", None),
    listing("GET", "/v1/buckets", None),
    foreign("GET", "/v1/buckets/{bucket}", "/v1/buckets/{bucket}"),
    foreign("GET", "/v1/buckets/{bucket}", "/v1/buckets/{bucket_name}"),
    foreign_with(
        "PATCH",
        "/v1/buckets/{bucket}",
        "/v1/buckets/{bucket}",
        "{}",
    ),
    foreign("DELETE", "/v1/buckets/{bucket}", "/v1/buckets/{bucket}"),
    foreign(
        "GET",
        "/v1/buckets/{bucket}/inputs",
        "/v1/buckets/{bucket}/inputs",
    ),
    foreign_with(
        "POST",
        "/v1/buckets/{bucket}/inputs",
        "/v1/buckets/{bucket}/inputs",
        "{}",
    ),
    foreign("GET", "/v1/inputs/{input}", "/v1/inputs/{input}"),
    foreign_with("PATCH", "/v1/inputs/{input}", "/v1/inputs/{input}", "{}"),
    foreign("DELETE", "/v1/inputs/{input}", "/v1/inputs/{input}"),
    foreign(
        "GET",
        "/v1/buckets/{bucket}/outputs",
        "/v1/buckets/{bucket}/outputs",
    ),
    foreign_with(
        "POST",
        "/v1/buckets/{bucket}/outputs",
        "/v1/buckets/{bucket}/outputs",
        r#"{"url": "http://hooks.internal.example/y"}"#,
    ),
    foreign("GET", "/v1/outputs/{output}", "/v1/outputs/{output}"),
    foreign_with(
        "PATCH",
        "/v1/outputs/{output}",
        "/v1/outputs/{output}",
        "{}",
    ),
    foreign("DELETE", "/v1/outputs/{output}", "/v1/outputs/{output}"),
    listing("GET", "/v1/functions", None),
    listing(
        "POST",
        "/v1/functions",
        Some(r#"{"name": "probe", "source": "r:StopForwarding()"}"#),
    ),
    foreign(
        "GET",
        "/v1/functions/{function}",
        "/v1/functions/{function}",
    ),
    foreign_with(
        "PATCH",
        "/v1/functions/{function}",
        "/v1/functions/{function}",
        r#"{"source": "r:StopForwarding()"}"#,
    ),
    foreign(
        "DELETE",
        "/v1/functions/{function}",
        "/v1/functions/{function}",
    ),
    foreign_with(
        "POST",
        "/v1/functions/{function}/invoke",
        "/v1/functions/{function}/invoke",
        "{}",
    ),
    listing("GET", "/v1/tokens", None),
    foreign_with(
        "POST",
        "/v1/tokens",
        "/v1/tokens",
        r#"{"scope": "poll", "buckets": ["{bucket}"]}"#,
    ),
    foreign("GET", "/v1/tokens/{key}", "/v1/tokens/{key}"),
    foreign_with("PATCH", "/v1/tokens/{key}", "/v1/tokens/{key}", "{}"),
    // A's own token, limited to B's bucket.
    foreign_with(
        "PATCH",
        "/v1/tokens/{key}",
        "/v1/tokens/{own_key}",
        r#"{"buckets": ["{bucket}"]}"#,
    ),
    foreign("DELETE", "/v1/tokens/{key}", "/v1/tokens/{key}"),
    foreign("POST", "/v1/tokens/{key}/rotate", "/v1/tokens/{key}/rotate"),
    listing("GET", "/api/tenants", None),
    listing("POST", "/api/tenants", Some(r#"{"label": "Probe"}"#)),
    foreign("GET", "/api/tenants/{tenant}", "/api/tenants/{tenant}"),
    foreign_with(
        "PATCH",
        "/api/tenants/{tenant}",
        "/api/tenants/{tenant}",
        "{}",
    ),
    foreign("DELETE", "/api/tenants/{tenant}", "/api/tenants/{tenant}"),
    foreign_with(
        "PUT",
        "/api/tenants/{tenant}/secrets",
        "/api/tenants/{tenant}/secrets",
        r#"{"webhookSecrets": {"github": "s"}}"#,
    ),
    listing("GET", "/v1/events", None),
    foreign("GET", "/v1/events", "/v1/events?bucket={bucket}"),
    // A cursor is not a lookup: A's (empty) page after B's event id, with
    // the cursor echoed as `next`.
    Route {
        method: "GET",
        route: "/v1/events",
        probe: Probe::Foreign {
            path: "/v1/events?after={event}",
            body: None,
            creds: TOKENS,
            status: &[200, 404],
        },
    },
    // A filter naming B's input is not a lookup either: A's page.
    Route {
        method: "GET",
        route: "/v1/events",
        probe: Probe::Foreign {
            path: "/v1/events?input={input}",
            body: None,
            creds: TOKENS,
            status: &[200, 404],
        },
    },
    foreign("GET", "/v1/events/{event}", "/v1/events/{event}"),
    foreign_with(
        "POST",
        "/v1/events/resend",
        "/v1/events/resend",
        r#"{"bucket": "{bucket}"}"#,
    ),
    listing("POST", "/v1/events/resend", Some("{}")),
    foreign(
        "POST",
        "/v1/events/{event}/resend",
        "/v1/events/{event}/resend",
    ),
    foreign(
        "GET",
        "/v1/buckets/{bucket}/stream",
        "/v1/buckets/{bucket}/stream",
    ),
    // The default tenant's poll route names no tenant in its path.
    Route {
        method: "GET",
        route: "/api/events",
        probe: Probe::Listing {
            path: "/api/events",
            body: None,
            creds: POLLERS,
        },
    },
    Route {
        method: "OPTIONS",
        route: "/api/events",
        probe: Probe::Listing {
            path: "/api/events",
            body: None,
            creds: &[Cred::Anonymous],
        },
    },
    Route {
        method: "GET",
        route: "/api/t/{tenant}/events",
        probe: Probe::Foreign {
            path: "/api/t/{tenant}/events",
            body: None,
            creds: POLLERS,
            status: &[401],
        },
    },
    Route {
        method: "OPTIONS",
        route: "/api/t/{tenant}/events",
        probe: Probe::Foreign {
            path: "/api/t/{tenant}/events",
            body: None,
            creds: &[Cred::Anonymous],
            status: &[204],
        },
    },
    Route {
        method: "GET",
        route: "/v1/agent/ws",
        probe: Probe::AgentHello(Transport::WebSocket),
    },
    Route {
        method: "ANY",
        route: "/hookrelay.v1.Agent/Connect",
        probe: Probe::AgentHello(Transport::Grpc),
    },
    foreign(
        "GET",
        "/v1/buckets/{bucket}/channels",
        "/v1/buckets/{bucket}/channels",
    ),
    foreign(
        "POST",
        "/v1/buckets/{bucket}/channels",
        "/v1/buckets/{bucket}/channels",
    ),
    foreign(
        "DELETE",
        "/v1/buckets/{bucket}/channels/{id}",
        "/v1/buckets/{bucket}/channels/chn_probeprobeprobeprobe1",
    ),
    // A's socket token reporting on B's delivery: as on a random one.
    Route {
        method: "PUT",
        route: "/v1/logs/{id}",
        probe: Probe::Foreign {
            path: "/v1/logs/{event}.out_probeprobeprobeprobe1",
            body: Some(r#"{"status_code": 200}"#),
            creds: TOKENS,
            status: &[401, 404],
        },
    },
    outside("GET", "/v1/socket", SOCKET),
    outside("GET", "/smee/{cap}", CHANNEL_STREAMS),
    outside("GET", "/smee/events/{cap}", CHANNEL_STREAMS),
    outside("ANY", "/v1/webhooks/{input_id}", PUBLIC_INGEST),
    outside("ANY", "/v1/webhooks/{input_id}/{*rest}", PUBLIC_INGEST),
    outside("POST", "/api/webhooks/{name}", PUBLIC_INGEST),
    outside("POST", "/api/t/{tenant}/webhooks/{name}", PUBLIC_INGEST),
    outside("GET", "/api/health", OPERATIONS),
    outside("GET", "/healthz", OPERATIONS),
    outside("GET", "/readyz", OPERATIONS),
    outside("GET", "/metrics", OPERATIONS),
    outside("GET", "/openapi.json", OPERATIONS),
    // Last, as it makes A a bucket named like B's, which the by-name probe
    // above would then find: A may take B's bucket name (no conflict leaks).
    listing("POST", "/v1/buckets", Some(r#"{"name": "prod"}"#)),
    listing("GET", "/v1/tunnels", None),
    foreign("GET", "/v1/tunnels/{id}", "/v1/tunnels/{tunnel}"),
    foreign_with("PATCH", "/v1/tunnels/{id}", "/v1/tunnels/{tunnel}", "{}"),
    foreign("DELETE", "/v1/tunnels/{id}", "/v1/tunnels/{tunnel}"),
    foreign(
        "GET",
        "/v1/tunnels/{id}/requests",
        "/v1/tunnels/{tunnel}/requests",
    ),
    // Tunnel names are unique on the whole server (they are public
    // addresses, DESIGN §10): A taking B's name gets 409 by design, so the
    // probe creates a name of A's own and checks the answer holds none of
    // B's ids.
    listing("POST", "/v1/tunnels", Some(r#"{"name": "alpha-own"}"#)),
    Route {
        method: "GET",
        route: "/v1/tunnel/ws",
        probe: Probe::TunnelHello(Transport::WebSocket),
    },
    Route {
        method: "ANY",
        route: "/hookrelay.v1.Tunnel/Open",
        probe: Probe::TunnelHello(Transport::Grpc),
    },
    outside("ANY", "/t/{*rest}", TUNNEL_VISITORS),
    outside("ANY", "/v1/tunnel/node/{*rest}", NODES),
    outside("ANY", "/ui/{*rest}", DASHBOARD),
    outside("GET", "/ui", DASHBOARD),
    outside("GET", "/ui/", DASHBOARD),
    outside("GET", "/ui/agents", DASHBOARD),
    outside("GET", "/ui/assets/icon.svg", DASHBOARD),
    outside("GET", "/ui/assets/ui.css", DASHBOARD),
    outside("GET", "/ui/assets/ui.js", DASHBOARD),
    outside("GET", "/ui/buckets", DASHBOARD),
    outside("GET", "/ui/buckets/{id}", DASHBOARD),
    outside("GET", "/ui/events/resend", DASHBOARD),
    outside("GET", "/ui/events/{id}", DASHBOARD),
    outside("GET", "/ui/events/{id}/raw", DASHBOARD),
    outside("GET", "/ui/functions", DASHBOARD),
    outside("GET", "/ui/functions/{id}", DASHBOARD),
    outside("GET", "/ui/inputs/{id}", DASHBOARD),
    outside("GET", "/ui/outputs/{id}", DASHBOARD),
    outside("GET", "/ui/signin", DASHBOARD),
    outside("GET", "/ui/tail", DASHBOARD),
    outside("GET", "/ui/tokens", DASHBOARD),
    outside("GET", "/ui/tunnels", DASHBOARD),
    outside("GET", "/ui/tunnels/{id}", DASHBOARD),
    outside("POST", "/ui/buckets", DASHBOARD),
    outside("POST", "/ui/buckets/{id}", DASHBOARD),
    outside("POST", "/ui/buckets/{id}/delete", DASHBOARD),
    outside("POST", "/ui/buckets/{id}/inputs", DASHBOARD),
    outside("POST", "/ui/buckets/{id}/outputs", DASHBOARD),
    outside("POST", "/ui/events/resend", DASHBOARD),
    outside("POST", "/ui/events/{id}/resend", DASHBOARD),
    outside("POST", "/ui/functions", DASHBOARD),
    outside("POST", "/ui/functions/{id}", DASHBOARD),
    outside("POST", "/ui/functions/{id}/delete", DASHBOARD),
    outside("POST", "/ui/functions/{id}/invoke", DASHBOARD),
    outside("POST", "/ui/inputs/{id}", DASHBOARD),
    outside("POST", "/ui/inputs/{id}/delete", DASHBOARD),
    outside("POST", "/ui/outputs/{id}", DASHBOARD),
    outside("POST", "/ui/outputs/{id}/delete", DASHBOARD),
    outside("POST", "/ui/signin", DASHBOARD),
    outside("POST", "/ui/signout", DASHBOARD),
    outside("POST", "/ui/tenant", DASHBOARD),
    outside("POST", "/ui/tokens", DASHBOARD),
    outside("POST", "/ui/tokens/{key}", DASHBOARD),
    outside("POST", "/ui/tokens/{key}/delete", DASHBOARD),
    outside("POST", "/ui/tokens/{key}/rotate", DASHBOARD),
    outside("POST", "/ui/tunnels", DASHBOARD),
    outside("POST", "/ui/tunnels/{id}", DASHBOARD),
    outside("POST", "/ui/tunnels/{id}/delete", DASHBOARD),
];

/// Request pairs (B's real id, a random one) timed per probe.

#[test]
fn the_probe_table_covers_every_declared_route() {
    let declared = declared_routes();
    let covered: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.route.to_owned()))
        .collect();
    let missing: Vec<_> = declared.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&declared).collect();
    assert!(missing.is_empty(), "routes without a probe: {missing:?}");
    assert!(
        stale.is_empty(),
        "probes of routes no router declares: {stale:?}"
    );
    for route in ROUTES {
        if let Probe::Outside(why) = route.probe {
            println!("not probed: {} {}: {why}", route.method, route.route);
        }
    }
    println!(
        "routes: {} declared (method, path) pairs, {} probes",
        declared.len(),
        ROUTES.len()
    );
    // The scan itself works: it found the routes we know of.
    assert!(declared.len() >= 45, "{declared:?}");
}

/// (METHOD, path) of every `.route(…)` and `.route_service(…)` in `src/`.
pub(crate) fn declared_routes() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (marker, service) in [(".route(", false), (".route_service(", true)] {
            let mut rest = text.as_str();
            while let Some(at) = rest.find(marker) {
                let args = &rest[at + marker.len()..];
                let call = &args[..closing_paren(args)];
                let path = call.split('"').nth(1).expect("a route path literal");
                let methods: Vec<String> = if service {
                    vec!["ANY".to_owned()]
                } else {
                    [
                        "get", "post", "put", "patch", "delete", "options", "head", "any",
                    ]
                    .into_iter()
                    .filter(|m| calls(call, m))
                    .map(str::to_uppercase)
                    .collect()
                };
                assert!(
                    !methods.is_empty(),
                    "{}: no method in {call}",
                    file.display()
                );
                for m in methods {
                    routes.insert((m, path.to_owned()));
                }
                rest = &args[call.len()..];
            }
        }
    }
    routes
}

/// Offset of the `)` closing a call whose arguments start `args`.
fn closing_paren(args: &str) -> usize {
    let mut depth = 1;
    for (i, c) in args.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced route call: {args}");
}

/// Whether `code` calls the function `name` (`get(`, `routing::get(`).
fn calls(code: &str, name: &str) -> bool {
    let needle = format!("{name}(");
    code.match_indices(&needle).any(|(at, _)| {
        code[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}
