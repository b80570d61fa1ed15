//! Sharing Key Vault reads among mounts that prove the same Azure identity, and nothing beyond
//! (README "Caching and security"). Every mount obtains a token with its own credential
//! material; only then may it read what another mount fetched for the identity that token was
//! issued to. Each test fills the cache with a legitimate mount first and then tries to read it
//! without proving that identity.

mod common;

use common::*;

/// Federated with `default:other`; has no access to the vault.
const WI_OTHER: &str = "55555555-aaaa-4bbb-8ccc-000000000001";
/// Bound by NMI to the pod `intruder`; has no access to the vault.
const POD_ID_OTHER: &str = "55555555-aaaa-4bbb-8ccc-000000000002";

/// The standard seed, plus: `WI_OTHER` federated with `default:other`; the same client id as
/// `WI_CLIENT` registered in the other tenant too; NMI bindings of a second pod to the
/// standard pod identity and of `intruder` to an identity without access.
fn seed() -> String {
    let base = standard_seed();
    let other_tenant = format!("  - id: {OTHER_TENANT}\n    clients: []\n");
    assert!(base.contains(&other_tenant));
    base.replace(
        &other_tenant,
        &format!(
            "      - clientId: {WI_OTHER}\n        federated:\n          - subject: system:serviceaccount:default:other\n\
             \x20     - clientId: {POD_ID_OTHER}\n\
             \x20 - id: {OTHER_TENANT}\n    clients:\n      - clientId: {WI_CLIENT}\n        federated:\n          - subject: system:serviceaccount:default:app\n"
        ),
    )
    .replace(
        "nmi:\n",
        &format!(
            "nmi:\n  - namespace: default\n    pod: app-second\n    clientId: {POD_ID_CLIENT}\n    tenant: {TENANT}\n\
             \x20 - namespace: default\n    pod: intruder\n    clientId: {POD_ID_OTHER}\n    tenant: {TENANT}\n"
        ),
    )
}

fn api_key() -> String {
    objects(&["objectName: api-key\nobjectType: secret"])
}

/// A workload-identity mount of `api-key` with `token` for `client_id`.
fn wi(env: &Env, client_id: &str, token: &str) -> Request {
    Request::new(env.params(&api_key())).workload_identity(client_id, token)
}

fn token_of(env: &Env, sa: &str, pod: &str) -> String {
    env.azure.entra.issuer.token(
        "default",
        sa,
        pod,
        WI_AUDIENCE,
        std::time::Duration::from_secs(3600),
    )
}

#[tokio::test]
async fn replicas_of_one_workload_identity_share_reads() {
    let env = Env::start_with(&seed(), &[]).await;
    let a = env
        .mount(wi(&env, WI_CLIENT, &env.sa_token("pod-a")).build())
        .await;
    assert_eq!(a.unwrap().files[0].contents, API_KEY.as_bytes());
    let gets = env.azure.keyvault.served_requests();
    let mut b = wi(&env, WI_CLIENT, &env.sa_token("pod-b"));
    b.pod = "pod-b".into();
    let b = env.mount(b.build()).await.unwrap();
    assert_eq!(b.files[0].contents, API_KEY.as_bytes());
    assert_eq!(
        env.azure.entra.request_count(),
        2,
        "each pod exchanges its own token"
    );
    assert_eq!(
        env.azure.keyvault.served_requests(),
        gets,
        "and shares the read"
    );
    // The audit trail names the identity and says where the version came from.
    let line = env.mount_line("pod-b");
    assert_eq!(
        (
            line["identity"].as_str(),
            line["tenant"].as_str(),
            line["client_id"].as_str()
        ),
        (Some("workload_identity"), Some(TENANT), Some(WI_CLIENT))
    );
    let served = line["served"].as_str().unwrap();
    assert!(
        served.starts_with("secret/api-key=") && served.ends_with(" cache"),
        "{served}"
    );
}

