//! The checks across resources: CSI volumes and their classes, synced Secrets and what reads
//! them, identities against pods, service accounts and node-publish Secrets.

use super::*;

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
        false,
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
}

#[test]
fn secret_object_keys_and_files() {
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
fn workload_and_pod_identities() {
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
    let elsewhere = pod_identity.replace(
        "volumeAttributes: {secretProviderClass: app}",
        "volumeAttributes: {secretProviderClass: app}\n            nodePublishSecretRef: {name: in-the-cluster}",
    );
    expect(
        &elsewhere,
        Rule::Identity,
        Severity::Warning,
        "spec.template.metadata.labels",
        "aadpodidbinding",
    );
}

#[test]
fn service_principal_identity() {
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

/// A node-publish Secret `sp` with `clientid` and `keys` (YAML lines under stringData), mounted
/// by the application without `clientID`.
fn with_principal(keys: &str) -> String {
    let principal = edited(&[("    clientID: 00000000-0000-0000-0000-000000000001\n", "")]);
    principal.replace(
        "volumeAttributes: {secretProviderClass: app}",
        "volumeAttributes: {secretProviderClass: app}\n            nodePublishSecretRef: {name: sp}",
    ) + "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: sp\n  labels: {secrets-store.csi.k8s.io/used: \"true\"}\nstringData:\n  clientid: id\n"
        + keys
}

/// `pem` as a block scalar value of `key` under stringData.
fn block(key: &str, pem: &str) -> String {
    let indented: String = pem.lines().map(|l| format!("    {l}\n")).collect();
    format!("  {key}: |\n{indented}")
}

/// An RSA certificate and its key, valid for two days, made by openssl.
fn fresh_certificate() -> String {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=lint",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl makes the test certificate");
    assert!(out.status.success());
    std::fs::read_to_string(&key).unwrap() + &std::fs::read_to_string(&cert).unwrap()
}

#[test]
fn certificate_service_principals() {
    let good = with_principal(&block("clientcertificate", &fresh_certificate()));
    assert!(
        lint(&good).findings.is_empty(),
        "{:#?}",
        lint(&good).findings
    );
    // The Go provider's test certificate and key: a pair, expired in 2021.
    let go = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/go-provider/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let expired = go("get-secret-test-private-key.pem") + &go("get-secret-test-cert.pem");
    expect(
        &with_principal(&block("clientcertificate", &expired)),
        Rule::Mount,
        Severity::Error,
        "csi.nodePublishSecretRef",
        "expired at 2021-05-22",
    );
    expect(
        &with_principal(
            &(block("clientcertificate", &fresh_certificate()) + "  clientsecret: s\n"),
        ),
        Rule::Mount,
        Severity::Error,
        "csi.nodePublishSecretRef",
        "clientsecret",
    );
}

#[test]
fn client_id_from_the_service_account() {
    let without = edited(&[("    clientID: 00000000-0000-0000-0000-000000000001\n", "")]);
    let with_flag = |text: &str| {
        let source = inputs::Source {
            name: "-".into(),
            text: text.into(),
        };
        check(&[source], false, true).findings
    };
    assert!(with_flag(&without).is_empty(), "{:#?}", with_flag(&without));
    let unannotated = without.replace(
        "    azure.workload.identity/client-id: 00000000-0000-0000-0000-000000000001\n",
        "    azure.workload.identity/client_id: 00000000-0000-0000-0000-000000000001\n",
    );
    let findings = with_flag(&unannotated);
    assert!(
        findings.iter().any(|f| f.rule == Rule::Mount
            && f.field.ends_with("serviceAccountName")
            && f.message
                .contains("has no azure.workload.identity/client-id annotation")),
        "{findings:#?}"
    );
    let tenantless = without.replace("    tenantID: 00000000-0000-0000-0000-000000000000\n", "");
    assert_ne!(tenantless, without);
    let findings = with_flag(&tenantless);
    assert!(
        findings.iter().all(|f| f.severity == Severity::Warning)
            && findings
                .iter()
                .any(|f| f.message.contains("azure.workload.identity/tenant-id")),
        "{findings:#?}"
    );
    expect(
        &edited(&[(
            "    clientID:",
            "    usePodServiceAccountAnnotation: \"true\"\n    clientID:",
        )]),
        Rule::Parameters,
        Severity::Warning,
        "spec.parameters.usePodServiceAccountAnnotation",
        "Azure/secrets-store-csi-driver-provider-azure#1443",
    );
}
