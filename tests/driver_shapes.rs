//! The provider as each caller sees it, through the driver emulator: driver v1.6 first mounts,
//! v1.5 rotation calls, the Sync Controller; responses the driver accepts and writes atomically;
//! Kubernetes Secret data for `secretObjects` (the azure-vote pattern: a Redis password synced to
//! a Secret and read by the app as an environment variable).

mod common;

use common::*;
use testkit::driver::{self, Caller, SecretObject, Volume};

fn volume(env: &Env) -> Volume {
    let objs = objects(&[
        "objectName: db-password\nobjectType: secret\nobjectAlias: redis/password",
        "objectName: api-key\nobjectType: secret\nfilePermission: \"0640\"",
    ]);
    let mut v = Volume::new("app-secrets", env.params(&objs));
    v.tokens
        .insert(WI_AUDIENCE.into(), env.sa_token(&v.pod_name));
    v.parameters.insert("clientID".into(), WI_CLIENT.into());
    v
}

#[tokio::test]
async fn every_caller_shape_mounts_and_the_driver_accepts_the_response() {
    let env = Env::start().await;
    let mut v = volume(&env);
    for caller in [
        Caller::DriverV16,
        Caller::DriverV15Rotation,
        Caller::SyncController,
    ] {
        let resp = env
            .mount(v.request(caller))
            .await
            .unwrap_or_else(|e| panic!("{caller:?}: {}", e.message()));
        driver::validate(&resp).unwrap_or_else(|e| panic!("{caller:?}: {e}"));
        let paths: Vec<_> = resp.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["redis/password", "api-key"], "{caller:?}");
        v.previous = resp.object_version.clone();
    }
}

#[tokio::test]
async fn service_principal_under_each_caller() {
    let env = Env::start().await;
    let mut v = Volume::new(
        "sp",
        env.params(&objects(&["objectName: api-key\nobjectType: secret"])),
    );
    // No nodePublishSecretRef: v1.6 sends null, v1.5 sends {}; both say what is missing.
    let e16 = env.mount(v.request(Caller::DriverV16)).await.unwrap_err();
    assert!(
        e16.message()
            .contains("nodePublishSecretRef secret is not set"),
        "{}",
        e16.message()
    );
    let e15 = env
        .mount(v.request(Caller::DriverV15Rotation))
        .await
        .unwrap_err();
    assert!(
        e15.message().contains("could not find clientid in secrets"),
        "{}",
        e15.message()
    );
    v.node_publish_secret = Some(
        [
            ("clientid".to_string(), SP_CLIENT.to_string()),
            ("clientsecret".to_string(), SP_SECRET.to_string()),
        ]
        .into(),
    );
    env.mount(v.request(Caller::DriverV16))
        .await
        .expect("v1.6 with the secret");
    env.mount(v.request(Caller::DriverV15Rotation))
        .await
        .expect("v1.5 with the secret");
    // The Sync Controller never forwards a node-publish secret.
    let sync = env
        .mount(v.request(Caller::SyncController))
        .await
        .unwrap_err();
    assert!(
        sync.message()
            .contains("could not find clientid in secrets"),
        "{}",
        sync.message()
    );
}

#[tokio::test]
async fn files_are_written_atomically_and_synced_to_an_opaque_secret() {
    let env = Env::start().await;
    let v = volume(&env);
    let resp = env.mount(v.request(Caller::DriverV16)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(driver::write_atomic(dir.path(), &resp).unwrap());
    let files = driver::mounted_files(dir.path()).unwrap();
    assert_eq!(
        files["redis/password"],
        (0o644, DB_PASSWORD.as_bytes().to_vec())
    );
    assert_eq!(files["api-key"], (0o640, API_KEY.as_bytes().to_vec()));

    // azure-vote: the Redis password synced to Secret "redis" and read via secretKeyRef.
    let secret = SecretObject {
        secret_name: "redis".into(),
        kind: "Opaque".into(),
        data: vec![("redis/password".into(), "REDIS_PWD".into())],
    };
    let data = driver::secret_data(&secret, &files).unwrap();
    assert_eq!(data["REDIS_PWD"], DB_PASSWORD.as_bytes());
    for kind in ["kubernetes.io/basic-auth", "kubernetes.io/dockerconfigjson"] {
        let s = SecretObject {
            secret_name: "s".into(),
            kind: kind.into(),
            data: vec![("api-key".into(), "password".into())],
        };
        assert_eq!(
            driver::secret_data(&s, &files).unwrap()["password"],
            API_KEY.as_bytes()
        );
    }
    let missing = SecretObject {
        secret_name: "s".into(),
        kind: "Opaque".into(),
        data: vec![("db-password".into(), "k".into())],
    };
    assert_eq!(
        driver::secret_data(&missing, &files)
            .unwrap_err()
            .to_string(),
        "file matching objectName db-password not found in the pod"
    );

    // A rotation poll with unchanged content leaves the directory untouched.
    let again = env.mount(v.request(Caller::DriverV16)).await.unwrap();
    assert!(!driver::write_atomic(dir.path(), &again).unwrap());
}