#[tokio::test]
async fn mounts_that_do_not_prove_the_identity_get_nothing_from_the_cache() {
    let env = Env::start_with(&seed(), &[]).await;
    let token = env.sa_token("pod-a");
    env.mount(wi(&env, WI_CLIENT, &token).build())
        .await
        .unwrap();
    let served = env.azure.keyvault.served_requests();
    let attempt = |req: Request| {
        let env = &env;
        async move {
            env.mount(req.build())
                .await
                .unwrap_err()
                .message()
                .to_string()
        }
    };

    // A forged token (pod-a's claims, broken signature): Entra refuses the exchange.
    let forged = format!("{}AAAA", &token[..token.len() - 4]);
    let e = attempt(wi(&env, WI_CLIENT, &forged)).await;
    assert!(e.contains("AADSTS50027"), "{e}");
    // A real token of another service account, not federated with this client.
    let foreign = token_of(&env, "other", "pod-x");
    let e = attempt(wi(&env, WI_CLIENT, &foreign)).await;
    assert!(e.contains("AADSTS700213"), "{e}");
    // A valid token for another client id, which has no access: its own GET is refused.
    let e = attempt(wi(&env, WI_OTHER, &foreign)).await;
    assert!(e.contains("access denied by key vault kv-test (403"), "{e}");
    assert!(e.contains(WI_OTHER), "{e}");
    // The same client id in another tenant: a valid token, for a tenant the vault does not trust.
    let e = attempt(wi(&env, WI_CLIENT, &token).param("tenantID", OTHER_TENANT)).await;
    assert!(e.contains("rejected the access token (401)"), "{e}");

    assert_eq!(
        env.azure.keyvault.served_requests(),
        served,
        "nothing was served to them, from Key Vault or from the cache"
    );
}

#[tokio::test]
async fn revoking_the_federated_credential_stops_new_mounts_at_once() {
    let env = Env::start_with(&seed(), &[]).await;
    let token_a = env.sa_token("pod-a");
    env.mount(wi(&env, WI_CLIENT, &token_a).build())
        .await
        .unwrap();
    env.azure.entra.revoke_federation(WI_CLIENT);
    // A pod whose token has not been exchanged yet cannot prove the identity any more, although
    // the object is in the cache.
    let e = env
        .mount(wi(&env, WI_CLIENT, &env.sa_token("pod-new")).build())
        .await
        .unwrap_err();
    assert!(e.message().contains("AADSTS700213"), "{}", e.message());
    // pod-a's access token was issued before the revocation and stays valid until it expires,
    // as it would for pod-a calling Key Vault itself: it still mounts, from the cache.
    let exchanges = env.azure.entra.request_count();
    env.mount(wi(&env, WI_CLIENT, &token_a).build())
        .await
        .unwrap();
    assert_eq!(env.azure.entra.request_count(), exchanges);
}

#[tokio::test]
async fn pods_bound_to_different_nmi_identities_share_nothing() {
    let env = Env::start_with(&seed(), &[]).await;
    let nmi = |pod: &str| {
        let mut req = Request::new(env.params(&api_key())).param("usePodIdentity", "true");
        req.pod = pod.into();
        req
    };
    env.mount(nmi("app-7d9f8").build()).await.unwrap();
    let served = env.azure.keyvault.served_requests();
    // Bound to the same identity: shares the read.
    env.mount(nmi("app-second").build()).await.unwrap();
    assert_eq!(env.azure.keyvault.served_requests(), served);
    assert_eq!(env.mount_line("app-second")["client_id"], POD_ID_CLIENT);
    // Bound to another identity, without access: refused, not served from the cache.
    let e = env.mount(nmi("intruder").build()).await.unwrap_err();
    assert!(
        e.message()
            .contains("access denied by key vault kv-test (403"),
        "{}",
        e.message()
    );
    assert_eq!(env.azure.keyvault.served_requests(), served);
}
