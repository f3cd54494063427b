//! Security tests of issue 7, against the real server on `127.0.0.1:0`:
//! - `probing`: one tenant's credentials name another tenant's real ids on
//!   every route the routers declare, and get the answer a random id gets
//!   (status and body), in about the same time;
//! - `ssrf`: public outputs never reach loopback, link-local or private
//!   addresses, by literal, by name or by redirect;
//! - `poll_oracle`: a wrong poll secret costs the same for a known and an
//!   unknown tenant (a regression test);
//! - `caps` (issue 19): secrets per input and per integration, output
//!   headers, each refused 400 naming the field;
//! - `token_oracle` (issue 19): a wrong secret costs the same for a known
//!   and an unknown token key (a decoy bcrypt check);
//! - `tunnel_hello`: a tunnel agent's `Hello` on both transports, for
//!   `probing`;
//! - `body_budget` (issue 19): webhook bodies being read share one
//!   server-wide budget; over it, 503 with `Retry-After`;
//! - `smuggling`: ambiguous request framing on the ingest route is refused
//!   or read one safe way, and never yields a second, hidden request.

mod body_budget;
mod caps;
mod poll_oracle;
mod probing;
pub(super) mod routes;
mod smuggling;
mod ssrf;
mod token_oracle;
mod tunnel_hello;
