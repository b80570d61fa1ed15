//! How findings are printed: for people (grouped by resource, with line:column and the fix),
//! as JSON with a versioned schema, and as SARIF 2.1.0 for code-scanning UIs.

mod json;
mod sarif;

use std::fmt::Write;

use super::{Finding, Outcome, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
}

pub fn render(format: Format, outcome: &Outcome) -> String {
    match format {
        Format::Human => human(outcome),
        Format::Json => json::render(outcome),
        Format::Sarif => sarif::render(outcome),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `Kind/name (namespace ns)` or `document N`.
fn heading(f: &Finding) -> String {
    match f.namespace.is_empty() {
        true => f.resource(),
        false => format!("{} (namespace {})", f.resource(), f.namespace),
    }
}

fn human(outcome: &Outcome) -> String {
    let mut out = String::new();
    let mut group = None;
    for f in &outcome.findings {
        let this = (f.file.as_str(), f.document, heading(f));
        if group.as_ref() != Some(&this) {
            let _ = writeln!(out, "{}: {}", f.file, this.2);
            group = Some(this);
        }
        let field = match f.field.is_empty() {
            true => String::new(),
            false => format!("{}: ", f.field),
        };
        let _ = writeln!(
            out,
            "  {}:{}:{}: {}: {field}{} [{}]",
            f.file,
            f.pos.line,
            f.pos.column,
            f.severity.as_str(),
            f.message,
            f.rule.id()
        );
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "      fix: {fix}");
        }
    }
    for file in &outcome.files {
        if !outcome.findings.iter().any(|f| f.file == file.name) && file.documents > 0 {
            let _ = writeln!(
                out,
                "{}: ok ({} checked, {})",
                file.name,
                plural(
                    file.secret_provider_classes,
                    "SecretProviderClass",
                    "SecretProviderClasses"
                ),
                plural(file.resources, "resource", "resources"),
            );
        }
    }
    let summary = outcome.summary();
    let _ = writeln!(
        out,
        "{}, {} in {} ({}, {}){}",
        plural(outcome.count(Severity::Error), "error", "errors"),
        plural(outcome.count(Severity::Warning), "warning", "warnings"),
        plural(summary.files, "file", "files"),
        plural(summary.resources, "resource", "resources"),
        plural(
            summary.secret_provider_classes,
            "SecretProviderClass",
            "SecretProviderClasses"
        ),
        if outcome.strict {
            "; --strict: warnings count as errors"
        } else {
            ""
        },
    );
    out
}
