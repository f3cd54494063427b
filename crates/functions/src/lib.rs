//! Functions (DESIGN §9): small Luau scripts that a tenant attaches to
//! inputs and outputs to change a request, answer its sender, or stop it.
//! Scripts written for Webhook Relay's Lua functions run unchanged where
//! they use the API §9 lists (`r.RequestBody`, `r:SetResponseBody`,
//! `json`, `crypto`, `time`, `cfg.get`, ...).
//!
//! A dependency wall: this crate depends on `mlua` (Luau, built from source
//! by cargo) and small hashing crates, and on nothing of ours; `server`
//! depends on it. Nothing here does I/O, and nothing runs on the async
//! reactor: [`Pool`] owns a few threads, each with one warm VM.
//!
//! # Layout
//! - this file: the types that cross the wall: [`Script`] (compiled once),
//!   [`Call`] (one request and its context), [`Outcome`] (§9's `invoke`
//!   answer), [`Limits`]. Start reading at [`Pool::run`].
//! - `pool`: the dedicated threads and their bounded queue.
//! - `vm`: one sandboxed VM: what the sandbox removes, the time and memory
//!   caps, the per-VM cache of loaded scripts, one call start to end.
//! - `request`: the `r` object scripts see, and the checks on what they set.
//! - `modules`: `json`, `crypto`, `time` (with Go layouts, in `golayout`),
//!   `cfg`, `print`/`log`.
//!
//! # Guarantees
//! - A call never outlives its time limit by more than one interrupt
//!   check: Luau checks at every loop back-edge and call, and inside
//!   string pattern matching, so a catastrophic pattern stops too.
//! - A call allocates at most its memory limit above the VM's baseline.
//! - Nothing carries over between calls: each runs with a fresh global
//!   environment over read-only libraries.
//! - Whatever a script does, [`Pool::run`] answers an [`Outcome`]; a script
//!   that fails leaves the request as it was and says why in `error`.

mod golayout;
mod modules;
mod pool;
mod request;
mod vm;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use pool::Pool;

/// Longest source accepted (DESIGN §9: 64 KiB).
pub const MAX_SOURCE_LEN: usize = 64 * 1024;

/// The caps of one call. `Default` is §9's: 100 ms, 16 MiB.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall time of one call.
    pub time: Duration,
    /// Memory one call may allocate above the VM's baseline.
    pub memory: usize,
    /// Longest body a script may set (request or response).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_millis(100),
            memory: 16 << 20,
            // The input body ceiling (`Input::MAX_BODY_LIMIT`): a function
            // cannot make a request the relay would refuse to accept.
            max_body: 16 << 20,
        }
    }
}

/// A function's source, compiled to Luau bytecode once; VMs load the
/// bytecode and keep it by `(id, version)`.
#[derive(Debug, Clone)]
pub struct Script {
    id: String,
    version: u64,
    bytecode: Arc<[u8]>,
}

/// Why a source does not compile, with the line it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    /// The line the compiler blamed, when it named one.
    pub line: Option<u32>,
    /// The compiler's message, starting with `line N:` when it has a line.
    pub message: String,
}

impl Script {
    /// Compiles `source`. `id` and `version` name it in every VM's cache:
    /// a changed source must come with a new version.
    pub fn compile(id: &str, version: u64, source: &str) -> Result<Script, CompileError> {
        if source.len() > MAX_SOURCE_LEN {
            return Err(CompileError {
                line: None,
                message: format!("the source is over {MAX_SOURCE_LEN} bytes"),
            });
        }
        let bytecode = vm::compile(source)?;
        Ok(Script {
            id: id.to_owned(),
            version,
            bytecode: bytecode.into(),
        })
    }
}

/// Which kind of object the function is attached to: only an input's
/// function may answer the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// Runs at ingest; may set the response.
    Input,
    /// Runs per (event, output) when the delivery is built.
    Output,
}

/// A request as a function sees and changes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Request {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path suffix after the input's route (appended to the output's).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Names as received (lower-case from hyper), in order.
    #[serde(serialize_with = "header_map")]
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    #[serde(serialize_with = "lossy")]
    pub body: Vec<u8>,
}

/// The answer a function set for the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    /// 100..=599.
    pub status: u16,
    /// In the order set.
    #[serde(serialize_with = "header_map")]
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    #[serde(serialize_with = "lossy")]
    pub body: Vec<u8>,
}

/// One call: the request, what `r.Metadata` and `cfg.get` read, and where
/// the function is attached.
#[derive(Debug, Clone)]
pub struct Call {
    /// The request before the function.
    pub request: Request,
    /// `r.Metadata`: `tenant_id`, `bucket_id`, `input_id`, `event_id`, ...
    pub metadata: Vec<(&'static str, String)>,
    /// The function's config, opened (values are secrets at rest).
    pub config: Arc<Vec<(String, String)>>,
    /// Input or output function.
    pub attachment: Attachment,
}

/// What a call did: DESIGN §9's `invoke` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The request after the function; the original when it failed.
    pub request: Request,
    /// The request differs from the original (never when it failed).
    #[serde(skip)]
    pub changed: bool,
    /// The answer it set, if any (never when it failed).
    pub response: Option<Response>,
    /// It called `r:StopForwarding()` (never when it failed).
    pub stop_forwarding: bool,
    /// What it printed or logged, bounded.
    pub logs: Vec<String>,
    /// Why it failed: an error, the time or memory limit, or a value the
    /// relay refuses (a status outside 100..=599, a header with CR/LF, ...).
    pub error: Option<String>,
    /// Wall time of the call.
    pub duration_micros: u64,
}

impl Outcome {
    fn failed(request: Request, logs: Vec<String>, error: String, duration: Duration) -> Outcome {
        Outcome {
            request,
            changed: false,
            response: None,
            stop_forwarding: false,
            logs,
            error: Some(error),
            duration_micros: duration.as_micros() as u64,
        }
    }
}

/// Headers as one JSON object; a repeated name keeps its last value there.
fn header_map<S: serde::Serializer>(headers: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(headers.len()))?;
    for (k, v) in headers {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

fn lossy<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(body))
}
