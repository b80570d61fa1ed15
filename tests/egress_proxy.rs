//! Outbound proxies from the environment, against a real proxy server: Debian's tinyproxy,
//! started by each test (`testkit::tinyproxy`; the tests fail when it is not installed).
//!
//! Setup. The provider gets `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` in its environment, exactly as
//! a pod would. A proxied destination is resolved by the proxy, not by the provider, so
//! `--resolve` does not reach the fakes through the proxy: tinyproxy forwards to an upstream
//! relay in the test kit that maps the fakes' names (`login.akv.test`,
//! `kv-test.vault.akv.test`, …) to their loopback ports, standing in for DNS behind the proxy.
//! Where a test must prove that a hop went through the proxy, the provider gets no `--resolve`
//! rule for that name: it cannot reach it any other way. The proof is tinyproxy's own log: one
//! `Request (file descriptor N): CONNECT host:443 HTTP/1.1` line per tunnel and one
//! `GET http://…` line per plain-HTTP request; a host that went direct appears nowhere in it,
//! and the fake that served it recorded the request.
//!
//! Every test is also a leak test (`tests/common`): the proxy password, and the
//! `Proxy-Authorization` value made from it, must not appear in the provider's errors, logs or
//! metrics.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use akv_csi_provider::sni_for_cluster;
use base64::Engine;
use common::*;
use testkit::azure::FakeAzure;
use testkit::proxy::TokenProxy;
use testkit::seed::Seed;
use testkit::tinyproxy::{StallingProxy, Tinyproxy};

/// tinyproxy's `BasicAuth` accepts `[-A-Za-z0-9._]` only; percent-encoded credentials are
/// covered by the unit tests of `net::proxy`.
const PROXY_USER: &str = "csi-provider";
const PROXY_PASSWORD: &str = "Pr0xy-Pass.word_7Kq";

const API_KEY_OBJECT: &str = "objectName: api-key\nobjectType: secret";

/// CONNECT lines as tinyproxy logs them for the two HTTPS hops.
const CONNECT_LOGIN: &str = "CONNECT login.akv.test:443 HTTP/1.1";
const CONNECT_VAULT: &str = "CONNECT kv-test.vault.akv.test:443 HTTP/1.1";

async fn azure() -> FakeAzure {
    FakeAzure::start(Seed::from_yaml(&standard_seed()).unwrap()).await
}

/// The provider's flags for `azure`, without the `--resolve` rules whose pattern is in `drop`
/// (those hosts are then reachable only through the proxy).
fn args_without_resolve(azure: &FakeAzure, drop: &[&str]) -> Vec<String> {
    azure
        .provider_args()
        .into_iter()
        .filter(|a| {
            !drop
                .iter()
                .any(|d| a.starts_with(&format!("--resolve={d}=")))
        })
        .collect()
}

/// Every `--resolve` pattern of the test cloud.
const TEST_HOSTS: &[&str] = &["login.akv.test", "*.vault.akv.test"];

fn proxy_url_with_credentials(addr: SocketAddr) -> String {
    format!("http://{PROXY_USER}:{PROXY_PASSWORD}@{addr}")
}

/// The proxy password and the header value made from it.
fn proxy_secrets() -> Vec<String> {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"));
    vec![PROXY_PASSWORD.to_string(), basic]
}

fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Service principal and workload identity reach Entra ID and Key Vault only through CONNECT
/// tunnels with the proxy's credentials; VM identity (IMDS), pod identity (NMI) and identity
/// binding (the token proxy) are on loopback here, which is never proxied, and their fakes
/// served them while the proxy saw nothing but the two HTTPS hosts.
#[tokio::test]
async fn every_identity_mode_mounts_through_the_proxy() {
    let azure = azure().await;
    let token_proxy = TokenProxy::start(&sni_for_cluster("egress"), azure.entra.clone()).await;
    let mut proxy = Tinyproxy::start(azure.hosts(), Some((PROXY_USER, PROXY_PASSWORD))).await;
    let mut args = args_without_resolve(&azure, TEST_HOSTS);
    args.extend(token_proxy.provider_args());
    let url = proxy_url_with_credentials(proxy.addr);
    let unused = format!("http://{}", closed_port());
    let vars = [
        ("HTTPS_PROXY", url.as_str()),
        ("HTTP_PROXY", url.as_str()),
        // The upper-case name wins, as in Go.
        ("https_proxy", unused.as_str()),
    ];
    let env = Env::launch_env(azure, args, &vars).await;
    for secret in proxy_secrets() {
        env.treat_as_secret(&secret);
    }

    let sp = env.sp(&objects(&[API_KEY_OBJECT]));
    let wi = Request::new(env.params(&objects(&[API_KEY_OBJECT])))
        .workload_identity(WI_CLIENT, &env.sa_token("app-7d9f8"));
    let vm =
        Request::new(env.params(&objects(&[API_KEY_OBJECT]))).param("useVMManagedIdentity", "true");
    let pod = Request::new(env.params(&objects(&[API_KEY_OBJECT]))).param("usePodIdentity", "true");
    let ib = Request::new(env.params(&objects(&[API_KEY_OBJECT])))
        .identity_binding(IB_CLIENT, &env.ib_token("app-7d9f8"));
    for (mode, req) in [("sp", sp), ("wi", wi), ("vm", vm), ("pod", pod), ("ib", ib)] {
        let resp = env
            .mount(req.build())
            .await
            .unwrap_or_else(|e| panic!("{mode}: {}", e.message()));
        assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes(), "{mode}");
    }

    let requests = proxy.requests();
    assert!(requests.iter().any(|r| r == CONNECT_LOGIN), "{requests:?}");
    assert!(requests.iter().any(|r| r == CONNECT_VAULT), "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r == CONNECT_LOGIN || r == CONNECT_VAULT),
        "only the two HTTPS hosts went through the proxy: {requests:?}"
    );
    assert_eq!(env.azure.entra.request_count(), 2, "SP and WI tokens");
    let node = &env.azure.node;
    assert_eq!(
        node.imds_log.lock().unwrap().len(),
        1,
        "IMDS served directly"
    );
    assert_eq!(node.nmi_log.lock().unwrap().len(), 1, "NMI served directly");
    assert_eq!(token_proxy.proxy.requests().len(), 1, "token proxy direct");
    assert!(proxy.running());
}

