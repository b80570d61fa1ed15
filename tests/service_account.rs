//! The workload identity's client id (and tenant) from the pod's ServiceAccount
//! (`--client-id-from-service-account`), through the socket, with the provider started as a pod
//! of a cluster whose API server is the fake: `KUBERNETES_SERVICE_HOST`/`_PORT` in its
//! environment, the token and CA files of its own service account.

mod common;

use std::time::Duration;

use common::*;

/// Federated with `default:elsewhere`, registered in the other tenant, reads `kv-other` there.
const OTHER_TENANT_CLIENT: &str = "abababab-0000-4000-8000-000000000001";

fn seed() -> String {
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients:
      - clientId: {WI_CLIENT}
        federated:
          - subject: system:serviceaccount:default:app
      - clientId: {SP_CLIENT}
        secret: {SP_SECRET}
  - id: {OTHER_TENANT}
    clients:
      - clientId: {OTHER_TENANT_CLIENT}
        federated:
          - subject: system:serviceaccount:default:elsewhere
serviceAccounts:
  - namespace: default
    name: app
    annotations:
      azure.workload.identity/client-id: {WI_CLIENT}
      kubectl.kubernetes.io/last-applied-configuration: "{{}}"
  - namespace: default
    name: elsewhere
    annotations:
      azure.workload.identity/client-id: {OTHER_TENANT_CLIENT}
      azure.workload.identity/tenant-id: {OTHER_TENANT}
  - namespace: default
    name: bare
vaults:
  - name: {VAULT}
    tenant: {TENANT}
    access:
      - clientId: {WI_CLIENT}
        secrets: [get]
      - clientId: {SP_CLIENT}
        secrets: [get]
    secrets:
      - name: api-key
        versions:
          - value: {API_KEY}
  - name: kv-other
    tenant: {OTHER_TENANT}
    access:
      - clientId: {OTHER_TENANT_CLIENT}
        secrets: [get]
    secrets:
      - name: api-key
        versions:
          - value: {API_KEY}
"#
    )
}

fn api_key() -> String {
    objects(&["objectName: api-key\nobjectType: secret"])
}

/// A workload identity mount without `clientID` by pod `pod` of ServiceAccount `sa`.
fn mount_as(env: &Env, sa: &str, pod: &str) -> Request {
    let token =
        env.azure
            .entra
            .issuer
            .token("default", sa, pod, WI_AUDIENCE, Duration::from_secs(3600));
    let mut req = Request::new(env.params(&api_key())).token(&token);
    req.service_account = sa.into();
    req.pod = pod.into();
    req
}

#[tokio::test]
async fn the_annotation_names_the_client_and_one_get_serves_a_minute() {
    let env = Env::start_in_cluster(&seed(), &[]).await;
    for pod in ["app-1", "app-2"] {
        let resp = env
            .mount(mount_as(&env, "app", pod).build())
            .await
            .expect("client id from the ServiceAccount");
        assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes());
        assert_eq!(
            env.mount_line(pod)["client_id"],
            WI_CLIENT,
            "the audit line names the client"
        );
    }
    let gets = env.azure.kube.requests();
    assert_eq!(gets.len(), 1, "two mounts, one GET: {gets:?}");
    assert_eq!(
        gets[0].path,
        "/api/v1/namespaces/default/serviceaccounts/app"
    );
    assert_eq!(
        env.azure.entra.request_count(),
        2,
        "each pod still exchanges its own token"
    );
    let metrics = env.provider.metrics().await.unwrap();
    assert!(
        metrics.contains(r#"cache_lookups_total{cache="serviceaccount",result="hit"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_tenant_annotation_replaces_tenant_id() {
    let env = Env::start_in_cluster(&seed(), &[]).await;
    let mut req = mount_as(&env, "elsewhere", "elsewhere-1");
    req.params.insert("keyvaultName".into(), "kv-other".into());
    env.mount(req.build())
        .await
        .expect("client and tenant from the ServiceAccount");
    let token_request = &env.azure.entra.requests()[0];
    assert_eq!(
        (
            token_request.tenant.as_str(),
            token_request.client_id.as_str()
        ),
        (OTHER_TENANT, OTHER_TENANT_CLIENT),
        "the SPC said {TENANT}"
    );
    assert_eq!(env.mount_line("elsewhere-1")["tenant"], OTHER_TENANT);
    // The SPC may then leave tenantID out.
    let mut req = mount_as(&env, "elsewhere", "elsewhere-2");
    req.params.insert("keyvaultName".into(), "kv-other".into());
    req.params.remove("tenantID");
    env.mount(req.build())
        .await
        .expect("no tenantID in the SPC");
    // Not when the ServiceAccount has no tenant either.
    let mut req = mount_as(&env, "app", "app-1");
    req.params.remove("tenantID");
    let err = env.mount(req.build()).await.unwrap_err();
    assert_eq!(err.message(), "failed to mount objects, error: tenantId is not provided: set tenantID, or annotate ServiceAccount default/app with azure.workload.identity/tenant-id");
}

#[tokio::test]
async fn missing_annotation_unknown_account_and_rbac_say_what_to_fix() {
    let env = Env::start_in_cluster(&seed(), &[]).await;
    let err = env
        .mount(mount_as(&env, "bare", "bare-1").build())
        .await
        .unwrap_err();
    assert_eq!(err.message(), "failed to mount objects, error: failed to build auth config for mode None: ServiceAccount default/bare has no azure.workload.identity/client-id annotation: annotate the ServiceAccount with azure.workload.identity/client-id or set clientID in the SecretProviderClass (or reference a service principal Secret in nodePublishSecretRef)");
    let err = env
        .mount(mount_as(&env, "ghost", "ghost-1").build())
        .await
        .unwrap_err();
    assert_eq!(err.message(), "failed to mount objects, error: failed to build auth config for mode None: cannot read ServiceAccount default/ghost for its azure.workload.identity/client-id annotation: the API server has no such ServiceAccount (404 Not Found)");
    // Errors are not cached: the next mount asks again.
    env.mount(mount_as(&env, "ghost", "ghost-2").build())
        .await
        .unwrap_err();
    assert_eq!(env.azure.kube.requests().len(), 3);

    // RBAC without get on serviceaccounts: the kubelet rotates the token file to one the API
    // server refuses, and the provider uses it at once.
    env.azure.kube.rotate_token(false);
    let err = env
        .mount(mount_as(&env, "app", "app-1").build())
        .await
        .unwrap_err();
    assert_eq!(err.message(), "failed to mount objects, error: failed to build auth config for mode None: cannot read ServiceAccount default/app for its azure.workload.identity/client-id annotation: the API server refused (403 Forbidden): grant the provider get on serviceaccounts (set the chart value clientIdFromServiceAccount), or set clientID in the SecretProviderClass");
    assert_eq!(
        env.azure.entra.request_count(),
        0,
        "no token exchange without a client id"
    );
    env.azure.kube.rotate_token(true);
    env.mount(mount_as(&env, "app", "app-1").build())
        .await
        .expect("the granted token, rotated in, is read at once");
    let statuses: Vec<u16> = env.azure.kube.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 404, 404, 403, 200]);
}

