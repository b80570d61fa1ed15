//! `akv-csi-provider lint`: checks an application's manifests offline, as users write them, and
//! reports every problem with its file, line, column and field, and the fix. Each
//! SecretProviderClass goes through the mount's own validation (`crate::request`), so whatever a
//! mount would refuse is an error here with the mount's text; the other checks need the whole
//! application: volumes that name a missing class, Secrets synced by `secretObjects` that are
//! never created, identities that do not match their pods.
//!
//! - `inputs`: files, directories and standard input; `position`: a field path to its line;
//! - `spc`: each SecretProviderClass, through the mount's rules;
//! - `workloads`: pods and what makes them, and their CSI volumes;
//! - `secrets`: `secretObjects` and the Secrets workloads and Ingresses read;
//! - `identity`: each volume's identity against its pod, service account and node-publish Secret;
//! - `rules`: the catalogue of rule ids; `output`: human, JSON and SARIF.

mod identity;
mod inputs;
mod near_miss;
mod objects;
mod output;
mod position;
mod report;
mod rules;
mod secret_objects;
mod secrets;
mod spc;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::manifest::{self, Resource};
use super::yaml::{self, Pos};
use near_miss::near_miss;
pub use output::Format;
use report::Report;
pub use rules::Rule;

/// Flags of `lint`.
#[derive(Args, Debug)]
pub struct LintArgs {
    /// YAML files, or directories searched for *.yaml and *.yml; `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// How findings are printed.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    output: Format,
    /// Treat warnings as errors; a volume's SecretProviderClass must be among the documents.
    #[arg(long)]
    strict: bool,
    /// Check as for a provider running with --client-id-from-service-account: a workload
    /// identity class may leave clientID to the pod's ServiceAccount annotation.
    #[arg(long)]
    client_id_from_service_account: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One problem, where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// The file as given (`-` for standard input).
    pub file: String,
    /// 1-based index of the YAML document in its file.
    pub document: usize,
    pub pos: Pos,
    /// Kind and name of the resource; empty for a document that does not parse.
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Path of the field in the resource, e.g. `spec.parameters.objects[2].objectType`.
    pub field: String,
    pub message: String,
    pub fix: Option<String>,
}

impl Finding {
    /// `Kind/name`, or `document N` for a document that does not parse.
    pub fn resource(&self) -> String {
        match self.kind.is_empty() {
            true => format!("document {}", self.document),
            false => format!("{}/{}", self.kind, self.name),
        }
    }

    fn fix(&mut self, fix: impl Into<String>) {
        self.fix = Some(fix.into());
    }
}

/// What a run looked at, in total or in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub documents: usize,
    pub resources: usize,
    pub secret_provider_classes: usize,
}

/// What one file held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSummary {
    pub name: String,
    pub documents: usize,
    pub resources: usize,
    pub secret_provider_classes: usize,
}

/// The result of a run.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    /// Paths that could not be read: the run cannot vouch for them.
    pub input_errors: Vec<inputs::InputError>,
    pub files: Vec<FileSummary>,
    pub strict: bool,
}

impl Outcome {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn summary(&self) -> Summary {
        let sum = |count: fn(&FileSummary) -> usize| self.files.iter().map(count).sum();
        Summary {
            files: self.files.len(),
            documents: sum(|f| f.documents),
            resources: sum(|f| f.resources),
            secret_provider_classes: sum(|f| f.secret_provider_classes),
        }
    }

    /// 0 clean, 1 errors, 2 unusable input.
    pub fn exit_code(&self) -> u8 {
        if !self.input_errors.is_empty() || self.summary().documents == 0 {
            2
        } else if self.count(Severity::Error) > 0 {
            1
        } else {
            0
        }
    }
}

/// Runs `lint` and prints its report on standard output.
pub fn run(args: &LintArgs) -> ExitCode {
    let (sources, input_errors) = inputs::read(&args.paths);
    let mut outcome = check(&sources, args.strict, args.client_id_from_service_account);
    outcome.input_errors = input_errors;
    print!("{}", output::render(args.output, &outcome));
    for e in &outcome.input_errors {
        eprintln!("error: {e}");
    }
    if outcome.input_errors.is_empty() && outcome.summary().documents == 0 {
        eprintln!("error: no YAML documents found");
    }
    ExitCode::from(outcome.exit_code())
}

/// Lints one manifest text as if it came on standard input (for the fuzz target).
pub fn lint(text: &str) -> Outcome {
    let source = inputs::Source {
        name: "-".into(),
        text: text.into(),
    };
    check(&[source], false, false)
}

/// A resource and the file it is in.
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    file: usize,
    res: Resource<'a>,
}

/// Everything the cross-resource checks look at.
struct Model<'a> {
    items: Vec<Item<'a>>,
    classes: Vec<spc::Class<'a>>,
    workloads: Vec<workloads::Workload<'a>>,
    /// The provider's `--client-id-from-service-account`, as lint is told.
    client_id_from_service_account: bool,
}

fn check(
    sources: &[inputs::Source],
    strict: bool,
    client_id_from_service_account: bool,
) -> Outcome {
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let mut report = Report::new(&names);
    let mut files: Vec<FileSummary> = names
        .iter()
        .map(|name| FileSummary {
            name: name.clone(),
            ..FileSummary::default()
        })
        .collect();
    let mut documents = Vec::new();
    for (file, source) in sources.iter().enumerate() {
        let parsed = yaml::documents(&source.text);
        files[file].documents = parsed.len();
        let mut ok = Vec::new();
        for doc in parsed {
            match doc {
                Ok(doc) => ok.push(doc),
                Err(e) => report.yaml(file, &e),
            }
        }
        documents.push(ok);
    }
    let items: Vec<Item> = documents
        .iter()
        .enumerate()
        .flat_map(|(file, docs)| {
            manifest::resources(docs)
                .into_iter()
                .map(move |res| Item { file, res })
        })
        .collect();
    let model = Model {
        classes: items
            .iter()
            .filter_map(|item| spc::check(*item, &mut report, client_id_from_service_account))
            .collect(),
        workloads: items.iter().filter_map(|i| workloads::of(*i)).collect(),
        items,
        client_id_from_service_account,
    };
    workloads::check(&model, &mut report, strict);
    secrets::check(&model, &mut report);
    identity::check(&model, &mut report);
    for item in &model.items {
        files[item.file].resources += 1;
    }
    for class in &model.classes {
        files[class.item.file].secret_provider_classes += 1;
    }
    Outcome {
        findings: report.finish(strict),
        input_errors: Vec::new(),
        files,
        strict,
    }
}
#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn exit_codes_and_strict() {
        let clean = lint("kind: ConfigMap\nmetadata: {name: c}\n");
        assert_eq!((clean.exit_code(), clean.summary().resources), (0, 1));
        assert_eq!(lint("# nothing\n").exit_code(), 2);
        let broken = lint("a: [\n---\nkind: ConfigMap\n");
        assert_eq!(broken.exit_code(), 1);
        assert_eq!(broken.findings[0].rule, Rule::Yaml);
        assert_eq!(broken.summary().documents, 2);
    }
}
