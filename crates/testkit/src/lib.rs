//! Test fixtures for hookrelay (dev-only): [`Relay`] runs the real server on
//! `127.0.0.1:0` over a real SQLite file, or a real Redis (`stores`), and
//! talks to it over real HTTP;
//! [`store_suites!`] compiles a suite's test modules once per store;
//! [`wait_until`] replaces sleeps with a condition and a deadline;
//! [`Destination`] is a recording HTTP server standing in for an internal
//! service.
//!
//! Depends on `server` and `store`; nothing depends on it but tests and
//! benchmarks.

mod destination;
mod stores;

pub use destination::{Answer, Destination, Received};
pub use stores::{delete_redis_namespace, namespace_for, redis_url, suite_store, StoreKind};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The admin secret every test relay is configured with.
pub const ADMIN_SECRET: &str = "test-admin-secret";

/// Polls `condition` until it holds or `deadline` passes; panics with
/// `what` on timeout, so a test fails with a reason instead of hanging.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Moves tokio's clock, and with it `store::clock`, forward by `by` at
/// once, then lets it run on at real speed: a time rule (catch-up window,
/// retention, retry backoff) is tested by skipping the wait, never by
/// sleeping through it. Needs a current-thread runtime (`#[tokio::test]`)
/// whose relay runs in-process on SQLite (Redis keeps its own clock);
/// every timer due within `by` fires.
pub async fn advance_clock(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// Compiles a suite's test modules once per store: `sqlite::x` and
/// `redis::x` for each `mod x;` listed, and every relay a test starts
/// (without naming a store) runs on its module's store (see
/// [`suite_store`]). Use it in `tests/it/main.rs` in place of the `mod`
/// lines; helpers in `main.rs` stay where they are, since each store
/// module sees them (`use super::*`, `super::helper`, `crate::helper`).
/// Each store module also gets a test that checks its relays really run
/// on its store, so the choice cannot silently fall back to SQLite.
///
/// A test that cannot run on Redis says so in its first line, with
/// [`not_on_redis!`]; one that needs a given store whatever its module
/// names it (`Relay::builder().store(..)`).
///
/// ```ignore
/// testkit::store_suites! {
///     mod admin;
///     mod agents;
/// }
/// ```
#[macro_export]
macro_rules! store_suites {
    ($($(#[$attr:meta])* $vis:vis mod $module:ident;)*) => {
        /// The suite with every relay on SQLite.
        // `path = "."`: the listed files sit beside `main.rs`, not in a
        // `sqlite/` directory.
        #[path = "."]
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $($(#[$attr])* $vis mod $module;)*

            #[test]
            fn the_relays_of_this_module_run_on_sqlite() {
                $crate::assert_suite_store($crate::StoreKind::Sqlite);
            }
        }
        /// The same suite with every relay on Redis (issue 6), which must
        /// be answering.
        #[path = "."]
        mod redis {
            #[allow(unused_imports)]
            use super::*;
            $($(#[$attr])* $vis mod $module;)*

            #[test]
            fn the_relays_of_this_module_run_on_redis() {
                $crate::assert_suite_store($crate::StoreKind::Redis);
            }
        }
    };
}

/// Ends the calling test at once, passing, when it runs in the Redis half
/// of a [`store_suites!`] suite, and says why: `not_on_redis!("measures the
/// SQLite file's size")`. The test keeps running on SQLite.
#[macro_export]
macro_rules! not_on_redis {
    ($why:expr) => {
        if $crate::suite_store() == $crate::StoreKind::Redis {
            println!("not on Redis: {} ({})", module_path!(), $why);
            return;
        }
    };
}

/// The check [`store_suites!`] adds to each store module: a relay started
/// from a test of the module runs on `expected`.
pub fn assert_suite_store(expected: StoreKind) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime");
    runtime.block_on(async {
        let relay = Relay::spawn().await;
        assert_eq!(
            relay.store_kind, expected,
            "a relay started in this suite's {expected:?} module runs on {:?}",
            relay.store_kind
        );
        let (status, _) = relay.call(Method::GET, "/readyz", "", None).await;
        assert_eq!(status, StatusCode::OK, "the relay on {expected:?} is ready");
    });
}

/// A change to the server configuration, applied before start.
type Configure = Box<dyn FnOnce(&mut server::Config) + Send>;

/// Builds a [`Relay`].
pub struct RelayBuilder {
    data_dir: Option<PathBuf>,
    configure: Vec<Configure>,
    /// Serve TLS with this configuration; clients trust `ca_pem`.
    tls: Option<(Arc<rustls::ServerConfig>, String)>,
    /// On Redis, the data dir of the relay whose cluster this one joins:
    /// its namespace and master key are shared.
    node_of: Option<PathBuf>,
    /// The store, when the test needs one in particular.
    store: Option<StoreKind>,
}

impl RelayBuilder {
    /// Uses (and keeps) this data directory instead of a fresh temporary one,
    /// e.g. to restart on the same store.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Serves HTTPS with `server` (see `server::config::tls_from_pem`); the
    /// relay's own client trusts the CA in `ca_pem`.
    pub fn tls(mut self, server: rustls::ServerConfig, ca_pem: &str) -> Self {
        self.tls = Some((Arc::new(server), ca_pem.to_owned()));
        self
    }

    /// Runs on Redis as another node of `relay`'s cluster (same keys, same
    /// master key): what one node accepts, the other delivers.
    pub fn node_of(mut self, relay: &Relay) -> Self {
        self.node_of = Some(relay.data_dir.clone());
        self.store(StoreKind::Redis)
    }

    /// Runs on this store whatever the test's module or
    /// `HOOKRELAY_TEST_STORE` says.
    pub fn store(mut self, kind: StoreKind) -> Self {
        self.store = Some(kind);
        self
    }

    /// Adjusts the server configuration.
    pub fn config(mut self, f: impl FnOnce(&mut server::Config) + Send + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// Binds `127.0.0.1:0`, opens the store and starts serving.
    pub async fn spawn(self) -> Relay {
        let (data_dir, temp) = match self.data_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir().expect("a temporary directory");
                (temp.path().to_owned(), Some(temp))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let mut config = server::Config::new(url.clone());
        // Idle connections are dropped before the server's 10 s keep-alive
        // timeout closes them, so a request never lands on a closed one,
        // even after `advance_clock` jumped past both.
        let mut http = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(5));
        if let Some((tls, ca_pem)) = self.tls {
            config.tls = Some(tls);
            let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("a PEM CA");
            http = http.add_root_certificate(ca);
        }
        config.admin_secret = Some(model::Secret::new(ADMIN_SECRET));
        // Cost 4 keeps tests fast; production uses 12.
        config.bcrypt_cost = 4;
        for f in self.configure {
            f(&mut config);
        }
        let kind = self.store.unwrap_or_else(suite_store);
        let redis_namespace =
            (kind == StoreKind::Redis && self.node_of.is_none()).then(|| namespace_for(&data_dir));
        let store = stores::open(kind, self.node_of.as_deref().unwrap_or(&data_dir)).await;
        let bootstrapped = server::bootstrap(&store, &config).await.expect("bootstrap");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server::run(
            listener,
            config,
            store.clone(),
            shutdown.clone(),
        ));
        Relay {
            store,
            store_kind: kind,
            url,
            admin: ADMIN_SECRET.to_owned(),
            first_start_token: bootstrapped.admin_token,
            data_dir,
            redis_namespace,
            _temp: temp,
            shutdown,
            task: Some(task),
            http: http.build().expect("an HTTP client"),
        }
    }
}

/// A running relay. Dropping it cancels the server; [`Relay::stop`] also
/// waits for the drain and the store's final flush.
pub struct Relay {
    /// The relay's store, for tests that break it on purpose.
    pub store: Arc<dyn store::Store>,
    /// Which store that is.
    pub store_kind: StoreKind,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The admin bearer credential.
    pub admin: String,
    /// The token printed at first start, when no admin secret was set.
    pub first_start_token: Option<String>,
    /// Where the store lives.
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// On Redis: the key namespace, deleted on drop by the relay that made
    /// its data directory.
    redis_namespace: Option<String>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), server::Error>>>,
    /// A plain HTTP client for raw requests.
    pub http: reqwest::Client,
}

impl Relay {
    /// A builder with test defaults.
    pub fn builder() -> RelayBuilder {
        RelayBuilder {
            data_dir: None,
            configure: Vec::new(),
            tls: None,
            node_of: None,
            store: None,
        }
    }

    /// A relay with test defaults.
    pub async fn spawn() -> Relay {
        Self::builder().spawn().await
    }

    /// Graceful shutdown: waits until in-flight requests finished and the
    /// store was closed. Returns the temporary directory, if the relay made
    /// one, so a test can restart on it.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran cleanly");
        }
        self._temp.take()
    }

    /// Sends an API request with `credential` as bearer and returns the
    /// status and the JSON body (`Value::Null` when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        credential: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(credential);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the relay");
        let status = response.status();
        let bytes = response.bytes().await.expect("response body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// An admin API call that must answer `expect`.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: StatusCode,
    ) -> Value {
        let (status, value) = self.call(method.clone(), path, &self.admin, body).await;
        assert_eq!(status, expect, "{method} {path} answered {value}");
        value
    }

    /// Creates a bucket and returns its JSON.
    pub async fn create_bucket(&self, body: Value) -> Value {
        self.admin(Method::POST, "/v1/buckets", Some(body), StatusCode::CREATED)
            .await
    }

    /// Creates an input in `bucket` and returns its JSON.
    pub async fn create_input(&self, bucket: &str, body: Value) -> Value {
        let path = format!("/v1/buckets/{bucket}/inputs");
        self.admin(Method::POST, &path, Some(body), StatusCode::CREATED)
            .await
    }

    /// The events of the default tenant, oldest first, via `/v1/events`.
    pub async fn events(&self) -> Vec<Value> {
        let v = self
            .admin(Method::GET, "/v1/events?limit=500", None, StatusCode::OK)
            .await;
        v["events"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let (Some(namespace), Some(_)) = (&self.redis_namespace, &self._temp) {
            delete_redis_namespace(namespace);
        }
    }
}

/// Headers that make `body` verify as a GitHub webhook signed with `secret`,
/// plus its event type (`verify::sign` adds a fresh delivery id).
pub fn github_headers(secret: &str, body: &[u8], event: &str) -> Vec<(String, String)> {
    let integration = verify::Integration::new(model::IntegrationKind::Github, None)
        .expect("github needs no config");
    sign(&integration, secret, "", "application/json", body, event).headers
}

/// Signs `body` for `integration` as of now, for a request to `url` (Twilio
/// and Square sign it); see `verify::sign`.
pub fn sign(
    integration: &verify::Integration,
    secret: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
    event: &str,
) -> verify::Signed {
    let out = verify::Outgoing {
        url,
        content_type,
        body,
        event,
        now_secs: store::clock::now_ms() / 1000,
    };
    verify::sign(integration, secret, &out).expect("a valid test key")
}

/// Sends a POST with these headers and body; returns status and body text.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (StatusCode, String) {
    let mut request = http.post(url).body(body.to_vec());
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let response = request.send().await.expect("request reaches the relay");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}
