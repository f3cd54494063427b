//! Presentation for the client commands: an aligned text table, `key: value`
//! blocks, ISO-8601 times from milliseconds, and [`View`], which prints either
//! those or the server's JSON (`--json`).
//!
//! Everything here but `View`'s printing is a pure string function, so it is
//! unit-tested without a server. Cells are made safe for a terminal: event
//! types, headers and bodies come from whoever sent the webhook, and an
//! escape sequence in them must not reach the user's terminal as one.

use std::fmt::Write as _;

use serde_json::Value;

/// A column: its header and how to compute a cell from one list item.
pub(crate) type Column = (&'static str, fn(&Value) -> String);

/// Rows of cells under a header row, each column padded to its widest cell.
pub(crate) fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = width.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        // The last column's padding would only leave trailing blanks.
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The items of a list as a table of `columns`.
pub(crate) fn render_list(items: &[Value], columns: &[Column]) -> String {
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|(_, cell)| cell(item)).collect())
        .collect();
    render_table(&headers, &rows)
}

/// An object as `key: value` lines, keys aligned. Fields named `...At` that
/// hold a number are times in ms and are shown as ISO-8601 too.
pub(crate) fn render_object(value: &Value) -> String {
    let Some(map) = value.as_object() else {
        return format!("{}\n", scalar(value));
    };
    let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, field) in map {
        let shown = match field.as_i64() {
            Some(ms) if key.ends_with("At") => format!("{} ({ms})", iso_time(ms)),
            _ => scalar(field),
        };
        let _ = writeln!(
            out,
            "{:width$}  {shown}",
            format!("{}:", clean(key)),
            width = width + 1
        );
    }
    out
}

/// One JSON value as a single table cell or `show` value.
pub(crate) fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => clean(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            items.iter().map(scalar).collect::<Vec<_>>().join(", ")
        }
        // Nested objects stay compact JSON: `show` is a summary, `--json` is exact.
        Value::Array(_) | Value::Object(_) => clean(&value.to_string()),
    }
}

/// The field at a JSON pointer (`/auth/type`) as a cell; `-` when absent.
pub(crate) fn cell(item: &Value, pointer: &str) -> String {
    item.pointer(pointer).map_or_else(|| "-".to_owned(), scalar)
}

/// The number at a JSON pointer as an ISO-8601 time; `-` when absent.
pub(crate) fn time_cell(item: &Value, pointer: &str) -> String {
    item.pointer(pointer)
        .and_then(Value::as_i64)
        .map_or_else(|| "-".to_owned(), iso_time)
}

/// Replaces control characters (escape sequences, newlines) with their
/// escaped spelling so one value stays on one line and cannot drive the
/// terminal.
pub(crate) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`clean`] but keeps newlines and tabs, for multi-line bodies.
pub(crate) fn clean_multiline(text: &str) -> String {
    text.split('\n')
        .map(|line| line.split('\t').map(clean).collect::<Vec<_>>().join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub(crate) fn iso_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`: counts in 400-year eras of 146 097
/// days starting on 0000-03-01, so leap days fall at the end of each year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How the answer of a command is printed: the server's JSON, or for people.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    /// `--json`: print the server's answer pretty-printed, nothing else.
    pub(crate) json: bool,
}

impl View {
    /// A list answer `{"<key>": [...]}` as a table.
    pub(crate) fn list(self, answer: &Value, key: &str, columns: &[Column]) {
        if self.json {
            return self.raw(answer);
        }
        let items = answer
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        crate::out!("{}", render_list(items, columns));
    }

    /// One object as `key: value` lines.
    pub(crate) fn object(self, answer: &Value) {
        if self.json {
            return self.raw(answer);
        }
        crate::out!("{}", render_object(answer));
    }

    /// A `204` answer: a confirmation for people, nothing for scripts.
    pub(crate) fn deleted(self, what: &str, id: &str) {
        if !self.json {
            crate::outln!("deleted {what} {}", clean(id));
        }
    }

    /// The server's JSON, pretty-printed.
    pub(crate) fn raw(self, answer: &Value) {
        match serde_json::to_string_pretty(answer) {
            Ok(text) => crate::outln!("{text}"),
            // Unreachable for a `Value` parsed from JSON; print compact anyway.
            Err(_) => crate::outln!("{answer}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_pads_columns_and_trims_line_ends() {
        let rows = vec![
            vec!["bkt_1".to_owned(), "prod".to_owned(), "none".to_owned()],
            vec![
                "bkt_22".to_owned(),
                "a-long-name".to_owned(),
                "basic".to_owned(),
            ],
        ];
        let text = render_table(&["ID", "NAME", "AUTH"], &rows);
        assert_eq!(
            text,
            "ID      NAME         AUTH\n\
             bkt_1   prod         none\n\
             bkt_22  a-long-name  basic\n"
        );
    }

    #[test]
    fn empty_table_is_its_header() {
        assert_eq!(render_table(&["ID", "NAME"], &[]), "ID  NAME\n");
    }

    #[test]
    fn table_counts_characters_not_bytes() {
        let rows = vec![vec!["é".to_owned(), "x".to_owned()]];
        assert_eq!(render_table(&["AB", "C"], &rows), "AB  C\né   x\n");
    }

    #[test]
    fn list_uses_column_functions() {
        let items = vec![json!({"id": "b1", "auth": {"type": "token"}, "createdAt": 0})];
        let columns: [Column; 3] = [
            ("ID", |v| cell(v, "/id")),
            ("AUTH", |v| cell(v, "/auth/type")),
            ("MISSING", |v| cell(v, "/nope")),
        ];
        assert_eq!(
            render_list(&items, &columns),
            "ID  AUTH   MISSING\nb1  token  -\n"
        );
        let created: [Column; 1] = [("CREATED", |v| time_cell(v, "/createdAt"))];
        assert!(render_list(&items, &created).contains("1970-01-01T00:00:00.000Z"));
    }

    #[test]
    fn iso_times() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_711_324_800_123, "2024-03-25T00:00:00.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (1_700_000_000_000, "2023-11-14T22:13:20.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(iso_time(ms), want, "{ms}");
        }
        // Extremes must not overflow or panic.
        let _ = iso_time(i64::MIN);
        let _ = iso_time(i64::MAX);
    }

    #[test]
    fn object_lines_are_aligned_with_times() {
        let text = render_object(&json!({
            "id": "bkt_1", "enabled": true, "createdAt": 0, "buckets": ["a", "b"], "auth": {"type": "none"}
        }));
        assert_eq!(
            text,
            "auth:       {\"type\":\"none\"}\n\
             buckets:    a, b\n\
             createdAt:  1970-01-01T00:00:00.000Z (0)\n\
             enabled:    true\n\
             id:         bkt_1\n"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("push\u{1b}[31m\nx"), "push\\u{1b}[31m\\nx");
        assert_eq!(scalar(&json!("a\tb")), "a\\tb");
        assert_eq!(clean_multiline("a\tb\nc\u{7}"), "a\tb\nc\\u{7}");
        assert_eq!(scalar(&json!(null)), "-");
        assert_eq!(scalar(&json!([])), "-");
    }
}
