//! Mounting secrets end to end through the provider's socket: identities, clouds, versions,
//! aliases, encodings, file modes, and the Key Vault challenge.

mod common;

use common::*;
use testkit::azure::CLOUD_HOSTS;

fn secret(name: &str) -> String {
    objects(&[&format!("objectName: {name}\nobjectType: secret")])
}

#[tokio::test]
async fn service_principal_mounts_latest_secret() {
    let env = Env::start().await;
    let req = env.sp(&secret("db-password"));
    let resp = env.mount(req.build()).await.expect("mount succeeds");
    assert_eq!(
        files(&resp)["db-password"],
        (0o644, DB_PASSWORD.as_bytes().to_vec())
    );
    assert_eq!(resp.object_version.len(), 1);
    assert_eq!(resp.object_version[0].id, "secret/db-password");
    assert_eq!(
        resp.object_version[0].version,
        "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b"
    );
    let grants: Vec<_> = env
        .azure
        .entra
        .requests()
        .iter()
        .map(|r| (r.client_id.clone(), r.grant, r.scope.clone()))
        .collect();
    assert_eq!(
        grants,
        vec![(
            SP_CLIENT.to_string(),
            "secret",
            "https://vault.akv.test/.default".to_string()
        )]
    );
}

#[tokio::test]
async fn service_principal_keys_are_case_insensitive() {
    let env = Env::start().await;
    let mut req = Request::new(env.params(&secret("api-key")));
    req.secrets = Some(
        [
            ("ClientID".to_string(), SP_CLIENT.to_string()),
            ("CLIENTSECRET".to_string(), SP_SECRET.to_string()),
        ]
        .into(),
    );
    let resp = env.mount(req.build()).await.expect("mount succeeds");
    assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes());
}

#[tokio::test]
async fn workload_identity_exchanges_the_service_account_token() {
    let env = Env::start().await;
    let token = env.sa_token("app-1");
    let req = Request::new(env.params(&secret("db-password"))).workload_identity(WI_CLIENT, &token);
    let resp = env.mount(req.build()).await.expect("mount succeeds");
    assert_eq!(files(&resp)["db-password"].1, DB_PASSWORD.as_bytes());
    let requests = env.azure.entra.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].client_id.as_str(), requests[0].grant),
        (WI_CLIENT, "assertion")
    );
}

#[tokio::test]
async fn workload_identity_wins_over_a_node_publish_secret() {
    let env = Env::start().await;
    let req = Request::new(env.params(&secret("api-key")))
        .workload_identity(WI_CLIENT, &env.sa_token("app-1"))
        .service_principal(NO_ACCESS_CLIENT, NO_ACCESS_SECRET);
    env.mount(req.build())
        .await
        .expect("mount succeeds with the workload identity");
    assert_eq!(env.azure.entra.requests()[0].client_id, WI_CLIENT);
}

#[tokio::test]
async fn pinned_versions_aliases_and_latest_keyword() {
    let env = Env::start().await;
    let objs = objects(&[
        "objectName: db-password\nobjectType: secret\nobjectVersion: 0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\nobjectAlias: old/password",
        "objectName: db-password\nobjectType: secret\nobjectVersion: latest\nobjectAlias: current",
        "objectName: api-key\nobjectType: secret\nobjectVersion: \"\"",
    ]);
    let req = env.sp(&objs);
    let resp = env.mount(req.build()).await.expect("mount succeeds");
    let files = files(&resp);
    assert_eq!(files["old/password"].1, DB_PASSWORD_OLD.as_bytes());
    assert_eq!(files["current"].1, DB_PASSWORD.as_bytes());
    assert_eq!(files["api-key"].1, API_KEY.as_bytes());
    let versions: Vec<_> = resp
        .object_version
        .iter()
        .map(|v| (v.id.as_str(), v.version.as_str()))
        .collect();
    assert_eq!(
        versions[0],
        ("secret/db-password", "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a")
    );
    assert_eq!(
        versions[1],
        ("secret/db-password", "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b")
    );
    // Response order follows the SPC.
    let paths: Vec<_> = resp.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["old/password", "current", "api-key"]);
}

#[tokio::test]
async fn encodings_decode_secret_values() {
    let env = Env::start().await;
    let objs = objects(&[
        "objectName: b64\nobjectType: secret\nobjectEncoding: base64",
        "objectName: hex\nobjectType: secret\nobjectEncoding: HEX",
        "objectName: api-key\nobjectType: secret\nobjectEncoding: utf-8",
    ]);
    let resp = env.mount(env.sp(&objs).build()).await.unwrap();
    let files = files(&resp);
    assert_eq!(files["b64"].1, b"hello world");
    assert_eq!(files["hex"].1, b"hello");
    assert_eq!(files["api-key"].1, API_KEY.as_bytes());
}

