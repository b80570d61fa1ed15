//! The opt-in features beyond the Go provider, through the socket: `optional` objects, values
//! extracted from JSON secrets with `jsonPaths`/`jsonOnly`, and objects from several vaults in
//! one SecretProviderClass. Each with its error paths and its interaction with aliases, version
//! history and `secretObjects` sync. (That SPCs without these keys answer byte for byte as
//! before is tests/compat.rs.)

mod common;

use std::time::Duration;

use common::*;
use testkit::driver::{self, SecretObject};
use testkit::fault::Fault;

const OTHER_VAULT: &str = "kv-other";
const CONFIG_V1: &str = r#"{"db":{"user":"app","password":"pw-old"},"port":5432}"#;
const CONFIG_V2: &str = r#"{"db": {"user": "app", "password": "pw-Ωmega"}, "port": 5432, "hosts": ["a.example", "b.example"], "tls": true, "extra": null, "labels": {"app.kubernetes.io/name": "web"}}"#;
const OTHER_SHARED: &str = "value-from-the-other-vault";

/// The standard seed plus JSON secrets and a second vault readable by the service principal.
fn seed() -> String {
    let json = |s: &str| serde_json::to_string(s).unwrap();
    let extra = format!(
        "      - name: config\n        versions:\n          - value: {}\n          - value: {}\n\
         \x20     - name: config-b64\n        versions:\n          - value: {}\n\
         \x20     - name: not-json\n        versions:\n          - value: 'user=app;password=x'\n\
         \x20     - name: deep\n        versions:\n          - value: '{{\"a\": {}1{}}}'\n",
        json(CONFIG_V1),
        json(CONFIG_V2),
        json(&base64_of(CONFIG_V2)),
        "[".repeat(50_000),
        "]".repeat(50_000),
    );
    let base = standard_seed();
    let marker = "    secrets:\n";
    let at = base.find(marker).unwrap() + marker.len();
    format!(
        "{}{extra}{}\
         \x20 - name: {OTHER_VAULT}\n    tenant: {TENANT}\n    access:\n      - clientId: {SP_CLIENT}\n        secrets: [get, list]\n        keys: [get]\n\
         \x20   secrets:\n      - name: shared\n        versions:\n          - value: {OTHER_SHARED}\n      - name: api-key\n        versions:\n          - value: other-api-key-value\n",
        &base[..at],
        &base[at..]
    )
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn env() -> Env {
    Env::start_with(&seed(), &[]).await
}

async fn mount(
    env: &Env,
    items: &[&str],
) -> Result<akv_csi_provider::proto::v1alpha1::MountResponse, tonic::Status> {
    env.mount(env.sp(&objects(items)).build()).await
}

fn versions(resp: &akv_csi_provider::proto::v1alpha1::MountResponse) -> Vec<(String, String)> {
    resp.object_version
        .iter()
        .map(|v| (v.id.clone(), v.version.clone()))
        .collect()
}

fn paths(resp: &akv_csi_provider::proto::v1alpha1::MountResponse) -> Vec<&str> {
    resp.files.iter().map(|f| f.path.as_str()).collect()
}

// ---- optional ----

#[tokio::test]
async fn optional_objects_that_do_not_exist_or_are_disabled_are_skipped_and_reported() {
    let env = env().await;
    let resp = mount(
        &env,
        &[
            "objectName: api-key\nobjectType: secret",
            "objectName: nope\nobjectType: secret\noptional: \"true\"",
            "objectName: disabled\nobjectType: secret\noptional: true",
            "objectName: no-key\nobjectType: key\noptional: 'true'",
            "objectName: db-password\nobjectType: secret\nobjectVersion: ffffffffffffffffffffffffffffffff\noptional: \"true\"\nobjectAlias: pinned",
        ],
    )
    .await
    .expect("optional objects do not fail the mount");
    assert_eq!(paths(&resp), ["api-key"]);
    let v = versions(&resp);
    assert_eq!(v[0].0, "secret/api-key");
    assert_eq!(
        &v[1..],
        [
            ("secret/nope".to_string(), String::new()),
            ("secret/disabled".to_string(), String::new()),
            ("key/no-key".to_string(), String::new()),
            ("secret/db-password".to_string(), String::new()),
        ]
    );
    driver::validate(&resp).expect("the driver accepts it");

    let logs = env.provider.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("\"outcome\":\"ok\""))
        .expect("mount log line");
    for skipped in [
        "secret/nope (not found)",
        "secret/disabled (disabled)",
        "key/no-key (not found)",
    ] {
        assert!(line.contains(skipped), "{skipped} in {line}");
    }
    let metrics = env.provider.metrics().await.unwrap();
    assert!(
        metrics.contains("optional_objects_skipped_total{object_type=\"secret\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("optional_objects_skipped_total{object_type=\"key\"} 1"));
}

#[tokio::test]
async fn a_mount_whose_objects_are_all_optional_and_absent_still_succeeds() {
    let env = env().await;
    let resp = mount(
        &env,
        &["objectName: gone\nobjectType: secret\noptional: true"],
    )
    .await
    .unwrap();
    assert!(resp.files.is_empty());
    assert_eq!(versions(&resp), [("secret/gone".into(), String::new())]);
    driver::validate(&resp).expect("object_version is not empty");
}

#[tokio::test]
async fn optional_does_not_hide_access_throttling_or_server_errors() {
    let env = env().await;
    let item = "objectName: api-key\nobjectType: secret\noptional: true";
    let denied = env
        .mount(
            Request::new(env.params(&objects(&[item])))
                .service_principal(NO_ACCESS_CLIENT, NO_ACCESS_SECRET)
                .build(),
        )
        .await
        .unwrap_err();
    assert!(
        denied.message().contains("objectName:api-key")
            && denied
                .message()
                .contains("access denied by key vault kv-test (403"),
        "{}",
        denied.message()
    );

    for status in [500, 503] {
        env.azure
            .keyvault
            .faults
            .inject(Some("secret_get"), 100, Fault::status(status));
        let e = mount(&env, &[item]).await.unwrap_err();
        assert!(
            e.message().contains("objectName:api-key")
                && e.message().contains(&format!("answered {status}")),
            "{}",
            e.message()
        );
        env.azure.keyvault.faults.clear_faults();
    }

    // A typo in a JSON path of an optional object is a configuration error, not an absence.
    let e = mount(
        &env,
        &["objectName: config\nobjectType: secret\noptional: true\njsonPaths: [{path: db.pass, objectAlias: p}]"],
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("selects nothing"), "{}", e.message());
}

#[tokio::test]
async fn optional_history_writes_the_versions_that_exist() {
    let env = env().await;
    let resp = mount(
        &env,
        &[
            "objectName: db-password\nobjectType: secret\nobjectVersionHistory: 5\noptional: true\nobjectAlias: db",
            "objectName: missing\nobjectType: secret\nobjectVersionHistory: 3\noptional: true",
            "objectName: disabled\nobjectType: secret\nobjectVersionHistory: 2\noptional: true",
        ],
    )
    .await
    .unwrap();
    assert_eq!(paths(&resp), ["db/0", "db/1"]);
    assert_eq!(resp.files[0].contents, DB_PASSWORD.as_bytes());
    assert_eq!(resp.files[1].contents, DB_PASSWORD_OLD.as_bytes());
    // Reported exactly like the same objects without history: listed without a version, named
    // in the mount's log line, counted.
    assert_eq!(
        versions(&resp)[2..],
        [
            ("secret/missing".to_string(), String::new()),
            ("secret/disabled".to_string(), String::new())
        ]
    );
    let logs = env.provider.logs();
    assert!(
        logs.contains("secret/missing (not found), secret/disabled (disabled)"),
        "{logs}"
    );
    let metrics = env.provider.metrics().await.unwrap();
    assert!(
        metrics.contains("optional_objects_skipped_total{object_type=\"secret\"} 2"),
        "{metrics}"
    );
    // Without `optional`, an object with no enabled version fails the mount, naming it.
    let err = mount(
        &env,
        &["objectName: disabled\nobjectType: secret\nobjectVersionHistory: 2"],
    )
    .await
    .unwrap_err();
    assert!(err.message().ends_with("objectName:disabled, objectVersion:: the only version of this object is disabled in Key Vault: enable it, or mark the object optional"), "{}", err.message());
    let err = mount(
        &env,
        &["objectName: missing\nobjectType: secret\nobjectVersionHistory: 2"],
    )
    .await
    .unwrap_err();
    assert!(err.message().ends_with("objectName:missing, objectVersion:: Key Vault lists no version of this object: check objectName and keyvaultName"), "{}", err.message());
}

#[tokio::test]
async fn an_absent_optional_object_is_looked_up_again_by_every_mount() {
    // The cache must not remember an absence, so an object created later appears at the next
    // rotation.
    let env = env().await;
    let item = "objectName: later\nobjectType: secret\noptional: true";
    let first = mount(&env, &[item, "objectName: api-key\nobjectType: secret"])
        .await
        .unwrap();
    assert_eq!(paths(&first), ["api-key"]);
    let second = mount(&env, &[item, "objectName: api-key\nobjectType: secret"])
        .await
        .unwrap();
    assert_eq!(paths(&second), ["api-key"]);
    let gets = env
        .azure
        .keyvault
        .requests()
        .iter()
        .filter(|r| r.path.contains("/secrets/later") && r.status == 404)
        .count();
    assert_eq!(gets, 2, "each mount looked for the absent object again");
}

// ---- jsonPaths ----

#[tokio::test]
async fn json_paths_write_selected_values_beside_the_whole_secret() {
    let env = env().await;
    let resp = mount(
        &env,
        &[r#"objectName: config
objectType: secret
filePermission: "0640"
jsonPaths:
  - path: db.password
    objectAlias: db/password
    filePermission: "0600"
  - path: port
    objectAlias: db/port
  - path: db
    objectAlias: db.json
  - path: hosts[1]
    objectAlias: host
  - path: hosts
    objectAlias: hosts.json
  - path: tls
    objectAlias: tls
  - path: extra
    objectAlias: extra
  - path: labels["app.kubernetes.io/name"]
    objectAlias: app-name"#],
    )
    .await
    .unwrap();
    let files = files(&resp);
    let text = |p: &str| String::from_utf8(files[p].1.clone()).unwrap();
    assert_eq!(files["config"], (0o640, CONFIG_V2.as_bytes().to_vec()));
    assert_eq!(
        files["db/password"],
        (0o600, "pw-Ωmega".as_bytes().to_vec())
    );
    assert_eq!(files["db/port"].0, 0o640, "inherits the object's mode");
    assert_eq!(text("db/port"), "5432");
    assert_eq!(text("db.json"), r#"{"user":"app","password":"pw-Ωmega"}"#);
    assert_eq!(text("host"), "b.example");
    assert_eq!(text("hosts.json"), r#"["a.example","b.example"]"#);
    assert_eq!(text("tls"), "true");
    assert_eq!(text("extra"), "null");
    assert_eq!(text("app-name"), "web");
    assert_eq!(
        paths(&resp),
        [
            "config",
            "db/password",
            "db/port",
            "db.json",
            "host",
            "hosts.json",
            "tls",
            "extra",
            "app-name"
        ],
        "the whole secret first, then the selections in order"
    );
    let version = resp.object_version[0].version.clone();
    assert_eq!(
        versions(&resp)[..3],
        [
            ("secret/config".to_string(), version.clone()),
            (
                "secret/config/jsonPaths/db/password".to_string(),
                version.clone()
            ),
            ("secret/config/jsonPaths/db/port".to_string(), version),
        ]
    );
    driver::validate(&resp).unwrap();
}

#[tokio::test]
async fn json_only_and_its_interaction_with_object_alias_and_encoding() {
    let env = env().await;
    let only = mount(
        &env,
        &["objectName: config\nobjectType: secret\njsonOnly: \"true\"\njsonPaths: [{path: db.user, objectAlias: user}]"],
    )
    .await
    .unwrap();
    assert_eq!(paths(&only), ["user"]);
    assert_eq!(only.files[0].contents, b"app");

    // An objectAlias keeps the whole secret, under the alias.
    let aliased = mount(
        &env,
        &["objectName: config\nobjectType: secret\nobjectAlias: app/config.json\njsonOnly: \"true\"\njsonPaths: [{path: db.user, objectAlias: app/user}]"],
    )
    .await
    .unwrap();
    assert_eq!(paths(&aliased), ["app/config.json", "app/user"]);
    assert_eq!(versions(&aliased)[1].0, "secret/config/jsonPaths/app/user");

    // JSON stored base64-encoded: objectEncoding decodes first.
    let encoded = mount(
        &env,
        &["objectName: config-b64\nobjectType: secret\nobjectEncoding: base64\njsonPaths: [{path: 'hosts[0]', objectAlias: h}]"],
    )
    .await
    .unwrap();
    assert_eq!(files(&encoded)["h"].1, b"a.example");
    assert_eq!(files(&encoded)["config-b64"].1, CONFIG_V2.as_bytes());
}

#[tokio::test]
async fn json_paths_with_history_write_each_version_s_values() {
    let env = env().await;
    let resp = mount(
        &env,
        &["objectName: config\nobjectType: secret\nobjectVersionHistory: 2\njsonPaths: [{path: db.password, objectAlias: pw}]"],
    )
    .await
    .unwrap();
    let files = files(&resp);
    assert_eq!(paths(&resp), ["config/0", "pw/0", "config/1", "pw/1"]);
    assert_eq!(files["pw/0"].1, "pw-Ωmega".as_bytes());
    assert_eq!(files["pw/1"].1, b"pw-old");
    assert_eq!(versions(&resp)[1].0, "secret/config/jsonPaths/pw/0");
    assert_eq!(versions(&resp)[3].0, "secret/config/jsonPaths/pw/1");
}

#[tokio::test]
async fn json_path_errors_name_the_object_and_path_but_no_value() {
    let env = env().await;
    let cases = [
        (
            "objectName: not-json\nobjectType: secret\njsonPaths: [{path: user, objectAlias: u}]",
            "failed to get objectType:secret, objectName:not-json, objectVersion:: secret value is not JSON (invalid JSON syntax at line 1 column 1): jsonPaths needs a secret whose value is a JSON document",
        ),
        (
            "objectName: deep\nobjectType: secret\njsonPaths: [{path: a, objectAlias: a}]",
            "failed to get objectType:secret, objectName:deep, objectVersion:: secret value nests arrays and objects deeper than 128 levels: jsonPaths reads JSON documents up to that depth",
        ),
        (
            "objectName: config\nobjectType: secret\njsonPaths: [{path: db.pasword, objectAlias: p}]",
            "failed to get objectType:secret, objectName:config, objectVersion:: jsonPaths path \"db.pasword\" selects nothing: no key \"pasword\" in the object at \"db\"",
        ),
        (
            "objectName: config\nobjectType: secret\njsonPaths: [{path: 'hosts[5]', objectAlias: p}]",
            "jsonPaths path \"hosts[5]\" selects nothing: index 5 is out of range: the array at \"hosts\" has 2 elements",
        ),
        (
            "objectName: config\nobjectType: secret\njsonPaths: [{path: db.password.x, objectAlias: p}]",
            "jsonPaths path \"db.password.x\" selects nothing: \"db.password\" is a string, not an object",
        ),
        (
            "objectName: config\nobjectType: secret\njsonPaths: [{path: 'db[', objectAlias: p}]",
            "jsonPaths[0] path \"db[\" is not valid: unclosed '[' at byte 2",
        ),
        (
            "objectName: config\nobjectType: secret\njsonPaths: [{path: db, objectAlias: /abs}]",
            "jsonPaths[0] file name must be a relative path",
        ),
        (
            "objectName: config\nobjectType: secret\njsonOnly: true",
            "jsonOnly needs jsonPaths",
        ),
        (
            "objectName: k\nobjectType: key\njsonPaths: [{path: n, objectAlias: n}]",
            "jsonPaths only supported for objectType: secret",
        ),
    ];
    for (item, want) in cases {
        let e = mount(&env, &[item]).await.unwrap_err();
        assert!(e.message().contains(want), "{item}\n{}", e.message());
        for value in ["pw-Ωmega", "pw-old", "user=app", "a.example"] {
            assert!(!e.message().contains(value), "{}", e.message());
        }
    }
}

#[tokio::test]
async fn extracted_values_sync_into_kubernetes_secrets() {
    let env = env().await;
    let resp = mount(
        &env,
        &["objectName: config\nobjectType: secret\njsonOnly: true\njsonPaths:\n  - {path: db.user, objectAlias: db/user}\n  - {path: db.password, objectAlias: db/password}"],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    driver::write_atomic(dir.path(), &resp).unwrap();
    let mounted = driver::mounted_files(dir.path()).unwrap();
    let secret = SecretObject {
        secret_name: "db".into(),
        kind: "kubernetes.io/basic-auth".into(),
        data: vec![
            ("db/user".into(), "username".into()),
            ("db/password".into(), "password".into()),
        ],
    };
    let data = driver::secret_data(&secret, &mounted).unwrap();
    assert_eq!(data["username"], b"app");
    assert_eq!(data["password"], "pw-Ωmega".as_bytes());
    // The whole secret was not written, so a secretObject naming it fails as the driver does.
    let whole = SecretObject {
        secret_name: "all".into(),
        kind: "Opaque".into(),
        data: vec![("config".into(), "config".into())],
    };
    assert!(driver::secret_data(&whole, &mounted).is_err());
}

// ---- several vaults ----

#[tokio::test]
async fn objects_come_from_several_vaults_in_parallel() {
    let env = env().await;
    env.azure
        .keyvault
        .faults
        .set_latency(Duration::from_millis(300));
    let resp = mount(
        &env,
        &[
            "objectName: api-key\nobjectType: secret",
            "objectName: shared\nobjectType: secret\nkeyvaultName: kv-other",
            "objectName: api-key\nobjectType: secret\nkeyvaultName: kv-other\nobjectAlias: other/api-key",
            "objectName: db-password\nobjectType: secret\nkeyvaultName: KV-TEST",
        ],
    )
    .await
    .unwrap();
    let files = files(&resp);
    assert_eq!(files["api-key"].1, API_KEY.as_bytes());
    assert_eq!(files["shared"].1, OTHER_SHARED.as_bytes());
    assert_eq!(files["other/api-key"].1, b"other-api-key-value");
    assert_eq!(files["db-password"].1, DB_PASSWORD.as_bytes());
    let ids: Vec<String> = versions(&resp).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        [
            "secret/api-key",
            "kv-other/secret/shared",
            "kv-other/secret/api-key",
            "secret/db-password"
        ],
        "the SPC's own vault keeps the Go provider's ids, whatever the case"
    );
    let vaults = env.azure.keyvault.vaults_asked();
    assert_eq!(
        vaults,
        ["kv-other".to_string(), "kv-test".to_string()].into()
    );
    assert!(
        env.azure.keyvault.faults.max_in_flight() >= 2,
        "both vaults were asked at once"
    );
    assert_eq!(
        env.azure.entra.requests().len(),
        1,
        "one token serves both vaults"
    );
}

#[tokio::test]
async fn every_object_may_name_its_vault_and_errors_name_the_vault() {
    let env = env().await;
    let mut params = env.params(&objects(&[
        "objectName: shared\nobjectType: secret\nkeyvaultName: kv-other",
        "objectName: api-key\nobjectType: secret\nkeyvaultName: kv-test\noptional: true",
    ]));
    params.remove("keyvaultName");
    let resp = env
        .mount(
            Request::new(params.clone())
                .service_principal(SP_CLIENT, SP_SECRET)
                .build(),
        )
        .await
        .expect("no top-level keyvaultName needed");
    assert_eq!(
        versions(&resp)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        ["kv-other/secret/shared", "kv-test/secret/api-key"]
    );

    // One object without a vault brings the Go provider's check back.
    params.insert(
        "objects".into(),
        objects(&[
            "objectName: shared\nobjectType: secret\nkeyvaultName: kv-other",
            "objectName: api-key\nobjectType: secret",
        ]),
    );
    let e = env
        .mount(
            Request::new(params)
                .service_principal(SP_CLIENT, SP_SECRET)
                .build(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        "failed to mount objects, error: keyvaultName is not provided"
    );

    let e = mount(
        &env,
        &["objectName: db-password\nobjectType: secret\nkeyvaultName: kv-other"],
    )
    .await
    .unwrap_err();
    assert!(
        e.message()
            .contains("secret db-password was not found in key vault kv-other"),
        "{}",
        e.message()
    );
    let e = mount(
        &env,
        &["objectName: x\nobjectType: secret\nkeyvaultName: kv_other"],
    )
    .await
    .unwrap_err();
    assert!(
        e.message().ends_with("objectName:x, objectVersion:: keyvaultName \"kv_other\" is not a valid Key Vault name: use 3 to 24 letters, digits and '-'"),
        "{}",
        e.message()
    );
    // A vault that does not exist is not an absent object, even for an optional one.
    let e = mount(
        &env,
        &["objectName: x\nobjectType: secret\nkeyvaultName: kv-none\noptional: true"],
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("kv-none"), "{}", e.message());
}

#[tokio::test]
async fn another_vault_with_history_optional_and_json_paths() {
    let env = env().await;
    let resp = mount(
        &env,
        &[
            "objectName: shared\nobjectType: secret\nkeyvaultName: KV-Other\nobjectVersionHistory: 3",
            "objectName: absent\nobjectType: secret\nkeyvaultName: kv-other\noptional: true",
            "objectName: config\nobjectType: secret\njsonOnly: true\njsonPaths: [{path: port, objectAlias: port}]",
        ],
    )
    .await
    .unwrap();
    assert_eq!(paths(&resp), ["shared/0", "port"]);
    assert_eq!(resp.files[0].contents, OTHER_SHARED.as_bytes());
    let ids: Vec<String> = versions(&resp).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        [
            "kv-other/secret/shared/0",
            "secret/config/jsonPaths/port",
            "kv-other/secret/absent"
        ]
    );
}

#[tokio::test]
async fn the_object_cache_keeps_vaults_apart() {
    let env = env().await;
    for _ in 0..2 {
        let resp = mount(
            &env,
            &[
                "objectName: api-key\nobjectType: secret",
                "objectName: api-key\nobjectType: secret\nkeyvaultName: kv-other\nobjectAlias: other",
            ],
        )
        .await
        .unwrap();
        assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes());
        assert_eq!(files(&resp)["other"].1, b"other-api-key-value");
    }
    let gets = env.azure.keyvault.served_requests();
    assert_eq!(gets, 2, "the second mount was served from the cache");
}
