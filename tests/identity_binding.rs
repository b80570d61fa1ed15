//! AKS identity binding: the service-account token for `api://AKSIdentityBinding` is exchanged
//! through the cluster's token proxy, reached with the binding's SNI and the cluster CA.

mod common;

use std::time::Duration;

use akv_csi_provider::sni_for_cluster;
use common::*;
use testkit::azure::FakeAzure;
use testkit::proxy::TokenProxy;
use testkit::seed::Seed;

#[tokio::test]
async fn token_exchange_through_the_proxy_with_the_binding_sni() {
    let azure = FakeAzure::start(Seed::from_yaml(&standard_seed()).unwrap()).await;
    let sni = sni_for_cluster("3f2a9c1e-test-cluster");
    let proxy = TokenProxy::start(&sni, azure.entra.clone()).await;
    let env = Env::launch(azure, &proxy.provider_args()).await;

    let token = env.azure.entra.issuer.token(
        "default",
        "app",
        "app-7d9f8",
        IB_AUDIENCE,
        Duration::from_secs(3600),
    );
    let mut req = Request::new(env.params(&objects(&["objectName: api-key\nobjectType: secret"])))
        .param("useAzureTokenProxy", "true")
        .param("clientID", IB_CLIENT);
    req.tokens.insert(IB_AUDIENCE.into(), token);
    let resp = env
        .mount(req.build())
        .await
        .expect("mount through the proxy");
    assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes());

    let seen = proxy.proxy.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].sni.as_deref(),
        Some(sni.as_str()),
        "TLS server name is the binding SNI"
    );
    assert_eq!(
        seen[0].host,
        proxy.server.addr.to_string(),
        "Host stays the proxy's authority"
    );
    assert_eq!(seen[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        env.azure.entra.request_count(),
        0,
        "Entra ID is only reached through the proxy"
    );

    // The workload-identity token is not accepted for identity binding.
    let mut wrong =
        Request::new(env.params(&objects(&["objectName: api-key\nobjectType: secret"])))
            .param("useAzureTokenProxy", "true")
            .param("clientID", IB_CLIENT);
    wrong.tokens.insert(WI_AUDIENCE.into(), env.sa_token("x"));
    let err = env.mount(wrong.build()).await.unwrap_err();
    assert!(err.message().contains("failed to parse service account token for identity binding, error: token for audience api://AKSIdentityBinding not found"), "{}", err.message());
}

#[tokio::test]
async fn a_wrong_sni_fails_certificate_verification() {
    let azure = FakeAzure::start(Seed::from_yaml(&standard_seed()).unwrap()).await;
    let proxy = TokenProxy::start(&sni_for_cluster("real-cluster"), azure.entra.clone()).await;
    let mut args = proxy.provider_args();
    args[1] = format!("--sni-name={}", sni_for_cluster("other-cluster"));
    let env = Env::launch(azure, &args).await;
    let mut req = Request::new(env.params(&objects(&["objectName: api-key\nobjectType: secret"])))
        .param("useAzureTokenProxy", "true")
        .param("clientID", IB_CLIENT);
    req.tokens.insert(
        IB_AUDIENCE.into(),
        env.azure
            .entra
            .issuer
            .token("default", "app", "p", IB_AUDIENCE, Duration::from_secs(600)),
    );
    let err = env.mount(req.build()).await.unwrap_err();
    assert!(
        err.message().contains("identity binding:"),
        "{}",
        err.message()
    );
    assert!(
        proxy.proxy.requests().is_empty(),
        "no request reached the proxy"
    );
}

#[tokio::test]
async fn the_cluster_ca_file_is_re_read_when_it_changes() {
    let azure = FakeAzure::start(Seed::from_yaml(&standard_seed()).unwrap()).await;
    let proxy = TokenProxy::start(&sni_for_cluster("rotating-ca"), azure.entra.clone()).await;
    let env = Env::launch(azure, &proxy.provider_args()).await;
    // Each mount presents a new service-account token, so each needs a new exchange.
    let mount = |pod: &'static str| {
        let mut req =
            Request::new(env.params(&objects(&["objectName: api-key\nobjectType: secret"])))
                .param("useAzureTokenProxy", "true")
                .param("clientID", IB_CLIENT);
        req.tokens.insert(
            IB_AUDIENCE.into(),
            env.azure.entra.issuer.token(
                "default",
                "app",
                pod,
                IB_AUDIENCE,
                Duration::from_secs(600),
            ),
        );
        env.mount(req.build())
    };
    mount("p1").await.expect("trusted CA");
    let original = std::fs::read(&proxy.ca_file).unwrap();
    std::fs::write(
        &proxy.ca_file,
        testkit::tls::TestCa::new("another CA").pem(),
    )
    .unwrap();
    let err = mount("p2").await.unwrap_err();
    assert!(
        err.message().contains("invalid peer certificate"),
        "the new CA content is used: {}",
        err.message()
    );
    std::fs::write(&proxy.ca_file, "").unwrap();
    let err = mount("p3").await.unwrap_err();
    assert!(err.message().contains("is empty"), "{}", err.message());
    std::fs::write(&proxy.ca_file, original).unwrap();
    mount("p4")
        .await
        .expect("trusted again after the file changes back");
}
