//! The command line: the server (default command, with the Go provider's flag names so its
//! DaemonSet arguments work unchanged, plus our own), `lint` and `mount`.

pub mod lint;
mod manifest;
mod mount;
mod yaml;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::cloud::{CloudError, CloudName};
use crate::go;
use crate::identity::{IdentityConfig, ProxyError, TokenProxyConfig};
use crate::kube::{KubeConfig, KubeConfigError, ServiceAccounts};
use crate::metrics::Metrics;
use crate::net::{proxy, NetConfig, NetError, ResolveRule};
use crate::provider::{MountError, Provider, ProviderConfig};
use crate::render::RenderOptions;
use crate::request::{RequestDefaults, RequestError};
use crate::server::{self, HealthzConfig, ServerConfig, ServerError};
pub use manifest::ManifestError;
use mount::LocalMount;

#[derive(Parser, Debug)]
#[command(
    name = "akv-csi-provider",
    about = "Azure Key Vault provider for the Secrets Store CSI Driver",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check an application's manifests offline (SecretProviderClasses with the mount's own
    /// rules, and the workloads, Secrets and identities around them); print every problem.
    Lint(lint::LintArgs),
    /// Mount a SecretProviderClass from a workstation and write the files into a directory.
    Mount(Box<MountArgs>),
}

fn go_bool(text: &str) -> Result<bool, go::GoParseError> {
    go::parse_bool(text)
}

fn go_duration(text: &str) -> Result<Duration, go::GoParseError> {
    go::parse_duration(text)
}

/// Flags of the server (the default command).
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// gRPC endpoint to listen on.
    #[arg(long, default_value = "unix:///tmp/azure.sock")]
    endpoint: String,
    /// Print the version as JSON and exit.
    #[arg(long)]
    pub version: bool,
    /// Log verbosity (klog style): 0-1 info, 2-4 debug, 5+ trace.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
    /// Log JSON lines instead of text.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    pub log_format_json: bool,
    /// Port of the HTTP health endpoint.
    #[arg(long, default_value_t = 8989)]
    healthz_port: u16,
    /// Path of the HTTP health endpoint.
    #[arg(long, default_value = "/healthz")]
    healthz_path: String,
    /// Timeout of the health check through the socket (Go duration, e.g. 5s).
    #[arg(long, default_value = "5s", value_parser = go_duration)]
    healthz_timeout: Duration,
    /// Metrics backend; only Prometheus is supported.
    #[arg(long, default_value = "Prometheus")]
    metrics_backend: String,
    /// Port of the Prometheus /metrics endpoint.
    #[arg(long, default_value_t = 8898)]
    prometheus_port: u16,
    /// Accepted for compatibility; this provider has no pprof endpoints.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    enable_pprof: bool,
    /// Accepted for compatibility; this provider has no pprof endpoints.
    #[arg(long, default_value_t = 6060)]
    pprof_port: u16,
    /// A workload identity SecretProviderClass without clientID (and without a service
    /// principal Secret) takes the client id, and the tenant if given, from the
    /// azure.workload.identity annotations of the pod's ServiceAccount. Needs get on
    /// serviceaccounts.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    client_id_from_service_account: bool,
    /// Token the provider presents to the Kubernetes API (re-read for every request).
    #[arg(
        long,
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    kube_token_file: PathBuf,
    /// CA certificates that sign the Kubernetes API server's certificate.
    #[arg(
        long,
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    )]
    kube_ca_file: PathBuf,
    #[command(flatten)]
    provider: ProviderArgs,
}

