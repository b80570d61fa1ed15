//! The fault matrix: every outbound hop (Key Vault, Entra ID, IMDS, NMI, the identity-binding
//! token proxy) × every fault the testkit injects (429 with and without Retry-After, 500, 503,
//! reset before headers and mid-body, slow headers, slow body, invalid JSON, an oversized body,
//! HTML instead of JSON), plus connection refused and expired tokens.
//!
//! For each cell the mount either succeeds with every file, or fails with a message naming the
//! object, never with a partial set of files; it answers within `--mount-timeout` (plus slack
//! for a loaded machine, never the kubelet's two minutes); and the provider neither panics nor
//! stops serving.

mod common;

use std::time::Duration;

use akv_csi_provider::proto::v1alpha1::MountRequest;
use akv_csi_provider::sni_for_cluster;
use common::*;
use testkit::azure::FakeAzure;
use testkit::fault::{Fault, Faults, RetryAfter};
use testkit::proxy::{RunningProxy, TokenProxy};
use testkit::seed::Seed;

const MOUNT_TIMEOUT: Duration = Duration::from_secs(5);
/// Slow faults outlast the mount deadline by far.
const FOREVER: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    KeyVault,
    Entra,
    Imds,
    Nmi,
    Proxy,
}

/// (name, fault, how many requests get it): once for transient faults, always for the rest.
fn faults() -> Vec<(&'static str, Fault, usize)> {
    vec![
        (
            "429 with Retry-After",
            Fault::throttle(RetryAfter::Seconds(1)),
            1,
        ),
        ("429 without Retry-After", Fault::status(429), 1),
        ("500 once", Fault::status(500), 1),
        ("503 once", Fault::status(503), 1),
        ("503 always", Fault::status(503), usize::MAX),
        ("reset before headers", Fault::Reset, 1),
        ("reset mid-body", Fault::ResetMidBody, usize::MAX),
        ("slow headers", Fault::Stall(FOREVER), usize::MAX),
        ("slow body", Fault::SlowBody(FOREVER), usize::MAX),
        ("invalid JSON", Fault::InvalidJson, usize::MAX),
        ("oversized body", Fault::Oversized(8 << 20), usize::MAX),
        ("wrong content type", Fault::WrongContentType, usize::MAX),
    ]
}

/// A provider whose `hop` is reachable (or, with `refused`, points at a closed port).
struct Rig {
    env: Env,
    proxy: Option<RunningProxy>,
    hop: Hop,
}

impl Rig {
    async fn start(hop: Hop, refused: bool, extra: &[&str]) -> Rig {
        let azure = FakeAzure::start(Seed::from_yaml(&standard_seed()).unwrap()).await;
        let proxy = match hop {
            Hop::Proxy => {
                Some(TokenProxy::start(&sni_for_cluster("fault-matrix"), azure.entra.clone()).await)
            }
            _ => None,
        };
        let mut args = azure.provider_args();
        if let Some(p) = &proxy {
            args.extend(p.provider_args());
        }
        args.push(format!("--mount-timeout={}s", MOUNT_TIMEOUT.as_secs()));
        args.extend(extra.iter().map(|a| a.to_string()));
        if refused {
            let closed = closed_port();
            let (prefix, replacement) = match hop {
                Hop::KeyVault => (
                    "--resolve=*.vault.akv.test=",
                    format!("--resolve=*.vault.akv.test={closed}"),
                ),
                Hop::Entra => (
                    "--resolve=login.akv.test=",
                    format!("--resolve=login.akv.test={closed}"),
                ),
                Hop::Imds => (
                    "--imds-endpoint=",
                    format!("--imds-endpoint=http://{closed}"),
                ),
                Hop::Nmi => ("--nmi-endpoint=", format!("--nmi-endpoint=http://{closed}")),
                Hop::Proxy => (
                    "--token-proxy-url=",
                    format!("--token-proxy-url=https://{closed}"),
                ),
            };
            let at = args
                .iter()
                .position(|a| a.starts_with(prefix))
                .expect("hop flag");
            args[at] = replacement;
        }
        Rig {
            env: Env::launch_args(azure, args).await,
            proxy,
            hop,
        }
    }

    fn faults(&self) -> &Faults {
        match self.hop {
            Hop::KeyVault => &self.env.azure.keyvault.faults,
            Hop::Entra => &self.env.azure.entra.faults,
            Hop::Imds => &self.env.azure.node.imds_faults,
            Hop::Nmi => &self.env.azure.node.nmi_faults,
            Hop::Proxy => &self.proxy.as_ref().unwrap().proxy.faults,
        }
    }

