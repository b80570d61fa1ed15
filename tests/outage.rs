//! `--serve-stale-on-error`: during a Key Vault outage (429 after retries, 5xx, timeouts,
//! transport errors) a mount that proves an identity gets the copy last fetched for that
//! identity, if it is young enough; never when Key Vault refuses (403, 404), never for a mount
//! that cannot prove the identity, and never without the flag.

mod common;

use std::time::Duration;

use common::*;
use testkit::fault::{Fault, RetryAfter};

fn api_key() -> String {
    objects(&["objectName: api-key\nobjectType: secret"])
}

/// A workload-identity mount of `api-key` by `pod`, with its own service-account token.
fn pod(env: &Env, pod: &str) -> Request {
    let mut req =
        Request::new(env.params(&api_key())).workload_identity(WI_CLIENT, &env.sa_token(pod));
    req.pod = pod.into();
    req
}

/// No fresh cache, so every mount asks Key Vault; stale copies for `window`.
async fn env(window: &str) -> Env {
    let stale = format!("--serve-stale-on-error={window}");
    Env::start_with(
        &standard_seed(),
        &["--object-cache-ttl=0", &stale, "--mount-timeout=8s"],
    )
    .await
}

fn outage(env: &Env, fault: Fault) {
    env.azure
        .keyvault
        .faults
        .inject(Some("secret_get"), usize::MAX, fault);
}

#[tokio::test]
async fn a_proven_identity_gets_the_last_good_copy_during_an_outage() {
    let env = env("10m").await;
    let first = env.mount(pod(&env, "pod-a").build()).await.unwrap();
    outage(&env, Fault::status(503));
    let resp = env
        .mount(pod(&env, "pod-b").build())
        .await
        .expect("served stale");
    assert_eq!(resp.files[0].contents, API_KEY.as_bytes());
    assert_eq!(
        resp.object_version, first.object_version,
        "the cached version is reported"
    );
    let line = env
        .provider
        .logs()
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "mount" && v["pod"] == "pod-b")
        .unwrap();
    let served = line["served"].as_str().unwrap();
    assert!(
        served.starts_with("secret/api-key=") && served.contains(" stale "),
        "{served}"
    );
    let metrics = env.provider.metrics().await.unwrap();
    assert!(
        metrics.contains("stale_copies_served_total{cache=\"object\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stale_copy_age_seconds_count{cache=\"object\"} 1"),
        "{metrics}"
    );

    // Throttling that outlasts the retries is an outage too.
    env.azure.keyvault.faults.clear_faults();
    outage(&env, Fault::throttle(RetryAfter::Millis(10)));
    env.mount(pod(&env, "pod-c").build())
        .await
        .expect("served stale");

    // A mount that cannot prove the identity gets nothing.
    let mut forged = pod(&env, "pod-d");
    let token = env.sa_token("pod-d");
    forged = forged.workload_identity(WI_CLIENT, &format!("{}AAAA", &token[..token.len() - 4]));
    let e = env.mount(forged.build()).await.unwrap_err();
    assert!(e.message().contains("AADSTS50027"), "{}", e.message());
}

#[tokio::test]
async fn refusals_are_never_bridged() {
    let env = env("10m").await;
    env.mount(pod(&env, "pod-a").build()).await.unwrap();
    for (fault, text) in [
        (Fault::status(404), "was not found in key vault kv-test"),
        (
            Fault::status(403),
            "access denied by key vault kv-test (403",
        ),
    ] {
        env.azure.keyvault.faults.clear_faults();
        outage(&env, fault);
        let e = env.mount(pod(&env, "pod-b").build()).await.unwrap_err();
        assert!(e.message().contains(text), "{}", e.message());
    }
}

#[tokio::test]
async fn without_the_flag_or_past_the_window_an_outage_fails_clearly() {
    let env = env("1s").await;
    env.mount(pod(&env, "pod-a").build()).await.unwrap();
    outage(&env, Fault::status(503));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let e = env.mount(pod(&env, "pod-b").build()).await.unwrap_err();
    assert!(
        e.message().contains("key vault kv-test answered 503"),
        "{}",
        e.message()
    );

    let env = Env::start_with(
        &standard_seed(),
        &["--object-cache-ttl=0", "--mount-timeout=8s"],
    )
    .await;
    env.mount(pod(&env, "pod-a").build()).await.unwrap();
    outage(&env, Fault::status(503));
    let e = env.mount(pod(&env, "pod-b").build()).await.unwrap_err();
    assert!(
        e.message().contains("key vault kv-test answered 503"),
        "{}",
        e.message()
    );
}
