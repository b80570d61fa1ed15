//! Every check with a failing and a passing manifest: one clean application, and for each check
//! the edit that breaks it and the finding that must follow (rule, severity, field).

mod cross;

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
        "so the provider ignores it",
    );
    expect(
        &edited(&[("secretName: db", "secretname: db")]),
        Rule::Spelling,
        Severity::Error,
        "secretObjects[0].secretname",
        "so Kubernetes ignores it",
    );
}
