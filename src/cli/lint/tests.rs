//! Every check with a failing and a passing manifest: one clean application, and for each check
//! the edit that breaks it and the finding that must follow (rule, severity, field).

use super::*;

/// A workload-identity application with a synced Secret read through env, envFrom and an
/// Ingress: every check passes.
const APP: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  annotations:
    azure.workload.identity/client-id: 00000000-0000-0000-0000-000000000001
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: app
spec:
  provider: azure
  parameters:
    keyvaultName: kv-example
    tenantID: 00000000-0000-0000-0000-000000000000
    clientID: 00000000-0000-0000-0000-000000000001
    objects: |
      array:
        - |
          objectName: db-password
          objectType: secret
        - |
          objectName: web-cert
          objectType: secret
  secretObjects:
    - secretName: db
      type: Opaque
      data:
        - objectName: db-password
          key: password
    - secretName: web-tls
      type: kubernetes.io/tls
      data:
        - objectName: web-cert
          key: tls.crt
        - objectName: web-cert
          key: tls.key
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata:
      labels: {app: app}
    spec:
      serviceAccountName: app
      containers:
        - name: app
          image: app:1
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {name: db, key: password}
          envFrom:
            - secretRef: {name: db}
          volumeMounts:
            - {name: secrets, mountPath: /mnt/secrets, readOnly: true}
      volumes:
        - name: secrets
          csi:
            driver: secrets-store.csi.k8s.io
            readOnly: true
            volumeAttributes: {secretProviderClass: app}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
spec:
  tls:
    - hosts: [app.example.com]
      secretName: web-tls
  rules: []
"#;

/// The application with `edits` applied, each `(from, to)` replacing the first occurrence.
fn edited(edits: &[(&str, &str)]) -> String {
    edits.iter().fold(APP.to_string(), |text, (from, to)| {
        assert!(text.contains(from), "{from:?} is in the application");
        text.replacen(from, to, 1)
    })
}

/// Asserts a finding of `rule` and `severity` whose field contains `field` and whose message
/// contains `message`.
#[track_caller]
fn expect(text: &str, rule: Rule, severity: Severity, field: &str, message: &str) {
    let outcome = lint(text);
    assert!(
        outcome.findings.iter().any(|f| f.rule == rule
            && f.severity == severity
            && f.field.contains(field)
            && f.message.contains(message)),
        "no {rule:?} {severity:?} at {field} with {message:?}: {:#?}",
        outcome.findings
    );
}

#[test]
fn the_application_is_clean() {
    let outcome = lint(APP);
    assert!(outcome.findings.is_empty(), "{:#?}", outcome.findings);
    assert_eq!(outcome.summary().secret_provider_classes, 1);
}

#[test]
fn placeholders_anywhere() {
    for tenant in [
        "\"${TENANT_ID}\"",
        "\"......\"",
        "<tenant-id>",
        "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        "\"[REDACTED]\"",
    ] {
        let text = edited(&[(
            "tenantID: 00000000-0000-0000-0000-000000000000",
            &format!("tenantID: {tenant}"),
        )]);
        expect(
            &text,
            Rule::Placeholder,
            Severity::Error,
            "spec.parameters.tenantID",
            "looks like a placeholder",
        );
        assert_eq!(lint(&text).findings.len(), 1, "reported once: {tenant}");
    }
    let volume = edited(&[(
        "{secretProviderClass: app}",
        "{secretProviderClass: app, clientID: \"{{ .Values.clientId }}\"}",
    )]);
    expect(
        &volume,
        Rule::Placeholder,
        Severity::Error,
        "volumeAttributes.clientID",
        "looks like a placeholder",
    );
    let object = edited(&[("objectName: web-cert", "objectName: $CERT_NAME")]);
    expect(
        &object,
        Rule::Mount,
        Severity::Error,
        "objects[1].objectName",
        "looks like a placeholder",
    );
}

#[test]
fn the_mounts_own_errors() {
    let text = edited(&[("objectType: secret", "objectType: string")]);
    expect(
        &text,
        Rule::Mount,
        Severity::Error,
        "spec.parameters.objects[0].objectType",
        "failed to get objectType:string, objectName:db-password",
    );
    let fix = lint(&text)
        .findings
        .into_iter()
        .find(|f| f.rule == Rule::Mount)
        .and_then(|f| f.fix);
    assert_eq!(
        fix.as_deref(),
        Some("objectType: secret (case-sensitive: secret, key or cert)")
    );
    expect(
        &edited(&[("kv-example", "kv_example")]),
        Rule::Mount,
        Severity::Error,
        "spec.parameters.keyvaultName",
        "Invalid vault name",
    );
    expect(
        &edited(&[(
            "    clientID: 00000000-0000-0000-0000-000000000001\n",
            "    clientID: 00000000-0000-0000-0000-000000000001\n    usePodIdentity: \"yes\"\n",
        )]),
        Rule::Mount,
        Severity::Error,
        "spec.parameters.usePodIdentity",
        "failed to parse usePodIdentity flag",
    );
    expect(
        &edited(&[(
            "    clientID: 00000000-0000-0000-0000-000000000001\n",
            "    useAzureTokenProxy: \"true\"\n",
        )]),
        Rule::Mount,
        Severity::Error,
        "spec.parameters.clientID",
        "clientID is required for identity binding",
    );
}

