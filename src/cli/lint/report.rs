//! Findings as the checks make them: placed by field path, ignored by annotation, made errors
//! by `--strict`, in file and line order.

use std::collections::HashMap;

use super::{position, yaml, Finding, Item, Rule, Severity};

/// Warnings a resource opts out of, by rule id: `akv-csi-provider/lint-ignore: "deprecated"`.
/// Errors cannot be ignored: they are what a mount or Kubernetes would refuse.
const IGNORE_ANNOTATION: &str = "akv-csi-provider/lint-ignore";

/// Findings as the checks make them.
pub(super) struct Report<'a> {
    files: &'a [String],
    findings: Vec<Finding>,
    ignored: Vec<usize>,
}

impl<'a> Report<'a> {
    pub(super) fn new(files: &'a [String]) -> Report<'a> {
        Report {
            files,
            findings: Vec::new(),
            ignored: Vec::new(),
        }
    }

    pub(super) fn yaml(&mut self, file: usize, e: &yaml::YamlError) {
        self.findings.push(Finding {
            rule: Rule::Yaml,
            severity: Severity::Error,
            file: self.files[file].clone(),
            document: e.document,
            pos: e.pos,
            kind: String::new(),
            name: String::new(),
            namespace: String::new(),
            field: String::new(),
            message: format!("not valid YAML: {}", e.message),
            fix: None,
        });
    }

    fn add(
        &mut self,
        severity: Severity,
        rule: Rule,
        at: &Item,
        field: String,
        message: String,
    ) -> &mut Finding {
        let ignored = at
            .res
            .metadata("annotations", IGNORE_ANNOTATION)
            .is_some_and(|ids| ids.split(',').any(|id| id.trim() == rule.id()));
        if severity == Severity::Warning && ignored {
            self.ignored.push(self.findings.len());
        }
        self.findings.push(Finding {
            rule,
            severity,
            file: self.files[at.file].clone(),
            document: at.res.document,
            pos: position::locate(at.res.node, &field),
            kind: at.res.kind.to_string(),
            name: at.res.name.to_string(),
            namespace: at.res.namespace.to_string(),
            field,
            message,
            fix: None,
        });
        self.findings.last_mut().expect("just pushed")
    }

    pub(super) fn error(
        &mut self,
        rule: Rule,
        at: &Item,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Finding {
        self.add(Severity::Error, rule, at, field.into(), message.into())
    }

    pub(super) fn warn(
        &mut self,
        rule: Rule,
        at: &Item,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Finding {
        self.add(Severity::Warning, rule, at, field.into(), message.into())
    }

    /// The findings in file and line order, without ignored ones, warnings made errors if strict.
    pub(super) fn finish(self, strict: bool) -> Vec<Finding> {
        let mut findings: Vec<Finding> = self
            .findings
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !self.ignored.contains(i))
            .map(|(_, mut f)| {
                if strict {
                    f.severity = Severity::Error;
                }
                f
            })
            .collect();
        let order: HashMap<&str, usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i))
            .collect();
        // A check made per volume may find the same thing through several volumes.
        findings.sort_by(|a, b| {
            (order[a.file.as_str()], a.document, a.pos, &a.message).cmp(&(
                order[b.file.as_str()],
                b.document,
                b.pos,
                &b.message,
            ))
        });
        findings.dedup();
        findings
    }
}
