//! The benchmark behind `scripts/bench`: runs the real provider against the fakes with injected
//! latency and prints mount latency against the physical limit and the Go provider's sequential
//! cost model (P1), Key Vault and token calls for many pods (P2), memory and binary size (P3),
//! and throughput and CPU per mount (P4). Figures are measured, never asserted here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use akv_csi_provider::proto::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient;
use akv_csi_provider::proto::v1alpha1::MountRequest;
use tonic::transport::Channel;

use crate::azure::FakeAzure;
use crate::driver::{Caller, Volume};
use crate::provider::ProviderProcess;
use crate::seed::Seed;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const WI_CLIENT: &str = "5d0c2a1e-6a0b-4f5e-9c8a-0d5f9e7b1a01";
const SP_CLIENT: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const SP_SECRET: &str = "bench-sp-secret";
const KV_RTT: Duration = Duration::from_millis(20);
const ENTRA_RTT: Duration = Duration::from_millis(50);

fn seed() -> Seed {
    let mut secrets = String::new();
    for i in 0..50 {
        secrets.push_str(&format!(
            "      - name: s{i}\n        versions:\n          - value: value-{i}-{}\n",
            "x".repeat(64)
        ));
    }
    Seed::from_yaml(&format!(
        "tenants:\n  - id: {TENANT}\n    clients:\n      - clientId: {WI_CLIENT}\n        federated:\n          - subject: system:serviceaccount:default:bench\n      - clientId: {SP_CLIENT}\n        secret: {SP_SECRET}\nvaults:\n  - name: kv-bench\n    tenant: {TENANT}\n    access:\n      - clientId: {WI_CLIENT}\n        secrets: [get]\n      - clientId: {SP_CLIENT}\n        secrets: [get]\n    secrets:\n{secrets}"
    ))
    .expect("bench seed")
}

struct Bench {
    azure: FakeAzure,
    provider: ProviderProcess,
    client: CsiDriverProviderClient<Channel>,
}

impl Bench {
    async fn start(binary: &Path, extra: &[&str]) -> Bench {
        let azure = FakeAzure::start(seed()).await;
        let mut args = azure.provider_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        // Benchmarks log at the default level: -v=5 would measure the logger.
        let provider = ProviderProcess::start_quiet(binary, &args)
            .await
            .expect("provider starts");
        let client = CsiDriverProviderClient::new(provider.channel().await.expect("connect"));
        Bench {
            azure,
            provider,
            client,
        }
    }

    fn volume(&self, objects: usize, pod: &str) -> Volume {
        let items: String = (0..objects)
            .map(|i| format!("  - |\n    objectName: s{i}\n    objectType: secret\n"))
            .collect();
        let params = BTreeMap::from([
            ("keyvaultName".to_string(), "kv-bench".to_string()),
            ("tenantID".to_string(), TENANT.to_string()),
            ("cloudName".to_string(), "AzureStackCloud".to_string()),
            (
                "cloudEnvFileName".to_string(),
                self.azure.cloud_env_file().display().to_string(),
            ),
            ("objects".to_string(), format!("array:\n{items}")),
        ]);
        let mut v = Volume::new("bench", params);
        v.pod_name = pod.to_string();
        v.service_account = "bench".into();
        v
    }

    fn sp_request(&self, objects: usize, pod: &str) -> MountRequest {
        let mut v = self.volume(objects, pod);
        v.node_publish_secret = Some(BTreeMap::from([
            ("clientid".to_string(), SP_CLIENT.to_string()),
            ("clientsecret".to_string(), SP_SECRET.to_string()),
        ]));
        v.request(Caller::DriverV16)
    }

