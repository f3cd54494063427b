//! The paths from a visitor to the service that the tunnel scenario
//! compares: direct, through a hookrelay tunnel (one `hookrelay tunnel`
//! process per transport, path routing `/t/{name}/`), through rathole and
//! through bore (each server and client a process of its own, both on
//! 127.0.0.1). Every process is killed when its path is dropped.

use std::path::{Path as FsPath, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::load::{wait_ready, Public};
use crate::relay::{rss_kib, Relay, RelaySpec};
use crate::scenarios::{Transport, PATIENCE};

/// A way from the visitor to the service.
pub(crate) struct Path {
    pub(crate) name: String,
    pub(crate) public: Public,
    /// The process on the service's side (the tunnel client), whose idle
    /// memory is compared.
    agent_pid: Option<u32>,
    /// The process on the visitor's side (relay or tunnel server).
    server_pid: Option<u32>,
    children: Vec<tokio::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Path {
    pub(crate) fn direct(service_port: u16) -> Path {
        Path {
            name: "direct".into(),
            public: Public {
                addr: format!("127.0.0.1:{service_port}"),
                prefix: String::new(),
            },
            agent_pid: None,
            server_pid: None,
            children: Vec::new(),
            _dir: None,
        }
    }

    /// A `hookrelay tunnel` process of `relay` on `transport`, for a new
    /// tunnel `bench-<transport>`.
    pub(crate) async fn hookrelay(
        spec: &RelaySpec,
        relay: &Relay,
        transport: Transport,
        service_port: u16,
    ) -> anyhow::Result<Path> {
        let name = format!("bench-{}", transport.name());
        relay
            .admin(
                reqwest::Method::POST,
                "/v1/tunnels",
                Some(json!({ "name": name })),
                201,
            )
            .await?;
        let token = relay
            .admin(
                reqwest::Method::POST,
                "/v1/tokens",
                Some(json!({"scope": "agent", "mode": "tunnel"})),
                201,
            )
            .await?["token"]
            .as_str()
            .context("a token")?
            .to_owned();
        let child = tokio::process::Command::new(&spec.agent_bin)
            .arg("tunnel")
            .args(["--server", &relay.url, "--name", &name])
            .args(["--destination", &format!("http://127.0.0.1:{service_port}")])
            .args(["--transport", transport.name()])
            .env("HOOKRELAY_TOKEN", token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} tunnel", spec.agent_bin.display()))?;
        let path = Path {
            name: format!("hookrelay {}", transport.name()),
            public: Public {
                addr: relay.addr().to_owned(),
                prefix: format!("/t/{name}"),
            },
            agent_pid: child.id(),
            server_pid: Some(relay.pid()),
            children: vec![child],
            _dir: None,
        };
        wait_ready(&path.public, PATIENCE).await?;
        Ok(path)
    }

    /// rathole's server and client, plain TCP with `nodelay`.
    pub(crate) async fn rathole(bin: &FsPath, service_port: u16) -> anyhow::Result<Path> {
        let dir = tempfile::tempdir()?;
        let (control, public) = (free_port()?, free_port()?);
        let server = dir.path().join("server.toml");
        let client = dir.path().join("client.toml");
        // The token is a loopback-only benchmark constant.
        std::fs::write(
            &server,
            format!(
                "[server]\nbind_addr = \"127.0.0.1:{control}\"\n\
                 [server.transport]\ntype = \"tcp\"\n[server.transport.tcp]\nnodelay = true\n\
                 [server.services.bench]\ntoken = \"bench\"\nbind_addr = \"127.0.0.1:{public}\"\n"
            ),
        )?;
        std::fs::write(
            &client,
            format!(
                "[client]\nremote_addr = \"127.0.0.1:{control}\"\n\
                 [client.transport]\ntype = \"tcp\"\n[client.transport.tcp]\nnodelay = true\n\
                 [client.services.bench]\ntoken = \"bench\"\nlocal_addr = \"127.0.0.1:{service_port}\"\n"
            ),
        )?;
        let server = spawn(bin, &[OsArg::from("--server"), server.into()])?;
        let client = spawn(bin, &[OsArg::from("--client"), client.into()])?;
        ready(
            "rathole",
            server,
            client,
            Public {
                addr: format!("127.0.0.1:{public}"),
                prefix: String::new(),
            },
            dir,
        )
        .await
    }

    /// bore's server (its control port is bore's fixed 7835) and client.
    pub(crate) async fn bore(bin: &FsPath, service_port: u16) -> anyhow::Result<Path> {
        let dir = tempfile::tempdir()?;
        let public = free_port()?;
        let mut server_args = vec![OsArg::from("server")];
        if help_mentions(bin, "server", "--bind-addr").await {
            server_args.extend(["--bind-addr".into(), "127.0.0.1".into()]);
        }
        let server = spawn(bin, &server_args)?;
        // bore's client gives up at once if the server is not listening
        // yet (it does not retry), so wait for the control port.
        wait_listening("127.0.0.1:7835", PATIENCE)
            .await
            .context("bore's server did not listen on 7835")?;
        let client = spawn(
            bin,
            &[
                "local".into(),
                service_port.to_string().into(),
                "--local-host".into(),
                "127.0.0.1".into(),
                "--to".into(),
                "127.0.0.1".into(),
                "--port".into(),
                public.to_string().into(),
            ],
        )?;
        ready(
            "bore",
            server,
            client,
            Public {
                addr: format!("127.0.0.1:{public}"),
                prefix: String::new(),
            },
            dir,
        )
        .await
    }

    /// Resident memory of the service-side process, in KiB.
    pub(crate) fn agent_rss_kib(&self) -> Option<u64> {
        self.agent_pid
            .and_then(|pid| rss_kib(pid).ok())
            .map(|r| r.0)
    }

    /// Resident memory of the visitor-side process, in KiB.
    pub(crate) fn server_rss_kib(&self) -> Option<u64> {
        self.server_pid
            .and_then(|pid| rss_kib(pid).ok())
            .map(|r| r.0)
    }

    pub(crate) async fn stop(mut self) {
        for child in &mut self.children {
            crate::relay::terminate(child).await;
        }
    }
}

type OsArg = std::ffi::OsString;

fn spawn(bin: &FsPath, args: &[OsArg]) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (crates/bench/tunnel-bench.sh installs it)",
                bin.display()
            )
        })
}