/// Flags that shape mounts, shared by the server and `mount`.
#[derive(Args, Debug)]
struct ProviderArgs {
    /// Order PFX certificates leaf, intermediates, root.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true")]
    construct_pem_chain: bool,
    /// Also write FILE.crt and FILE.key beside each certificate-backed secret FILE.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    write_cert_and_key_in_separate_files: bool,
    /// Certificate service principals send their chain (x5c) with the client assertion, for
    /// subject name and issuer authentication.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    send_certificate_chain: bool,
    /// Cloud used when a SecretProviderClass sets no cloudName.
    #[arg(long, default_value = "AzurePublicCloud")]
    cloud_name: String,
    /// Appended to the User-Agent of outbound requests.
    #[arg(long, default_value = "")]
    custom_user_agent: String,
    /// AKS identity-binding token proxy URL.
    #[arg(long, default_value = "")]
    token_proxy_url: String,
    /// TLS server name for the identity-binding token proxy (computed when empty).
    #[arg(long, default_value = "")]
    sni_name: String,
    /// CA certificates trusted for the token proxy, re-read when they change.
    #[arg(
        long,
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    )]
    token_proxy_ca_file: PathBuf,
    /// Send connections for PATTERN (a host or *.suffix) to ADDR:PORT, keeping the real name
    /// for Host, SNI and certificate checks. Repeatable.
    #[arg(long = "resolve", value_name = "PATTERN=ADDR:PORT")]
    resolve: Vec<ResolveRule>,
    /// Extra PEM file of CA certificates to trust, besides the platform's. Repeatable.
    #[arg(long = "extra-ca-file", value_name = "PATH")]
    extra_ca_file: Vec<PathBuf>,
    /// aad-pod-identity NMI endpoint.
    #[arg(long, default_value = "http://localhost:2579")]
    nmi_endpoint: Url,
    /// Instance Metadata Service endpoint.
    #[arg(long, default_value = "http://169.254.169.254")]
    imds_endpoint: Url,
    /// Deadline of one mount, including retries (Go duration).
    #[arg(long, default_value = "60s", value_parser = go_duration)]
    mount_timeout: Duration,
    /// Concurrent requests to one vault, across all mounts (HTTP/2 multiplexes them).
    #[arg(long, default_value_t = 64)]
    max_concurrent_requests_per_vault: usize,
    /// How long a fetched object serves later mounts presenting the same credential (Go
    /// duration; 0 disables). Pinned versions are kept 5 times longer.
    #[arg(long, default_value = "60s", value_parser = go_duration)]
    object_cache_ttl: Duration,
    /// Upper bound on the memory held by cached objects.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    object_cache_max_bytes: usize,
    /// When Key Vault fails (429 after retries, 5xx, timeouts, transport errors), serve a mount
    /// whose identity is proven the copy last fetched for that identity if it is younger than
    /// this (Go duration; 0, the default, never does).
    #[arg(long, default_value = "0", value_parser = go_duration)]
    serve_stale_on_error: Duration,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// File holding the SecretProviderClass (multi-document YAML is fine).
    #[arg(long)]
    spc: PathBuf,
    /// Name of the SecretProviderClass when the file holds several.
    #[arg(long)]
    spc_name: Option<String>,
    /// Namespace of the pod the mount is for.
    #[arg(long)]
    pod_namespace: String,
    /// Name of the pod the mount is for.
    #[arg(long, default_value = "akv-csi-provider-cli")]
    pod_name: String,
    /// Service account of the pod.
    #[arg(long, default_value = "default")]
    service_account: String,
    /// Service principal client id (with --client-secret-file or --client-certificate-file).
    #[arg(long)]
    client_id: Option<String>,
    /// File holding the service principal's client secret.
    #[arg(long, conflicts_with = "client_certificate_file")]
    client_secret_file: Option<PathBuf>,
    /// PEM file holding the service principal's certificate (leaf first, chain optional) and
    /// its unencrypted private key.
    #[arg(long)]
    client_certificate_file: Option<PathBuf>,
    /// File holding a service-account token for audience api://AzureADTokenExchange.
    #[arg(long)]
    sa_token_file: Option<PathBuf>,
    /// File holding a service-account token for audience api://AKSIdentityBinding.
    #[arg(long)]
    identity_binding_token_file: Option<PathBuf>,
    /// Directory to write the files into.
    #[arg(long, required_unless_present = "dry_run")]
    out: Option<PathBuf>,
    /// Print the plan without contacting anything.
    #[arg(long)]
    dry_run: bool,
    /// Log verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
    #[command(flatten)]
    provider: ProviderArgs,
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("--cloud-name: {0}")]
    CloudName(CloudError),
    #[error("--token-proxy-url: {0}")]
    TokenProxyUrl(url::ParseError),
    #[error(transparent)]
    TokenProxy(#[from] ProxyError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Kube(#[from] KubeConfigError),
}

