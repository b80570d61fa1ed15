//! Known names a given one is probably meant to be, and fields that are not known.

use super::{Item, Report, Rule};
use crate::cli::yaml::Node;

/// Reports the keys of `node` that are not `known`, all of which `ignorer` ignores: a near miss
/// as an error with its right spelling, anything else as a warning.
pub(super) fn check_field_names(
    node: &Node,
    known: &[&str],
    field: &str,
    ignorer: &str,
    item: &Item,
    r: &mut Report,
) {
    for entry in node.entries() {
        if known.contains(&entry.key.as_str()) {
            continue;
        }
        let at = format!("{field}.{}", entry.key);
        match near_miss(&entry.key, known) {
            Some(k) => {
                let message = format!("{} is not a field here, so {ignorer} ignores it: field names are case-sensitive", entry.key);
                r.error(Rule::Spelling, item, at, message)
                    .fix(format!("rename it to {k}"));
            }
            None => {
                r.warn(
                    Rule::Resource,
                    item,
                    at,
                    format!("unknown field, ignored by {ignorer}"),
                );
            }
        }
    }
}

/// A known name the given one is probably meant to be: same letters in another case, or at most
/// two edits away.
pub(super) fn near_miss<'k>(given: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(given))
        .or_else(|| known.iter().find(|k| edit_distance(k, given) <= 2))
        .copied()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses() {
        assert_eq!(
            near_miss("tenantid", &["tenantID", "clientID"]),
            Some("tenantID")
        );
        assert_eq!(
            near_miss("keyvaultNme", &["keyvaultName"]),
            Some("keyvaultName")
        );
        assert_eq!(near_miss("foo", &["keyvaultName"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
