//! The `r` object a script sees (DESIGN §9): the request's fields as
//! Webhook Relay names them, its setters, and the checks on everything a
//! script sets, made when it sets it so the error names the call.

use std::rc::Rc;

use mlua::{Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use crate::{Attachment, Request, Response};

/// Registry key of the metatable that makes `r.RequestHeader` lookups
/// case-insensitive.
pub(crate) const CASELESS: &str = "hookrelay.caseless";

/// The state of one call, behind `r`. The request is shared with the
/// caller and copied only when the script first changes it, so a script
/// that only reads costs no copy, and a failed call gives the original back
/// untouched.
pub(crate) struct Req {
    pub(crate) original: Rc<Request>,
    /// The request as changed so far; `None` until the first setter.
    pub(crate) edited: Option<Request>,
    pub(crate) metadata: Vec<(&'static str, String)>,
    pub(crate) attachment: Attachment,
    pub(crate) max_body: usize,
    pub(crate) status: Option<u16>,
    pub(crate) response_headers: Vec<(String, String)>,
    pub(crate) response_body: Option<Vec<u8>>,
    pub(crate) stop: bool,
}

impl Req {
    pub(crate) fn new(
        original: Rc<Request>,
        metadata: Vec<(&'static str, String)>,
        attachment: Attachment,
        max_body: usize,
    ) -> Req {
        Req {
            original,
            edited: None,
            metadata,
            attachment,
            max_body,
            status: None,
            response_headers: Vec::new(),
            response_body: None,
            stop: false,
        }
    }

    /// The request as the script sees it now.
    fn current(&self) -> &Request {
        self.edited.as_ref().unwrap_or(&self.original)
    }

    /// The request to change: the original's copy, made on first use.
    fn edit(&mut self) -> &mut Request {
        self.edited.get_or_insert_with(|| (*self.original).clone())
    }

    /// The response the script set: any of status, headers or body makes
    /// one (status 200 unless set).
    pub(crate) fn response(&mut self) -> Option<Response> {
        if self.status.is_none() && self.response_headers.is_empty() && self.response_body.is_none()
        {
            return None;
        }
        Some(Response {
            status: self.status.unwrap_or(200),
            headers: std::mem::take(&mut self.response_headers),
            body: self.response_body.take().unwrap_or_default(),
        })
    }

    fn body(&self, s: &mlua::String) -> mlua::Result<Vec<u8>> {
        let bytes = s.as_bytes();
        if bytes.len() > self.max_body {
            return Err(mlua::Error::runtime(format!(
                "a body of {} bytes is over the limit of {} bytes",
                bytes.len(),
                self.max_body
            )));
        }
        Ok(bytes.to_vec())
    }

    fn input_only(&self, what: &str) -> mlua::Result<()> {
        match self.attachment {
            Attachment::Input => Ok(()),
            Attachment::Output => Err(mlua::Error::runtime(format!(
                "{what} is for input functions only"
            ))),
        }
    }
}

/// A header name and value as RFC 9110 allows them (a token; no CR, LF or
/// NUL in the value), lower-cased like hyper's.
fn header(name: &mlua::String, value: &mlua::String) -> mlua::Result<(String, String)> {
    let name = http::HeaderName::from_bytes(&name.as_bytes())
        .map_err(|_| mlua::Error::runtime("invalid header name"))?;
    let value = value
        .to_str()
        .map_err(|_| mlua::Error::runtime("header value is not UTF-8"))?;
    http::HeaderValue::from_str(&value)
        .map_err(|_| mlua::Error::runtime("invalid header value (CR, LF or NUL)"))?;
    Ok((name.as_str().to_owned(), value.to_owned()))
}

fn set_header(headers: &mut Vec<(String, String)>, (name, value): (String, String)) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
    headers.push((name, value));
}

/// Characters a path or query must not hold: they would split or end the
/// request line.
fn check_line(what: &str, s: &str) -> mlua::Result<()> {
    if s.bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'#')
    {
        return Err(mlua::Error::runtime(format!(
            "{what} must not contain spaces, control characters or '#'"
        )));
    }
    Ok(())
}

fn text(s: &mlua::String, what: &str) -> mlua::Result<String> {
    s.to_str()
        .map(|s| s.to_owned())
        .map_err(|_| mlua::Error::runtime(format!("{what} is not UTF-8")))
}

/// A table of `pairs` whose lookups ignore case when made caseless.
fn table(lua: &Lua, pairs: &[(String, String)], caseless: bool) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, pairs.len())?;
    for (k, v) in pairs {
        let key = if caseless {
            k.to_ascii_lowercase()
        } else {
            k.clone()
        };
        // The first of a repeated name, as Go's `Header.Get` answers.
        if t.raw_get::<Value>(key.as_str())?.is_nil() {
            t.raw_set(key, v.as_str())?;
        }
    }
    if caseless {
        t.set_metatable(Some(lua.named_registry_value::<Table>(CASELESS)?))?;
    }
    Ok(t)
}