/// The request defaults and the mount path's settings the flags describe.
fn configure(args: ProviderArgs) -> Result<(RequestDefaults, ProviderConfig), CliError> {
    log_proxies()?;
    let cloud = CloudName::parse(&args.cloud_name).map_err(CliError::CloudName)?;
    let mut user_agent = format!("akv-csi-provider/{}", env!("CARGO_PKG_VERSION"));
    if !args.custom_user_agent.is_empty() {
        user_agent = format!("{user_agent} {}", args.custom_user_agent);
    }
    let token_proxy = TokenProxyConfig {
        url: match args.token_proxy_url.as_str() {
            "" => Url::parse("https://kubernetes.default.svc.cluster.local").expect("static URL"),
            u => Url::parse(u).map_err(CliError::TokenProxyUrl)?,
        },
        sni: Some(args.sni_name).filter(|s| !s.is_empty()),
        ca_file: args.token_proxy_ca_file,
        api_server_port: std::env::var("KUBERNETES_SERVICE_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(443),
    };
    token_proxy.validate()?;
    let defaults = RequestDefaults {
        cloud,
        cloud_env_file: std::env::var_os("AZURE_ENVIRONMENT_FILEPATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        // The server turns it on when it can read ServiceAccounts.
        client_id_from_service_account: false,
    };
    let config = ProviderConfig {
        render: RenderOptions {
            construct_pem_chain: args.construct_pem_chain,
            separate_cert_and_key: args.write_cert_and_key_in_separate_files,
        },
        mount_timeout: args.mount_timeout,
        max_concurrent_per_vault: args.max_concurrent_requests_per_vault,
        object_cache_ttl: args.object_cache_ttl,
        object_cache_max_bytes: args.object_cache_max_bytes,
        serve_stale_on_error: args.serve_stale_on_error,
        net: NetConfig {
            resolve: args.resolve,
            extra_ca_files: args.extra_ca_file,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            user_agent,
        },
        identity: IdentityConfig {
            imds_endpoint: args.imds_endpoint,
            nmi_endpoint: args.nmi_endpoint,
            token_proxy,
            send_certificate_chain: args.send_certificate_chain,
        },
    };
    Ok((defaults, config))
}

/// Reads the proxy variables, once, at start-up: an unusable value stops the provider here
/// rather than failing every mount; the log says which proxies apply (credentials hidden).
fn log_proxies() -> Result<(), NetError> {
    let env = proxy::environment()?;
    if !env.is_empty() {
        let shown = |p: Option<&proxy::ProxyUrl>| p.map_or("none".to_string(), |p| p.to_string());
        tracing::info!(
            https_proxy = %shown(env.https()),
            http_proxy = %shown(env.http()),
            no_proxy = env.no_proxy(),
            "outbound proxies from the environment (loopback and link-local addresses are always direct)"
        );
    }
    Ok(())
}

/// Runs the provider until SIGTERM or SIGINT.
pub async fn serve(args: ServeArgs) -> Result<(), CliError> {
    if !args.metrics_backend.eq_ignore_ascii_case("prometheus") {
        return Err(CliError::Usage(format!(
            "unsupported metrics backend {}",
            args.metrics_backend
        )));
    }
    if args.enable_pprof {
        tracing::warn!(
            port = args.pprof_port,
            "--enable-pprof is ignored: this provider has no pprof endpoints"
        );
    }
    let (defaults, config) = configure(args.provider)?;
    let metrics = Arc::new(Metrics::default());
    let service_accounts = match args.client_id_from_service_account {
        true => {
            let kube = KubeConfig::in_cluster(args.kube_token_file, args.kube_ca_file)?;
            Some(ServiceAccounts::new(kube, &config.net, metrics.clone())?)
        }
        false => None,
    };
    let provider = Arc::new(Provider::new(config, metrics.clone())?);
    let server_config = ServerConfig {
        socket: server::parse_endpoint(&args.endpoint)?,
        healthz: HealthzConfig {
            port: args.healthz_port,
            path: args.healthz_path,
            timeout: args.healthz_timeout,
        },
        metrics_port: args.prometheus_port,
        defaults,
    };
    server::run(
        server_config,
        provider,
        metrics,
        service_accounts,
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// Mounts (or plans) one SecretProviderClass from a workstation and prints the result.
pub async fn mount(args: Box<MountArgs>) -> Result<(), CliError> {
    let args = *args;
    let separate_files = args.provider.write_cert_and_key_in_separate_files;
    let (defaults, config) = configure(args.provider)?;
    let local = LocalMount {
        spc_file: args.spc,
        spc_name: args.spc_name,
        pod_namespace: args.pod_namespace,
        pod_name: args.pod_name,
        service_account: args.service_account,
        client_id: args.client_id,
        client_secret_file: args.client_secret_file,
        client_certificate_file: args.client_certificate_file,
        sa_token_file: args.sa_token_file,
        identity_binding_token_file: args.identity_binding_token_file,
        out: args.out.unwrap_or_default(),
    };
    if args.dry_run {
        print!("{}", local.plan(&defaults, separate_files).await?);
        return Ok(());
    }
    let provider = Provider::new(config, Arc::new(Metrics::default()))?;
    print!("{}", local.run(&provider, &defaults).await?);
    Ok(())
}

/// What `--version` prints: the Go provider's JSON fields, in its order.
pub fn version_json() -> String {
    format!(
        "{{\"version\":{:?},\"buildDate\":{:?}}}",
        env!("CARGO_PKG_VERSION"),
        env!("AKV_BUILD_DATE")
    )
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_chart_args_parse() {
        let cli = Cli::try_parse_from([
            "akv-csi-provider",
            "--endpoint=unix:///provider/azure.sock",
            "--log-format-json",
            "-v=5",
            "--construct-pem-chain=false",
            "--healthz-port=8989",
            "--healthz-path=/healthz",
            "--healthz-timeout=5s",
            "--write-cert-and-key-in-separate-files=true",
            "--custom-user-agent=",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert!(cli.serve.log_format_json);
        assert_eq!(cli.serve.verbosity, 5);
        assert!(!cli.serve.provider.construct_pem_chain);
        assert!(cli.serve.provider.write_cert_and_key_in_separate_files);
    }
}
