//! The `akv-csi-provider` binary: flags (the Go provider's names, so its DaemonSet arguments work
//! unchanged, plus our own), logging, and the server; and the `lint` and `mount` tools.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use url::Url;

use akv_csi_provider::cloud::CloudName;
use akv_csi_provider::identity::{IdentityConfig, TokenProxyConfig};
use akv_csi_provider::lint::Severity;
use akv_csi_provider::local_mount::LocalMount;
use akv_csi_provider::metrics::Metrics;
use akv_csi_provider::net::{NetConfig, ResolveRule};
use akv_csi_provider::provider::{Provider, ProviderConfig};
use akv_csi_provider::render::RenderOptions;
use akv_csi_provider::request::RequestDefaults;
use akv_csi_provider::server::{self, HealthzConfig, ServerConfig};

#[derive(Parser, Debug)]
#[command(
    name = "akv-csi-provider",
    about = "Azure Key Vault provider for the Secrets Store CSI Driver",
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check SecretProviderClass manifests offline and print every problem.
    Lint {
        /// YAML files (multi-document); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Mount a SecretProviderClass from a workstation and write the files into a directory.
    Mount(Box<MountArgs>),
}

/// Flags of the server (the default command).
#[derive(Args, Debug)]
struct ServeArgs {
    /// gRPC endpoint to listen on.
    #[arg(long, default_value = "unix:///tmp/azure.sock")]
    endpoint: String,
    /// Print the version as JSON and exit.
    #[arg(long)]
    version: bool,
    /// Log verbosity (klog style): 0-1 info, 2-4 debug, 5+ trace.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    verbosity: u8,
    /// Log JSON lines instead of text.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    log_format_json: bool,
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
    #[command(flatten)]
    provider: ProviderArgs,
}

/// Flags that shape mounts, shared by the server and `mount`.
#[derive(Args, Debug)]
struct ProviderArgs {
    /// Order PFX certificates leaf, intermediates, root.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true")]
    construct_pem_chain: bool,
    /// Also write <file>.crt and <file>.key for certificate-backed secrets.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    write_cert_and_key_in_separate_files: bool,
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
}

#[derive(Args, Debug)]
struct MountArgs {
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
    /// Service principal client id (with --client-secret-file).
    #[arg(long)]
    client_id: Option<String>,
    /// File holding the service principal's client secret.
    #[arg(long)]
    client_secret_file: Option<PathBuf>,
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
    verbosity: u8,
    #[command(flatten)]
    provider: ProviderArgs,
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {s:?}")),
    }
}

