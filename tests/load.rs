//! Load: 1,000 concurrent mounts of 10 objects over one client connection (the driver multiplexes
//! every pod on one connection), against fakes with latency, for 10 rounds. Every mount succeeds,
//! and open file descriptors and memory return to their baseline: nothing leaks per mount.

mod common;

use std::time::Duration;

use common::*;

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
    let req = Request::new(env.params(&objects(&items)))
        .service_principal(SP_CLIENT, SP_SECRET)
        .build();
    let mut baseline = None;
    for round in 0..10 {
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
        if round == 1 {
            baseline = Some(now);
        }
        if let Some((fd0, rss0)) = baseline {
            assert!(
                now.0 <= fd0 + 8,
                "round {round}: {} open files, baseline {fd0}",
                now.0
            );
            assert!(
                now.1 <= rss0 + 16 * 1024,
                "round {round}: RSS {} KiB, baseline {rss0} KiB",
                now.1
            );
        }
    }
    assert_eq!(env.azure.entra.request_count(), 1);
}