    /// Two secrets, with the identity that goes through the hop (a fresh service-account token
    /// each time, so the token cache does not hide the hop).
    fn request(&self, pod: &str) -> MountRequest {
        let env = &self.env;
        let params = env.params(&objects(&[
            "objectName: api-key\nobjectType: secret",
            "objectName: db-password\nobjectType: secret",
        ]));
        let req = Request::new(params);
        match self.hop {
            Hop::KeyVault => req.service_principal(SP_CLIENT, SP_SECRET),
            Hop::Entra => req.workload_identity(WI_CLIENT, &env.sa_token(pod)),
            Hop::Imds => req.param("useVMManagedIdentity", "true"),
            Hop::Nmi => req.param("usePodIdentity", "true"),
            Hop::Proxy => {
                let token = env.azure.entra.issuer.token(
                    "default",
                    "app",
                    pod,
                    IB_AUDIENCE,
                    Duration::from_secs(3600),
                );
                let mut req = req
                    .param("useAzureTokenProxy", "true")
                    .param("clientID", IB_CLIENT);
                req.tokens.insert(IB_AUDIENCE.into(), token);
                req
            }
        }
        .build()
    }

    /// Mounts and checks the invariants; returns the message of a failed mount.
    async fn mount_checked(&self, case: &str, req: MountRequest) -> Result<(), String> {
        let bound = MOUNT_TIMEOUT + Duration::from_secs(20);
        let result = tokio::time::timeout(bound, self.env.mount(req))
            .await
            .unwrap_or_else(|_| panic!("{:?} {case}: no answer within {bound:?}", self.hop));
        match result {
            Ok(resp) => {
                let files = files(&resp);
                assert_eq!(files.len(), 2, "{:?} {case}: every file or none", self.hop);
                assert_eq!(files["api-key"].1, API_KEY.as_bytes());
                assert_eq!(files["db-password"].1, DB_PASSWORD.as_bytes());
                Ok(())
            }
            Err(status) => {
                let m = status.message();
                assert!(
                    m.starts_with("failed to mount objects, error: failed to get objectType:secret, objectName:"),
                    "{:?} {case}: the message names the object: {m}",
                    self.hop
                );
                assert!(!m.contains("panicked"), "{m}");
                Err(m.to_string())
            }
        }
    }

    fn assert_healthy(&self) {
        let logs = self.env.provider.logs();
        assert!(
            !logs.contains("panicked"),
            "{:?}: the provider panicked",
            self.hop
        );
    }
}

fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn matrix(hop: Hop) {
    let mut outcomes = Vec::new();
    for (n, (case, fault, times)) in faults().into_iter().enumerate() {
        let rig = Rig::start(hop, false, &[]).await;
        rig.faults().inject(None, times, fault);
        let pod = format!("pod-{n}");
        let outcome = rig.mount_checked(case, rig.request(&pod)).await;
        if times == usize::MAX {
            assert!(
                outcome.is_err(),
                "{hop:?} {case}: a persistent fault cannot succeed"
            );
        }
        // The provider still serves once the hop recovers.
        rig.faults().clear_faults();
        let again = rig.request(&format!("{pod}-again"));
        let recovered = rig
            .mount_checked(&format!("{case}, recovered"), again)
            .await;
        assert!(
            recovered.is_ok(),
            "{hop:?} {case}: mounts succeed again after the fault"
        );
        rig.assert_healthy();
        let outcome = outcome
            .err()
            .unwrap_or_else(|| "succeeded after retries".into());
        outcomes.push(format!("  {case}: {outcome}"));
    }

    let rig = Rig::start(hop, true, &[]).await;
    let refused = rig
        .mount_checked("connection refused", rig.request("pod-refused"))
        .await;
    outcomes.push(format!(
        "  connection refused: {}",
        refused.expect_err("refused fails")
    ));
    rig.assert_healthy();

    // Expired tokens: every token the hop issued expires behind the provider's back; Key Vault
    // answers 401 invalid_token, and the provider drops the cached token and gets a new one.
    // The same request twice: the same credential material, so the cached token is used (and no
    // object cache, so Key Vault sees it).
    let rig = Rig::start(hop, false, &["--object-cache-ttl=0"]).await;
    let req = rig.request("pod-exp");
    assert!(rig
        .mount_checked("before expiry", req.clone())
        .await
        .is_ok());
    let issued = rig.env.azure.tokens.all().len();
    rig.env.azure.tokens.expire_all();
    assert!(rig.mount_checked("expired token", req).await.is_ok());
    assert_eq!(
        rig.env.azure.tokens.all().len(),
        issued + 1,
        "{hop:?}: one new token"
    );
    rig.assert_healthy();
    println!("{hop:?}:\n{}", outcomes.join("\n"));
}

#[tokio::test]
async fn key_vault_faults() {
    matrix(Hop::KeyVault).await;
}

#[tokio::test]
async fn entra_faults() {
    matrix(Hop::Entra).await;
}

#[tokio::test]
async fn imds_faults() {
    matrix(Hop::Imds).await;
}

#[tokio::test]
async fn nmi_faults() {
    matrix(Hop::Nmi).await;
}

#[tokio::test]
async fn token_proxy_faults() {
    matrix(Hop::Proxy).await;
}
