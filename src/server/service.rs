//! The driver's API: `Version`, and `Mount` as parse, mount, answer; each Mount logs one line
//! and records its duration and outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use crate::metrics::Metrics;
use crate::proto::v1alpha1::csi_driver_provider_server::CsiDriverProvider;
use crate::proto::v1alpha1::{
    File, MountRequest, MountResponse, ObjectVersion, VersionRequest, VersionResponse,
};
use crate::provider::{MountError, Mounted, Provider};
use crate::request::{self, keys, RequestDefaults, RequestError};
use crate::spec::MountSpec;

/// Name reported by the Version RPC.
pub const RUNTIME_NAME: &str = "akv-csi-provider";

const VERSION_METHOD: &str = "/v1alpha1.CSIDriverProvider/Version";
const MOUNT_METHOD: &str = "/v1alpha1.CSIDriverProvider/Mount";

pub(super) struct Service {
    provider: Arc<Provider>,
    metrics: Arc<Metrics>,
    defaults: RequestDefaults,
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
        }
    }
}

impl Service {
    pub(super) fn new(
        provider: Arc<Provider>,
        metrics: Arc<Metrics>,
        defaults: RequestDefaults,
    ) -> Service {
        Service {
            provider,
            metrics,
            defaults,
        }
    }

    async fn mount_request(&self, req: &MountRequest) -> Result<(MountSpec, Mounted), Failure> {
        let spec = request::parse(
            &req.attributes,
            &req.secrets,
            &req.permission,
            &self.defaults,
        )
        .await
        .map_err(Failure::from_request)?;
        let mounted = self.provider.mount(&spec).await?;
        Ok((spec, mounted))
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
                tracing::info!(
                    pod = %spec.pod.name, namespace = %spec.pod.namespace, spc = %spec.pod.spc,
                    vault = %vaults(spec), identity = spec.credential.mode_name(),
                    objects = spec.objects.len(), files = mounted.files.len(),
                    skipped = %skipped.join(", "), duration_ms, outcome = "ok", "mount"
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
        _req: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        self.metrics
            .grpc_request(VERSION_METHOD, "OK", "", Duration::ZERO);
        Ok(Response::new(VersionResponse {
            version: "v1alpha1".into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn mount(&self, req: Request<MountRequest>) -> Result<Response<MountResponse>, Status> {
        let started = Instant::now();
        let req = req.into_inner();
        let result = self.mount_request(&req).await;
        self.record(&req, &result, started.elapsed());
        match result {
            Ok((_, mounted)) => Ok(Response::new(response(mounted))),
            // Unknown, as upstream: users and alerts match on the message text.
            Err(e) => Err(Status::unknown(e.to_string())),
        }
    }
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
