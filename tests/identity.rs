//! Every identity mode through the socket, and token reuse that never widens access: a token is
//! reused only for the same credential material, concurrent mounts make one token request, and
//! tokens are refreshed before they expire.

mod common;

use std::time::Duration;

use common::*;
use testkit::fault::Fault;

fn secret(name: &str) -> String {
    objects(&[&format!("objectName: {name}\nobjectType: secret")])
}

#[tokio::test]
async fn vm_managed_identity_system_and_user_assigned() {
    let env = Env::start().await;
    let req = Request::new(env.params(&secret("api-key"))).param("useVMManagedIdentity", "true");
    let resp = env.mount(req.build()).await.expect("system-assigned");
    assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes());
    let req = Request::new(env.params(&secret("api-key")))
        .param("useVMManagedIdentity", "True")
        .param("userAssignedIdentityID", UAMI_CLIENT);
    env.mount(req.build()).await.expect("user-assigned");
    let log = env.azure.node.imds_log.lock().unwrap().clone();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].headers["metadata"], "true");
    assert_eq!(log[0].query["resource"], "https://vault.akv.test");
    assert!(
        !log[0].query.contains_key("client_id"),
        "system-assigned sends no client_id"
    );
    assert_eq!(log[1].query["client_id"], UAMI_CLIENT);

    let req = Request::new(env.params(&secret("api-key")))
        .param("useVMManagedIdentity", "true")
        .param(
            "userAssignedIdentityID",
            "99999999-0000-0000-0000-000000000000",
        );
    let err = env.mount(req.build()).await.unwrap_err();
    assert!(err.message().contains("failed to acquire an access token from IMDS for user-assigned identity 99999999-0000-0000-0000-000000000000"), "{}", err.message());
    assert!(
        err.message().contains("check userAssignedIdentityID"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn imds_is_retried_while_the_identity_propagates() {
    let env = Env::start().await;
    env.azure
        .node
        .imds_faults
        .inject(None, 2, Fault::status(404));
    env.azure
        .node
        .imds_faults
        .inject(None, 1, Fault::status(503));
    let req = Request::new(env.params(&secret("api-key"))).param("useVMManagedIdentity", "true");
    env.mount(req.build())
        .await
        .expect("succeeds after retries");
    assert_eq!(env.azure.node.imds_log.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn pod_identity_through_nmi() {
    let env = Env::start().await;
    let req = Request::new(env.params(&secret("api-key"))).param("usePodIdentity", "true");
    let resp = env.mount(req.build()).await.expect("pod identity");
    assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes());
    let log = env.azure.node.nmi_log.lock().unwrap().clone();
    assert_eq!(
        (
            log[0].headers["podns"].as_str(),
            log[0].headers["podname"].as_str()
        ),
        ("default", "app-7d9f8")
    );
    assert_eq!(log[0].query["resource"], "https://vault.akv.test");

    let mut other = Request::new(env.params(&secret("api-key"))).param("usePodIdentity", "true");
    other.pod = "unbound-pod".into();
    let err = env.mount(other.build()).await.unwrap_err();
    assert!(err.message().contains("nmi response failed with status code: 404, response body: getting assigned identities for pod default/unbound-pod"), "{}", err.message());
    // clientID with a mode flag still demands the workload-identity token, as upstream.
    let err = env
        .mount(
            Request::new(env.params(&secret("api-key")))
                .param("usePodIdentity", "true")
                .param("clientID", WI_CLIENT)
                .build(),
        )
        .await
        .unwrap_err();
    assert!(err.message().contains("failed to build auth config for mode PodIdentity: failed to parse workload identity tokens"), "{}", err.message());
}

#[tokio::test]
async fn tokens_are_reused_only_for_the_same_credential_material() {
    let env = Env::start().await;
    let token_a = env.sa_token("pod-a");
    let wi = |token: &str, name: &str| {
        Request::new(env.params(&secret(name))).workload_identity(WI_CLIENT, token)
    };
    env.mount(wi(&token_a, "api-key").build()).await.unwrap();
    env.mount(wi(&token_a, "db-password").build())
        .await
        .unwrap();
    assert_eq!(
        env.azure.entra.request_count(),
        1,
        "same service-account token: no second exchange"
    );

    // Another pod of the same service account presents its own token: its own exchange.
    let token_b = env.sa_token("pod-b");
    env.mount(wi(&token_b, "api-key").build()).await.unwrap();
    assert_eq!(env.azure.entra.request_count(), 2);

    // A forged token (claims of pod-a, signature broken) never rides pod-a's cached token or
    // objects: it causes an exchange, which fails.
    let forged = format!("{}AAAA", &token_a[..token_a.len() - 4]);
    let err = env.mount(wi(&forged, "api-key").build()).await.unwrap_err();
    assert!(err.message().contains("AADSTS50027"), "{}", err.message());
    assert_eq!(env.azure.entra.request_count(), 3);
    // Same for a made-up string.
    assert!(env
        .mount(wi("not-a-token", "db-password").build())
        .await
        .is_err());
    assert_eq!(env.azure.entra.request_count(), 4);

    // Service principals: same secret reuses, a wrong secret for the same client does not.
    let sp = |s: &str| Request::new(env.params(&secret("api-key"))).service_principal(SP_CLIENT, s);
    env.mount(sp(SP_SECRET).build()).await.unwrap();
    env.mount(sp(SP_SECRET).build()).await.unwrap();
    assert_eq!(env.azure.entra.request_count(), 5);
    assert!(env.mount(sp("guessed-secret").build()).await.is_err());
    assert_eq!(
        env.azure.entra.request_count(),
        6,
        "a wrong secret is sent to Entra, never matched against the cache"
    );
}

#[tokio::test]
async fn fifty_concurrent_mounts_make_one_token_request() {
    let env = Env::start().await;
    env.azure
        .entra
        .faults
        .set_latency(Duration::from_millis(200));
    let req = env.sp(&secret("api-key")).build();
    let mounts: Vec<_> = (0..50)
        .map(|_| {
            let (mut client, req) = (env.client.clone(), req.clone());
            tokio::spawn(async move { client.mount(req).await })
        })
        .collect();
    for m in mounts {
        m.await.unwrap().expect("mount succeeds");
    }
    assert_eq!(env.azure.entra.request_count(), 1);
    let gets = env.azure.keyvault.served_requests();
    assert_eq!(
        gets, 1,
        "and one Key Vault GET: the object is shared by identical credentials"
    );
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry() {
    let env = Env::start_with(&standard_seed(), &["--object-cache-ttl=0"]).await;
    env.azure.entra.set_token_lifetime(Duration::from_secs(6));
    let req = env.sp(&secret("api-key"));
    env.mount(req.build()).await.unwrap();
    env.mount(req.build()).await.unwrap();
    assert_eq!(env.azure.entra.request_count(), 1, "fresh token reused");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    env.mount(req.build()).await.unwrap();
    assert_eq!(
        env.azure.entra.request_count(),
        2,
        "past half its lifetime the token is replaced"
    );
}

#[tokio::test]
async fn entra_throttling_and_outages_are_retried() {
    let env = Env::start().await;
    env.azure.entra.faults.inject(
        None,
        1,
        Fault::throttle(testkit::fault::RetryAfter::Seconds(1)),
    );
    env.azure.entra.faults.inject(None, 1, Fault::status(503));
    let req = env.sp(&secret("api-key"));
    env.mount(req.build())
        .await
        .expect("succeeds after retries");
    assert_eq!(env.azure.entra.request_count(), 3);
}
