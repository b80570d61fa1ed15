//! The driver's API: `Version`, and `Mount` as parse, mount, answer; each Mount logs one line
//! and records its duration and outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use crate::kube::{LookupError, ServiceAccounts};
use crate::metrics::Metrics;
use crate::proto::v1alpha1::csi_driver_provider_server::CsiDriverProvider;
use crate::proto::v1alpha1::{
    File, MountRequest, MountResponse, ObjectVersion, VersionRequest, VersionResponse,
};
use crate::provider::{Budget, MountError, Mounted, Provider, Served};
use crate::request::{self, keys, Parsed, Pending, RequestDefaults, RequestError};
use crate::spec::MountSpec;

/// Name reported by the Version RPC.
pub const RUNTIME_NAME: &str = "akv-csi-provider";

const VERSION_METHOD: &str = "/v1alpha1.CSIDriverProvider/Version";
const MOUNT_METHOD: &str = "/v1alpha1.CSIDriverProvider/Mount";

pub(super) struct Service {
    provider: Arc<Provider>,
    metrics: Arc<Metrics>,
    defaults: RequestDefaults,
    /// `--client-id-from-service-account`.
    service_accounts: Option<ServiceAccounts>,
}

/// Why a Mount failed; its message is what the driver reports on the pod.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// A malformed envelope, reported without the "failed to mount objects" prefix as upstream.
    #[error("{0}")]
    Envelope(RequestError),
    #[error("failed to mount objects, error: {0}")]
    Request(RequestError),
    #[error(transparent)]
    Mount(#[from] MountError),
    /// The pod's ServiceAccount, which names the workload identity, could not be read.
    #[error("failed to mount objects, error: failed to build auth config for mode None: {0}")]
    ServiceAccount(LookupError),
}

impl Failure {
    fn from_request(e: RequestError) -> Failure {
        match e.is_envelope() {
            true => Failure::Envelope(e),
            false => Failure::Request(e),
        }
    }

    /// Low-cardinality class for metrics and logs.
    fn class(&self) -> &'static str {
        match self {
            Failure::Envelope(_) | Failure::Request(_) => "invalid_request",
            Failure::Mount(e) => e.class(),
            Failure::ServiceAccount(_) => "service_account",
        }
    }
}

impl Service {
    pub(super) fn new(
        provider: Arc<Provider>,
        metrics: Arc<Metrics>,
        mut defaults: RequestDefaults,
        service_accounts: Option<ServiceAccounts>,
    ) -> Service {
        // Requests wait for a ServiceAccount lookup only where one can be made.
        defaults.client_id_from_service_account = service_accounts.is_some();
        Service {
            provider,
            metrics,
            defaults,
            service_accounts,
        }
    }

    async fn mount_request(&self, req: &MountRequest) -> Result<(MountSpec, Mounted), Failure> {
        let budget = self.provider.budget();
        let parsed = request::parse(
            &req.attributes,
            &req.secrets,
            &req.permission,
            &self.defaults,
        )
        .await
        .map_err(Failure::from_request)?;
        let spec = match parsed {
            Parsed::Ready(spec) => spec,
            Parsed::Pending(pending) => self.resolve(pending, budget).await?,
        };
        let mounted = self.provider.mount_in(&spec, budget).await?;
        Ok((spec, mounted))
    }

    /// Completes a mount with the workload identity its pod's ServiceAccount names, within the
    /// mount's budget.
    async fn resolve(&self, pending: Pending, budget: Budget) -> Result<MountSpec, Failure> {
        let lookup = self
            .service_accounts
            .as_ref()
            .expect("requests wait for a ServiceAccount lookup only when the server makes them");
        let (namespace, name) = pending.service_account();
        let identity = lookup
            .identity(namespace, name, budget.calls)
            .await
            .map_err(Failure::ServiceAccount)?;
        pending.resolve(&identity).map_err(Failure::from_request)
    }

