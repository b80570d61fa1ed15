//! One mount, end to end and independent of gRPC: parse the request, resolve object versions,
//! fetch every distinct object once and in parallel (bounded per vault, from every vault the SPC
//! names), render the files in SPC order, skip optional objects that do not exist, and fail as a
//! whole, naming every object that failed, if anything else did.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::cache::{Cache, CacheKey, Expiring, KeyBuilder, Source};
use crate::cloud::Cloud;
use crate::identity::{AccessToken, IdentityConfig, IdentityError, TokenRequest, Tokens};
use crate::keyvault::VersionItem;
use crate::keyvault::{Authenticator, KeyVault, KvError, Vault};
use crate::metrics::{CacheLabels, Metrics, ObjectTypeLabels};
use crate::net::{self, NetConfig, NetError};
use crate::render::{self, Fetched, RenderError, RenderOptions, RenderedFile, Target};
use crate::request::{
    self, Credential, MountSpec, ObjectSpec, ObjectType, RequestDefaults, RequestError,
};
use crate::retry::Deadline;

/// The driver's default gRPC receive limit; a larger response would fail there, less clearly.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The API server's limit on a Secret, which `secretObjects` sync builds from the files.
const KUBERNETES_SECRET_BYTES: usize = 1024 * 1024;

/// Settings of the mount path, from flags.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub defaults: RequestDefaults,
    pub render: RenderOptions,
    /// `--mount-timeout`: every mount answers within this, well before the kubelet gives up.
    pub mount_timeout: Duration,
    /// `--max-concurrent-requests-per-vault`.
    pub max_concurrent_per_vault: usize,
    /// `--object-cache-ttl`: how long a fetched object may serve later mounts presenting the
    /// same credential material; zero disables the cache. Pinned versions keep 5 times longer.
    pub object_cache_ttl: Duration,
    /// `--object-cache-max-bytes`: bound on the cached objects' size.
    pub object_cache_max_bytes: usize,
    pub net: NetConfig,
    pub identity: IdentityConfig,
}

/// A successful mount: files in SPC order, and the optional objects left out.
#[derive(Debug)]
pub struct Mounted {
    pub spec_summary: MountSummary,
    pub files: Vec<RenderedFile>,
    pub skipped: Vec<Skipped>,
}

/// An `optional` object that was not mounted because Key Vault has no enabled version of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its ObjectVersion id; reported with an empty version.
    pub uid: String,
    pub reason: &'static str,
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

impl ObjectCause {
    /// Why an `optional` object may be skipped: Key Vault has no enabled version of it. Every
    /// other failure (access, throttling, transport, content) still fails the mount.
    fn absence(&self) -> Option<&'static str> {
        match self {
            ObjectCause::KeyVault(e) => match **e {
                KvError::NotFound { .. } => Some("not found"),
                KvError::Disabled { .. } => Some("disabled"),
                _ => None,
            },
            ObjectCause::VersionNotListed(_) => Some("not found"),
            ObjectCause::Render(_) => None,
        }
    }
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

    fn invalidate(&self, token: &Arc<AccessToken>) {
        self.tokens.invalidate(token);
    }

    fn client_id(&self) -> Option<&str> {
        self.credential.client_id()
    }
}

/// What to GET: one object version (`None` = latest) of one vault.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FetchKey {
    vault: String,
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
    /// Position in the `objectVersionHistory` layout, if the object uses it.
    history: Option<usize>,
}

/// A Key Vault answer kept for later mounts of the same principal, and when it goes stale.
struct Cached<T> {
    value: T,
    expires_at: tokio::time::Instant,
    weight: usize,
}

impl<T> Expiring for Cached<T> {
    fn is_fresh(&self) -> bool {
        tokio::time::Instant::now() < self.expires_at
    }

    fn weight(&self) -> usize {
        self.weight
    }
}

fn fetched_weight(f: &Fetched) -> usize {
    match f {
        Fetched::Secret(s) => s.value.expose().len() + 256,
        Fetched::Key(k) => {
            k.jwk
                .values()
                .map(|v| v.as_str().map_or(16, str::len))
                .sum::<usize>()
                + 256
        }
        Fetched::Cert(c) => c.cer.len() + 256,
    }
}