#[tokio::test]
async fn file_modes_from_permission_and_file_permission() {
    let env = Env::start().await;
    let objs = objects(&[
        "objectName: api-key\nobjectType: secret\nfilePermission: \"0600\"",
        "objectName: db-password\nobjectType: secret\nfilePermission: 0755",
        "objectName: b64\nobjectType: secret",
    ]);
    let mut req = env.sp(&objs);
    let resp = env.mount(req.build()).await.unwrap();
    let modes: Vec<_> = resp.files.iter().map(|f| f.mode).collect();
    assert_eq!(modes, [0o600, 0o755, 0o644]);
    req.permission = "256".into(); // 0400 as the driver would encode it
    let resp = env.mount(req.build()).await.unwrap();
    assert_eq!(resp.files[2].mode, 0o400);
}

#[tokio::test]
async fn challenge_round_trip_then_token_on_first_try() {
    let env = Env::start().await;
    let req = env.sp(&secret("api-key"));
    env.mount(req.build()).await.unwrap();
    let log = env.azure.keyvault.requests();
    assert_eq!(
        (log[0].had_token, log[0].status),
        (false, 401),
        "first request is unauthenticated and challenged"
    );
    assert_eq!(
        (log[1].had_token, log[1].status),
        (true, 200),
        "then retried with a token"
    );
    // A later mount of another object reuses the challenge scope and the token.
    let req = env.sp(&secret("db-password"));
    env.mount(req.build()).await.unwrap();
    let log = env.azure.keyvault.requests();
    assert_eq!(log.len(), 3);
    assert_eq!((log[2].had_token, log[2].status), (true, 200));
    assert_eq!(env.azure.entra.request_count(), 1, "the token was reused");
}

#[tokio::test]
async fn challenge_for_a_foreign_resource_is_refused_before_any_token() {
    let env = Env::start().await;
    env.azure
        .keyvault
        .set_challenge_resource(Some("https://management.azure.com"));
    let req = env.sp(&secret("api-key"));
    let err = env.mount(req.build()).await.unwrap_err();
    assert!(
        err.message().contains("challenge resource \"https://management.azure.com\" doesn't match the requested domain"),
        "{}",
        err.message()
    );
    assert!(err.message().starts_with(
        "failed to mount objects, error: failed to get objectType:secret, objectName:api-key"
    ));
    assert_eq!(
        env.azure.entra.request_count(),
        0,
        "no token was requested for the foreign resource"
    );
}

#[tokio::test]
async fn every_named_cloud_uses_its_own_hosts() {
    let env = Env::start().await;
    for (cloud, _login, suffix) in CLOUD_HOSTS {
        for name in [cloud.to_string(), cloud.to_lowercase()] {
            let mut params = env.params(&secret("api-key"));
            params.insert("cloudName".into(), name.clone());
            params.remove("cloudEnvFileName");
            let resp = env
                .mount(
                    Request::new(params)
                        .service_principal(SP_CLIENT, SP_SECRET)
                        .build(),
                )
                .await;
            assert!(resp.is_ok(), "{name}: {:?}", resp.err());
        }
        let scope = format!("https://{suffix}/.default");
        assert!(
            env.azure.entra.requests().iter().any(|r| r.scope == scope),
            "{cloud}: token for {scope}"
        );
    }
    // Aliases and the provider's default (--cloud-name, AzurePublicCloud).
    for alias in ["AzureCloud", "AzureUSGovernment", ""] {
        let mut params = env.params(&secret("api-key"));
        params.insert("cloudName".into(), alias.into());
        params.remove("cloudEnvFileName");
        env.mount(
            Request::new(params)
                .service_principal(SP_CLIENT, SP_SECRET)
                .build(),
        )
        .await
        .expect(alias);
    }
    let hosts = env.azure.keyvault.vaults_asked();
    assert_eq!(
        hosts.len(),
        1,
        "vault name is the first label everywhere: {hosts:?}"
    );
}

#[tokio::test]
async fn azure_stack_cloud_from_the_provider_environment() {
    let env = Env::start().await;
    let mut params = env.params(&secret("api-key"));
    params.remove("cloudEnvFileName");
    let err = env
        .mount(
            Request::new(params)
                .service_principal(SP_CLIENT, SP_SECRET)
                .build(),
        )
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains("cloudName AzureStackCloud is not valid"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn tenant_id_legacy_spelling_and_precedence() {
    let env = Env::start().await;
    let mut params = env.params(&secret("api-key"));
    params.remove("tenantID");
    params.insert("tenantId".into(), TENANT.into());
    env.mount(
        Request::new(params.clone())
            .service_principal(SP_CLIENT, SP_SECRET)
            .build(),
    )
    .await
    .expect("tenantId works");
    params.insert("tenantID".into(), OTHER_TENANT.into());
    let err = env
        .mount(
            Request::new(params)
                .service_principal(SP_CLIENT, SP_SECRET)
                .build(),
        )
        .await
        .unwrap_err();
    assert!(
        err.message().contains(&format!("in tenant {OTHER_TENANT}")),
        "tenantID wins: {}",
        err.message()
    );
}

#[tokio::test]
async fn empty_objects_array_returns_an_empty_response() {
    let env = Env::start().await;
    let resp = env.mount(env.sp("array: []").build()).await.unwrap();
    assert!(resp.files.is_empty() && resp.object_version.is_empty());
}
