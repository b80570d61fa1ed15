//! `akv-csi-provider lint`: checks SecretProviderClass manifests offline and reports every
//! problem with the object and field it concerns and what to change. It applies the same checks
//! a mount applies (shared with `crate::request`), plus ones only a whole manifest allows:
//! misspelt parameter names, `secretObjects` that refer to files the provider will not write.

use std::collections::{BTreeMap, BTreeSet};

use super::manifest::{self, ManifestError, SecretProviderClass};
use crate::cloud::CloudName;
use crate::request::{self, objects, Mode, Params};
use crate::spec::ObjectSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// 1-based index of the YAML document in its file.
    pub document: usize,
    /// `SecretProviderClass/<name>`.
    pub resource: String,
    /// Path of the field, e.g. `spec.parameters.objects[2]`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "document {} {}: {}: {}: {}",
            self.document, self.resource, level, self.field, self.message
        )
    }
}

const KNOWN_PARAMETERS: &[&str] = &[
    "keyvaultName",
    "tenantID",
    "tenantId",
    "cloudName",
    "cloudEnvFileName",
    "usePodIdentity",
    "useVMManagedIdentity",
    "userAssignedIdentityID",
    "clientID",
    "useAzureTokenProxy",
    "objects",
];

/// Parameters of very old provider versions that are accepted and ignored.
const LEGACY_PARAMETERS: &[&str] = &["resourceGroup", "subscriptionId"];

/// Lints every SecretProviderClass of this provider in a (multi-document) YAML text. Returns
/// the number of SecretProviderClasses checked and the findings.
pub fn lint(text: &str) -> Result<(usize, Vec<Finding>), ManifestError> {
    let classes = manifest::secret_provider_classes(text)?;
    let mut findings = Vec::new();
    for spc in &classes {
        let mut report = Report {
            document: spc.document,
            resource: format!("SecretProviderClass/{}", spc.name),
            findings: &mut findings,
        };
        check_spc(spc, &mut report);
    }
    Ok((classes.len(), findings))
}

struct Report<'a> {
    document: usize,
    resource: String,
    findings: &'a mut Vec<Finding>,
}

impl Report<'_> {
    fn add(&mut self, severity: Severity, field: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            document: self.document,
            resource: self.resource.clone(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.add(Severity::Error, field, message);
    }

    fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.add(Severity::Warning, field, message);
    }
}

fn check_spc(spc: &SecretProviderClass, r: &mut Report) {
    if !matches!(
        spc.api_version.as_str(),
        "secrets-store.csi.x-k8s.io/v1" | "secrets-store.csi.x-k8s.io/v1alpha1"
    ) {
        r.error(
            "apiVersion",
            format!(
                "{:?} is not a SecretProviderClass version: use secrets-store.csi.x-k8s.io/v1",
                spc.api_version
            ),
        );
    }
    if spc.name.is_empty() {
        r.error("metadata.name", "the SecretProviderClass has no name");
    }
    if spc.provider.is_none() {
        r.error("spec.provider", "set provider: azure");
    }
    if spc.parameters.is_none() {
        r.error("spec.parameters", "the driver refuses a SecretProviderClass without parameters: set keyvaultName, tenantID and objects");
        return;
    }
    let (params, others) = spc.string_parameters();
    check_parameter_names(&params, &others, r);
    let view = Params(&params);
    let mode = match request::identity_mode(&params) {
        Ok(mode) => Some(mode),
        Err(e) => {
            r.error("spec.parameters", e.to_string());
            None
        }
    };
    let parsed = objects::parse_each(view.get("objects"));
    check_vault_tenant_cloud(&view, &parsed, r);
    check_identity(&view, mode, r);
    let files = check_objects(parsed, r);
    check_secret_objects(spc, &files, r);
}

fn check_parameter_names(
    params: &BTreeMap<String, String>,
    others: &[(String, serde_json::Value)],
    r: &mut Report,
) {
    for (key, value) in others {
        r.error(
            format!("spec.parameters.{key}"),
            format!(
                "parameter values must be strings: quote it, e.g. {key}: \"{}\"",
                value.to_string().trim_matches('"')
            ),
        );
    }
    for key in params.keys() {
        if KNOWN_PARAMETERS.contains(&key.as_str()) {
            continue;
        }
        let field = format!("spec.parameters.{key}");
        if let Some(known) = KNOWN_PARAMETERS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(key))
        {
            r.error(field, format!("parameter names are case-sensitive: did you mean {known}? (this one is ignored)"));
        } else if LEGACY_PARAMETERS.contains(&key.as_str()) {
            r.warn(
                field,
                "ignored: this parameter has had no effect since provider v0.0.9; remove it",
            );
        } else {
            r.warn(field, "unknown parameter, ignored by the provider");
        }
    }
}

