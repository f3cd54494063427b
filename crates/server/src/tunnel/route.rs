//! Which tunnel a public request is for, from its raw target only: the
//! `Host` (or an absolute-form target's authority, which RFC 9112 §3.2.2
//! says wins over `Host`) under `--tunnel-domain`, else the first segment
//! after `/t/`. Nothing is percent-decoded or normalised before the name
//! is cut out, and the name must then be a DNS label as it stands, so
//! `/t/a%2Fb`, `/t/..%2f..` or `/t/%61` name no tunnel, and `/t/a/../b`
//! names `a` (its path `/../b` goes to `a`'s destination, never to `b`).

use http::uri::PathAndQuery;
use http::Uri;

/// A request addressed to a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The tunnel's name as the request spelled it (lower-cased).
    pub(crate) name: String,
    /// What the destination receives: the path after the prefix, and the
    /// query.
    pub(crate) path_and_query: PathAndQuery,
    /// `/t/{name}` for path routing (`X-Forwarded-Prefix`), else `None`.
    pub(crate) prefix: Option<String>,
}

/// The request's host as routing sees it, without port, lower-cased.
/// `None` for an authority carrying userinfo (`user@host`): RFC 9110 §7.2
/// allows none in `Host` and §4.2.4 forbids sending it in an `http` URI, so
/// such a request routes to no tunnel rather than to whatever follows `@`.
pub(crate) fn request_host(uri: &Uri, headers: &http::HeaderMap) -> Option<String> {
    let authority: http::uri::Authority = match uri.authority() {
        Some(authority) => authority.clone(),
        None => headers
            .get(http::header::HOST)?
            .to_str()
            .ok()?
            .parse()
            .ok()?,
    };
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host();
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Host routing: `None` when `host` is not under `domain` (the request
/// goes to the relay's own routes); `Some(None)` when it is, but its first
/// label names no possible tunnel (answered 404 `unknown_tunnel`).
pub(crate) fn by_host(host: &str, domain: &str, uri: &Uri) -> Option<Option<Target>> {
    let name = host.strip_suffix(domain)?.strip_suffix('.')?;
    if model::validate_dns_label("name", name).is_err() {
        return Some(None);
    }
    let path_and_query = uri
        .path_and_query()
        .cloned()
        .filter(|p| p.as_str().starts_with('/'))
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Some(Some(Target {
        name: name.to_owned(),
        path_and_query,
        prefix: None,
    }))
}

/// Path routing: `/t/{name}` and `/t/{name}/{rest}`; `None` when the name
/// is not a DNS label.
pub(crate) fn by_path(uri: &Uri) -> Option<Target> {
    let rest = uri.path().strip_prefix("/t/")?;
    let (name, tail) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let name = name.to_ascii_lowercase();
    model::validate_dns_label("name", &name).ok()?;
    let path = if tail.is_empty() { "/" } else { tail };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    Some(Target {
        prefix: Some(format!("/t/{name}")),
        name,
        path_and_query: path_and_query.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn path_routing_cuts_the_name_from_the_raw_path() {
        let t = by_path(&uri("/t/myapp/a/b?x=1")).unwrap();
        assert_eq!(
            (t.name.as_str(), t.path_and_query.as_str()),
            ("myapp", "/a/b?x=1")
        );
        assert_eq!(t.prefix.as_deref(), Some("/t/myapp"));
        assert_eq!(by_path(&uri("/t/myapp")).unwrap().path_and_query, "/");
        assert_eq!(by_path(&uri("/t/MyApp/")).unwrap().name, "myapp");
        // `..` stays inside the named tunnel; it never selects another.
        let dots = by_path(&uri("/t/a/../b")).unwrap();
        assert_eq!(
            (dots.name.as_str(), dots.path_and_query.as_str()),
            ("a", "/../b")
        );
        for refused in [
            "/t/a%2Fb/x",
            "/t/..",
            "/t/../v1/buckets",
            "/t/%61",
            "/t/",
            "/t//x",
            "/t/a.b/",
        ] {
            assert_eq!(by_path(&uri(refused)), None, "{refused}");
        }
        assert_eq!(by_path(&uri("/v1/buckets")), None);
    }

    #[test]
    fn host_routing_takes_the_first_label_under_the_domain() {
        let u = uri("/v1/buckets?x=1");
        let t = by_host("myapp.tunnels.example", "tunnels.example", &u)
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.name.as_str(), t.path_and_query.as_str()),
            ("myapp", "/v1/buckets?x=1")
        );
        assert_eq!(by_host("tunnels.example", "tunnels.example", &u), None);
        assert_eq!(by_host("evil-tunnels.example", "tunnels.example", &u), None);
        assert_eq!(
            by_host("a.b.tunnels.example", "tunnels.example", &u),
            Some(None)
        );
        assert_eq!(by_host("relay.example", "tunnels.example", &u), None);
    }

    #[test]
    fn an_absolute_target_wins_over_the_host_header() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, "a.t.example:8080".parse().unwrap());
        assert_eq!(
            request_host(&uri("/x"), &headers).as_deref(),
            Some("a.t.example")
        );
        let absolute = uri("http://B.t.example./x");
        assert_eq!(
            request_host(&absolute, &headers).as_deref(),
            Some("b.t.example")
        );
        headers.insert(http::header::HOST, "bad host".parse().unwrap());
        assert_eq!(request_host(&uri("/x"), &headers), None);
    }

    #[test]
    fn userinfo_in_the_host_names_no_tunnel() {
        // Found by the `tunnel_route` fuzz target: `@@e.t.example` parsed
        // as userinfo `@` and host `e.t.example`.
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, "@@e.t.example".parse().unwrap());
        assert_eq!(request_host(&uri("/x"), &headers), None);
        let absolute = uri("http://user@b.t.example/x");
        assert_eq!(request_host(&absolute, &http::HeaderMap::new()), None);
    }
}