#[test]
fn parameter_names_and_types() {
    let text = edited(&[("keyvaultName: kv-example", "keyVaultName: kv-example")]);
    expect(
        &text,
        Rule::Spelling,
        Severity::Error,
        "spec.parameters.keyVaultName",
        "case-sensitive",
    );
    expect(
        &text,
        Rule::Mount,
        Severity::Error,
        "spec.parameters.keyvaultName",
        "keyvaultName is not provided",
    );
    let unquoted = edited(&[(
        "    clientID: 00000000-0000-0000-0000-000000000001\n",
        "    clientID: 00000000-0000-0000-0000-000000000001\n    useVMManagedIdentity: off\n",
    )]);
    expect(
        &unquoted,
        Rule::Parameters,
        Severity::Error,
        "spec.parameters.useVMManagedIdentity",
        "must be strings",
    );
    expect(
        &edited(&[("    objects: |", "    subscriptionId: abc\n    objects: |")]),
        Rule::Deprecated,
        Severity::Warning,
        "spec.parameters.subscriptionId",
        "no effect",
    );
    expect(
        &edited(&[("    objects: |", "    color: blue\n    objects: |")]),
        Rule::Parameters,
        Severity::Warning,
        "spec.parameters.color",
        "unknown parameter",
    );
    expect(
        &edited(&[("tenantID:", "tenantId:")]),
        Rule::Deprecated,
        Severity::Warning,
        "spec.parameters.tenantId",
        "deprecated",
    );
}

#[test]
fn deprecated_versions_and_modes() {
    let alpha = edited(&[(
        "secrets-store.csi.x-k8s.io/v1\n",
        "secrets-store.csi.x-k8s.io/v1alpha1\n",
    )]);
    expect(
        &alpha,
        Rule::Deprecated,
        Severity::Warning,
        "apiVersion",
        "v1alpha1 is deprecated",
    );
    let ignored = alpha.replace(
        "  name: app\nspec:\n  provider",
        "  name: app\n  annotations: {akv-csi-provider/lint-ignore: deprecated}\nspec:\n  provider",
    );
    assert!(
        lint(&ignored).findings.is_empty(),
        "the annotation accepts it"
    );
    expect(
        &edited(&[("networking.k8s.io/v1\n", "networking.k8s.io/v1beta1\n")]),
        Rule::Deprecated,
        Severity::Warning,
        "apiVersion",
        "removed in Kubernetes 1.22",
    );
    let pod_identity = edited(&[(
        "    clientID: 00000000-0000-0000-0000-000000000001\n",
        "    usePodIdentity: \"true\"\n",
    )]);
    expect(
        &pod_identity,
        Rule::Deprecated,
        Severity::Warning,
        "spec.parameters.usePodIdentity",
        "deprecated",
    );
}

#[test]
fn near_misses() {
    expect(
        &edited(&[("kind: SecretProviderClass", "kind: secretProviderClass")]),
        Rule::Spelling,
        Severity::Error,
        "kind",
        "case-sensitive",
    );
    expect(
        &edited(&[("provider: azure", "provider: Azure")]),
        Rule::Spelling,
        Severity::Error,
        "spec.provider",
        "azure.sock",
    );
    expect(
        &edited(&[(
            "secrets-store.csi.x-k8s.io/v1\n",
            "secrets-store.csi.k8s.io/v1\n",
        )]),
        Rule::Spelling,
        Severity::Error,
        "apiVersion",
        "API group",
    );
    expect(
        &edited(&[(
            "driver: secrets-store.csi.k8s.io",
            "driver: secrets-store.csi.k8s.com",
        )]),
        Rule::Spelling,
        Severity::Error,
        "volumes[0].csi.driver",
        "no CSI driver",
    );
    expect(
        &edited(&[("{secretProviderClass: app}", "{secretproviderclass: app}")]),
        Rule::Spelling,
        Severity::Error,
        "volumeAttributes.secretproviderclass",
        "not the attribute",
    );
    expect(
        &edited(&[(
            "objectName: web-cert\n          objectType",
            "objectname: web-cert\n          objectType",
        )]),
        Rule::Spelling,
        Severity::Error,
        "objects[1].objectname",
        "not an object field",
    );
    expect(
        &edited(&[("secretName: db", "secretname: db")]),
        Rule::Spelling,
        Severity::Error,
        "secretObjects[0].secretname",
        "drops it",
    );
}

