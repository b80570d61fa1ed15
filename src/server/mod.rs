//! The edge: `v1alpha1.CSIDriverProvider` and `grpc.health.v1.Health` on a Unix socket, the
//! HTTP `/healthz` and `/metrics` endpoints, and graceful shutdown. The only module that knows
//! gRPC types.

mod endpoints;
mod service;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::kube::ServiceAccounts;
use crate::metrics::Metrics;
use crate::proto::v1alpha1::csi_driver_provider_server::CsiDriverProviderServer;
use crate::provider::Provider;
use crate::request::RequestDefaults;
pub use endpoints::HealthzConfig;
use service::Service;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Path of the Unix socket (from `--endpoint unix://…`).
    pub socket: PathBuf,
    pub healthz: HealthzConfig,
    /// `--prometheus-port`; 0 picks a free port (tests).
    pub metrics_port: u16,
    /// What requests leave to the provider's flags.
    pub defaults: RequestDefaults,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid endpoint: {0} (use unix:///path/to/azure.sock)")]
    Endpoint(String),
    #[error("endpoint {0} is refused: TCP endpoints are not supported because the provider API has no authentication, so anyone who could reach the port could mount secrets with this node's identities; listen on a Unix socket (grpcurl -unix reaches it for debugging)")]
    TcpEndpoint(String),
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: String },
    #[error("failed to listen on {path}: {source}")]
    Bind {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to serve /metrics on port {port}: {source}")]
    Metrics { port: u16, source: std::io::Error },
    #[error("failed to serve /healthz on port {port}: {source}")]
    Healthz { port: u16, source: std::io::Error },
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// Parses `--endpoint` as upstream does: a `unix://` prefix (any case) and a path.
pub fn parse_endpoint(endpoint: &str) -> Result<PathBuf, ServerError> {
    let lower = endpoint.to_ascii_lowercase();
    if lower.starts_with("tcp://") {
        return Err(ServerError::TcpEndpoint(endpoint.to_string()));
    }
    let rest = lower
        .starts_with("unix://")
        .then(|| &endpoint["unix://".len()..])
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ServerError::Endpoint(endpoint.to_string()))?;
    Ok(if rest.starts_with('/') {
        PathBuf::from(rest)
    } else {
        PathBuf::from(format!("/{rest}"))
    })
}

/// Binds the socket: a stale socket from a previous run is removed, and the socket is created
/// under umask 077 so only the owner (root, like the driver) can connect.
fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    let shown = path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(ServerError::NotASocket { path: shown });
            }
            std::fs::remove_file(path).map_err(|source| ServerError::Bind {
                path: shown.clone(),
                source,
            })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ServerError::Bind {
                path: shown,
                source,
            })
        }
    }
    // SAFETY: umask only swaps the process file-creation mask; it has no memory effects.
    let previous = unsafe { libc::umask(0o077) };
    let listener = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(previous) };
    listener.map_err(|source| ServerError::Bind {
        path: shown,
        source,
    })
}

/// Serves until `shutdown` completes, then lets in-flight RPCs finish and removes the socket.
/// With `service_accounts`, workload identity SPCs without `clientID` take it from the pod's
/// ServiceAccount.
pub async fn run(
    config: ServerConfig,
    provider: Arc<Provider>,
    metrics: Arc<Metrics>,
    service_accounts: Option<ServiceAccounts>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = bind(&config.socket)?;
    let metrics_endpoint = endpoints::metrics(metrics.clone(), config.metrics_port)
        .await
        .map_err(|source| ServerError::Metrics {
            port: config.metrics_port,
            source,
        })?;
    let healthz = endpoints::healthz(config.healthz.clone(), config.socket.clone())
        .await
        .map_err(|source| ServerError::Healthz {
            port: config.healthz.port,
            source,
        })?;
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<CsiDriverProviderServer<Service>>()
        .await;
    tracing::info!(socket = %config.socket.display(), healthz_port = healthz.port, metrics_port = metrics_endpoint.port, "listening");

    let service = Service::new(provider, metrics, config.defaults, service_accounts);
    let service = CsiDriverProviderServer::new(service).max_encoding_message_size(64 * 1024 * 1024);
    let result = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(service)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight mounts");
        })
        .await;
    healthz.stop();
    metrics_endpoint.stop();
    let _ = std::fs::remove_file(&config.socket);
    result?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("unix:///tmp/azure.sock").unwrap(),
            PathBuf::from("/tmp/azure.sock")
        );
        assert_eq!(
            parse_endpoint("UNIX:///provider/azure.sock").unwrap(),
            PathBuf::from("/provider/azure.sock")
        );
        assert_eq!(
            parse_endpoint("unix://tmp/a.sock").unwrap(),
            PathBuf::from("/tmp/a.sock")
        );
        for bad in ["/tmp/a.sock", "unix://", "http://x"] {
            assert!(
                matches!(parse_endpoint(bad), Err(ServerError::Endpoint(_))),
                "{bad}"
            );
        }
        let tcp = parse_endpoint("tcp://127.0.0.1:8080")
            .unwrap_err()
            .to_string();
        assert!(
            tcp.contains("no authentication") && tcp.contains("Unix socket"),
            "{tcp}"
        );
    }

    #[tokio::test]
    async fn bind_replaces_stale_socket_only() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("p.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let listener = bind(&sock).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&sock).unwrap().permissions().mode() & 0o077,
            0,
            "no group or other access"
        );
        drop(listener);
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(bind(&file), Err(ServerError::NotASocket { .. })));
        assert!(file.exists());
    }
}
