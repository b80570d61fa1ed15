//! Faults on the way to Key Vault and Entra ID: throttling with each Retry-After flavour, server
//! errors and dropped connections are retried within the mount deadline; a mount that cannot
//! finish in time fails with a message saying so, never a hang and never partial files.

mod common;

use std::time::{Duration, Instant};

use common::*;
use testkit::fault::{Fault, RetryAfter};

fn two_secrets(env: &Env) -> Request {
    let objs = objects(&[
        "objectName: api-key\nobjectType: secret",
        "objectName: db-password\nobjectType: secret",
    ]);
    env.sp(&objs)
}

#[tokio::test]
async fn throttling_server_errors_and_resets_are_retried() {
    // Every mount must reach Key Vault.
    let env = Env::start_with(&standard_seed(), &["--object-cache-ttl=0"]).await;
    let faults = [
        Fault::throttle(RetryAfter::Seconds(1)),
        Fault::throttle(RetryAfter::Millis(50)),
        Fault::throttle(RetryAfter::MsMillis(50)),
        Fault::throttle(RetryAfter::None),
        Fault::status(500),
        Fault::status(503),
        Fault::Reset,
    ];
    for fault in faults {
        env.azure
            .keyvault
            .faults
            .inject(Some("secret_get"), 1, fault.clone());
        let started = Instant::now();
        let resp = env
            .mount(two_secrets(&env).build())
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {}", e.message()));
        assert_eq!(resp.files.len(), 2, "{fault:?}");
        if fault == Fault::throttle(RetryAfter::Seconds(1)) {
            assert!(
                started.elapsed() >= Duration::from_millis(900),
                "Retry-After honoured"
            );
        }
    }
    let metrics = env.provider.metrics().await.unwrap();
    assert!(
        metrics.contains("keyvault_throttled_total{vault=\"kv-test\",object_type=\"secret\"} 4"),
        "{metrics}"
    );
    // One retry per fault at least; a dropped HTTP/2 connection may fail both in-flight GETs.
    let retries: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("keyvault_retries_total{vault=\"kv-test\",object_type=\"secret\"} ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((7..=8).contains(&retries), "{metrics}");
}

#[tokio::test]
async fn persistent_throttling_fails_with_the_cause_and_no_partial_files() {
    let env = Env::start_with(&standard_seed(), &["--object-cache-ttl=0"]).await;
    // Warm the scope and token so only the object GETs are throttled.
    env.mount(two_secrets(&env).build()).await.unwrap();
    env.azure.keyvault.faults.inject(
        Some("secret_get"),
        1000,
        Fault::throttle(RetryAfter::Millis(10)),
    );
    let err = env
        .mount(
            env.sp(&objects(&["objectName: b64\nobjectType: secret"]))
                .build(),
        )
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains("failed to get objectType:secret, objectName:b64"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("is throttling requests (429)"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_fails_fast() {
    let env = Env::start_with(&standard_seed(), &["--mount-timeout=5s"]).await;
    env.azure.keyvault.faults.inject(
        Some("secret_get"),
        10,
        Fault::throttle(RetryAfter::Seconds(30)),
    );
    let started = Instant::now();
    let err = env.mount(two_secrets(&env).build()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not sleep into the deadline: {:?}",
        started.elapsed()
    );
    assert!(err.message().contains("throttling"), "{}", err.message());
}

#[tokio::test]
async fn a_slow_vault_hits_the_mount_deadline_not_the_kubelet_timeout() {
    let env = Env::start_with(&standard_seed(), &["--mount-timeout=2s"]).await;
    env.azure
        .keyvault
        .faults
        .set_latency(Duration::from_secs(10));
    let started = Instant::now();
    let err = env.mount(two_secrets(&env).build()).await.unwrap_err();
    let elapsed = started.elapsed();
    // Outbound calls stop a quarter before the deadline, so the error names what was pending.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(
        err.message().contains("objectName:api-key")
            && err.message().contains("objectName:db-password")
            && err.message().contains("operation timed out"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn broken_json_from_key_vault_is_an_error_naming_the_object() {
    let env = Env::start_with(&standard_seed(), &["--object-cache-ttl=0"]).await;
    env.mount(two_secrets(&env).build()).await.unwrap();
    env.azure
        .keyvault
        .faults
        .inject(Some("secret_get"), 1, Fault::InvalidJson);
    let err = env
        .mount(
            env.sp(&objects(&["objectName: hex\nobjectType: secret"]))
                .build(),
        )
        .await
        .unwrap_err();
    assert!(
        err.message().contains("objectName:hex")
            && err.message().contains("sent an unusable response"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn responses_over_the_driver_limit_fail_clearly() {
    let big = "x".repeat(900 * 1024);
    let base = standard_seed();
    let marker = "    secrets:\n";
    let at = base.find(marker).unwrap() + marker.len();
    let seed = format!(
        "{}      - name: big\n        versions:\n          - value: {big}\n{}",
        &base[..at],
        &base[at..]
    );
    let env = Env::start_with(&seed, &[]).await;
    let items: Vec<String> = (0..5)
        .map(|i| format!("objectName: big\nobjectType: secret\nobjectAlias: big{i}"))
        .collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let err = env
        .mount(env.sp(&objects(&items)).build())
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains("above the driver's 4 MiB gRPC message limit"),
        "{}",
        err.message()
    );
    // Two fit the driver's limit, with a warning that a Secret synced from them would not.
    let two = env
        .mount(env.sp(&objects(&items[..2])).build())
        .await
        .unwrap();
    assert_eq!(two.files.len(), 2);
    assert!(env.provider.logs().contains("would be refused"));
    // One such object alone is fine.
    let resp = env
        .mount(
            env.sp(&objects(&["objectName: big\nobjectType: secret"]))
                .build(),
        )
        .await
        .unwrap();
    assert_eq!(resp.files[0].contents.len(), big.len());
}

/// A 429 with Retry-After pauses every mount on the node, not only the one that received it:
/// while the pause lasts, nobody sends the vault anything.
#[tokio::test]
async fn one_pause_per_vault_for_every_mount() {
    let env = Env::start_with(&standard_seed(), &["--object-cache-ttl=0"]).await;
    // Learn the vault's scope and a token first, so only object GETs remain.
    env.mount(two_secrets(&env).build()).await.unwrap();
    env.azure.keyvault.reset_log();
    env.azure.keyvault.faults.inject(
        Some("secret_get"),
        1,
        Fault::throttle(RetryAfter::Seconds(2)),
    );
    let first = {
        let req = env
            .sp(&objects(&["objectName: api-key\nobjectType: secret"]))
            .build();
        let mut client = env.client.clone();
        tokio::spawn(async move { client.mount(req).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let others: Vec<_> = ["db-password", "b64", "hex"]
        .iter()
        .map(|name| {
            let req = env
                .sp(&objects(&[&format!(
                    "objectName: {name}\nobjectType: secret"
                )]))
                .build();
            let mut client = env.client.clone();
            tokio::spawn(async move { client.mount(req).await })
        })
        .collect();
    first
        .await
        .unwrap()
        .expect("the throttled mount retries after the pause");
    for m in others {
        m.await
            .unwrap()
            .expect("the others wait for the pause, then succeed");
    }
    let log = env.azure.keyvault.requests();
    let throttled = log.iter().find(|r| r.status == 429).expect("a 429").at;
    let during: Vec<_> = log
        .iter()
        .filter(|r| r.at > throttled && r.at < throttled + Duration::from_millis(1900))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        during.is_empty(),
        "requests sent during the pause: {during:?}"
    );
    assert_eq!(log.len(), 5, "one 429, then each object once: {log:?}");
    let metrics = env.provider.metrics().await.unwrap();
    assert!(
        metrics.contains("keyvault_throttled_total{vault=\"kv-test\",object_type=\"secret\"} 1"),
        "{metrics}"
    );
}

/// A pause longer than a mount may wait fails it at once, saying why, without sending anything.
#[tokio::test]
async fn a_pause_beyond_the_deadline_fails_fast() {
    let env = Env::start_with(
        &standard_seed(),
        &["--object-cache-ttl=0", "--mount-timeout=10s"],
    )
    .await;
    env.mount(two_secrets(&env).build()).await.unwrap();
    env.azure.keyvault.faults.inject(
        Some("secret_get"),
        1,
        Fault::throttle(RetryAfter::Seconds(120)),
    );
    let started = Instant::now();
    let e = env.mount(two_secrets(&env).build()).await.unwrap_err();
    assert!(
        e.message().contains("is throttling requests (429)"),
        "{}",
        e.message()
    );
    let sent = env.azure.keyvault.requests().len();
    let e = env
        .mount(
            env.sp(&objects(&["objectName: b64\nobjectType: secret"]))
                .build(),
        )
        .await
        .unwrap_err();
    assert!(
        e.message().contains("asked for a pause of another"),
        "{}",
        e.message()
    );
    assert_eq!(
        env.azure.keyvault.requests().len(),
        sent,
        "nothing sent while paused"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