/// `NO_PROXY` takes Key Vault out of the proxy (`.vault.akv.test`: every vault), while Entra ID
/// still goes through it: a `host:port` entry only matches that port (`login.akv.test:8443` is
/// not the URL's 443). A proxy value without a scheme means `http://`.
#[tokio::test]
async fn no_proxy_bypasses_the_proxy_for_listed_hosts() {
    let azure = azure().await;
    let proxy = Tinyproxy::start(azure.hosts(), None).await;
    let args = args_without_resolve(&azure, &["login.akv.test"]);
    let url = proxy.addr.to_string();
    let vars = [
        ("HTTPS_PROXY", url.as_str()),
        ("NO_PROXY", "login.akv.test:8443, .vault.akv.test"),
    ];
    let env = Env::launch_env(azure, args, &vars).await;
    let resp = env.mount_sp(&[API_KEY_OBJECT]).await.expect("mount");
    assert_eq!(files(&resp)["api-key"].1, API_KEY.as_bytes());

    let requests = proxy.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r == CONNECT_LOGIN),
        "only Entra ID went through the proxy: {requests:?}"
    );
    assert!(!proxy.log().contains("vault.akv.test"), "{}", proxy.log());
    assert!(!env.azure.keyvault.requests().is_empty());
}

/// `HTTP_PROXY` carries plain-HTTP requests, with `Proxy-Authorization` on each (tinyproxy
/// refuses them otherwise), while https URLs, without `HTTPS_PROXY`, go direct. NMI and IMDS
/// named by host names rather than loopback or link-local addresses follow the variables like
/// any URL: the proxy sees their requests and their tokens, which is why the default IMDS
/// address, link-local, never goes through a proxy (next test).
#[tokio::test]
async fn http_proxy_carries_plain_http_with_credentials() {
    let azure = azure().await;
    let mut routes = azure.hosts();
    routes.push(("nmi.akv.test".into(), azure.nmi_addr()));
    routes.push(("imds.akv.test".into(), azure.imds_addr()));
    let proxy = Tinyproxy::start(routes, Some((PROXY_USER, PROXY_PASSWORD))).await;
    let mut args = azure.provider_args();
    args.retain(|a| !a.starts_with("--nmi-endpoint=") && !a.starts_with("--imds-endpoint="));
    args.push("--nmi-endpoint=http://nmi.akv.test:2579".into());
    args.push("--imds-endpoint=http://imds.akv.test".into());
    let url = proxy_url_with_credentials(proxy.addr);
    let env = Env::launch_env(azure, args, &[("HTTP_PROXY", url.as_str())]).await;
    for secret in proxy_secrets() {
        env.treat_as_secret(&secret);
    }

    for mode in ["usePodIdentity", "useVMManagedIdentity"] {
        let req = Request::new(env.params(&objects(&[API_KEY_OBJECT]))).param(mode, "true");
        env.mount(req.build())
            .await
            .unwrap_or_else(|e| panic!("{mode}: {}", e.message()));
    }

    let requests = proxy.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests[0].starts_with("GET http://nmi.akv.test:2579/host/token/?resource="),
        "{requests:?}"
    );
    assert!(
        requests[1].starts_with("GET http://imds.akv.test/metadata/identity/oauth2/token?"),
        "{requests:?}"
    );
    let nmi = env.azure.node.nmi_log.lock().unwrap().clone();
    assert_eq!(
        nmi[0].headers["podname"], "app-7d9f8",
        "headers pass the proxy"
    );
    assert!(
        !env.azure.keyvault.requests().is_empty(),
        "https went direct"
    );
}