/// The query's `name=value` pairs, `+` and percent-escapes decoded.
fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2]))
            {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

impl UserData for Req {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("RequestBody", |lua, this| {
            lua.create_string(&this.current().body)
        });
        fields.add_field_method_get("RequestMethod", |_, this| Ok(this.current().method.clone()));
        fields.add_field_method_get("RequestPath", |_, this| Ok(this.current().path.clone()));
        fields.add_field_method_get("RequestRawQuery", |_, this| {
            Ok(this.current().query.clone())
        });
        fields.add_field_method_get("RequestQuery", |lua, this| {
            table(lua, &query_pairs(&this.current().query), false)
        });
        fields.add_field_method_get("RequestHeader", |lua, this| {
            table(lua, &this.current().headers, true)
        });
        fields.add_field_method_get("Metadata", |lua, this| {
            let t = lua.create_table()?;
            for (k, v) in &this.metadata {
                t.raw_set(*k, v.as_str())?;
            }
            Ok(t)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("SetRequestBody", |_, this, s: mlua::String| {
            let body = this.body(&s)?;
            this.edit().body = body;
            Ok(())
        });
        methods.add_method_mut("SetRequestMethod", |_, this, s: mlua::String| {
            let method = http::Method::from_bytes(&s.as_bytes())
                .map_err(|_| mlua::Error::runtime("invalid method"))?;
            this.edit().method = method.as_str().to_owned();
            Ok(())
        });
        methods.add_method_mut("SetRequestPath", |_, this, s: mlua::String| {
            let path = text(&s, "path")?;
            check_line("path", &path)?;
            if !(path.is_empty() || path.starts_with('/')) {
                return Err(mlua::Error::runtime("a path starts with '/'"));
            }
            this.edit().path = path;
            Ok(())
        });
        methods.add_method_mut("SetRequestRawQuery", |_, this, s: mlua::String| {
            let query = text(&s, "query")?;
            check_line("query", &query)?;
            this.edit().query = query.strip_prefix('?').unwrap_or(&query).to_owned();
            Ok(())
        });
        methods.add_method_mut(
            "SetRequestHeader",
            |_, this, (k, v): (mlua::String, mlua::String)| {
                let pair = header(&k, &v)?;
                set_header(&mut this.edit().headers, pair);
                Ok(())
            },
        );
        methods.add_method_mut("DeleteRequestHeader", |_, this, k: mlua::String| {
            let name = k.to_string_lossy();
            if this
                .current()
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(&name))
            {
                this.edit()
                    .headers
                    .retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            }
            Ok(())
        });
        methods.add_method_mut("SetResponseStatusCode", |_, this, status: Value| {
            this.input_only("SetResponseStatusCode")?;
            let status = match status {
                Value::Integer(n) => n as f64,
                Value::Number(n) => n,
                _ => return Err(mlua::Error::runtime("a status code is a number")),
            };
            if !(100.0..=599.0).contains(&status) || status.fract() != 0.0 {
                return Err(mlua::Error::runtime(format!(
                    "status {status} is outside 100..=599"
                )));
            }
            this.status = Some(status as u16);
            Ok(())
        });
        methods.add_method_mut("SetResponseBody", |_, this, s: mlua::String| {
            this.input_only("SetResponseBody")?;
            this.response_body = Some(this.body(&s)?);
            Ok(())
        });
        methods.add_method_mut(
            "SetResponseHeader",
            |_, this, (k, v): (mlua::String, mlua::String)| {
                this.input_only("SetResponseHeader")?;
                set_header(&mut this.response_headers, header(&k, &v)?);
                Ok(())
            },
        );
        methods.add_method_mut("StopForwarding", |_, this, ()| {
            this.stop = true;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_pairs("a=1&b=x+y&c=%2F%zz&&d"),
            [
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "/%zz".into()),
                ("d".into(), String::new())
            ]
        );
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%"), "%");
    }
}