#[tokio::test]
async fn explicit_identities_never_look_up() {
    let env = Env::start_in_cluster(&seed(), &[]).await;
    let token = env.sa_token("app-1");
    env.mount(
        Request::new(env.params(&api_key()))
            .workload_identity(WI_CLIENT, &token)
            .build(),
    )
    .await
    .expect("clientID in the SPC");
    let mut sp = mount_as(&env, "bare", "bare-1").service_principal(SP_CLIENT, SP_SECRET);
    sp.tokens.clear();
    env.mount(sp.build()).await.expect("service principal");
    // A service principal Secret with a key missing keeps its upstream error.
    let mut partial = mount_as(&env, "app", "app-2");
    partial.secrets = Some([("clientid".to_string(), SP_CLIENT.to_string())].into());
    let err = env.mount(partial.build()).await.unwrap_err();
    assert!(
        err.message()
            .contains("could not find clientsecret in secrets"),
        "{}",
        err.message()
    );
    // Without the workload identity token there is nothing to exchange: upstream's error.
    let mut no_token = mount_as(&env, "app", "app-3");
    no_token.tokens.clear();
    let err = env.mount(no_token.build()).await.unwrap_err();
    assert!(err.message().starts_with("failed to mount objects, error: failed to build auth config for mode None: failed to get credentials, nodePublishSecretRef secret is not set") && err.message().contains("add it to spec.tokenRequests"), "{}", err.message());
    assert!(env.azure.kube.requests().is_empty());
}

#[tokio::test]
async fn without_the_flag_nothing_changes() {
    let env = Env::start_with(&seed(), &[]).await;
    let err = env
        .mount(mount_as(&env, "app", "app-1").build())
        .await
        .unwrap_err();
    assert_eq!(err.message(), "failed to mount objects, error: failed to build auth config for mode None: failed to get credentials, nodePublishSecretRef secret is not set: set clientID for workload identity, or reference a Secret with clientid and clientsecret in the volume's nodePublishSecretRef");
    assert!(env.azure.kube.requests().is_empty());
}

#[tokio::test]
async fn the_flag_outside_a_cluster_fails_at_startup() {
    let azure =
        testkit::azure::FakeAzure::start(testkit::seed::Seed::from_yaml(&seed()).unwrap()).await;
    let mut args = azure.provider_args();
    args.push("--client-id-from-service-account".into());
    let blank = [
        ("KUBERNETES_SERVICE_HOST".to_string(), String::new()),
        ("KUBERNETES_SERVICE_PORT".to_string(), String::new()),
    ];
    let binary = env!("CARGO_BIN_EXE_akv-csi-provider");
    let err = testkit::provider::ProviderProcess::start_with_env(binary.as_ref(), &args, &blank)
        .await
        .err()
        .expect("refuses to start");
    assert!(
        err.to_string()
            .contains("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"),
        "{err}"
    );
    let mut args = azure.provider_args();
    args.push("--client-id-from-service-account".into());
    args.push(format!(
        "--kube-token-file={}",
        azure.kube.token_file().display()
    ));
    args.push(format!(
        "--kube-ca-file={}-missing",
        azure.kube.ca_file().display()
    ));
    let err = testkit::provider::ProviderProcess::start_with_env(
        binary.as_ref(),
        &args,
        &azure.kube.env(),
    )
    .await
    .err()
    .expect("refuses to start");
    assert!(err.to_string().contains("--kube-ca-file"), "{err}");
}