#[test]
fn csi_volumes() {
    expect(
        &edited(&[("            readOnly: true\n", "")]),
        Rule::Volume,
        Severity::Error,
        "volumes[0].csi.readOnly",
        "Readonly is not true",
    );
    expect(
        &edited(&[("{secretProviderClass: app}", "{}")]),
        Rule::Volume,
        Severity::Error,
        "volumes[0].csi.volumeAttributes",
        "needs volumeAttributes.secretProviderClass",
    );
    let unmounted = edited(&[("          volumeMounts:\n            - {name: secrets, mountPath: /mnt/secrets, readOnly: true}\n", "")]);
    expect(
        &unmounted,
        Rule::Volume,
        Severity::Warning,
        "volumes[0].csi",
        "kubelet skips a volume",
    );
    expect(
        &unmounted,
        Rule::SecretConsumer,
        Severity::Error,
        "secretKeyRef",
        "the Secret db is never created: app declares",
    );
    expect(
        &unmounted,
        Rule::SecretConsumer,
        Severity::Error,
        "spec.tls[0].secretName",
        "the Secret web-tls is never created",
    );
}

#[test]
fn missing_or_misplaced_classes() {
    let other = edited(&[("{secretProviderClass: app}", "{secretProviderClass: other}")]);
    expect(
        &other,
        Rule::MissingClass,
        Severity::Warning,
        "volumeAttributes.secretProviderClass",
        "not among the documents",
    );
    let strict = check(
        &[inputs::Source {
            name: "-".into(),
            text: other,
        }],
        true,
    );
    assert!(strict
        .findings
        .iter()
        .any(|f| f.rule == Rule::MissingClass && f.severity == Severity::Error));
    let namespaces = edited(&[
        (
            "  name: app\nspec:\n  provider",
            "  name: app\n  namespace: a\nspec:\n  provider",
        ),
        (
            "kind: Deployment\nmetadata:\n  name: app\n",
            "kind: Deployment\nmetadata:\n  name: app\n  namespace: b\n",
        ),
    ]);
    expect(
        &namespaces,
        Rule::MissingClass,
        Severity::Error,
        "volumeAttributes.secretProviderClass",
        "is in namespace a, this pod in b",
    );
}

#[test]
fn secret_objects() {
    let typed = edited(&[("type: Opaque", "type: Secret")]);
    expect(
        &typed,
        Rule::SecretSync,
        Severity::Warning,
        "secretObjects[0].type",
        "not a Kubernetes Secret type",
    );
    assert_eq!(
        lint(&typed).findings[0].fix.as_deref(),
        Some("type: Opaque")
    );
    assert!(
        lint(&edited(&[("type: Opaque", "type: example.com/config")]))
            .findings
            .is_empty(),
        "custom types with a domain are fine"
    );
    expect(
        &edited(&[("      type: Opaque\n", "")]),
        Rule::SecretSync,
        Severity::Error,
        "secretObjects[0].type",
        "without type",
    );
    let no_key = edited(&[(
        "        - objectName: web-cert\n          key: tls.key\n",
        "",
    )]);
    expect(
        &no_key,
        Rule::SecretSync,
        Severity::Error,
        "secretObjects[1].data",
        "needs the key(s) tls.crt, tls.key",
    );
    expect(
        &edited(&[
            ("type: Opaque", "type: kubernetes.io/basic-auth"),
            ("key: password", "key: secret"),
        ]),
        Rule::SecretSync,
        Severity::Error,
        "secretObjects[0].data",
        "one of the key(s) username, password",
    );
    expect(
        &edited(&[("key: tls.crt", "key: cert.pem")]),
        Rule::SecretSync,
        Severity::Error,
        "secretObjects[1].data[0].key",
        "not supported for kubernetes.io/tls",
    );
    expect(
        &edited(&[("key: password", "key: db/password")]),
        Rule::SecretSync,
        Severity::Error,
        "secretObjects[0].data[0].key",
        "not a valid Secret key",
    );
    expect(
        &edited(&[(
            "- objectName: db-password\n          key",
            "- objectName: db-pass\n          key",
        )]),
        Rule::SecretSync,
        Severity::Error,
        "data[0].objectName",
        "not a file this SecretProviderClass writes",
    );
    let cert = edited(&[(
        "objectName: web-cert\n          objectType: secret",
        "objectName: web-cert\n          objectType: cert",
    )]);
    expect(
        &cert,
        Rule::SecretSync,
        Severity::Error,
        "secretObjects[1].data[1].objectName",
        "holds no private key",
    );
}

