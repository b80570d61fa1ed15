//! Prometheus metrics on `--prometheus-port` `/metrics`: the Go provider's histograms
//! `keyvault_request` and `grpc_request` with its bucket boundaries, but only low-cardinality
//! labels (object type, outcome class, status code, method; never object names or error text),
//! plus counters for token requests, cache use, retries and throttling.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The Go provider's histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 15.0, 30.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyVaultLabels {
    pub provider: &'static str,
    pub os_type: &'static str,
    /// `secret`, `key`, `cert`.
    pub object_type: &'static str,
    /// `get` or `list`.
    pub operation: &'static str,
    /// `ok`, `challenge`, `client_error`, `throttled`, `server_error`, `transport_error`.
    pub outcome: &'static str,
    /// HTTP status, or `0` when no response arrived.
    pub status_code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub provider: &'static str,
    pub os_type: &'static str,
    pub grpc_method: &'static str,
    pub grpc_code: &'static str,
    /// Error class of failed mounts (`invalid_request`, `object_error`, …), empty on success.
    pub error_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub mode: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: &'static str,
    /// `hit` or `miss`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectTypeLabels {
    pub object_type: &'static str,
}

/// Every metric of the process; shared by reference, no global registry.
pub struct Metrics {
    registry: Registry,
    pub keyvault_request: Family<KeyVaultLabels, Histogram, fn() -> Histogram>,
    pub grpc_request: Family<GrpcLabels, Histogram, fn() -> Histogram>,
    pub token_requests: Family<TokenLabels, Counter>,
    pub cache_lookups: Family<CacheLabels, Counter>,
    pub keyvault_retries: Family<ObjectTypeLabels, Counter>,
    pub keyvault_throttled: Family<ObjectTypeLabels, Counter>,
    pub optional_skipped: Family<ObjectTypeLabels, Counter>,
}

pub const PROVIDER: &str = "azure";
pub const OS_TYPE: &str = std::env::consts::OS;

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let keyvault_request = Family::new_with_constructor(histogram as fn() -> Histogram);
        let grpc_request = Family::new_with_constructor(histogram as fn() -> Histogram);
        let token_requests = Family::default();
        let cache_lookups = Family::default();
        let keyvault_retries = Family::default();
        let keyvault_throttled = Family::default();
        let optional_skipped = Family::default();
        registry.register(
            "keyvault_request",
            "Duration of Key Vault requests in seconds",
            keyvault_request.clone(),
        );
        registry.register(
            "grpc_request",
            "Duration of gRPC requests in seconds",
            grpc_request.clone(),
        );
        registry.register(
            "token_requests",
            "Access-token requests to Entra ID, IMDS or NMI, by identity mode and outcome",
            token_requests.clone(),
        );
        registry.register(
            "cache_lookups",
            "Cache lookups by cache and result",
            cache_lookups.clone(),
        );
        registry.register(
            "keyvault_retries",
            "Key Vault requests retried after throttling, a server error or a transport error",
            keyvault_retries.clone(),
        );
        registry.register(
            "keyvault_throttled",
            "Key Vault answers with status 429",
            keyvault_throttled.clone(),
        );
        registry.register(
            "optional_objects_skipped",
            "Objects marked optional that were left out of a mount because Key Vault has no enabled version of them",
            optional_skipped.clone(),
        );
        Metrics {
            registry,
            keyvault_request,
            grpc_request,
            token_requests,
            cache_lookups,
            keyvault_retries,
            keyvault_throttled,
            optional_skipped,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# encoding failed");
        }
        out
    }

    /// Sum of a counter family's values matching `pred`, for tests and the benchmark.
    pub fn token_requests_total(&self) -> u64 {
        let text = self.encode();
        sum_lines(&text, "token_requests_total{")
    }
}

fn sum_lines(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Serves `/metrics` on all interfaces at `port` until the task is aborted.
pub async fn serve(
    metrics: Arc<Metrics>,
    port: u16,
) -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok((port, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_buckets_and_labels() {
        let m = Metrics::default();
        m.keyvault_request
            .get_or_create(&KeyVaultLabels {
                provider: PROVIDER,
                os_type: OS_TYPE,
                object_type: "secret",
                operation: "get",
                outcome: "ok",
                status_code: 200,
            })
            .observe(0.05);
        m.token_requests
            .get_or_create(&TokenLabels {
                mode: "workload_identity",
                outcome: "ok",
            })
            .inc();
        let text = m.encode();
        assert!(text.contains("# TYPE keyvault_request histogram"), "{text}");
        assert!(
            text.contains("keyvault_request_bucket{le=\"0.1\",provider=\"azure\""),
            "{text}"
        );
        assert!(text.contains("le=\"30.0\""), "{text}");
        assert!(text.contains("status_code=\"200\""), "{text}");
        assert_eq!(m.token_requests_total(), 1);
    }
}
