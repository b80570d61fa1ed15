//! `--output json`: one object, schema version 1 (README, "Lint"). Fields are only ever added
//! within a version; a change of meaning or a removal bumps it.

use serde::Serialize;

use crate::cli::lint::{Outcome, Severity};

/// The schema version; bump it on any incompatible change.
const VERSION: u32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    version: u32,
    tool: Tool,
    strict: bool,
    summary: Summary,
    input_errors: Vec<InputError<'a>>,
    findings: Vec<Finding<'a>>,
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    files: usize,
    documents: usize,
    resources: usize,
    secret_provider_classes: usize,
    errors: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct InputError<'a> {
    path: &'a str,
    message: String,
}

#[derive(Serialize)]
struct Finding<'a> {
    rule: &'static str,
    severity: &'static str,
    file: &'a str,
    line: usize,
    column: usize,
    document: usize,
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
    field: &'a str,
    message: &'a str,
    fix: Option<&'a str>,
}

pub fn render(outcome: &Outcome) -> String {
    let summary = outcome.summary();
    let report = Report {
        version: VERSION,
        tool: Tool {
            name: "akv-csi-provider",
            version: env!("CARGO_PKG_VERSION"),
        },
        strict: outcome.strict,
        summary: Summary {
            files: summary.files,
            documents: summary.documents,
            resources: summary.resources,
            secret_provider_classes: summary.secret_provider_classes,
            errors: outcome.count(Severity::Error),
            warnings: outcome.count(Severity::Warning),
        },
        input_errors: outcome
            .input_errors
            .iter()
            .map(|e| InputError {
                path: e.path(),
                message: e.to_string(),
            })
            .collect(),
        findings: outcome
            .findings
            .iter()
            .map(|f| Finding {
                rule: f.rule.id(),
                severity: f.severity.as_str(),
                file: &f.file,
                line: f.pos.line,
                column: f.pos.column,
                document: f.document,
                kind: &f.kind,
                name: &f.name,
                namespace: &f.namespace,
                field: &f.field,
                message: &f.message,
                fix: f.fix.as_deref(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).expect("plain data") + "\n"
}