pub struct Provider {
    config: ProviderConfig,
    tokens: Tokens,
    keyvault: KeyVault,
    metrics: Arc<Metrics>,
    vault_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    objects: Cache<Cached<Fetched>>,
    versions: Cache<Cached<Vec<VersionItem>>>,
}

impl Provider {
    pub fn new(config: ProviderConfig, metrics: Arc<Metrics>) -> Result<Self, NetError> {
        let tls = net::tls_config(&config.net.extra_ca_files)?;
        let http = net::client(&config.net, tls.clone())?;
        Ok(Provider {
            tokens: Tokens::new(http.clone(), config.identity.clone(), tls, metrics.clone()),
            keyvault: KeyVault::new(http, metrics.clone()),
            metrics,
            objects: Cache::new(config.object_cache_max_bytes),
            versions: Cache::new(config.object_cache_max_bytes / 4),
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
        // Outbound calls give up a little earlier than the mount, so a hop that does not answer
        // fails with an error naming its objects; the outer timeout is only the backstop.
        let calls = budget.saturating_sub((budget / 4).min(Duration::from_secs(2)));
        match tokio::time::timeout(
            budget,
            self.mount_inner(attributes, secrets, permission, Deadline::after(calls)),
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
        let mut vaults: Vec<&str> = Vec::new();
        for object in &spec.objects {
            let vault = object.vault.as_deref().unwrap_or(&spec.vault_name);
            if !vaults.contains(&vault) {
                vaults.push(vault);
            }
        }
        let summary = MountSummary {
            pod: spec.pod.name.clone(),
            namespace: spec.pod.namespace.clone(),
            spc: spec.pod.spc.clone(),
            vault: if vaults.is_empty() {
                spec.vault_name.clone()
            } else {
                vaults.join(",")
            },
            mode: spec.credential.mode_name(),
            objects: spec.objects.len(),
        };
        if spec.objects.is_empty() {
            tracing::warn!(pod = %summary.pod, namespace = %summary.namespace, "objects array is empty: nothing to mount (the driver will report missing object versions)");
            return Ok(Mounted {
                spec_summary: summary,
                files: Vec::new(),
                skipped: Vec::new(),
            });
        }
        let (files, skipped) = self.fetch_and_render(&spec, deadline).await?;
        let total: usize = files.iter().map(|f| f.contents.len() + f.path.len()).sum();
        if total > MAX_RESPONSE_BYTES - 64 * 1024 {
            return Err(MountError::TooLarge(total));
        }
        if total > KUBERNETES_SECRET_BYTES {
            tracing::warn!(pod = %summary.pod, namespace = %summary.namespace, spc = %summary.spc, bytes = total, "the files of this mount total more than 1 MiB: the driver warns too, and a Kubernetes Secret synced from them (secretObjects) would be refused");
        }
        Ok(Mounted {
            spec_summary: summary,
            files,
            skipped,
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
    ) -> Result<(Vec<RenderedFile>, Vec<Skipped>), MountError> {
        let mut vaults: HashMap<String, VaultScope> = HashMap::new();
        for object in &spec.objects {
            let key = vault_key(object, spec);
            if vaults.contains_key(&key) {
                continue;
            }
            let name = object.vault.as_deref().unwrap_or(&spec.vault_name);
            let vault = Vault::new(name, &spec.cloud.key_vault_dns_suffix).map_err(|e| {
                MountError::Objects(vec![failure(&spec.objects[0], Arc::new(e).into())])
            })?;
            let limit = self.vault_limit(&vault);
            vaults.insert(key, VaultScope { vault, limit });
        }
        let auth = MountAuth {
            tokens: &self.tokens,
            cloud: &spec.cloud,
            tenant: &spec.tenant_id,
            credential: &spec.credential,
            deadline,
        };
        let principal = self
            .tokens
            .principal(&spec.cloud, &spec.tenant_id, &spec.credential);
        let scope = Scope {
            vaults: &vaults,
            auth: &auth,
            principal,
            deadline,
        };

        // Resolve history layouts first (one listing per object), then fetch distinct versions.
        let plans = join_all(
            spec.objects
                .iter()
                .enumerate()
                .map(|(index, object)| self.plan(index, object, spec, &scope)),
        )
        .await;
        let mut outcomes: Vec<Result<Vec<RenderedFile>, ObjectCause>> = Vec::new();
        let mut planned = Vec::new();
        for plan in plans {
            match plan {
                Ok(p) => {
                    planned.extend(p);
                    outcomes.push(Ok(Vec::new()));
                }
                Err(cause) => outcomes.push(Err(cause)),
            }
        }
        let mut distinct: Vec<&FetchKey> = Vec::new();
        for p in &planned {
            if !distinct.contains(&&p.fetch) {
                distinct.push(&p.fetch);
            }
        }
        let fetched = join_all(distinct.iter().map(|key| self.fetch(key, &scope))).await;
        let fetched: HashMap<&FetchKey, Result<Arc<Cached<Fetched>>, Arc<KvError>>> =
            distinct.into_iter().zip(fetched).collect();

        for p in &planned {
            let Ok(files) = &mut outcomes[p.index] else {
                continue;
            };
            let target = Target {
                object: p.object,
                path: p.path.clone(),
                uid: p.uid.clone(),
                mode: p.object.file_mode.unwrap_or(spec.default_mode),
                history: p.history,
            };
            let result = match &fetched[&p.fetch] {
                Ok(f) => {
                    render::render(&target, &f.value, self.config.render).map_err(ObjectCause::from)
                }
                Err(e) => Err(ObjectCause::KeyVault(e.clone())),
            };
            match result {
                Ok(rendered) => files.extend(rendered),
                Err(cause) => outcomes[p.index] = Err(cause),
            }
        }

        let mut files = Vec::new();
        let mut skipped = Vec::new();
        let mut failures = Vec::new();
        for (object, outcome) in spec.objects.iter().zip(outcomes) {
            match outcome {
                Ok(rendered) => files.extend(rendered),
                Err(cause) => match cause.absence().filter(|_| object.optional) {
                    Some(reason) => {
                        self.metrics
                            .optional_skipped
                            .get_or_create(&ObjectTypeLabels {
                                object_type: object.object_type.as_str(),
                            })
                            .inc();
                        skipped.push(Skipped {
                            uid: object.uid(),
                            reason,
                        });
                    }
                    None => failures.push(failure(object, cause)),
                },
            }
        }
        if failures.is_empty() {
            Ok((files, skipped))
        } else {
            Err(MountError::Objects(failures))
        }
    }

    async fn plan<'a>(
        &self,
        index: usize,
        object: &'a ObjectSpec,
        spec: &MountSpec,
        scope: &Scope<'_>,
    ) -> Result<Vec<Planned<'a>>, ObjectCause> {
        let vault = vault_key(object, spec);
        let single = |version: Option<String>, path: String, uid: String, history| Planned {
            index,
            object,
            fetch: FetchKey {
                vault: vault.clone(),
                object_type: object.object_type,
                name: object.name.clone(),
                version,
            },
            path,
            uid,
            history,
        };
        if object.history <= 1 {
            return Ok(vec![single(
                object.version.clone(),
                object.file_name.clone(),
                object.uid(),
                None,
            )]);
        }
        let listing = self
            .list_versions(object, &scope.vaults[&vault], scope)
            .await?;
        let mut versions = listing.value.clone();
        versions.retain(|v| v.enabled);
        versions.sort_by_key(|v| std::cmp::Reverse(v.created)); // stable: same-second versions keep Key Vault's listing order, as Go's sort.Sort does (README)
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
                    Some(i),
                )
            })
            .collect())
    }

    /// Lists an object's versions, from the cache when this principal listed them recently.
    async fn list_versions(
        &self,
        object: &ObjectSpec,
        vault: &VaultScope,
        scope: &Scope<'_>,
    ) -> Result<Arc<Cached<Vec<VersionItem>>>, Arc<KvError>> {
        let key = KeyBuilder::default()
            .part("versions")
            .part(vault.vault.url.as_str())
            .part(object.object_type.as_str())
            .part(&object.name)
            .key(&scope.principal)
            .finish();
        let ttl = self.config.object_cache_ttl;
        let list = async {
            let _permit = vault.limit.acquire().await.expect("semaphore never closed");
            let items = self
                .keyvault
                .list_versions(
                    &vault.vault,
                    object.object_type,
                    &object.name,
                    scope.auth,
                    scope.deadline,
                )
                .await?;
            let weight = items.len() * 64;
            Ok(Cached {
                value: items,
                expires_at: tokio::time::Instant::now() + ttl,
                weight,
            })
        };
        self.cached(&self.versions, "versions", key, ttl, list)
            .await
    }

    /// Fetches one object version, from the cache when this principal fetched it recently.
    async fn fetch(
        &self,
        fetch: &FetchKey,
        scope: &Scope<'_>,
    ) -> Result<Arc<Cached<Fetched>>, Arc<KvError>> {
        let vault = &scope.vaults[&fetch.vault];
        let key = KeyBuilder::default()
            .part("object")
            .part(vault.vault.url.as_str())
            .part(fetch.object_type.as_str())
            .part(&fetch.name)
            .part(fetch.version.as_deref().unwrap_or("<latest>"))
            .key(&scope.principal)
            .finish();
        // A pinned version never changes content, so it may stay longer.
        let ttl = match fetch.version {
            Some(_) => self.config.object_cache_ttl * 5,
            None => self.config.object_cache_ttl,
        };
        let get = async {
            let _permit = vault.limit.acquire().await.expect("semaphore never closed");
            let (vault, auth, deadline) = (&vault.vault, scope.auth, scope.deadline);
            let version = fetch.version.as_deref();
            let name = &fetch.name;
            let value = match fetch.object_type {
                ObjectType::Secret => Fetched::Secret(
                    self.keyvault
                        .get_secret(vault, name, version, auth, deadline)
                        .await?,
                ),
                ObjectType::Key => Fetched::Key(
                    self.keyvault
                        .get_key(vault, name, version, auth, deadline)
                        .await?,
                ),
                ObjectType::Cert => Fetched::Cert(
                    self.keyvault
                        .get_certificate(vault, name, version, auth, deadline)
                        .await?,
                ),
            };
            Ok(Cached {
                weight: fetched_weight(&value),
                value,
                expires_at: tokio::time::Instant::now() + ttl,
            })
        };
        self.cached(&self.objects, "object", key, ttl, get).await
    }

    /// Runs `get` through `cache` unless caching is off, counting hits and misses.
    async fn cached<T>(
        &self,
        cache: &Cache<Cached<T>>,
        name: &'static str,
        key: CacheKey,
        ttl: Duration,
        get: impl std::future::Future<Output = Result<Cached<T>, KvError>>,
    ) -> Result<Arc<Cached<T>>, Arc<KvError>> {
        if ttl.is_zero() {
            return get.await.map(Arc::new).map_err(Arc::new);
        }
        let (value, source) = cache.get_or_fetch(key, get).await.map_err(Arc::new)?;
        let result = match source {
            Source::Cache => "hit",
            Source::Upstream => "miss",
        };
        self.metrics
            .cache_lookups
            .get_or_create(&CacheLabels {
                cache: name,
                result,
            })
            .inc();
        Ok(value)
    }
}

/// What every Key Vault call of one mount shares.
struct Scope<'a> {
    /// Every vault the SPC names, by [`vault_key`].
    vaults: &'a HashMap<String, VaultScope>,
    auth: &'a MountAuth<'a>,
    /// The credential material's identity, part of every cache key.
    principal: CacheKey,
    deadline: Deadline,
}

/// A vault and its process-wide concurrency bound.
struct VaultScope {
    vault: Vault,
    limit: Arc<Semaphore>,
}

/// The vault an object is fetched from: its own `keyvaultName`, else the SPC's.
fn vault_key(object: &ObjectSpec, spec: &MountSpec) -> String {
    object
        .vault
        .as_deref()
        .unwrap_or(&spec.vault_name)
        .to_ascii_lowercase()
}

fn failure(object: &ObjectSpec, cause: ObjectCause) -> ObjectFailure {
    ObjectFailure {
        object_type: object.object_type,
        name: object.name.clone(),
        version: object.version_text.clone(),
        cause,
    }
}