    /// One log line and one metric per Mount.
    fn record(
        &self,
        req: &MountRequest,
        result: &Result<(MountSpec, Mounted), Failure>,
        elapsed: Duration,
    ) {
        let duration_ms = millis(elapsed);
        match result {
            Ok((spec, mounted)) => {
                self.metrics.grpc_request(MOUNT_METHOD, "OK", "", elapsed);
                let skipped: Vec<String> = mounted
                    .skipped
                    .iter()
                    .map(|k| format!("{} ({})", k.uid, k.reason))
                    .collect();
                let (tenant, client_id) = match &mounted.identity {
                    Some(id) => (id.tenant.as_str(), id.client_id.as_str()),
                    None => ("", ""),
                };
                tracing::info!(
                    pod = %spec.pod.name, namespace = %spec.pod.namespace, spc = %spec.pod.spc,
                    vault = %vaults(spec), identity = spec.credential.mode_name(),
                    tenant = if tenant.is_empty() { spec.tenant_id.as_str() } else { tenant },
                    client_id, objects = spec.objects.len(), files = mounted.files.len(),
                    served = %served(mounted), skipped = %skipped.join(", "), duration_ms,
                    outcome = "ok", "mount"
                );
            }
            Err(e) => {
                self.metrics
                    .grpc_request(MOUNT_METHOD, "Unknown", e.class(), elapsed);
                // The request may not have parsed; name the pod if its attributes allow.
                let attrs: std::collections::HashMap<String, String> =
                    serde_json::from_str(&req.attributes).unwrap_or_default();
                let attr = |k: &str| attrs.get(k).map(String::as_str).unwrap_or("");
                tracing::warn!(
                    pod = attr(keys::POD_NAME), namespace = attr(keys::POD_NAMESPACE), spc = attr(keys::SPC_NAME),
                    duration_ms, outcome = e.class(), error = %e, "mount failed"
                );
            }
        }
    }
}

#[tonic::async_trait]
impl CsiDriverProvider for Service {
    async fn version(
        &self,
        req: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        let started = trace_request(VERSION_METHOD, &req);
        self.metrics
            .grpc_request(VERSION_METHOD, "OK", "", started.elapsed());
        let result = Ok(Response::new(VersionResponse {
            version: "v1alpha1".into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
        }));
        trace_response(VERSION_METHOD, started, &result);
        result
    }

    async fn mount(&self, req: Request<MountRequest>) -> Result<Response<MountResponse>, Status> {
        let started = trace_request(MOUNT_METHOD, &req);
        let req = req.into_inner();
        let result = self.mount_request(&req).await;
        self.record(&req, &result, started.elapsed());
        let result = match result {
            Ok((_, mounted)) => Ok(Response::new(response(mounted))),
            // Unknown, as upstream: users and alerts match on the message text.
            Err(e) => Err(Status::unknown(e.to_string())),
        };
        trace_response(MOUNT_METHOD, started, &result);
        result
    }
}

/// At `-v=5`, one line when an RPC arrives, as the Go provider's interceptor logs it.
fn trace_request<T>(method: &'static str, req: &Request<T>) -> Instant {
    let deadline = req
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(grpc_timeout);
    let deadline = deadline.map_or_else(|| "none".to_string(), |d| format!("{d:?}"));
    tracing::trace!(method, %deadline, "request");
    Instant::now()
}

/// At `-v=5`, one line when an RPC answers, with its gRPC code and message (errors name
/// objects and causes, never secret values).
fn trace_response<T>(method: &'static str, started: Instant, result: &Result<T, Status>) {
    let (code, message) = match result {
        Ok(_) => (tonic::Code::Ok, ""),
        Err(status) => (status.code(), status.message()),
    };
    tracing::trace!(method, duration = ?started.elapsed(), code = ?code, status_message = message, "response");
}

/// The `grpc-timeout` header: an integer and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Files and object versions; an optional object left out is listed without a version, so the
/// driver accepts a mount whose objects are all absent and the pod's status shows what is
/// missing.
fn response(mounted: Mounted) -> MountResponse {
    let mut response = MountResponse::default();
    for f in mounted.files {
        response.object_version.push(ObjectVersion {
            id: f.uid,
            version: f.version,
        });
        response.files.push(File {
            path: f.path,
            mode: f.mode as i32,
            contents: f.contents,
        });
    }
    for k in mounted.skipped {
        response.object_version.push(ObjectVersion {
            id: k.uid,
            version: String::new(),
        });
    }
    response
}

/// Each object version a mount served and where it came from, for the audit trail:
/// `secret/db-password=1b1b… keyvault, secret/api-key=329a… cache, secret/x=9f0e… stale 42s`.
fn served(mounted: &Mounted) -> String {
    let source = |served: &Served| match served {
        Served::KeyVault => "keyvault".to_string(),
        Served::Cache => "cache".to_string(),
        Served::Stale { age } => format!("stale {}s", age.as_secs()),
    };
    mounted
        .served
        .iter()
        .map(|s| format!("{}={} {}", s.uid, s.version, source(&s.served)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The vaults a mount reads, comma-separated, for its log line.
fn vaults(spec: &MountSpec) -> String {
    let mut names: Vec<&str> = Vec::new();
    for object in &spec.objects {
        let vault = spec.vault_of(object);
        if !names.contains(&vault) {
            names.push(vault);
        }
    }
    match names.is_empty() {
        true => spec.vault_name.clone(),
        false => names.join(","),
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(
            grpc_timeout("119999m"),
            Some(Duration::from_millis(119_999))
        );
        assert_eq!(grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(grpc_timeout("5x"), None);
        assert_eq!(grpc_timeout(""), None);
    }
}