/// Go's `time.ParseDuration` for the units that make sense here: `500ms`, `5s`, `1m30s`, `2h`.
fn go_duration(s: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(total);
    }
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("invalid duration {s:?}: use units ms, s, m or h")),
        };
        total += Duration::from_secs_f64(value * unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.serve.version {
        println!("{{\"version\":\"{}\"}}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    // File reads (cloud environment files, the cluster CA) and DNS lookups run on tokio's
    // blocking pool; a burst of mounts would otherwise start a thread (and a malloc arena) for
    // each. They take microseconds to milliseconds, so a few threads serve any burst.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .expect("tokio runtime");
    let result = match cli.command {
        Some(Command::Lint { files }) => return lint(&files),
        Some(Command::Mount(args)) => {
            akv_csi_provider::logging::init(args.verbosity, false);
            runtime.block_on(mount(args))
        }
        None => {
            akv_csi_provider::logging::init(cli.serve.verbosity, cli.serve.log_format_json);
            runtime.block_on(serve(cli.serve))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn lint(files: &[PathBuf]) -> ExitCode {
    let mut errors = 0;
    for file in files {
        let shown = file.display();
        let text = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(file)
        };
        let result = text
            .map_err(|e| e.to_string())
            .and_then(|t| akv_csi_provider::lint::lint(&t));
        match result {
            Err(e) => {
                println!("{shown}: error: {e}");
                errors += 1;
            }
            Ok((checked, findings)) => {
                for f in &findings {
                    println!("{shown}: {f}");
                }
                errors += findings
                    .iter()
                    .filter(|f| f.severity == Severity::Error)
                    .count();
                if findings.is_empty() {
                    println!(
                        "{shown}: ok ({checked} SecretProviderClass{} checked)",
                        if checked == 1 { "" } else { "es" }
                    );
                }
            }
        }
    }
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        println!("{errors} error(s)");
        ExitCode::FAILURE
    }
}

fn provider_config(args: ProviderArgs) -> Result<ProviderConfig, String> {
    let cloud = CloudName::parse(&args.cloud_name).map_err(|e| format!("--cloud-name: {e}"))?;
    let mut user_agent = format!("akv-csi-provider/{}", env!("CARGO_PKG_VERSION"));
    if !args.custom_user_agent.is_empty() {
        user_agent = format!("{user_agent} {}", args.custom_user_agent);
    }
    let token_proxy = TokenProxyConfig {
        url: match args.token_proxy_url.as_str() {
            "" => Url::parse("https://kubernetes.default.svc.cluster.local").expect("static URL"),
            u => Url::parse(u).map_err(|e| format!("--token-proxy-url {u}: {e}"))?,
        },
        sni: Some(args.sni_name).filter(|s| !s.is_empty()),
        ca_file: args.token_proxy_ca_file,
        api_server_port: std::env::var("KUBERNETES_SERVICE_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(443),
    };
    token_proxy.validate()?;
    Ok(ProviderConfig {
        defaults: RequestDefaults {
            cloud,
            cloud_env_file: std::env::var_os("AZURE_ENVIRONMENT_FILEPATH")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        },
        render: RenderOptions {
            construct_pem_chain: args.construct_pem_chain,
            separate_cert_and_key: args.write_cert_and_key_in_separate_files,
        },
        mount_timeout: args.mount_timeout,
        max_concurrent_per_vault: args.max_concurrent_requests_per_vault,
        object_cache_ttl: args.object_cache_ttl,
        object_cache_max_bytes: args.object_cache_max_bytes,
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
        },
    })
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    if !args.metrics_backend.eq_ignore_ascii_case("prometheus") {
        return Err(format!(
            "unsupported metrics backend {}",
            args.metrics_backend
        ));
    }
    if args.enable_pprof {
        tracing::warn!(
            port = args.pprof_port,
            "--enable-pprof is ignored: this provider has no pprof endpoints"
        );
    }
    let config = provider_config(args.provider)?;
    let metrics = Arc::new(Metrics::default());
    let provider = Arc::new(Provider::new(config, metrics.clone()).map_err(|e| e.to_string())?);
    let server_config = ServerConfig {
        socket: server::parse_endpoint(&args.endpoint).map_err(|e| e.to_string())?,
        healthz: HealthzConfig {
            port: args.healthz_port,
            path: args.healthz_path,
            timeout: args.healthz_timeout,
        },
        metrics_port: args.prometheus_port,
    };
    server::run(server_config, provider, metrics, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn mount(args: Box<MountArgs>) -> Result<(), String> {
    let args = *args;
    let config = provider_config(args.provider)?;
    let local = LocalMount {
        spc_file: args.spc,
        spc_name: args.spc_name,
        pod_namespace: args.pod_namespace,
        pod_name: args.pod_name,
        service_account: args.service_account,
        client_id: args.client_id,
        client_secret_file: args.client_secret_file,
        sa_token_file: args.sa_token_file,
        identity_binding_token_file: args.identity_binding_token_file,
        out: args.out.unwrap_or_default(),
    };
    if args.dry_run {
        print!("{}", local.plan(&config.defaults).await?);
        return Ok(());
    }
    let provider =
        Provider::new(config, Arc::new(Metrics::default())).map_err(|e| e.to_string())?;
    print!("{}", local.run(&provider).await?);
    Ok(())
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
    fn durations() {
        assert_eq!(go_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(go_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(go_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(go_duration("5").is_err());
        assert!(go_duration("5x").is_err());
    }

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
