//! Integration tests of `forward` over real sockets: a recording destination
//! on `127.0.0.1:0` and a `Forwarder` sending to it.
//!
//! - `recorder`: the destination server, which reports each request it gets.
//! - `delivery`: what arrives is what was sent (method, URL, headers, body).
//! - `answers`: statuses, timeouts, bodies and redirects, and their verdicts.
//! - `egress`: the `PublicOnly` guard refuses non-public destinations.

mod answers;
mod delivery;
mod egress;
mod recorder;
