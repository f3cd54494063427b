//! One sandboxed Luau VM, kept warm on a pool thread: what the sandbox
//! removes, the time and memory caps, the cache of loaded scripts, and one
//! call from start to end.
//!
//! The sandbox (DESIGN §14): no `io` (Luau has none), no `load`,
//! `loadstring`, `dofile`, `loadfile`, `getfenv`, `setfenv`,
//! `collectgarbage`, `string.dump`; `os` is only `time`, `clock`, `date`;
//! `debug` only `traceback`; `require` knows json, crypto and time. Then
//! Luau's own sandbox makes every library and the global table read-only,
//! and each call runs with a fresh environment table over them, so a global
//! a script sets is gone when the call ends.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{ChunkMode, Function, Lua, LuaOptions, StdLib, Table, Value, VmState};

use crate::modules::{self, CallCx};
use crate::request::{Req, CASELESS};
use crate::{Attachment, CompileError, Limits, Outcome, Request, Script};

/// Loaded scripts one VM keeps. Past it the cache is emptied and refilled:
/// loading is a bytecode copy (tens of µs), so a miss is cheap, and 256
/// covers the functions of any one node's busy inputs.
const CACHE_ENTRIES: usize = 256;

/// After a call, a full collection runs when the heap has grown this much
/// over its baseline (most calls allocate a few KiB and skip it).
const COLLECT_ABOVE: usize = 4 << 20;

/// Compiles a source to bytecode, or names the line that does not compile.
pub(crate) fn compile(source: &str) -> Result<Vec<u8>, CompileError> {
    mlua::Compiler::new()
        .set_optimization_level(1)
        .compile(source)
        .map_err(|e| compile_error(&e))
}

/// Luau reports `[string "..."]:LINE: message`; the line is kept apart.
fn compile_error(e: &mlua::Error) -> CompileError {
    let text = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let after_name = text
        .rsplit_once("]:")
        .map_or(text.as_str(), |(_, rest)| rest);
    let line = after_name
        .split_once(':')
        .and_then(|(n, _)| n.trim().parse::<u32>().ok());
    let message = match (line, after_name.split_once(':')) {
        (Some(n), Some((_, rest))) => format!("line {n}: {}", rest.trim()),
        _ => text.trim().to_owned(),
    };
    CompileError { line, message }
}

/// One VM and what it keeps between calls: only loaded scripts.
pub(crate) struct Vm {
    lua: Lua,
    limits: Limits,
    /// When the running call must stop; read by the interrupt.
    deadline: Rc<Cell<Instant>>,
    /// Set by the interrupt when it stopped a call.
    timed_out: Rc<Cell<bool>>,
    /// Heap size after setup: what `settle` collects back down to.
    baseline: usize,
    /// `{__index = globals}`, read-only: the metatable of every call's
    /// environment.
    env_meta: Table,
    cache: HashMap<(String, u64), Function>,
}

impl Vm {
    pub(crate) fn new(limits: Limits) -> mlua::Result<Vm> {
        let libs = StdLib::STRING
            | StdLib::TABLE
            | StdLib::MATH
            | StdLib::OS
            | StdLib::UTF8
            | StdLib::BIT
            | StdLib::BUFFER;
        let lua = Lua::new_with(libs, LuaOptions::new())?;
        strip(&lua)?;
        modules::install(&lua)?;
        let caseless = lua.create_table()?;
        caseless.raw_set(
            "__index",
            lua.create_function(|_, (t, k): (Table, Value)| match k {
                Value::String(s) => t.raw_get::<Value>(s.to_string_lossy().to_ascii_lowercase()),
                _ => Ok(Value::Nil),
            })?,
        )?;
        lua.set_named_registry_value(CASELESS, caseless)?;
        lua.sandbox(true)?;
        let deadline = Rc::new(Cell::new(idle()));
        let timed_out = Rc::new(Cell::new(false));
        let (d, t) = (deadline.clone(), timed_out.clone());
        lua.set_interrupt(move |_| {
            if Instant::now() >= d.get() {
                t.set(true);
                return Err(mlua::Error::runtime("time limit exceeded"));
            }
            Ok(VmState::Continue)
        });
        let env_meta = lua.create_table()?;
        env_meta.raw_set("__index", lua.globals())?;
        env_meta.set_readonly(true);
        lua.gc_collect()?;
        let baseline = lua.used_memory();
        Ok(Vm {
            lua,
            limits,
            deadline,
            timed_out,
            baseline,
            env_meta,
            cache: HashMap::new(),
        })
    }

    fn function(&mut self, script: &Script) -> mlua::Result<Function> {
        let key = (script.id.clone(), script.version);
        if let Some(f) = self.cache.get(&key) {
            return Ok(f.clone());
        }
        if self.cache.len() >= CACHE_ENTRIES {
            self.cache.clear();
        }
        let f = self
            .lua
            .load(&script.bytecode[..])
            .set_name("=function")
            .set_mode(ChunkMode::Binary)
            .into_function()?;
        self.cache.insert(key, f.clone());
        Ok(f)
    }

