//! `--output sarif`: SARIF 2.1.0 as GitHub code scanning reads it: one run, every rule with its
//! id and help, each finding a result with the file and region (line, column) it is about.

use serde_json::{json, Value};

use crate::cli::lint::{Outcome, Rule, Severity};

pub fn render(outcome: &Outcome) -> String {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "name": rule.id(),
                "shortDescription": { "text": rule.summary() },
                "fullDescription": { "text": rule.help() },
                "help": { "text": rule.help() },
                "defaultConfiguration": { "level": default_severity(*rule).as_str() },
            })
        })
        .collect();
    let results: Vec<Value> = outcome
        .findings
        .iter()
        .map(|f| {
            let mut text = format!("{}: {}", f.resource(), f.message);
            if !f.field.is_empty() {
                text = format!("{} {}: {}", f.resource(), f.field, f.message);
            }
            if let Some(fix) = &f.fix {
                text = format!("{text} Fix: {fix}.");
            }
            json!({
                "ruleId": f.rule.id(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == f.rule),
                "level": f.severity.as_str(),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.file) },
                        "region": {
                            "startLine": f.pos.line.max(1),
                            "startColumn": f.pos.column.max(1),
                        },
                    },
                    "logicalLocations": [{
                        "name": f.field,
                        "fullyQualifiedName": format!("{}.{}", f.resource(), f.field),
                        "kind": "resource",
                    }],
                }],
            })
        })
        .collect();
    let notifications: Vec<Value> = outcome
        .input_errors
        .iter()
        .map(|e| json!({ "level": "error", "message": { "text": e.to_string() } }))
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "akv-csi-provider lint",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            } },
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": outcome.input_errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).expect("plain data") + "\n"
}

/// The severity a rule's findings mostly have (some also report the other).
fn default_severity(rule: Rule) -> Severity {
    match rule {
        Rule::Deprecated | Rule::MissingClass | Rule::Objects | Rule::Identity => Severity::Warning,
        _ => Severity::Error,
    }
}

/// A relative URI reference for a path as given: `/` separated, reserved bytes escaped.
fn uri(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_reserved_bytes() {
        assert_eq!(uri("deploy/my app/a.yaml"), "deploy/my%20app/a.yaml");
        assert_eq!(uri("-"), "-");
    }
}
