//! One mount, end to end and independent of gRPC: parse the request, resolve object versions,
//! fetch every distinct object once and in parallel (bounded per vault), render the files in SPC
//! order, and fail as a whole, naming every object that failed, if anything did.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::cloud::Cloud;
use crate::identity::{AccessToken, CacheKey, IdentityConfig, IdentityError, TokenRequest, Tokens};
use crate::keyvault::{Authenticator, KeyVault, KvError, Vault};
use crate::metrics::Metrics;
use crate::net::{self, NetConfig, NetError};
use crate::render::{self, Fetched, RenderError, RenderOptions, RenderedFile, Target};
use crate::request::{
    self, Credential, MountSpec, ObjectSpec, ObjectType, RequestDefaults, RequestError,
};
use crate::retry::Deadline;

/// The driver's default gRPC receive limit; a larger response would fail there, less clearly.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Settings of the mount path, from flags.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub defaults: RequestDefaults,
    pub render: RenderOptions,
    /// `--mount-timeout`: every mount answers within this, well before the kubelet gives up.
    pub mount_timeout: Duration,
    /// `--max-concurrent-requests-per-vault`.
    pub max_concurrent_per_vault: usize,
    pub net: NetConfig,
    pub identity: IdentityConfig,
}

/// A successful mount: files in SPC order.
#[derive(Debug)]
pub struct Mounted {
    pub spec_summary: MountSummary,
    pub files: Vec<RenderedFile>,
}

/// What a mount was for, for its log line (no credential material).
#[derive(Debug, Clone, Default)]
pub struct MountSummary {
    pub pod: String,
    pub namespace: String,
    pub spc: String,
    pub vault: String,
    pub mode: &'static str,
    pub objects: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// Malformed request envelope: reported without the "failed to mount objects" prefix, as
    /// upstream does.
    #[error("{0}")]
    Envelope(RequestError),
    #[error("failed to mount objects, error: {0}")]
    Request(RequestError),
    #[error("failed to mount objects, error: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Objects(Vec<ObjectFailure>),
    #[error("failed to mount objects, error: the mount did not finish within {0:?} (--mount-timeout); Key Vault or the identity endpoint is too slow or unreachable")]
    Timeout(Duration),
    #[error("failed to mount objects, error: the files of this mount total {0} bytes, above the driver's 4 MiB gRPC message limit: mount fewer or smaller objects per SecretProviderClass")]
    TooLarge(usize),
}

impl MountError {
    /// Low-cardinality class for metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            MountError::Envelope(_) | MountError::Request(_) => "invalid_request",
            MountError::Objects(_) => "object_error",
            MountError::Timeout(_) => "timeout",
            MountError::TooLarge(_) => "too_large",
        }
    }
}

/// One object that could not be mounted, with the Go provider's message prefix.
#[derive(Debug, thiserror::Error)]
#[error("failed to get objectType:{object_type}, objectName:{name}, objectVersion:{version}: {cause}", object_type = .object_type.as_str())]
pub struct ObjectFailure {
    pub object_type: ObjectType,
    pub name: String,
    pub version: String,
    pub cause: ObjectCause,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectCause {
    #[error(transparent)]
    KeyVault(#[from] Arc<KvError>),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("objectVersion {0} is not among the enabled versions of this object: pin an existing enabled version or leave objectVersion empty")]
    VersionNotListed(String),
}

/// A mount's identity as seen by the Key Vault client.
struct MountAuth<'a> {
    tokens: &'a Tokens,
    cloud: &'a Cloud,
    tenant: &'a str,
    credential: &'a Credential,
    deadline: Deadline,
}

impl Authenticator for MountAuth<'_> {
    async fn token(&self, scope: &str) -> Result<Arc<AccessToken>, IdentityError> {
        let req = TokenRequest {
            cloud: self.cloud,
            tenant: self.tenant,
            credential: self.credential,
            scope,
        };
        self.tokens.token(&req, self.deadline).await
    }

    fn invalidate(&self, key: &CacheKey) {
        self.tokens.invalidate(key);
    }

    fn client_id(&self) -> Option<&str> {
        self.credential.client_id()
    }
}

/// What to GET: one object version (`None` = latest).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FetchKey {
    object_type: ObjectType,
    name: String,
    version: Option<String>,
}

