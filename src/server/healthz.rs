//! HTTP `/healthz` for the kubelet's liveness probe. Like the Go provider it checks health
//! through the provider's own socket (`grpc.health.v1.Health/Check`), so a wedged gRPC server
//! fails the probe even while the process is alive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::ServerError;

#[derive(Debug, Clone)]
pub struct HealthzConfig {
    /// `--healthz-port`; 0 picks a free port (tests).
    pub port: u16,
    /// `--healthz-path`.
    pub path: String,
    /// `--healthz-timeout`.
    pub timeout: Duration,
}

pub struct Running {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn stop(self) {
        self.task.abort();
    }
}

pub async fn serve(config: HealthzConfig, socket: PathBuf) -> Result<Running, ServerError> {
    let addr = SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Healthz {
            port: config.port,
            source,
        })?;
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(config.port);
    let app = axum::Router::new()
        .route(&config.path, axum::routing::get(healthz))
        .with_state((socket, config.timeout));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "healthz server stopped");
        }
    });
    Ok(Running { port, task })
}

async fn healthz(State((socket, timeout)): State<(PathBuf, Duration)>) -> (StatusCode, String) {
    match tokio::time::timeout(timeout, check(socket)).await {
        Ok(Ok(())) => (StatusCode::OK, "ok".into()),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("health check timed out after {timeout:?}"),
        ),
    }
}

async fn check(socket: PathBuf) -> Result<(), String> {
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|e| format!("cannot connect to the provider socket: {e}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|e| format!("health check failed: {}", e.message()))?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(format!("provider is {}", other.as_str_name())),
    }
}