type Parsed = Result<Vec<Result<ObjectSpec, objects::ObjectsError>>, objects::ObjectsError>;

fn check_vault_tenant_cloud(params: &Params, parsed: &Parsed, r: &mut Report) {
    let get = |k: &str| params.get(k);
    // Objects that do not parse have their own findings; the others must all name a vault.
    let every_object_names_its_vault = parsed.as_ref().is_ok_and(|list| {
        let valid: Vec<&ObjectSpec> = list.iter().filter_map(|o| o.as_ref().ok()).collect();
        !valid.is_empty() && valid.iter().all(|o| o.vault.is_some())
    });
    let vault = get("keyvaultName");
    if vault.is_empty() {
        if !every_object_names_its_vault {
            r.error(
                "spec.parameters.keyvaultName",
                "keyvaultName is not provided: set the name of the vault (or a keyvaultName on every object)",
            );
        }
    } else if let Err(e) = request::validate_vault_name(vault) {
        r.error("spec.parameters.keyvaultName", e.to_string());
    }
    if get("tenantID").is_empty() {
        if get("tenantId").is_empty() {
            r.error(
                "spec.parameters.tenantID",
                "tenantId is not provided: set tenantID to the vault's directory (tenant) id",
            );
        } else {
            r.warn(
                "spec.parameters.tenantId",
                "tenantId is deprecated: rename it to tenantID",
            );
        }
    }
    match CloudName::parse(if get("cloudName").is_empty() { "AzurePublicCloud" } else { get("cloudName") }) {
        Err(e) => r.error("spec.parameters.cloudName", e.to_string()),
        Ok(CloudName::Custom) if get("cloudEnvFileName").is_empty() => r.warn(
            "spec.parameters.cloudEnvFileName",
            "AzureStackCloud needs cloudEnvFileName (a path inside the provider container) unless the provider sets AZURE_ENVIRONMENT_FILEPATH",
        ),
        Ok(_) => {}
    }
}

fn check_identity(params: &Params, mode: Option<Mode>, r: &mut Report) {
    let get = |k: &str| params.get(k);
    match mode {
        Some(Mode::PodIdentity) => r.warn("spec.parameters.usePodIdentity", "aad-pod-identity is deprecated: move to workload identity (clientID) or identity binding"),
        Some(Mode::AzureTokenProxy) if get("clientID").is_empty() => r.error("spec.parameters.clientID", "clientID is required for identity binding"),
        Some(Mode::VmManagedIdentity) if !get("clientID").is_empty() => r.warn(
            "spec.parameters.clientID",
            "clientID is set with useVMManagedIdentity: the pod's workload-identity token is then required but the node identity is used; for a user-assigned identity set userAssignedIdentityID instead",
        ),
        Some(Mode::None) if get("clientID").is_empty() => r.warn(
            "spec.parameters",
            "no identity parameter: pods must reference a Secret with clientid and clientsecret in nodePublishSecretRef (service principal); prefer workload identity (clientID)",
        ),
        _ => {}
    }
    if !get("userAssignedIdentityID").is_empty() && mode != Some(Mode::VmManagedIdentity) {
        r.warn(
            "spec.parameters.userAssignedIdentityID",
            "only used with useVMManagedIdentity: \"true\"",
        );
    }
}

/// Every object's problems; the files the valid ones write.
fn check_objects(parsed: Parsed, r: &mut Report) -> Files {
    let mut files = Files::default();
    match parsed {
        Err(e) => r.error("spec.parameters.objects", e.to_string()),
        Ok(list) => {
            if list.is_empty() {
                r.error("spec.parameters.objects", "the objects array is empty: list at least one object (the driver fails a mount that returns no objects)");
            }
            for (i, object) in list.into_iter().enumerate() {
                match object {
                    Err(e) => r.error(format!("spec.parameters.objects[{i}]"), e.to_string()),
                    Ok(o) => {
                        if o.json_only && o.has_alias {
                            r.warn(format!("spec.parameters.objects[{i}].jsonOnly"), format!("the whole secret is still written, as {:?}, because objectAlias is set: remove objectAlias to write only the jsonPaths files", o.file_name));
                        }
                        for path in files.add(&o) {
                            r.warn(format!("spec.parameters.objects[{i}]"), format!("{path:?} is also written by an earlier object: the driver keeps only one of them (give one an objectAlias)"));
                        }
                    }
                }
            }
        }
    }
    files
}