    /// `pods` concurrent mounts, one per pod; returns the Key Vault GETs and token requests they
    /// cost.
    async fn pods(&self, pods: usize, request: impl Fn(usize) -> MountRequest) -> (usize, usize) {
        self.azure.keyvault.reset_log();
        let tokens_before = self.azure.entra.request_count();
        let tasks: Vec<_> = (0..pods)
            .map(|i| {
                let (mut client, req) = (self.client.clone(), request(i));
                tokio::spawn(async move { client.mount(req).await.expect("mount") })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        (
            self.azure.keyvault.served_requests(),
            self.azure.entra.request_count() - tokens_before,
        )
    }

    fn wi_request(&self, objects: usize, pod: &str) -> MountRequest {
        let mut v = self.volume(objects, pod);
        v.parameters.insert("clientID".into(), WI_CLIENT.into());
        let token = self.azure.entra.issuer.token(
            "default",
            "bench",
            pod,
            "api://AzureADTokenExchange",
            Duration::from_secs(3600),
        );
        v.tokens.insert("api://AzureADTokenExchange".into(), token);
        v.request(Caller::DriverV16)
    }

    async fn mount(&self, req: MountRequest) -> Duration {
        let started = Instant::now();
        self.client
            .clone()
            .mount(req)
            .await
            .expect("benchmark mount succeeds");
        started.elapsed()
    }

    fn rss_kib(&self) -> u64 {
        let pid = self.provider.pid().expect("running");
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// User plus system CPU time of the provider process.
    fn cpu(&self) -> Duration {
        let pid = self.provider.pid().expect("running");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 = fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        Duration::from_millis(ticks * 10)
    }
}

/// The driver's default rotation poll and Key Vault's limit on secret GETs per vault.
const POLL: Duration = Duration::from_secs(120);
const VAULT_LIMIT_PER_10S: f64 = 4000.0;

/// P2: what pods of one identity cost Key Vault, within one cache window and across rotation
/// polls, and what that means for a cluster.
async fn p2(binary: &Path) {
    println!("\nP2 Key Vault GETs and token requests, 100 pods x 10 objects (default --object-cache-ttl=60s)");
    println!("  case                                            ours: GETs  tokens    Go provider model: GETs  challenges  tokens");
    let bench = Bench::start(binary, &[]).await;
    let (gets, tokens) = bench
        .pods(100, |i| bench.sp_request(10, &format!("sp-{i}")))
        .await;
    println!("  one service principal (shared secret)           {gets:>10}  {tokens:>6}    {:>23}  {:>10}  {:>6}", 1000, 100, 100);
    let (gets, tokens) = bench
        .pods(100, |i| bench.wi_request(10, &format!("wi-{i}")))
        .await;
    println!("  one workload identity, 100 service-account tokens {gets:>8}  {tokens:>6}    {:>23}  {:>10}  {:>6}", 1000, 100, 100);
    drop(bench);

    // Rotation: the driver re-mounts every pod once per poll with fresh service-account tokens
    // (kubelet requiresRepublish). Intervals scaled 1:100: cache window 0.6 s, poll 1.2 s.
    let scale = 100;
    let ttl = Duration::from_secs(60) / scale;
    let bench = Bench::start(
        binary,
        &[&format!("--object-cache-ttl={}ms", ttl.as_millis())],
    )
    .await;
    let (mut total_gets, mut total_tokens) = (0, 0);
    for poll in 0..4 {
        let started = Instant::now();
        let (gets, tokens) = bench
            .pods(100, |i| {
                bench.wi_request(10, &format!("wi-{i}-poll-{poll}"))
            })
            .await;
        total_gets += gets;
        total_tokens += tokens;
        tokio::time::sleep((POLL / scale).saturating_sub(started.elapsed())).await;
    }
    println!("  4 rotation polls, 2-minute interval (scaled 1:{scale}), fresh tokens each poll: {total_gets} GETs, {total_tokens} tokens  (Go provider model: 4000 GETs, 400 challenges, 400 tokens)");
    // One node of the cluster model: 10 pods of one identity, one poll after the window.
    tokio::time::sleep(ttl * 2).await;
    let (node_gets, _) = bench
        .pods(10, |i| bench.wi_request(10, &format!("node-{i}")))
        .await;
    drop(bench);
    let (nodes, pods, objects) = (1000.0, 10_000.0, 10.0);
    let per_10s = |gets_per_poll: f64| gets_per_poll * 10.0 / POLL.as_secs_f64();
    let ours = per_10s(nodes * node_gets as f64);
    let go = per_10s(pods * objects);
    println!(
        "  cluster model: 10,000 pods on 1,000 nodes, one identity, 10 objects, 2-minute poll"
    );
    println!("    measured per node and poll (10 pods): {node_gets} GETs");
    println!("    Key Vault GETs per 10 s: ours {ours:.0}, Go provider {go:.0}, limit {VAULT_LIMIT_PER_10S:.0} (ours {:.2}x, Go {:.2}x of the limit)", ours / VAULT_LIMIT_PER_10S, go / VAULT_LIMIT_PER_10S);
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the parts named in `only` (`P1` … `P4`), or all.
pub async fn run(binary: &Path, only: &[String]) {
    let part = |name: &str| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(name));
    if part("P1") {
        p1(binary).await;
    }
    if part("P2") {
        p2(binary).await;
    }
    if part("P3") {
        p3(binary).await;
    }
    if part("P4") {
        p4(binary).await;
    }
}

/// P1: mount latency against the physical limit and the Go provider's sequential model.
async fn p1(binary: &Path) {
    println!(
        "akv-csi-provider benchmark ({} cores; fakes on loopback with injected latency)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("binary: {}\n", binary.display());
    println!(
        "P1 mount latency, KV RTT {} ms, Entra RTT {} ms, object cache off (every mount fetches)",
        ms(KV_RTT),
        ms(ENTRA_RTT)
    );
    println!("  objects  state   p50 ms   p99 ms   p50/limit  p50/sequential-model");
    let bench = Bench::start(binary, &["--object-cache-ttl=0"]).await;
    bench.azure.keyvault.faults.set_latency(KV_RTT);
    bench.azure.entra.faults.set_latency(ENTRA_RTT);
    bench.mount(bench.sp_request(1, "prime")).await;
    for objects in [1usize, 5, 20, 50] {
        let sequential = KV_RTT + ENTRA_RTT + KV_RTT * objects as u32;
        let mut warm: Vec<Duration> = Vec::new();
        for i in 0..40 {
            warm.push(
                bench
                    .mount(bench.sp_request(objects, &format!("warm-{i}")))
                    .await,
            );
        }
        let mut cold: Vec<Duration> = Vec::new();
        for i in 0..25 {
            cold.push(
                bench
                    .mount(bench.wi_request(objects, &format!("cold-{objects}-{i}")))
                    .await,
            );
        }
        for (state, samples, limit) in [
            ("warm", &mut warm, KV_RTT),
            ("cold", &mut cold, KV_RTT + ENTRA_RTT),
        ] {
            let p50 = percentile(samples, 0.5);
            let p99 = percentile(samples, 0.99);
            println!(
                "  {objects:>7}  {state}  {:>7.1}  {:>7.1}  {:>9.2}  {:>20.2}",
                ms(p50),
                ms(p99),
                p50.as_secs_f64() / limit.as_secs_f64(),
                p50.as_secs_f64() / sequential.as_secs_f64()
            );
        }
    }
    drop(bench);
}

/// P3: memory at rest and under 256 concurrent mounts, and the binary's size.
async fn p3(binary: &Path) {
    println!("\nP3 memory and size");
    let mut bench = Bench::start(binary, &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = bench.rss_kib();
    bench.azure.keyvault.faults.set_latency(KV_RTT);
    bench.azure.entra.faults.set_latency(ENTRA_RTT);
    let tasks: Vec<_> = (0..256)
        .map(|i| {
            let (mut client, req) = (
                bench.client.clone(),
                bench.wi_request(5, &format!("p3-{i}")),
            );
            tokio::spawn(async move { client.mount(req).await.expect("mount") })
        })
        .collect();
    let mut peak = idle;
    while tasks.iter().any(|t| !t.is_finished()) {
        peak = peak.max(bench.rss_kib());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for t in tasks {
        t.await.expect("task");
    }
    // A graceful stop, so a profiler wrapping the provider (massif, heaptrack) writes its data.
    bench.provider.terminate();
    let _ = tokio::time::timeout(Duration::from_secs(60), bench.provider.wait()).await;
    let size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    println!(
        "  idle RSS:                       {:.1} MiB",
        idle as f64 / 1024.0
    );
    println!(
        "  peak RSS, 256 concurrent mounts: {:.1} MiB",
        peak as f64 / 1024.0
    );
    println!(
        "  binary size:                    {:.1} MB",
        size as f64 / 1e6
    );
    drop(bench);
}

/// P4: warm throughput and provider CPU per mount.
async fn p4(binary: &Path) {
    println!("\nP4 warm throughput, 5-secret SPC, zero-latency fakes, 32 concurrent callers");
    for (label, extra) in [
        ("object cache on (default)", &[][..]),
        ("object cache off", &["--object-cache-ttl=0"][..]),
    ] {
        let bench = Bench::start(binary, extra).await;
        bench.mount(bench.sp_request(5, "prime")).await;
        let cpu_before = bench.cpu();
        let started = Instant::now();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let deadline = started + Duration::from_secs(4);
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (client, req, count) = (
                    bench.client.clone(),
                    bench.sp_request(5, "p4"),
                    count.clone(),
                );
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        client.clone().mount(req.clone()).await.expect("mount");
                        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let elapsed = started.elapsed();
        let mounts = count.load(std::sync::atomic::Ordering::Relaxed);
        let cpu = bench.cpu().saturating_sub(cpu_before);
        println!(
            "  {label:<26} {:>7.0} mounts/s, provider CPU {:.0} µs per mount",
            mounts as f64 / elapsed.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / mounts.max(1) as f64
        );
    }
}
