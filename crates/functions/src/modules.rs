//! The modules a script may use (DESIGN §9, §14): `json`, `crypto`, `time`
//! (also loadable with `require`, the only names `require` knows), `cfg`,
//! and `print`/`log` into the call's bounded logs. Everything else a Lua
//! would offer is removed by `vm`.

use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use mlua::{Lua, MultiValue, Table, Value, Variadic};

/// Lines of log one call keeps; later ones are counted, not kept.
pub(crate) const MAX_LOG_LINES: usize = 100;
/// Longest log line kept, in bytes; longer ones are cut.
pub(crate) const MAX_LOG_LINE: usize = 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What the modules read and write during one call (the VM's app data).
#[derive(Default)]
pub(crate) struct CallCx {
    pub(crate) config: Arc<Vec<(String, String)>>,
    pub(crate) logs: Vec<String>,
    pub(crate) dropped: usize,
}

impl CallCx {
    pub(crate) fn take_logs(&mut self) -> Vec<String> {
        let mut logs = std::mem::take(&mut self.logs);
        if self.dropped > 0 {
            logs.push(format!("... {} more lines not kept", self.dropped));
            self.dropped = 0;
        }
        logs
    }
}

/// Installs the modules as globals; `vm` then makes them read-only.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    let json = json(lua)?;
    let crypto = crypto(lua)?;
    let time = time(lua)?;
    g.raw_set("json", json.clone())?;
    g.raw_set("crypto", crypto.clone())?;
    g.raw_set("time", time.clone())?;
    g.raw_set("cfg", cfg(lua)?)?;
    let modules = lua.create_table()?;
    modules.raw_set("json", json)?;
    modules.raw_set("crypto", crypto)?;
    modules.raw_set("time", time)?;
    g.raw_set(
        "require",
        lua.create_function(move |_, name: String| {
            modules
                .raw_get::<Option<Table>>(name.as_str())?
                .ok_or_else(|| {
                    mlua::Error::runtime(format!(
                        "module '{name}' is not available (only json, crypto, time)"
                    ))
                })
        })?,
    )?;
    let log = lua.create_function(log)?;
    g.raw_set("print", log.clone())?;
    g.raw_set("log", log)?;
    Ok(())
}

fn log(lua: &Lua, args: Variadic<Value>) -> mlua::Result<()> {
    let mut line = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            line.push('\t');
        }
        match v {
            Value::String(s) => line.push_str(&s.to_string_lossy()),
            other => line.push_str(&other.to_string()?),
        }
        if line.len() > MAX_LOG_LINE {
            break;
        }
    }
    if line.len() > MAX_LOG_LINE {
        let mut cut = MAX_LOG_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    if let Some(mut cx) = lua.app_data_mut::<CallCx>() {
        if cx.logs.len() < MAX_LOG_LINES {
            cx.logs.push(line);
        } else {
            cx.dropped += 1;
        }
    }
    Ok(())
}

/// `(nil, message)`: how the modules report a failure a script can handle.
fn fail(lua: &Lua, message: impl Into<String>) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        Value::String(lua.create_string(message.into())?),
    ]))
}

fn json(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let parsed: serde_json::Value = match serde_json::from_slice(&s.as_bytes()) {
                Ok(v) => v,
                Err(e) => return fail(lua, format!("json: {e}")),
            };
            use mlua::LuaSerdeExt as _;
            let options = mlua::SerializeOptions::new()
                .serialize_none_to_null(false)
                .serialize_unit_to_null(false);
            let value = lua.to_value_with(&parsed, options)?;
            Ok(MultiValue::from_vec(vec![value, Value::Nil]))
        })?,
    )?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, v: Value| match serde_json::to_string(&v) {
            Ok(s) => Ok(MultiValue::from_vec(vec![
                Value::String(lua.create_string(s)?),
                Value::Nil,
            ])),
            Err(e) => fail(lua, format!("json: {e}")),
        })?,
    )?;
    Ok(t)
}

fn digest_fn<D: sha2::Digest>(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(|_, s: mlua::String| Ok(hex::encode(D::digest(s.as_bytes()))))
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> String {
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

fn crypto(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "base64_encode",
        lua.create_function(|_, s: mlua::String| Ok(B64.encode(s.as_bytes())))?,
    )?;
    t.raw_set(
        "base64_decode",
        lua.create_function(|lua, s: mlua::String| match B64.decode(s.as_bytes()) {
            Ok(bytes) => Ok(MultiValue::from_vec(vec![
                Value::String(lua.create_string(bytes)?),
                Value::Nil,
            ])),
            Err(e) => fail(lua, format!("base64: {e}")),
        })?,
    )?;
    t.raw_set("md5", digest_fn::<md5::Md5>(lua)?)?;
    t.raw_set("sha1", digest_fn::<sha1::Sha1>(lua)?)?;
    t.raw_set("sha256", digest_fn::<sha2::Sha256>(lua)?)?;
    t.raw_set("sha512", digest_fn::<sha2::Sha512>(lua)?)?;
    t.raw_set(
        "hmac",
        lua.create_function(
            |_, (alg, data, key): (String, mlua::String, mlua::String)| {
                let (data, key) = (data.as_bytes(), key.as_bytes());
                Ok(match alg.to_ascii_lowercase().as_str() {
                    "md5" => hmac_hex::<Hmac<md5::Md5>>(&key, &data),
                    "sha1" => hmac_hex::<Hmac<sha1::Sha1>>(&key, &data),
                    "sha256" => hmac_hex::<Hmac<sha2::Sha256>>(&key, &data),
                    "sha512" => hmac_hex::<Hmac<sha2::Sha512>>(&key, &data),
                    _ => {
                        return Err(mlua::Error::runtime(format!(
                            "hmac: unknown algorithm '{alg}' (md5, sha1, sha256, sha512)"
                        )))
                    }
                })
            },
        )?,
    )?;
    Ok(t)
}

fn time(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "unix",
        lua.create_function(|_, ()| {
            Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64))
        })?,
    )?;
    t.raw_set(
        "format",
        lua.create_function(|_, (secs, layout): (f64, String)| {
            Ok(crate::golayout::format(secs, &layout))
        })?,
    )?;
    Ok(t)
}

fn cfg(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "get",
        lua.create_function(|lua, key: String| {
            Ok(lua.app_data_ref::<CallCx>().and_then(|cx| {
                cx.config
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            }))
        })?,
    )?;
    Ok(t)
}