/// The files a SecretProviderClass writes, as `secretObjects` may name them.
#[derive(Default)]
struct Files {
    all: BTreeSet<String>,
    /// Files of `optional` objects: absent when the object is.
    optional: BTreeSet<String>,
    /// Files that exist only with `--write-cert-and-key-in-separate-files` for a
    /// certificate-backed secret.
    conditional: BTreeSet<String>,
}

impl Files {
    /// Adds an object's files; returns those an earlier object already writes.
    fn add(&mut self, o: &ObjectSpec) -> Vec<String> {
        let mut repeated = Vec::new();
        for file in o.slots().into_iter().flat_map(|slot| o.files(slot)) {
            if o.optional {
                self.optional.insert(file.path.clone());
            }
            if file.is_conditional() {
                self.conditional.insert(file.path);
            } else if !self.all.insert(file.path.clone()) {
                repeated.push(file.path);
            }
        }
        repeated
    }
}

fn check_secret_objects(spc: &SecretProviderClass, files: &Files, r: &mut Report) {
    let Some(list) = &spc.secret_objects else {
        return;
    };
    let Some(list) = list.as_array() else {
        r.error("spec.secretObjects", "must be a list");
        return;
    };
    for (i, so) in list.iter().enumerate() {
        let field = format!("spec.secretObjects[{i}]");
        let kind = so.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if so
            .get("secretName")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .is_empty()
        {
            r.error(
                format!("{field}.secretName"),
                "set the name of the Kubernetes Secret to create",
            );
        }
        if kind.is_empty() {
            r.error(
                format!("{field}.type"),
                "the driver rejects a secretObject without type: use Opaque, kubernetes.io/tls, …",
            );
        }
        for (j, item) in so
            .get("data")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let data_field = format!("{field}.data[{j}]");
            let object_name = item
                .get("objectName")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let key = item.get("key").and_then(|v| v.as_str()).unwrap_or("");
            let split = files.conditional.contains(object_name);
            if !files.all.contains(object_name) && !split {
                let hint = files.all.iter().cloned().collect::<Vec<_>>().join(", ");
                r.error(
                    format!("{data_field}.objectName"),
                    format!("{object_name:?} is not a file this SecretProviderClass writes (files: {hint}); use the objectAlias, a jsonPaths objectAlias, or <name>/<index> with objectVersionHistory"),
                );
            } else if files.optional.contains(object_name) {
                r.warn(
                    format!("{data_field}.objectName"),
                    format!("{object_name:?} comes from an optional object: while it is absent the driver cannot build this Secret (file matching objectName {object_name} not found in the pod)"),
                );
            } else if split {
                r.warn(
                    format!("{data_field}.objectName"),
                    format!("{object_name:?} exists only when the provider runs with --write-cert-and-key-in-separate-files and the secret is certificate-backed"),
                );
            }
            if key.is_empty() {
                r.error(
                    format!("{data_field}.key"),
                    "set the key of the Kubernetes Secret",
                );
            } else if kind == "kubernetes.io/tls" && key != "tls.crt" && key != "tls.key" {
                r.error(format!("{data_field}.key"), format!("key '{key}' is not supported for kubernetes.io/tls: use tls.crt and tls.key"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: good
spec:
  provider: azure
  secretObjects:
    - secretName: redis
      type: Opaque
      data:
        - objectName: redis-password
          key: password
        - objectName: history/1
          key: previous
  parameters:
    keyvaultName: kv-example
    tenantID: 00000000-0000-0000-0000-000000000000
    clientID: 00000000-0000-0000-0000-000000000001
    objects: |
      array:
        - |
          objectName: redis
          objectAlias: redis-password
          objectType: secret
        - |
          objectName: history
          objectType: secret
          objectVersionHistory: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: ignored
"#;

    #[test]
    fn clean_manifest_has_no_findings() {
        let (checked, findings) = lint(GOOD).unwrap();
        assert_eq!(checked, 1);
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn reports_every_problem_with_field() {
        let bad = r#"
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: bad
spec:
  provider: azure
  secretObjects:
    - secretName: tls
      type: kubernetes.io/tls
      data:
        - objectName: missing
          key: cert.pem
  parameters:
    keyvaultName: kv
    tenantid: x
    usePodIdentity: "yes"
    useVMManagedIdentity: true
    objects: |
      array:
        - |
          objectName: a
          objectType: Secret
        - |
          objectName: b
          objectType: secret
          filePermission: "999"
"#;
        let (_, findings) = lint(bad).unwrap();
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(has("spec.parameters.tenantid: parameter names are case-sensitive: did you mean tenantID?"), "{text:#?}");
        assert!(
            has("spec.parameters.useVMManagedIdentity: parameter values must be strings"),
            "{text:#?}"
        );
        assert!(has("failed to parse usePodIdentity flag"), "{text:#?}");
        assert!(
            has("spec.parameters.keyvaultName: failed to get vault: Invalid vault name"),
            "{text:#?}"
        );
        assert!(
            has("spec.parameters.objects[0]: failed to get objectType:Secret"),
            "{text:#?}"
        );
        assert!(
            has("spec.parameters.objects[1]: failed to get objectType:secret, objectName:b"),
            "{text:#?}"
        );
        assert!(has("spec.secretObjects[0].data[0].objectName"), "{text:#?}");
        assert!(
            has("key 'cert.pem' is not supported for kubernetes.io/tls"),
            "{text:#?}"
        );
        assert!(findings
            .iter()
            .all(|f| f.resource == "SecretProviderClass/bad" && f.document == 1));
    }

    #[test]
    fn opt_in_features() {
        let spc = r#"
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: new
spec:
  provider: azure
  secretObjects:
    - secretName: db
      type: Opaque
      data:
        - objectName: db/user
          key: user
        - objectName: flags
          key: flags
        - objectName: config
          key: whole
  parameters:
    tenantID: t
    clientID: c
    objects: |
      array:
        - |
          objectName: config
          objectType: secret
          keyvaultName: kv-a
          jsonOnly: "true"
          jsonPaths:
            - {path: db.user, objectAlias: db/user}
        - |
          objectName: flags
          objectType: secret
          keyvaultName: kv-b
          optional: "true"
        - |
          objectName: all
          objectType: secret
          keyvaultName: kv-b
          objectAlias: all.json
          jsonOnly: "true"
          jsonPaths:
            - {path: "a[", objectAlias: a}
"#;
        let (_, findings) = lint(spc).unwrap();
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(
            !has("keyvaultName is not provided"),
            "every object names its vault: {text:#?}"
        );
        assert!(
            !has("data[0].objectName"),
            "a jsonPaths file may be synced: {text:#?}"
        );
        assert!(
            has(
                "spec.secretObjects[0].data[1].objectName: \"flags\" comes from an optional object"
            ),
            "{text:#?}"
        );
        assert!(
            has("spec.secretObjects[0].data[2].objectName: \"config\" is not a file"),
            "jsonOnly drops the whole secret: {text:#?}"
        );
        assert!(has("spec.parameters.objects[2]: failed to get objectType:secret, objectName:all, objectVersion:: jsonPaths[0] path \"a[\" is not valid"), "{text:#?}");
        let fixed = spc
            .replace("\"a[\"", "a")
            .replace("objectAlias: all.json", "objectAlias: db/user");
        let (_, findings) = lint(&fixed).unwrap();
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(
            has("objects[2].jsonOnly: the whole secret is still written, as \"db/user\""),
            "{text:#?}"
        );
        assert!(
            has("objects[2]: \"db/user\" is also written by an earlier object"),
            "{text:#?}"
        );
        let (_, findings) = lint(&spc.replace("          keyvaultName: kv-a\n", "")).unwrap();
        assert!(findings
            .iter()
            .any(|f| f.to_string().contains("keyvaultName is not provided")));
    }

    #[test]
    fn other_providers_and_kinds_are_skipped() {
        let (checked, findings) =
            lint("kind: SecretProviderClass\nspec:\n  provider: aws\n---\nkind: ConfigMap\n")
                .unwrap();
        assert_eq!((checked, findings.len()), (0, 0));
        assert!(lint("a: [").is_err());
    }
}