/// A file slot of the response, before fetching.
struct Planned<'a> {
    /// Position of the object in the SPC.
    index: usize,
    object: &'a ObjectSpec,
    fetch: FetchKey,
    path: String,
    uid: String,
}

pub struct Provider {
    config: ProviderConfig,
    tokens: Tokens,
    keyvault: KeyVault,
    vault_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Provider {
    pub fn new(config: ProviderConfig, metrics: Arc<Metrics>) -> Result<Self, NetError> {
        let tls = net::tls_config(&config.net.extra_ca_files)?;
        let http = net::client(&config.net, tls.clone())?;
        Ok(Provider {
            tokens: Tokens::new(http.clone(), config.identity.clone(), tls, metrics.clone()),
            keyvault: KeyVault::new(http, metrics),
            config,
            vault_limits: Mutex::default(),
        })
    }

    /// Serves one Mount request.
    pub async fn mount(
        &self,
        attributes: &str,
        secrets: &str,
        permission: &str,
    ) -> Result<Mounted, MountError> {
        let budget = self.config.mount_timeout;
        match tokio::time::timeout(
            budget,
            self.mount_inner(attributes, secrets, permission, Deadline::after(budget)),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(MountError::Timeout(budget)),
        }
    }

    async fn mount_inner(
        &self,
        attributes: &str,
        secrets: &str,
        permission: &str,
        deadline: Deadline,
    ) -> Result<Mounted, MountError> {
        let spec = request::parse(attributes, secrets, permission, &self.config.defaults)
            .await
            .map_err(|e| match e {
                RequestError::Attributes(_)
                | RequestError::Secrets(_)
                | RequestError::Permission(_) => MountError::Envelope(e),
                e => MountError::Request(e),
            })?;
        let summary = MountSummary {
            pod: spec.pod.name.clone(),
            namespace: spec.pod.namespace.clone(),
            spc: spec.pod.spc.clone(),
            vault: spec.vault_name.clone(),
            mode: spec.credential.mode_name(),
            objects: spec.objects.len(),
        };
        if spec.objects.is_empty() {
            tracing::warn!(pod = %summary.pod, namespace = %summary.namespace, "objects array is empty: nothing to mount (the driver will report missing object versions)");
            return Ok(Mounted {
                spec_summary: summary,
                files: Vec::new(),
            });
        }
        let files = self.fetch_and_render(&spec, deadline).await?;
        let total: usize = files.iter().map(|f| f.contents.len() + f.path.len()).sum();
        if total > MAX_RESPONSE_BYTES - 64 * 1024 {
            return Err(MountError::TooLarge(total));
        }
        Ok(Mounted {
            spec_summary: summary,
            files,
        })
    }

    fn vault_limit(&self, vault: &Vault) -> Arc<Semaphore> {
        let mut limits = self.vault_limits.lock().expect("vault limits lock");
        limits
            .entry(vault.url.as_str().to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(self.config.max_concurrent_per_vault.max(1)))
            })
            .clone()
    }

    async fn fetch_and_render(
        &self,
        spec: &MountSpec,
        deadline: Deadline,
    ) -> Result<Vec<RenderedFile>, MountError> {
        let vault =
            Vault::new(&spec.vault_name, &spec.cloud.key_vault_dns_suffix).map_err(|e| {
                MountError::Objects(vec![failure(&spec.objects[0], Arc::new(e).into())])
            })?;
        let auth = MountAuth {
            tokens: &self.tokens,
            cloud: &spec.cloud,
            tenant: &spec.tenant_id,
            credential: &spec.credential,
            deadline,
        };
        let limit = self.vault_limit(&vault);

        // Resolve history layouts first (one listing per object), then fetch distinct versions.
        let plans = join_all(
            spec.objects
                .iter()
                .enumerate()
                .map(|(index, object)| self.plan(index, object, &vault, &auth, &limit, deadline)),
        )
        .await;
        let mut failures = Vec::new();
        let mut planned = Vec::new();
        for (index, (object, plan)) in spec.objects.iter().zip(plans).enumerate() {
            match plan {
                Ok(p) => planned.extend(p),
                Err(cause) => failures.push((index, failure(object, cause))),
            }
        }
        let mut distinct: Vec<&FetchKey> = Vec::new();
        for p in &planned {
            if !distinct.contains(&&p.fetch) {
                distinct.push(&p.fetch);
            }
        }
        let fetched = join_all(distinct.iter().map(|key| async {
            let _permit = limit.acquire().await.expect("semaphore never closed");
            self.fetch(&vault, key, &auth, deadline).await
        }))
        .await;
        let fetched: HashMap<&FetchKey, Result<Fetched, Arc<KvError>>> = distinct
            .into_iter()
            .zip(fetched.into_iter().map(|r| r.map_err(Arc::new)))
            .collect();

        let mut files = Vec::new();
        let mut failed = vec![false; spec.objects.len()];
        for p in &planned {
            if failed[p.index] {
                continue;
            }
            let target = Target {
                object: p.object,
                path: p.path.clone(),
                uid: p.uid.clone(),
                mode: p.object.file_mode.unwrap_or(spec.default_mode),
            };
            let result = match &fetched[&p.fetch] {
                Ok(f) => render::render(&target, f, self.config.render).map_err(ObjectCause::from),
                Err(e) => Err(ObjectCause::KeyVault(e.clone())),
            };
            match result {
                Ok(rendered) => files.extend(rendered),
                Err(cause) => {
                    failed[p.index] = true;
                    failures.push((p.index, failure(p.object, cause)));
                }
            }
        }
        if failures.is_empty() {
            Ok(files)
        } else {
            failures.sort_by_key(|(index, _)| *index);
            Err(MountError::Objects(
                failures.into_iter().map(|(_, f)| f).collect(),
            ))
        }
    }

    async fn plan<'a>(
        &self,
        index: usize,
        object: &'a ObjectSpec,
        vault: &Vault,
        auth: &MountAuth<'_>,
        limit: &Semaphore,
        deadline: Deadline,
    ) -> Result<Vec<Planned<'a>>, ObjectCause> {
        let single = |version: Option<String>, path: String, uid: String| Planned {
            index,
            object,
            fetch: FetchKey {
                object_type: object.object_type,
                name: object.name.clone(),
                version,
            },
            path,
            uid,
        };
        if object.history <= 1 {
            return Ok(vec![single(
                object.version.clone(),
                object.file_name.clone(),
                object.uid(),
            )]);
        }
        let mut versions = {
            let _permit = limit.acquire().await.expect("semaphore never closed");
            self.keyvault
                .list_versions(vault, object.object_type, &object.name, auth, deadline)
                .await
                .map_err(Arc::new)?
        };
        versions.retain(|v| v.enabled);
        versions.sort_by(|a, b| b.created.cmp(&a.created));
        let start = match &object.version {
            None => 0,
            Some(wanted) => versions
                .iter()
                .position(|v| &v.version == wanted)
                .ok_or_else(|| ObjectCause::VersionNotListed(wanted.clone()))?,
        };
        Ok(versions
            .into_iter()
            .skip(start)
            .take(object.history as usize)
            .enumerate()
            .map(|(i, v)| {
                single(
                    Some(v.version),
                    format!("{}/{i}", object.file_name),
                    format!("{}/{i}", object.uid()),
                )
            })
            .collect())
    }

    async fn fetch(
        &self,
        vault: &Vault,
        key: &FetchKey,
        auth: &MountAuth<'_>,
        deadline: Deadline,
    ) -> Result<Fetched, KvError> {
        let version = key.version.as_deref();
        Ok(match key.object_type {
            ObjectType::Secret => Fetched::Secret(
                self.keyvault
                    .get_secret(vault, &key.name, version, auth, deadline)
                    .await?,
            ),
            ObjectType::Key => Fetched::Key(
                self.keyvault
                    .get_key(vault, &key.name, version, auth, deadline)
                    .await?,
            ),
            ObjectType::Cert => Fetched::Cert(
                self.keyvault
                    .get_certificate(vault, &key.name, version, auth, deadline)
                    .await?,
            ),
        })
    }
}

fn failure(object: &ObjectSpec, cause: ObjectCause) -> ObjectFailure {
    ObjectFailure {
        object_type: object.object_type,
        name: object.name.clone(),
        version: object.version_text.clone(),
        cause,
    }
}
