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

/// Rows `| \`name\` | … | hint |` of the table: the name cell and the last.
fn parse(readme: &'static str) -> HashMap<&'static str, String> {
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .strip_prefix('|')?
                .strip_suffix('|')?
                .split(" | ")
                .collect();
            let name = cells.first()?.trim().strip_prefix('`')?.strip_suffix('`')?;
            let known = IntegrationKind::ALL.iter().any(|k| k.name() == name);
            let hint = cells.last()?.trim();
            (known && cells.len() > 2).then(|| (name, hint.replace(['`', '*'], "")))
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
