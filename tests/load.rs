//! Load: 1,000 concurrent mounts of 10 objects over one client connection (the driver multiplexes
//! every pod on one connection), against fakes with latency, for 10 rounds. Every mount succeeds,
//! and open file descriptors and memory return to their baseline: nothing leaks per mount. And a
//! crash in the middle of such a load loses nothing the driver cannot retry.

mod common;

use std::time::Duration;

use akv_csi_provider::proto::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use common::*;

const ROUNDS: usize = 10;

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_mounts_for_ten_rounds_without_leaks() {
    // Cache off: every mount really fetches its 10 objects.
    let env = Env::start_with(&standard_seed(), &["--object-cache-ttl=0"]).await;
    env.azure
        .keyvault
        .faults
        .set_latency(Duration::from_millis(5));
    let pid = env.provider.pid().unwrap();
    let names = ["db-password", "api-key", "b64", "hex"];
    let items: Vec<String> = (0..10)
        .map(|i| {
            format!(
                "objectName: {}\nobjectType: secret\nobjectAlias: f{i}",
                names[i % 4]
            )
        })
        .collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let req = env.sp(&objects(&items)).build();
    let mut samples = Vec::new();
    for round in 0..ROUNDS {
        let mounts: Vec<_> = (0..1000)
            .map(|_| {
                let (mut client, req) = (env.client.clone(), req.clone());
                tokio::spawn(async move { client.mount(req).await })
            })
            .collect();
        for m in mounts {
            let resp = m
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {}", e.message()));
            assert_eq!(resp.into_inner().files.len(), 10);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = (fds(pid), rss_kib(pid));
        eprintln!("round {round}: {} open files, RSS {} KiB", now.0, now.1);
        samples.push(now);
    }
    // File descriptors return to the same count after every round.
    let fd_baseline = samples[1].0;
    assert!(
        samples[1..].iter().all(|(fd, _)| *fd <= fd_baseline + 4),
        "{samples:?}"
    );
    // Memory may step up (the allocator keeps the high-water mark of a round whose mounts all
    // overlapped, which depends on how busy the machine is) but must not keep growing: a leak of
    // 3 KiB per mount raises the maximum by 3 MiB in every round, a step only in a few.
    let mut max = samples[0].1;
    let mut rises = Vec::new();
    for (round, (_, rss)) in samples.iter().enumerate().skip(1) {
        if *rss > max + 2 * 1024 {
            rises.push(round);
        }
        max = max.max(*rss);
    }
    assert!(
        rises.len() < ROUNDS / 2,
        "RSS keeps growing (new highs in rounds {rises:?}): {samples:?}"
    );
    assert_eq!(env.azure.entra.request_count(), 1);
}

/// The provider crashes (SIGKILL) with 200 mounts in flight and the DaemonSet restarts it on the
/// same socket: every interrupted mount fails as a whole (no response with some of its files),
/// and the driver's retry against the restarted provider succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_load_loses_nothing_the_driver_cannot_retry() {
    // No object cache: every mount really waits on Key Vault.
    let mut env = Env::start_with(&standard_seed(), &["--object-cache-ttl=0"]).await;
    env.azure
        .keyvault
        .faults
        .set_latency(Duration::from_millis(500));
    let req = env
        .sp(&objects(&[
            "objectName: api-key\nobjectType: secret",
            "objectName: db-password\nobjectType: secret",
        ]))
        .build();
    let mounts: Vec<_> = (0..200)
        .map(|_| {
            let (mut client, req) = (env.client.clone(), req.clone());
            tokio::spawn(async move { client.mount(req).await })
        })
        .collect();
    // Crash while Key Vault requests are waiting out their latency.
    while env.azure.keyvault.faults.total() < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.provider
        .crash_and_restart()
        .await
        .expect("restarts over its stale socket");

    let mut interrupted = 0;
    for m in mounts {
        match m.await.unwrap() {
            Ok(resp) => assert_eq!(resp.into_inner().files.len(), 2, "all files or none"),
            Err(status) => {
                assert_ne!(status.code(), tonic::Code::Ok);
                interrupted += 1;
            }
        }
    }
    assert!(interrupted > 0, "the crash interrupted mounts in flight");
    // The driver dials the socket again for its retries.
    env.azure.keyvault.faults.set_latency(Duration::ZERO);
    let client = CsiDriverProviderClient::new(env.provider.channel().await.unwrap());
    let retries: Vec<_> = (0..interrupted)
        .map(|_| {
            let (mut client, req) = (client.clone(), req.clone());
            tokio::spawn(async move { client.mount(req).await })
        })
        .collect();
    for retry in retries {
        let resp = retry.await.unwrap().expect("the retry succeeds");
        assert_eq!(resp.into_inner().files.len(), 2);
    }
}
