//! The setup hint of each integration ("what to paste as the input's
//! secret"), read from the README's integration table so the dashboard
//! and the documentation cannot disagree.

use std::collections::HashMap;
use std::sync::LazyLock;

use model::IntegrationKind;

const README: &str = include_str!("../../../../README.md");

static HINTS: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| parse(README));

/// The README's setup hint for `kind`.
pub(super) fn setup(kind: IntegrationKind) -> Option<&'static str> {
    HINTS.get(kind.name()).map(String::as_str)
}

/// The cells of a Markdown table row.
fn cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split(" | ").map(str::trim).collect())
}

/// Rows `| \`name\` | … |` of the table whose header has a `setup…`
/// column: the name cell and that column's cell.
fn parse(readme: &'static str) -> HashMap<&'static str, String> {
    let column = readme
        .lines()
        .filter_map(cells)
        .find_map(|header| header.iter().position(|c| c.starts_with("setup")));
    let Some(column) = column else {
        return HashMap::new();
    };
    readme
        .lines()
        .filter_map(|line| {
            let cells = cells(line)?;
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            let known = IntegrationKind::ALL.iter().any(|k| k.name() == name);
            let hint = cells.get(column)?;
            known.then(|| (name, hint.replace(['`', '*'], "")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_integration_has_a_setup_hint_in_the_readme() {
        for kind in IntegrationKind::ALL {
            let hint = setup(*kind).unwrap_or_default();
            assert!(
                hint.len() > 10,
                "{} has no setup hint in the README table",
                kind.name()
            );
        }
        assert!(setup(IntegrationKind::Github).is_some_and(|h| h.contains("Settings → Webhooks")));
    }
}