#[test]
fn objects_files_from_the_mounts_own_list() {
    let history = edited(&[("objectName: db-password\n          objectType: secret", "objectName: db-password\n          objectType: secret\n          objectVersionHistory: 2"), ("- objectName: db-password\n          key", "- objectName: db-password/1\n          key")]);
    assert!(
        lint(&history).findings.is_empty(),
        "{:#?}",
        lint(&history).findings
    );
    let alias = edited(&[(
        "objectType: secret\n        - |",
        "objectType: secret\n          objectAlias: db/password\n        - |",
    )]);
    expect(
        &alias,
        Rule::SecretSync,
        Severity::Error,
        "data[0].objectName",
        "(files: db/password, web-cert)",
    );
    let twice = edited(&[(
        "objectName: web-cert\n          objectType: secret",
        "objectName: web-cert\n          objectType: secret\n          objectAlias: db-password",
    )]);
    expect(
        &twice,
        Rule::Objects,
        Severity::Warning,
        "spec.parameters.objects[1]",
        "also written by an earlier object",
    );
}

#[test]
fn secret_consumers() {
    expect(
        &edited(&[("{name: db, key: password}", "{name: db, key: pass}")]),
        Rule::SecretConsumer,
        Severity::Error,
        "env[0].valueFrom.secretKeyRef",
        "has no key pass",
    );
    let other_consumer = edited(&[("kind: Ingress", "kind: Ignored")]).replace(
        "\n---\napiVersion: apps/v1\nkind: Deployment",
        "\n---\napiVersion: apps/v1\nkind: Ignored",
    );
    expect(
        &other_consumer,
        Rule::SecretConsumer,
        Severity::Warning,
        "spec.secretObjects",
        "no workload among the documents mounts",
    );
}

#[test]
fn identities() {
    let account = edited(&[("serviceAccountName: app", "serviceAccountName: default")]);
    expect(
        &account,
        Rule::Identity,
        Severity::Warning,
        "serviceAccountName",
        "ServiceAccount app is the one annotated",
    );
    let annotation = edited(&[(
        "client-id: 00000000-0000-0000-0000-000000000001",
        "client-id: 00000000-0000-0000-0000-000000000009",
    )]);
    expect(
        &annotation,
        Rule::Identity,
        Severity::Warning,
        "serviceAccountName",
        "AADSTS700016",
    );
    let pod_identity = edited(&[(
        "    clientID: 00000000-0000-0000-0000-000000000001\n",
        "    usePodIdentity: \"true\"\n",
    )]);
    expect(
        &pod_identity,
        Rule::Identity,
        Severity::Warning,
        "spec.template.metadata.labels",
        "aadpodidbinding",
    );
    assert!(!lint(&pod_identity.replace(
        "labels: {app: app}",
        "labels: {app: app, aadpodidbinding: id}"
    ))
    .findings
    .iter()
    .any(|f| f.rule == Rule::Identity));
    let principal = edited(&[("    clientID: 00000000-0000-0000-0000-000000000001\n", "")]);
    expect(
        &principal,
        Rule::Mount,
        Severity::Error,
        "volumes[0].csi",
        "nodePublishSecretRef secret is not set",
    );
    let secret =
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: sp\nstringData:\n  clientid: id\n";
    let with_ref = principal.replace("volumeAttributes: {secretProviderClass: app}", "volumeAttributes: {secretProviderClass: app}\n            nodePublishSecretRef: {name: sp}") + secret;
    expect(
        &with_ref,
        Rule::Mount,
        Severity::Error,
        "csi.nodePublishSecretRef",
        "could not find clientsecret",
    );
    let keys = with_ref + "  clientsecret: s\n";
    expect(
        &keys,
        Rule::Identity,
        Severity::Warning,
        "metadata.labels",
        "secrets-store.csi.k8s.io/used",
    );
    let fixed = keys.replace(
        "  name: sp\n",
        "  name: sp\n  labels: {secrets-store.csi.k8s.io/used: \"true\"}\n",
    );
    assert!(
        lint(&fixed).findings.is_empty(),
        "{:#?}",
        lint(&fixed).findings
    );
}

#[test]
fn yaml_errors_leave_the_rest_checked() {
    let text = format!("a: [\n---\n{}", edited(&[("type: Opaque", "type: Secret")]));
    let outcome = lint(&text);
    assert_eq!(outcome.findings[0].rule, Rule::Yaml);
    assert_eq!(
        (outcome.findings[0].pos.line, outcome.findings[0].document),
        (1, 1)
    );
    assert!(outcome
        .findings
        .iter()
        .any(|f| f.rule == Rule::SecretSync && f.document == 3));
}