/// IMDS at its link-local address never goes through the proxy, even with `HTTP_PROXY` set and
/// no `NO_PROXY`: a proxy would see the node's tokens in clear text (and would ask its own
/// machine's metadata service). Nothing serves IMDS at that address here, so the mount fails;
/// the proof is that tinyproxy, which did carry the same mount's Key Vault request, never saw
/// a request for 169.254.169.254, and that the error names no proxy.
#[tokio::test]
async fn link_local_imds_is_never_proxied() {
    let azure = azure().await;
    let proxy = Tinyproxy::start(azure.hosts(), None).await;
    let mut args = args_without_resolve(&azure, TEST_HOSTS);
    args.retain(|a| !a.starts_with("--imds-endpoint="));
    args.push("--imds-endpoint=http://169.254.169.254:1".into());
    args.push("--mount-timeout=4s".into());
    let url = format!("http://{}", proxy.addr);
    let vars = [("HTTP_PROXY", url.as_str()), ("HTTPS_PROXY", url.as_str())];
    let env = Env::launch_env(azure, args, &vars).await;

    let req =
        Request::new(env.params(&objects(&[API_KEY_OBJECT]))).param("useVMManagedIdentity", "true");
    let started = Instant::now();
    let err = env.mount(req.build()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let message = err.message();
    assert!(
        message.contains("failed to acquire an access token from IMDS"),
        "{message}"
    );
    assert!(!message.contains("proxy"), "{message}");
    let requests = proxy.requests();
    assert_eq!(
        requests,
        vec![CONNECT_VAULT.to_string()],
        "the challenge only"
    );
    assert!(!proxy.log().contains("169.254"), "{}", proxy.log());
}

/// A proxy that refuses connections: the Key Vault error names the proxy (credentials hidden)
/// and comes at once, not at the deadline.
#[tokio::test]
async fn a_refusing_proxy_fails_naming_the_proxy() {
    let azure = azure().await;
    let closed = closed_port();
    let url = proxy_url_with_credentials(closed);
    let mut args = azure.provider_args();
    args.push("--mount-timeout=5s".into());
    let env = Env::launch_env(azure, args, &[("HTTPS_PROXY", url.as_str())]).await;
    for secret in proxy_secrets() {
        env.treat_as_secret(&secret);
    }
    let started = Instant::now();
    let err = env.mount_sp(&[API_KEY_OBJECT]).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let message = err.message();
    let named = format!("through proxy http://xxxxx@{closed} (HTTPS_PROXY): ");
    assert!(
        message.contains("failed to reach key vault kv-test at kv-test.vault.akv.test: ")
            && message.contains(&named),
        "{message}"
    );
}

/// Credentials the proxy does not accept: the error names the proxy, not the password.
#[tokio::test]
async fn wrong_proxy_credentials_fail_naming_the_proxy() {
    let azure = azure().await;
    let proxy = Tinyproxy::start(azure.hosts(), Some((PROXY_USER, "another-password"))).await;
    let args = args_without_resolve(&azure, TEST_HOSTS);
    let url = proxy_url_with_credentials(proxy.addr);
    let env = Env::launch_env(azure, args, &[("HTTPS_PROXY", url.as_str())]).await;
    for secret in proxy_secrets() {
        env.treat_as_secret(&secret);
    }
    let err = env.mount_sp(&[API_KEY_OBJECT]).await.unwrap_err();
    let named = format!("through proxy http://xxxxx@{} (HTTPS_PROXY): ", proxy.addr);
    assert!(err.message().contains(&named), "{}", err.message());
    assert!(err.message().contains("tunnel error"), "{}", err.message());
    assert_eq!(
        proxy.requests().first().map(String::as_str),
        Some(CONNECT_VAULT)
    );
}

/// A proxy that accepts the connection and never answers the CONNECT: the Entra ID error (Key
/// Vault is in `NO_PROXY`) names the proxy and the timeout, within `--mount-timeout`.
#[tokio::test]
async fn a_stalling_proxy_fails_naming_the_proxy_within_the_deadline() {
    let azure = azure().await;
    let stalling = StallingProxy::start().await;
    let url = format!("http://{}", stalling.addr);
    let mut args = args_without_resolve(&azure, &["login.akv.test"]);
    args.push("--mount-timeout=8s".into());
    let vars = [
        ("HTTPS_PROXY", url.as_str()),
        ("NO_PROXY", ".vault.akv.test"),
    ];
    let env = Env::launch_env(azure, args, &vars).await;
    let req = Request::new(env.params(&objects(&[API_KEY_OBJECT])))
        .workload_identity(WI_CLIENT, &env.sa_token("app-7d9f8"));
    let started = Instant::now();
    let err = env.mount(req.build()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    let message = err.message();
    let named = format!("through proxy http://{} (HTTPS_PROXY): ", stalling.addr);
    assert!(
        message.contains(&format!(
            "failed to acquire an access token from Entra ID for client id {WI_CLIENT}"
        )) && message.contains(&named)
            && message.contains("timed out"),
        "{message}"
    );
    assert_eq!(env.azure.entra.request_count(), 0);
}