    /// Runs one call within the limits; always answers an outcome. The
    /// request comes shared: the caller keeps its own handle to give the
    /// original back should this panic.
    pub(crate) fn run(
        &mut self,
        script: &Script,
        original: Rc<Request>,
        metadata: Vec<(&'static str, String)>,
        config: Arc<Vec<(String, String)>>,
        attachment: Attachment,
    ) -> Outcome {
        let started = Instant::now();
        let req = Req::new(original.clone(), metadata, attachment, self.limits.max_body);
        self.lua.set_app_data(CallCx {
            config,
            ..CallCx::default()
        });
        let result = self.execute(script, req, started);
        let logs = self
            .lua
            .remove_app_data::<CallCx>()
            .map(|mut cx| cx.take_logs())
            .unwrap_or_default();
        self.settle();
        let elapsed = started.elapsed();
        match result {
            Ok(mut req) => {
                let response = req.response();
                let stop_forwarding = req.stop;
                let (changed, request) = match req.edited.take() {
                    Some(edited) if edited != *original => (true, edited),
                    _ => {
                        drop(req);
                        (false, unshare(original))
                    }
                };
                Outcome {
                    request,
                    changed,
                    response,
                    stop_forwarding,
                    logs,
                    error: None,
                    duration_micros: elapsed.as_micros() as u64,
                }
            }
            Err(error) => Outcome::failed(unshare(original), logs, error, elapsed),
        }
    }

    fn execute(&mut self, script: &Script, req: Req, started: Instant) -> Result<Req, String> {
        self.timed_out.set(false);
        self.deadline.set(started + self.limits.time);
        let result = self.call(script, req);
        // Outside a call the interrupt never stops anything (loading,
        // collecting).
        self.deadline.set(idle());
        let _ = self.lua.set_memory_limit(0);
        // Checked even on success: a script that caught the interrupt's
        // error with `pcall` still ran out of time.
        if self.timed_out.get() {
            return Err(format!(
                "time limit of {} ms exceeded",
                ms(self.limits.time)
            ));
        }
        result
    }

    fn call(&mut self, script: &Script, req: Req) -> Result<Req, String> {
        let function = self.function(script).map_err(|e| short(&e))?;
        let env = self.environment().map_err(|e| short(&e))?;
        let r = self.lua.create_userdata(req).map_err(|e| short(&e))?;
        env.raw_set("r", &r).map_err(|e| short(&e))?;
        function.set_environment(env).map_err(|e| short(&e))?;
        // The call's allowance counts from what the heap holds now, so
        // garbage earlier calls left (up to `COLLECT_ABOVE`) is not taken
        // from it.
        let limit = self.lua.used_memory() + self.limits.memory;
        self.lua.set_memory_limit(limit).map_err(|e| short(&e))?;
        let ran = function.call::<()>(());
        let _ = self.lua.set_memory_limit(0);
        let req = r.take::<Req>();
        match ran {
            Ok(()) => req.map_err(|e| short(&e)),
            Err(e) if is_memory(&e) => Err(format!(
                "memory limit of {} MiB exceeded",
                self.limits.memory >> 20
            )),
            Err(e) => Err(short(&e)),
        }
    }

    /// A fresh global table for one call: reads fall through to the
    /// read-only globals (through the one read-only metatable all calls
    /// share), writes stay in it and die with it.
    fn environment(&self) -> mlua::Result<Table> {
        let env = self.lua.create_table()?;
        env.set_metatable(Some(self.env_meta.clone()))?;
        Ok(env)
    }

    /// Gives back what the call allocated once it is more than a little.
    fn settle(&self) {
        let above = COLLECT_ABOVE.min(self.limits.memory);
        if self.lua.used_memory() > self.baseline + above {
            let _ = self.lua.gc_collect();
        }
    }
}

/// Removes what a script must not reach (DESIGN §14); runs before Luau's
/// sandbox freezes the globals.
fn strip(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    for name in [
        "load",
        "loadstring",
        "dofile",
        "loadfile",
        "getfenv",
        "setfenv",
        "collectgarbage",
        "gcinfo",
        "io",
        "package",
        "module",
        "newproxy",
    ] {
        g.raw_set(name, Value::Nil)?;
    }
    if let Some(string) = g.raw_get::<Option<Table>>("string")? {
        string.raw_set("dump", Value::Nil)?;
    }
    let os: Table = g.raw_get("os")?;
    let safe_os = lua.create_table()?;
    for name in ["time", "clock", "date"] {
        safe_os.raw_set(name, os.raw_get::<Value>(name)?)?;
    }
    g.raw_set("os", safe_os)?;
    let debug = lua.create_table()?;
    let traceback = lua.create_function(|_, msg: Option<String>| Ok(msg.unwrap_or_default()))?;
    debug.raw_set("traceback", traceback)?;
    g.raw_set("debug", debug)?;
    Ok(())
}

/// The request out of its `Rc`: moved when no one else holds it (the
/// usual case), copied otherwise.
fn unshare(request: Rc<Request>) -> Request {
    Rc::try_unwrap(request).unwrap_or_else(|shared| (*shared).clone())
}

/// The deadline between calls: far enough never to come.
fn idle() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn is_memory(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory(cause),
        _ => false,
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// An error's message without a traceback, at most 512 bytes: it is
/// stored with the event and answered by `invoke`.
fn short(e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => return short(cause),
        other => other.to_string(),
    };
    let first = text.lines().next().unwrap_or("").trim();
    let mut cut = first.len().min(512);
    while !first.is_char_boundary(cut) {
        cut -= 1;
    }
    first[..cut].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors_name_their_line() {
        let e = compile("local a = 1\nlocal b = \nif then").unwrap_err();
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(e.message.starts_with("line 3: "), "{e:?}");
        assert!(compile("r:StopForwarding()").is_ok());
    }
}
