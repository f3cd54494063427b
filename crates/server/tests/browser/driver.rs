//! A headless Chromium driven over WebDriver (chromedriver), one per test:
//! a fresh profile, console messages collected, screenshots saved under
//! `<target>/tmp/ui-screenshots/`. Missing Chromium or chromedriver is a
//! failure that says what to install, never a skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a page or an element may take to appear.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

const INSTALL: &str =
    "install them: apt-get update && apt-get install -y chromium chromium-driver fonts-liberation";

pub(crate) struct Browser {
    pub(crate) client: Client,
    /// The newest console entry already returned by [`Browser::console`]
    /// (chromedriver may return an entry again on a later call).
    seen_until: std::sync::Mutex<i64>,
    _driver: Child,
    _profile: tempfile::TempDir,
}

/// Where screenshots go: `<target>/tmp/ui-screenshots`.
pub(crate) fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots")
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        let mut driver = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver could not start ({e}): {INSTALL}"));
        let port = driver_port(&mut driver).await;
        let profile = tempfile::tempdir().expect("a profile directory");
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": args, "binary": chromium()}),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no Chromium session ({e}): {INSTALL}"));
        Browser {
            client,
            seen_until: std::sync::Mutex::new(0),
            _driver: driver,
            _profile: profile,
        }
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// Waits for `css` to be on the page.
    pub(crate) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    /// The text content of `css` (hidden text included). An element the
    /// page replaced between finding and reading it (a navigation under
    /// way, seen once in the full suite) is found again.
    pub(crate) async fn text_of(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let element = self.wait_for(css).await;
            match element.prop("textContent").await {
                Ok(text) => return text.unwrap_or_default(),
                Err(e)
                    if e.is_stale_element_reference() && std::time::Instant::now() < deadline => {}
                Err(e) => panic!("textContent of {css}: {e}"),
            }
        }
    }

    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let element = self.wait_for(css).await;
        element.clear().await.expect("clear");
        element.send_keys(text).await.expect("typing");
    }

    pub(crate) async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.expect("click");
    }

    pub(crate) async fn heading(&self) -> String {
        self.text_of("h1").await
    }

    /// Saves a screenshot as `<name>.png`.
    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("writing a screenshot");
    }

    /// Console messages since the last call (chromedriver's log), e.g. a
    /// CSP violation or a script error.
    pub(crate) async fn console(&self) -> Vec<Value> {
        let answer = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("the browser log");
        let mut seen = self.seen_until.lock().expect("not poisoned");
        let fresh: Vec<Value> = answer
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["timestamp"].as_i64().unwrap_or(0) > *seen)
            .cloned()
            .collect();
        for entry in &fresh {
            *seen = (*seen).max(entry["timestamp"].as_i64().unwrap_or(0));
        }
        fresh
    }

    /// Ignores console entries logged before now (chromedriver may hand
    /// them over only after the next navigation).
    pub(crate) async fn mark_console(&self) {
        let now = self
            .client
            .execute("return Date.now()", vec![])
            .await
            .expect("a script");
        let mut seen = self.seen_until.lock().expect("not poisoned");
        *seen = (*seen).max(now.as_i64().expect("a time in ms"));
    }

    /// Fails on any console error or warning (a CSP violation is one).
    pub(crate) async fn assert_clean_console(&self, page: &str) {
        let bad: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
            .collect();
        assert!(bad.is_empty(), "{page}: console errors: {bad:?}");
    }
}

/// The Chromium binary (Debian names it `chromium`).
fn chromium() -> String {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!("Chromium is not installed: {INSTALL}");
}

/// The port chromedriver chose, from its "started successfully" line; its
/// output is drained afterwards so it never writes into a closed pipe.
async fn driver_port(driver: &mut Child) -> u16 {
    let stdout = driver.stdout.take().expect("piped stdout");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut tx = Some(tx);
        while let Ok(Some(line)) = lines.next_line().await {
            let port = line
                .split("on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
                .filter(|port| *port != 0);
            if let Some(port) = port {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(port);
                }
            }
        }
    });
    tokio::time::timeout(WAIT, rx)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("chromedriver did not report its port: {INSTALL}"))
}

/// chromedriver's `POST /session/{id}/se/log {"type": "browser"}`.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}