async fn ready(
    name: &str,
    server: tokio::process::Child,
    client: tokio::process::Child,
    public: Public,
    dir: tempfile::TempDir,
) -> anyhow::Result<Path> {
    let path = Path {
        name: name.into(),
        public,
        agent_pid: client.id(),
        server_pid: server.id(),
        children: vec![client, server],
        _dir: Some(dir),
    };
    wait_ready(&path.public, PATIENCE)
        .await
        .with_context(|| format!("{name} did not come up"))?;
    Ok(path)
}

/// Waits until `addr` accepts a TCP connection.
async fn wait_listening(addr: &str, patience: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => return Ok(()),
            Err(err) if tokio::time::Instant::now() >= deadline => return Err(err.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A port free a moment ago (the peers take their ports from flags).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether `bin sub --help` mentions `flag` (bore's flags differ by version).
async fn help_mentions(bin: &FsPath, sub: &str, flag: &str) -> bool {
    let help = tokio::process::Command::new(bin)
        .args([sub, "--help"])
        .output();
    match tokio::time::timeout(Duration::from_secs(10), help).await {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).contains(flag),
        _ => false,
    }
}

/// `dir/name` if it exists.
pub(crate) fn tool(dir: &FsPath, name: &str) -> Option<PathBuf> {
    let path = dir.join(name);
    path.is_file().then_some(path)
}
