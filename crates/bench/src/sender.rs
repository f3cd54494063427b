//! Signed webhooks over one keep-alive HTTP/1.1 connection, and latency
//! percentiles.

use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::relay::Signed;

/// One keep-alive connection to the relay.
pub(crate) struct Sender {
    addr: String,
    conn: hyper::client::conn::http1::SendRequest<Full<bytes::Bytes>>,
}

impl Sender {
    pub(crate) async fn connect(addr: &str) -> anyhow::Result<Sender> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(driver);
        Ok(Sender {
            addr: addr.to_owned(),
            conn,
        })
    }

    /// POSTs `signed` to `path` with a fresh delivery id; the status.
    pub(crate) async fn post(
        &mut self,
        path: &str,
        delivery: &str,
        signed: &Signed,
    ) -> anyhow::Result<u16> {
        let request = hyper::Request::post(path)
            .header("host", self.addr.as_str())
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", signed.signature.as_str())
            .body(Full::new(signed.body.clone()))?;
        self.conn.ready().await?;
        let response = self.conn.send_request(request).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok(status)
    }

    /// Signs in to the dashboard (`POST /ui/signin`) with `credential`:
    /// the session cookie (`name=value`).
    pub(crate) async fn sign_in(&mut self, credential: &str) -> anyhow::Result<String> {
        let origin = format!("http://{}", self.addr);
        let form = format!("credential={}", credential.replace('+', "%2B"));
        let request = hyper::Request::post("/ui/signin")
            .header("host", self.addr.as_str())
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(bytes::Bytes::from(form)))?;
        self.conn.ready().await?;
        let response = self.conn.send_request(request).await?;
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        cookie.with_context(|| format!("dashboard sign-in answered {status} without a cookie"))
    }

    /// A GET with extra headers; the status and the body's length.
    pub(crate) async fn get(
        &mut self,
        target: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, usize)> {
        let mut request = hyper::Request::get(target).header("host", self.addr.as_str());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Full::new(bytes::Bytes::new()))?;
        self.conn.ready().await?;
        let response = self.conn.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body.len()))
    }
}

/// Sorted latency samples.
#[derive(Default)]
pub(crate) struct Samples(Vec<Duration>);

impl Samples {
    pub(crate) fn new(mut v: Vec<Duration>) -> Samples {
        v.sort_unstable();
        Samples(v)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile in ms (0 when empty).
    pub(crate) fn ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let i = ((self.0.len() as f64 * q) as usize).min(self.0.len() - 1);
        self.0[i].as_secs_f64() * 1000.0
    }

    pub(crate) fn max_ms(&self) -> f64 {
        self.0.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Waits until `at` (a no-op once past).
pub(crate) async fn until(at: Instant) {
    tokio::time::sleep_until(at.into()).await;
}
