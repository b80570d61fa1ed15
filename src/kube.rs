//! The provider's one use of the Kubernetes API: reading the workload identity annotations of a
//! pod's ServiceAccount (`--client-id-from-service-account`), with the provider's own
//! credentials, configured as client-go's `rest.InClusterConfig` is: the API server at
//! `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the bearer token and CA of the
//! pod's service account. The token file is read for every request, so a rotated (projected)
//! token is used as soon as the kubelet writes it.
//!
//! One GET per ServiceAccount, cached briefly ([`TTL`]), bounded, single-flight; errors are not
//! cached.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::cache::{Cache, Expiring, KeyBuilder, Source};
use crate::http::{self, CallError, Policy};
use crate::metrics::Metrics;
use crate::net::{self, NetConfig};
use crate::retry::Deadline;
use crate::secret::{describe_json_error, Secret};
use crate::spec::ServiceAccountIdentity;

/// How long a ServiceAccount's annotations serve later mounts: an annotation changed by its
/// owner takes effect within this.
pub const TTL: Duration = Duration::from_secs(60);
/// ServiceAccounts whose annotations are kept; far above the pods of one node.
const ENTRIES: usize = 4096;
/// A ServiceAccount is small; its annotations are bounded by the API server (256 KiB).
const MAX_BODY: usize = 1024 * 1024;
/// Token and CA files are small.
const MAX_FILE: u64 = 1024 * 1024;

pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";

/// Where the API server is and how the provider authenticates to it.
#[derive(Debug, Clone)]
pub struct KubeConfig {
    /// `https://<host>:<port>`.
    pub api_server: Url,
    /// `--kube-token-file`.
    pub token_file: PathBuf,
    /// `--kube-ca-file`.
    pub ca_file: PathBuf,
}

/// Why the Kubernetes API cannot be used at all (a startup error).
#[derive(Debug, thiserror::Error)]
pub enum KubeConfigError {
    #[error("--client-id-from-service-account needs the in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined (the provider must run in a pod)")]
    NotInCluster,
    #[error("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT do not form a URL ({0})")]
    Address(String),
    #[error("--kube-token-file {path}: {problem}")]
    Token { path: String, problem: String },
    #[error("--kube-ca-file {path}: {problem}")]
    Ca { path: String, problem: String },
    #[error("failed to build the Kubernetes API client: {0}")]
    Client(String),
}

impl KubeConfig {
    /// The configuration a pod finds, as `rest.InClusterConfig` reads it.
    pub fn in_cluster(
        token_file: PathBuf,
        ca_file: PathBuf,
    ) -> Result<KubeConfig, KubeConfigError> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(host), Some(port)) = (
            var("KUBERNETES_SERVICE_HOST"),
            var("KUBERNETES_SERVICE_PORT"),
        ) else {
            return Err(KubeConfigError::NotInCluster);
        };
        // net.JoinHostPort: an IPv6 address goes in brackets.
        let authority = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let api_server = Url::parse(&format!("https://{authority}"))
            .map_err(|e| KubeConfigError::Address(format!("{authority}: {e}")))?;
        Ok(KubeConfig {
            api_server,
            token_file,
            ca_file,
        })
    }
}

/// Why one ServiceAccount could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read ServiceAccount {namespace}/{name} for its {CLIENT_ID_ANNOTATION} annotation: {problem}")]
pub struct LookupError {
    pub namespace: String,
    pub name: String,
    pub problem: LookupProblem,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupProblem {
    #[error("the API server refused (403 Forbidden): grant the provider get on serviceaccounts (set the chart value clientIdFromServiceAccount), or set clientID in the SecretProviderClass")]
    Forbidden,
    #[error("the API server has no such ServiceAccount (404 Not Found)")]
    NotFound,
    #[error("the API server did not accept the provider's token from {0} (401 Unauthorized)")]
    Unauthorized(String),
    #[error("the API server answered {0}")]
    Status(u16),
    #[error("the API server answered with a body that is not a ServiceAccount ({0})")]
    Body(String),
    #[error("the API server {url} is unreachable: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: CallError,
    },
    #[error("cannot read the provider's token file {path}: {problem}")]
    Token { path: String, problem: String },
}

/// A ServiceAccount's annotations and until when they may be used.
struct Annotations {
    identity: ServiceAccountIdentity,
    until: Instant,
}

impl Expiring for Annotations {
    fn is_fresh(&self) -> bool {
        Instant::now() < self.until
    }

    fn weight(&self) -> usize {
        1
    }
}

/// Reads ServiceAccounts; one per process.
pub struct ServiceAccounts {
    http: reqwest::Client,
    config: KubeConfig,
    cache: Cache<Annotations>,
    metrics: Arc<Metrics>,
}

impl ServiceAccounts {
    /// Checks the token and CA files now, so a misconfigured provider fails at startup.
    pub fn new(
        config: KubeConfig,
        net: &NetConfig,
        metrics: Arc<Metrics>,
    ) -> Result<ServiceAccounts, KubeConfigError> {
        read_small(&config.token_file).map_err(|problem| KubeConfigError::Token {
            path: config.token_file.display().to_string(),
            problem,
        })?;
        let tls = tls_config(&config.ca_file)?;
        let http = net::client(net, tls).map_err(|e| KubeConfigError::Client(e.to_string()))?;
        Ok(ServiceAccounts {
            http,
            config,
            cache: Cache::new(ENTRIES),
            metrics,
        })
    }

