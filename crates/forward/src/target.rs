//! Where a delivery goes: the output's (or `--destination`'s) URL with the
//! event's path suffix and query appended (DESIGN §3.1, §8).

use reqwest::Url;

use crate::ForwardError;

/// The URL a delivery is sent to: `base` (an output URL or the agent's
/// `--destination`) with the event's `path_suffix` joined by exactly one `/`
/// and the event's `query` appended to any query `base` already has, with
/// `&`. A leading `?` on `query` is ignored, and `base`'s fragment dropped.
/// Empty, `.` and `..` segments of `path_suffix` are dropped, so the result
/// always lies under `base`'s path.
///
/// `path_suffix` and `query` are expected as they arrived (percent-encoded);
/// characters that may not appear in a URL path or query (space, `#`, `?` in
/// the path, …) are percent-encoded, `%` is left alone.
///
/// ```
/// let url = forward::target_url("http://localhost:3000/hook?a=1", "/gh/push", "b=2").unwrap();
/// assert_eq!(url, "http://localhost:3000/hook/gh/push?a=1&b=2");
/// ```
pub fn target_url(base: &str, path_suffix: &str, query: &str) -> Result<String, ForwardError> {
    let mut url = Url::parse(base).map_err(|source| ForwardError::InvalidUrl { source })?;
    check_scheme(&url)?;
    if !url.has_host() {
        return Err(ForwardError::MissingHost);
    }

    // Dot segments are dropped: URL parsing would resolve them against the
    // base path, letting a caller of a public input climb out of it.
    let keeps_trailing_slash = path_suffix.ends_with('/');
    let segments: Vec<&str> = path_suffix
        .split('/')
        .filter(|s| !s.is_empty() && !is_dot_segment(s))
        .collect();
    if !segments.is_empty() {
        let mut path = format!(
            "{}/{}",
            url.path().trim_end_matches('/'),
            segments.join("/")
        );
        if keeps_trailing_slash {
            path.push('/');
        }
        url.set_path(&path);
    }

    let extra = query.strip_prefix('?').unwrap_or(query);
    let merged = match (url.query(), extra) {
        (None | Some(""), "") => None,
        (None | Some(""), extra) => Some(extra.to_owned()),
        (Some(own), "") => Some(own.to_owned()),
        (Some(own), extra) => Some(format!("{own}&{extra}")),
    };
    url.set_query(merged.as_deref());
    url.set_fragment(None);
    Ok(url.into())
}

/// `.` or `..`, also percent-encoded, which URL parsing treats alike.
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    let unescaped = lower.replace("%2e", ".");
    unescaped == "." || unescaped == ".."
}

/// Only `http` and `https` are delivered to.
pub(crate) fn check_scheme(url: &Url) -> Result<(), ForwardError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(ForwardError::UnsupportedScheme {
            scheme: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn joins_paths_and_queries() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("http://h/", "", "", "http://h/"),
            ("http://h", "", "", "http://h/"),
            ("http://h", "/a", "", "http://h/a"),
            ("http://h/", "/a", "", "http://h/a"),
            ("http://h/hook", "/a/b", "", "http://h/hook/a/b"),
            ("http://h/hook/", "/a/b", "", "http://h/hook/a/b"),
            ("http://h/hook", "a/b/", "", "http://h/hook/a/b/"),
            ("http://h/hook//", "//a", "", "http://h/hook/a"),
            ("http://h/hook/", "", "", "http://h/hook/"),
            ("http://h/hook", "", "x=1", "http://h/hook?x=1"),
            ("http://h/hook", "", "?x=1", "http://h/hook?x=1"),
            (
                "http://h/hook?a=1",
                "/p",
                "b=2&b=3",
                "http://h/hook/p?a=1&b=2&b=3",
            ),
            ("http://h/hook?a=1", "", "", "http://h/hook?a=1"),
            ("http://h/hook?", "", "", "http://h/hook"),
            ("http://h/hook?", "", "b=2", "http://h/hook?b=2"),
            ("http://h/hook#frag", "/p", "q", "http://h/hook/p?q"),
            ("https://h:8443/x", "/y", "", "https://h:8443/x/y"),
            ("http://h/hook", "/a%2Fb", "", "http://h/hook/a%2Fb"),
            ("http://h/hook", "/a b", "", "http://h/hook/a%20b"),
            ("http://h/hook", "/a?b#c", "", "http://h/hook/a%3Fb%23c"),
            (
                "http://h/",
                "/x",
                "s=%F0%9F%A6%80",
                "http://h/x?s=%F0%9F%A6%80",
            ),
            ("http://[::1]:9/", "/x", "", "http://[::1]:9/x"),
            ("http://h/hook", "/../admin", "", "http://h/hook/admin"),
            ("http://h/hook", "/a/../../b/./c", "", "http://h/hook/a/b/c"),
            ("http://h/hook", "/%2e%2E/x/%2e", "", "http://h/hook/x"),
            ("http://h/hook", "/a//b", "", "http://h/hook/a/b"),
            ("http://h/hook", "/..", "", "http://h/hook"),
            ("http://h/hook", "/.../x", "", "http://h/hook/.../x"),
        ];
        for &(base, suffix, query, want) in cases {
            let got = target_url(base, suffix, query).expect("valid base");
            assert_eq!(got, want, "{base} + {suffix} + {query}");
        }
    }

    #[test]
    fn refuses_bad_bases() {
        assert!(matches!(
            target_url("ftp://h/x", "", ""),
            Err(ForwardError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            target_url("file:///etc/passwd", "", ""),
            Err(ForwardError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            target_url("not a url", "", ""),
            Err(ForwardError::InvalidUrl { .. })
        ));
        assert!(matches!(
            target_url("/relative", "", ""),
            Err(ForwardError::InvalidUrl { .. })
        ));
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._~-]{1,8}".prop_filter("dot segments are dropped", |s| s != "." && s != "..")
    }

    fn query() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-z]{1,4}=[a-zA-Z0-9%]{0,6}", 0..3).prop_map(|v| v.join("&"))
    }

    proptest! {
        #[test]
        fn join_keeps_both_parts_with_one_slash(
            base_segs in proptest::collection::vec(segment(), 0..3),
            base_slash in any::<bool>(),
            suffix_segs in proptest::collection::vec(segment(), 0..3),
            suffix_lead in 0usize..3,
            base_query in query(),
            event_query in query(),
        ) {
            let mut base = format!("http://example.com/{}", base_segs.join("/"));
            if base_slash && !base_segs.is_empty() {
                base.push('/');
            }
            if !base_query.is_empty() {
                base = format!("{base}?{base_query}");
            }
            let suffix = format!("{}{}", "/".repeat(suffix_lead), suffix_segs.join("/"));

            let got = target_url(&base, &suffix, &event_query).expect("valid base");
            let url = Url::parse(&got).expect("output parses");

            let path = url.path();
            prop_assert!(!path.contains("//"), "{}", got);
            let want_segs: Vec<&str> = base_segs.iter().chain(&suffix_segs).map(String::as_str).collect();
            let got_segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            prop_assert_eq!(got_segs, want_segs);

            let want_query: Vec<&str> = [base_query.as_str(), event_query.as_str()]
                .into_iter()
                .filter(|q| !q.is_empty())
                .collect();
            let want_query = want_query.join("&");
            prop_assert_eq!(url.query().unwrap_or(""), want_query.as_str());
        }
    }
}
