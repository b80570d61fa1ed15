//! `akv-csi-provider lint` on manifests as users write them (tests/fixtures/lint), through the
//! real binary: findings at the right file, line and column, the three output formats, exit
//! statuses, standard input and directories.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_akv-csi-provider");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lint");

fn lint(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("lint")
        .args(args)
        .current_dir(FIXTURES)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(line, column, rule)` of every finding of a file, from the JSON output.
fn positions(file: &str, strict: bool) -> Vec<(u64, u64, String, String)> {
    let mut args = vec!["--output", "json", file];
    if strict {
        args.insert(0, "--strict");
    }
    let report: serde_json::Value = serde_json::from_slice(&lint(&args).stdout).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn finding(line: u64, column: u64, rule: &str, severity: &str) -> (u64, u64, String, String) {
    (line, column, rule.to_string(), severity.to_string())
}

#[test]
fn tutorial_pod_identity_app() {
    let out = lint(&["tutorial-pod-identity.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("tutorial-pod-identity.yaml: SecretProviderClass/azure-kvname-podid\n"),
        "{text}"
    );
    assert!(text.contains("  tutorial-pod-identity.yaml:25:15: error: spec.parameters.tenantId: tenantId \"${IDENTITY_TENANT}\" looks like a placeholder left from a template or tutorial: set it to the directory (tenant) id of the vault's Entra ID tenant (a GUID) or its domain name [placeholder]\n"), "{text}");
    assert!(text.contains("  tutorial-pod-identity.yaml:12:11: warning: spec.secretObjects[0].type: \"Secret\" is not a Kubernetes Secret type"), "{text}");
    assert!(text.contains("      fix: type: Opaque\n"), "{text}");
    assert!(text.contains("  tutorial-pod-identity.yaml:4:13: warning: apiVersion: secrets-store.csi.x-k8s.io/v1alpha1 is deprecated [deprecated]\n      fix: apiVersion: secrets-store.csi.x-k8s.io/v1 (same fields)\n"), "{text}");
    assert!(
        text.ends_with("1 error, 3 warnings in 1 file (2 resources, 1 SecretProviderClass)\n"),
        "{text}"
    );

    let fixed = lint(&["tutorial-pod-identity-fixed.yaml"]);
    assert_eq!(
        fixed.status.code(),
        Some(0),
        "warnings only: {}",
        stdout(&fixed)
    );
    assert_eq!(
        positions("tutorial-pod-identity-fixed.yaml", false),
        [finding(17, 21, "deprecated", "warning")],
        "pod identity itself stays deprecated"
    );
    assert_eq!(
        lint(&["--strict", "tutorial-pod-identity-fixed.yaml"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn workload_identity_app_with_its_service_account() {
    let out = lint(&["--strict", "workload-identity-app.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        positions("workload-identity-wrong-account.yaml", false),
        [finding(51, 27, "identity", "warning")]
    );
    let text = stdout(&lint(&["workload-identity-wrong-account.yaml"]));
    assert!(text.contains("the pod runs as service account orders, but ServiceAccount orders-api is the one annotated with clientID 6f2a1c3e-8b4d-4e5f-9a0b-1c2d3e4f5a6b"), "{text}");
    assert!(
        text.contains("      fix: serviceAccountName: orders-api\n"),
        "{text}"
    );
}

#[test]
fn ingress_tls_synced_as_kubernetes_io_tls() {
    assert_eq!(
        positions("ingress-tls.yaml", false),
        [
            finding(12, 3, "secret-consumer", "warning"),
            finding(16, 23, "secret-sync", "error"),
            finding(57, 11, "volume", "warning"),
            finding(85, 19, "secret-consumer", "error"),
        ]
    );
    let text = stdout(&lint(&["ingress-tls.yaml"]));
    assert!(text.contains("spec.tls[0].secretName: the Secret ingress-tls-csi is never created: aks-helloworld-one declares the SecretProviderClass azure-tls volume but no container lists it in volumeMounts"), "{text}");
    assert!(
        text.contains(
            "\"aks-ingress-cert\" comes from a cert or key object, which holds no private key"
        ),
        "{text}"
    );
    let fixed = lint(&["--strict", "ingress-tls-fixed.yaml"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", stdout(&fixed));
}

#[test]
fn helm_rendered_stream_and_kubectl_list() {
    assert_eq!(
        positions("helm-rendered.yaml", true),
        [finding(46, 15, "placeholder", "error")]
    );
    let text = stdout(&lint(&["helm-rendered.yaml"]));
    assert!(text.contains("helm-rendered.yaml: SecretProviderClass/payments-kv\n  helm-rendered.yaml:46:15: error: spec.parameters.tenantID: tenantID \"<your-tenant-id>\" looks like a placeholder"), "{text}");
    assert!(
        text.ends_with("in 1 file (4 resources, 1 SecretProviderClass)\n"),
        "{text}"
    );
    assert_eq!(
        positions("kubectl-list.yaml", true),
        [finding(59, 7, "volume", "error")],
        "List items are resources, positioned in the list"
    );
    assert!(stdout(&lint(&["kubectl-list.yaml"])).contains("kubectl-list.yaml: Pod/app (namespace default)\n  kubectl-list.yaml:59:7: error: spec.volumes[0].csi.readOnly: the driver refuses a volume without readOnly: true"));
}

#[test]
fn yaml_that_does_not_parse_leaves_the_rest_checked() {
    let out = lint(&["broken-stream.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("broken-stream.yaml: document 2\n  broken-stream.yaml:13:15: error: not valid YAML: while parsing a flow sequence, expected ',' or ']' [yaml]\n"), "{text}");
    assert!(text.contains("broken-stream.yaml:23:15: error: spec.parameters.tenantID: tenantID \"......\" looks like a placeholder"), "{text}");
}

#[test]
fn json_output_schema() {
    let out = lint(&[
        "--output",
        "json",
        "tutorial-pod-identity.yaml",
        "workload-identity-app.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["version"], 1);
    assert_eq!(report["tool"]["name"], "akv-csi-provider");
    assert_eq!(report["strict"], false);
    assert_eq!(
        report["summary"],
        serde_json::json!({"files": 2, "documents": 5, "resources": 5, "secretProviderClasses": 2, "errors": 1, "warnings": 3})
    );
    assert_eq!(report["inputErrors"], serde_json::json!([]));
    let placeholder = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "placeholder")
        .unwrap();
    assert_eq!(
        placeholder,
        &serde_json::json!({
            "rule": "placeholder", "severity": "error", "file": "tutorial-pod-identity.yaml",
            "line": 25, "column": 15, "document": 1, "kind": "SecretProviderClass",
            "name": "azure-kvname-podid", "namespace": "", "field": "spec.parameters.tenantId",
            "message": "tenantId \"${IDENTITY_TENANT}\" looks like a placeholder left from a template or tutorial: set it to the directory (tenant) id of the vault's Entra ID tenant (a GUID) or its domain name",
            "fix": null
        })
    );
}

#[test]
fn sarif_for_code_scanning() {
    let out = lint(&["--output", "sarif", "ingress-tls.yaml"]);
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(
        log["$schema"],
        "https://json.schemastore.org/sarif-2.1.0.json"
    );
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"secret-consumer") && ids.contains(&"placeholder"));
    assert!(rules
        .iter()
        .all(|r| !r["help"]["text"].as_str().unwrap().is_empty()
            && ["error", "warning"]
                .contains(&r["defaultConfiguration"]["level"].as_str().unwrap())));
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(result["ruleId"], rules[index]["id"]);
        assert!(["error", "warning"].contains(&result["level"].as_str().unwrap()));
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "ingress-tls.yaml");
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(location["region"]["startColumn"].as_u64().unwrap() >= 1);
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
    }
    let never = results
        .iter()
        .find(|r| r["level"] == "error" && r["ruleId"] == "secret-consumer")
        .unwrap();
    assert_eq!(
        never["locations"][0]["physicalLocation"]["region"],
        serde_json::json!({"startLine": 85, "startColumn": 19})
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
}

#[test]
fn standard_input_and_directories() {
    let mut child = Command::new(BIN)
        .args(["lint", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(format!("{FIXTURES}/helm-rendered.yaml")).unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("  -:46:15: error: spec.parameters.tenantID"),
        "{}",
        stdout(&out)
    );

    // A class in one file and its workload in another, found by walking the directory.
    let dir = tempfile::tempdir().unwrap();
    let app = std::fs::read_to_string(format!("{FIXTURES}/workload-identity-app.yaml")).unwrap();
    let (class, workload) = app.split_at(app.find("---\napiVersion: apps/v1").unwrap());
    std::fs::create_dir_all(dir.path().join("base/deploy")).unwrap();
    std::fs::write(dir.path().join("base/class.yml"), class).unwrap();
    std::fs::write(dir.path().join("base/deploy/app.yaml"), workload).unwrap();
    std::fs::write(dir.path().join("base/README.md"), "not yaml").unwrap();
    let out = Command::new(BIN)
        .args(["lint", "--strict"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("class.yml: ok (1 SecretProviderClass checked, 2 resources)"),
        "{text}"
    );
    let alone = Command::new(BIN)
        .args(["lint", "--strict"])
        .arg(dir.path().join("base/deploy/app.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        alone.status.code(),
        Some(1),
        "the class is missing: {}",
        stdout(&alone)
    );
    assert!(
        stdout(&alone).contains("SecretProviderClass orders-kv is not among the documents linted")
    );
}

#[test]
fn unusable_input_exits_2() {
    let missing = lint(&["no-such-file.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read no-such-file.yaml"));
    let partly = lint(&[
        "--output",
        "json",
        "no-such-file.yaml",
        "workload-identity-app.yaml",
    ]);
    assert_eq!(
        partly.status.code(),
        Some(2),
        "the readable file is still checked"
    );
    let report: serde_json::Value = serde_json::from_slice(&partly.stdout).unwrap();
    assert_eq!(report["inputErrors"][0]["path"], "no-such-file.yaml");
    assert_eq!(report["summary"]["secretProviderClasses"], 1);

    let dir = tempfile::tempdir().unwrap();
    let empty = Command::new(BIN)
        .arg("lint")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        empty.status.code(),
        Some(2),
        "a directory without manifests"
    );
    let comments = dir.path().join("comments.yaml");
    std::fs::write(&comments, "# nothing here\n---\n").unwrap();
    let nothing = Command::new(BIN)
        .arg("lint")
        .arg(&comments)
        .output()
        .unwrap();
    assert_eq!(nothing.status.code(), Some(2), "no YAML documents at all");
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no YAML documents found"));
    assert_eq!(
        lint(&["--output", "xml", "helm-rendered.yaml"])
            .status
            .code(),
        Some(2),
        "bad flags"
    );
    assert_eq!(lint(&[]).status.code(), Some(2), "no path");
}
