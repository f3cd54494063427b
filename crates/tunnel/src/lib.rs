//! HTTP tunnels (DESIGN §10): what the relay and the tunnel agent share,
//! and the tunnel agent itself.
//!
//! A tunnel connection is one byte stream from the agent to the relay —
//! `TunnelChunk`s of the gRPC `Tunnel/Open` stream or the binary frames of
//! `GET /v1/tunnel/ws` — on which the agent sends a length-prefixed `Hello`
//! and the relay answers `Welcome` or `Error` ([`wire`]). Then the roles
//! swap: the relay is the HTTP/2 client ([`relay`]) and the agent the HTTP/2
//! server ([`agent`]). Every public request is one HTTP/2 stream, so many
//! share the connection without head-of-line blocking, HTTP/2 flow control
//! carries backpressure end to end (a visitor that stops reading stops the
//! destination's writes, through at most one window per hop), and upgrades
//! (WebSocket) travel as extended CONNECT streams (RFC 8441).
//!
//! Depends on `proto` only; the server (relay side) and the binary's
//! `hookrelay tunnel` depend on it. Start with [`agent::run`].
//!
//! # Layout
//! - [`wire`]: the length-prefixed handshake messages.
//! - [`stream`]: a chunk stream and sink as one `AsyncRead + AsyncWrite`.
//! - [`headers`]: hop-by-hop headers and the upgrade token.
//! - [`relay`]: the relay's HTTP/2 client on an accepted tunnel connection.
//! - [`agent`]: `hookrelay tunnel`: connect, hand-shake, serve, reconnect.

pub mod agent;
pub mod headers;
pub mod relay;
pub mod stream;
pub mod wire;

use std::time::Duration;

/// How long a public request waits for the destination's response head
/// (DESIGN §10: 60 s to the first response byte).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);

/// HTTP/2 pings on the tunnel connection, both ways: a silent peer is
/// closed after [`proto::SILENCE_LIMIT`], as the forward agents are.
pub const KEEP_ALIVE: Duration = proto::HEARTBEAT;

/// The HTTP/2 stream window: 1 MiB. With the 64 KiB default a single
/// stream moved ~60 MB/s at a 1 ms round trip; the window is also the most
/// a visitor that stops reading can make each hop hold for its stream.
pub const STREAM_WINDOW: u32 = 1024 * 1024;

/// The connection window: 16 streams' worth, so a handful of bulk streams
/// do not starve the rest while each stays bounded by [`STREAM_WINDOW`].
pub const CONNECTION_WINDOW: u32 = 16 * STREAM_WINDOW;

/// Concurrent public requests per agent connection. Beyond it the relay's
/// HTTP/2 client queues requests (hyper waits for a free stream).
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// The tunnel WebSocket's frame and message bound. Chunks are whatever
/// HTTP/2 writes at once: frames of at most 16 KiB plus headers, coalesced
/// up to hyper's write buffer (~400 KiB).
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// The WebSocket route agents open tunnels on.
pub const WS_PATH: &str = "/v1/tunnel/ws";
