//! The command-line tools: `lint` on good and broken manifests, and `mount` (dry run without
//! network, and a real mount against the fakes writing files with their modes).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_akv-csi-provider");

fn spc(params: &str) -> String {
    format!("apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: app\nspec:\n  provider: azure\n  parameters:\n{params}")
}

#[test]
fn lint_reports_every_problem_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, spc("    keyvaultName: kv-example\n    tenantID: t\n    clientID: c\n    objects: |\n      array:\n        - |\n          objectName: s\n          objectType: secret\n")).unwrap();
    let out = Command::new(BIN).arg("lint").arg(&good).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("good.yaml: ok (1 SecretProviderClass checked, 1 resource)"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, spc("    keyvaultname: kv\n    tenantID: t\n    objects: |\n      array:\n        - |\n          objectName: s\n          objectType: secrets\n")).unwrap();
    let out = Command::new(BIN).arg("lint").arg(&bad).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("bad.yaml: SecretProviderClass/app\n"),
        "{stdout}"
    );
    assert!(stdout.contains("bad.yaml:8:19: error: spec.parameters.keyvaultname: keyvaultname is not a parameter of this provider, which ignores it: parameter names are case-sensitive [spelling]\n      fix: rename it to keyvaultName\n"), "{stdout}");
    assert!(
        stdout.contains(
            "bad.yaml:7:3: error: spec.parameters.keyvaultName: keyvaultName is not provided [mount]"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad.yaml:14:23: error: spec.parameters.objects[0].objectType: failed to get objectType:secrets, objectName:s"),
        "{stdout}"
    );
    assert!(stdout.contains("      fix: objectType: secret"), "{stdout}");
    assert!(
        stdout.ends_with("3 errors, 0 warnings in 1 file (1 resource, 1 SecretProviderClass)\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn mount_dry_run_and_real_mount() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().unwrap();
    let params = env.params(&objects(&[
        "objectName: api-key\nobjectType: secret\nfilePermission: \"0600\"",
        "objectName: db-password\nobjectType: secret\nobjectAlias: db/password",
        "objectName: gone\nobjectType: secret\noptional: true\nkeyvaultName: kv-test",
    ]));
    let yaml_params: String = params
        .iter()
        .map(|(k, v)| format!("    {k}: {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    let file = dir.path().join("spc.yaml");
    std::fs::write(&file, spc(&yaml_params)).unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SP_SECRET).unwrap();

    let out = tokio::process::Command::new(BIN)
        .args([
            "mount",
            "--pod-namespace",
            "default",
            "--dry-run",
            "--client-id",
            SP_CLIENT,
        ])
        .arg("--client-secret-file")
        .arg(&secret_file)
        .arg("--spc")
        .arg(&file)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("vault:    https://kv-test.vault.akv.test/"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "identity: service principal, client id {SP_CLIENT}"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("db/password  0644  secret db-password (latest)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gone  0644  secret gone (latest, optional)"),
        "{stdout}"
    );
    assert!(
        env.azure.keyvault.requests().is_empty() && env.azure.entra.request_count() == 0,
        "dry run makes no network call"
    );

    let out_dir = dir.path().join("out");
    let mut mount = tokio::process::Command::new(BIN);
    // Like the server, `mount` honours proxy variables; a developer's must not apply here.
    for name in testkit::tinyproxy::PROXY_VARIABLES {
        mount.env_remove(name);
    }
    let out = mount
        .args([
            "mount",
            "--pod-namespace",
            "default",
            "--client-id",
            SP_CLIENT,
        ])
        .arg("--client-secret-file")
        .arg(&secret_file)
        .arg("--spc")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .args(env.azure.provider_args())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains(API_KEY) && !stdout.contains(SP_SECRET),
        "the listing shows no secret"
    );
    assert!(
        stdout.contains("skipped optional secret/gone (not found)"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(out_dir.join("api-key")).unwrap(),
        API_KEY.as_bytes()
    );
    assert_eq!(
        std::fs::metadata(out_dir.join("api-key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read(out_dir.join("db/password")).unwrap(),
        DB_PASSWORD.as_bytes()
    );
}

#[test]
fn every_example_lints_clean() {
    let examples = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect::<Vec<_>>();
    assert!(examples.len() >= 10, "examples found: {examples:?}");
    let out = Command::new(BIN)
        .args(["lint", "--strict"])
        .args(&examples)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("\n0 errors, 0 warnings in "),
        "no finding at all: {stdout}"
    );
    let clean = stdout
        .lines()
        .filter(|l| l.contains(": ok (") && !l.contains(": ok (0 SecretProviderClasses"))
        .count();
    assert_eq!(
        clean,
        examples.len(),
        "every file holds a SecretProviderClass and has no finding: {stdout}"
    );
}