    /// The workload identity annotations of ServiceAccount `namespace/name`.
    pub async fn identity(
        &self,
        namespace: &str,
        name: &str,
        deadline: Deadline,
    ) -> Result<ServiceAccountIdentity, LookupError> {
        let key = KeyBuilder::default()
            .part("serviceaccount")
            .part(namespace)
            .part(name)
            .finish();
        let result = self
            .cache
            .get_or_fetch(key, || Box::pin(self.get(namespace, name, deadline)))
            .await;
        if let Ok((_, source)) = &result {
            self.metrics
                .cache_lookup("serviceaccount", *source == Source::Cache);
        }
        match result {
            Ok((annotations, _)) => Ok(annotations.identity.clone()),
            Err(problem) => Err(LookupError {
                namespace: namespace.to_string(),
                name: name.to_string(),
                problem,
            }),
        }
    }

    /// `GET /api/v1/namespaces/<namespace>/serviceaccounts/<name>`.
    async fn get(
        &self,
        namespace: &str,
        name: &str,
        deadline: Deadline,
    ) -> Result<Annotations, LookupProblem> {
        let token = self.token()?;
        let mut url = self.config.api_server.clone();
        url.path_segments_mut()
            .expect("an https URL has a path")
            .pop_if_empty()
            .extend([
                "api",
                "v1",
                "namespaces",
                namespace,
                "serviceaccounts",
                name,
            ]);
        let build = || {
            self.http
                .get(url.clone())
                .bearer_auth(token.expose())
                .header("accept", "application/json")
        };
        let policy = Policy {
            attempt_timeout: Duration::from_secs(10),
            ..Policy::standard(MAX_BODY)
        };
        let answer = http::call(build, &policy, deadline, &|_| {})
            .await
            .map_err(|source| LookupProblem::Unreachable {
                url: url.to_string(),
                source,
            })?;
        match answer.status {
            200 => Ok(Annotations {
                identity: parse(&answer.body)?,
                until: Instant::now() + TTL,
            }),
            401 => Err(LookupProblem::Unauthorized(
                self.config.token_file.display().to_string(),
            )),
            403 => Err(LookupProblem::Forbidden),
            404 => Err(LookupProblem::NotFound),
            status => Err(LookupProblem::Status(status)),
        }
    }

    /// The provider's current token: read afresh, as the kubelet rotates it.
    fn token(&self) -> Result<Secret, LookupProblem> {
        let path = &self.config.token_file;
        read_small(path).map_err(|problem| LookupProblem::Token {
            path: path.display().to_string(),
            problem,
        })
    }
}

/// The workload identity annotations of a ServiceAccount object.
fn parse(body: &[u8]) -> Result<ServiceAccountIdentity, LookupProblem> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Metadata,
    }
    #[derive(Deserialize, Default)]
    struct Metadata {
        #[serde(default)]
        annotations: Option<BTreeMap<String, String>>,
    }
    let object: Object =
        serde_json::from_slice(body).map_err(|e| LookupProblem::Body(describe_json_error(&e)))?;
    let mut annotations = object.metadata.annotations.unwrap_or_default();
    Ok(ServiceAccountIdentity {
        client_id: annotations.remove(CLIENT_ID_ANNOTATION),
        tenant_id: annotations.remove(TENANT_ID_ANNOTATION),
    })
}

/// A token file's content, trimmed; never empty.
fn read_small(path: &Path) -> Result<Secret, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE {
        return Err(format!("is larger than {MAX_FILE} bytes"));
    }
    let text = Secret::new(std::fs::read_to_string(path).map_err(|e| e.to_string())?);
    match text.expose().trim() {
        "" => Err("is empty".into()),
        t if t.len() == text.expose().len() => Ok(text),
        t => Ok(Secret::new(t)),
    }
}

/// TLS trusting only the cluster's CA, as client-go does with a CA file.
fn tls_config(path: &Path) -> Result<rustls::ClientConfig, KubeConfigError> {
    let fail = |problem: String| KubeConfigError::Ca {
        path: path.display().to_string(),
        problem,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("holds a certificate rustls rejects: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| KubeConfigError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_of_a_service_account() {
        let body = br#"{"kind":"ServiceAccount","metadata":{"name":"app","annotations":{"azure.workload.identity/client-id":"c","azure.workload.identity/tenant-id":"t","other":"x"}}}"#;
        assert_eq!(
            parse(body).unwrap(),
            ServiceAccountIdentity {
                client_id: Some("c".into()),
                tenant_id: Some("t".into())
            }
        );
        let bare = br#"{"kind":"ServiceAccount","metadata":{"name":"app","annotations":null}}"#;
        assert_eq!(parse(bare).unwrap(), ServiceAccountIdentity::default());
        assert!(matches!(parse(b"<html>"), Err(LookupProblem::Body(_))));
    }

    #[test]
    fn token_files_are_trimmed_and_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "abc\n").unwrap();
        assert_eq!(read_small(&file).unwrap().expose(), "abc");
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(read_small(&file).unwrap_err(), "is empty");
        assert!(read_small(&dir.path().join("missing")).is_err());
    }
}
