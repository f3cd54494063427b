//! What a run records: the machine, the commit, the date and the load
//! average beside each scenario's table; printed as text and written as
//! JSON (`--json FILE`).

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

/// One scenario's results.
pub(crate) struct Table {
    pub(crate) scenario: &'static str,
    pub(crate) title: String,
    pub(crate) columns: Vec<&'static str>,
    pub(crate) rows: Vec<Vec<Value>>,
    pub(crate) notes: Vec<String>,
    /// 1-minute load average when the scenario started and ended.
    pub(crate) load: (f64, f64),
}

impl Table {
    pub(crate) fn new(scenario: &'static str, title: String, columns: Vec<&'static str>) -> Table {
        Table {
            scenario,
            title,
            columns,
            rows: Vec::new(),
            notes: Vec::new(),
            load: (loadavg()[0], 0.0),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<Value>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        // Microseconds are the resolution that means anything here.
        let cells: Vec<Value> = cells
            .into_iter()
            .map(|c| match c.as_f64() {
                Some(f) if c.is_f64() => json!((f * 1000.0).round() / 1000.0),
                _ => c,
            })
            .collect();
        println!("{}", self.line(&cells));
        self.rows.push(cells);
    }

    pub(crate) fn note(&mut self, note: String) {
        println!("  {note}");
        self.notes.push(note);
    }

    /// Prints the title and header (rows print as they come).
    pub(crate) fn header(&self) {
        println!(
            "\n== {}: {} (load average {:.2})",
            self.scenario, self.title, self.load.0
        );
        let header: Vec<Value> = self.columns.iter().map(|c| json!(c)).collect();
        println!("{}", self.line(&header));
    }

    pub(crate) fn finish(mut self) -> Table {
        self.load.1 = loadavg()[0];
        println!("  (load average at the end {:.2})", self.load.1);
        self
    }

    fn line(&self, cells: &[Value]) -> String {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = self.columns.get(i).map_or(10, |c| c.len().max(10));
            let _ = write!(out, "{:>width$} ", cell_text(cell));
        }
        out.trim_end().to_owned()
    }

    pub(crate) fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (c, v) in self.columns.iter().zip(r) {
                    m.insert((*c).to_owned(), v.clone());
                }
                Value::Object(m)
            })
            .collect();
        json!({
            "scenario": self.scenario,
            "title": self.title,
            "loadavg_1m_start": self.load.0,
            "loadavg_1m_end": self.load.1,
            "rows": rows,
            "notes": self.notes,
        })
    }

    /// The table as Markdown, for the README.
    pub(crate) fn markdown(&self) -> String {
        let mut out = format!(
            "**{}**: {} (load average {:.2} → {:.2})\n\n| {} |\n|{}\n",
            self.scenario,
            self.title,
            self.load.0,
            self.load.1,
            self.columns.join(" | "),
            " ---: |".repeat(self.columns.len())
        );
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(cell_text).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        for n in &self.notes {
            let _ = writeln!(out, "\n{n}");
        }
        out
    }
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.abs() >= 100.0 {
                format!("{f:.0}")
            } else {
                format!("{f:.3}")
            }
        }
        other => other.to_string(),
    }
}

/// 1, 5 and 15-minute load averages.
pub(crate) fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// The machine, commit, date and load of this run.
pub(crate) fn run_info() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "date": command(&["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(|| "unknown".into()),
        "commit": commit(),
        "machine": {
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "model": model,
            "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            "kernel": kernel.trim(),
        },
        "loadavg": loadavg(),
    })
}

/// `git rev-parse --short HEAD`, with `-dirty` if the tree has changes;
/// "unknown" outside a repository.
fn commit() -> String {
    let Some(head) = command(&["git", "rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_owned();
    };
    let dirty = command(&["git", "status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}-dirty")
    } else {
        head
    }
}

fn command(argv: &[&str]) -> Option<String> {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A one-line summary of `run_info` for the top of the text output.
pub(crate) fn describe(info: &Value) -> String {
    format!(
        "{} · commit {} · {} cores {} · {} GiB · load average {}",
        info["date"].as_str().unwrap_or("?"),
        info["commit"].as_str().unwrap_or("?"),
        info["machine"]["cores"],
        info["machine"]["model"].as_str().unwrap_or("?"),
        info["machine"]["memory_gib"],
        info["loadavg"]
    )
}
