//! What a cluster costs Key Vault (the benchmark's P2 figures, as assertions): many pods of one
//! identity cost about one GET per distinct object per cache window, whether they share one
//! credential (a service principal) or each present their own (workload identity: every pod
//! exchanges its own service-account token, then shares the reads). Distinct identities never
//! share (tests/identity_sharing.rs).

mod common;

use common::*;

fn ten_objects() -> String {
    let names = ["db-password", "api-key", "b64", "hex"];
    let items: Vec<String> = (0..10)
        .map(|i| {
            format!(
                "objectName: {}\nobjectType: secret\nobjectAlias: f{i}",
                names[i % names.len()]
            )
        })
        .collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    objects(&items)
}

#[tokio::test]
async fn hundred_pods_sharing_one_identity() {
    let env = Env::start().await;
    let objs = ten_objects();
    let mounts: Vec<_> = (0..100)
        .map(|i| {
            let mut req = env.sp(&objs);
            req.pod = format!("pod-{i}");
            let mut client = env.client.clone();
            tokio::spawn(async move { client.mount(req.build()).await })
        })
        .collect();
    for m in mounts {
        assert_eq!(
            m.await.unwrap().expect("mount").into_inner().files.len(),
            10
        );
    }
    let gets = env.azure.keyvault.served_requests();
    assert!(
        gets <= 10,
        "{gets} GETs for 100 pods x 10 objects (4 distinct)"
    );
    assert_eq!(gets, 4, "each distinct object fetched once");
    assert_eq!(env.azure.entra.request_count(), 1);
}

#[tokio::test]
async fn hundred_pods_with_their_own_service_account_tokens_share_reads() {
    let env = Env::start().await;
    let objs = ten_objects();
    let mounts: Vec<_> = (0..100)
        .map(|i| {
            let mut req = Request::new(env.params(&objs))
                .workload_identity(WI_CLIENT, &env.sa_token(&format!("pod-{i}")));
            req.pod = format!("pod-{i}");
            let mut client = env.client.clone();
            tokio::spawn(async move { client.mount(req.build()).await })
        })
        .collect();
    for m in mounts {
        assert_eq!(
            m.await.unwrap().expect("mount").into_inner().files.len(),
            10
        );
    }
    assert_eq!(
        env.azure.entra.request_count(),
        100,
        "one exchange per service-account token: every pod proves the identity itself"
    );
    let gets = env.azure.keyvault.served_requests();
    assert_eq!(
        gets, 4,
        "each distinct object fetched once for the identity"
    );
}
