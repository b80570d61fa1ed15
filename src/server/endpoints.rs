//! The HTTP endpoints beside the socket: `/healthz` for the kubelet's liveness probe and
//! `/metrics` for Prometheus, each on its own port. Like the Go provider, `/healthz` checks
//! health through the provider's own socket (`grpc.health.v1.Health/Check`), so a wedged gRPC
//! server fails the probe even while the process is alive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct HealthzConfig {
    /// `--healthz-port`; 0 picks a free port (tests).
    pub port: u16,
    /// `--healthz-path`.
    pub path: String,
    /// `--healthz-timeout`.
    pub timeout: Duration,
}

/// An endpoint being served, until stopped.
pub struct Running {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Serves `router` on all interfaces at `port`.
async fn serve(port: u16, router: axum::Router, what: &'static str) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, endpoint = what, "HTTP endpoint stopped");
        }
    });
    Ok(Running { port, task })
}

pub async fn healthz(config: HealthzConfig, socket: PathBuf) -> std::io::Result<Running> {
    let router = axum::Router::new()
        .route(&config.path, axum::routing::get(check_health))
        .with_state((socket, config.timeout));
    serve(config.port, router, "healthz").await
}

pub async fn metrics(metrics: Arc<Metrics>, port: u16) -> std::io::Result<Running> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = metrics.encode();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    serve(port, router, "metrics").await
}

async fn check_health(
    State((socket, timeout)): State<(PathBuf, Duration)>,
) -> (StatusCode, String) {
    match tokio::time::timeout(timeout, check(socket)).await {
        Ok(Ok(())) => (StatusCode::OK, "ok".into()),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("health check timed out after {timeout:?}"),
        ),
    }
}

#[derive(Debug, thiserror::Error)]
enum Unhealthy {
    #[error("cannot connect to the provider socket: {0}")]
    Connect(tonic::transport::Error),
    #[error("health check failed: {}", .0.message())]
    Check(tonic::Status),
    #[error("provider is {0}")]
    Status(&'static str),
}

async fn check(socket: PathBuf) -> Result<(), Unhealthy> {
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await
        .map_err(Unhealthy::Connect)?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(Unhealthy::Check)?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(Unhealthy::Status(other.as_str_name())),
    }
}
