//! One mount, independent of gRPC, in named phases: resolve each object's vault, prove the
//! mount's identity to each vault (a token for it, from the mount's own credential material),
//! plan the versions to write (listing versions for `objectVersionHistory`), fetch every
//! distinct object once and in parallel (bounded per vault, through the caches keyed by the
//! proven identity), render the files in SPC order, and collect the outcome: every file,
//! optional objects that do not exist left out, or one error naming every object that failed.

mod error;
mod fetch;
mod outcome;
mod plan;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Semaphore;
use url::Url;

pub use error::{MountError, ObjectCause};
pub use store::Served;

use crate::identity::{Identity, IdentityConfig, Tokens};
use crate::keyvault::{KeyVault, Object, VersionItem};
use crate::metrics::Metrics;
use crate::net::{self, NetConfig, NetError};
use crate::render::{RenderOptions, RenderedFile};
use crate::retry::Deadline;
use crate::spec::{MountSpec, ObjectType};
use fetch::MountAuth;
use store::Store;

/// Settings of the mount path, from flags.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
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
    /// `--serve-stale-on-error`: how long the last good copy of an object may stand in when Key
    /// Vault fails (zero: never).
    pub serve_stale_on_error: Duration,
    pub net: NetConfig,
    pub identity: IdentityConfig,
}

/// A successful mount: files in SPC order, the optional objects left out, and for the audit
/// trail the identity proven and where each object version came from.
#[derive(Debug, Default)]
pub struct Mounted {
    pub files: Vec<RenderedFile>,
    pub skipped: Vec<Skipped>,
    pub identity: Option<Identity>,
    pub served: Vec<ServedCopy>,
}

/// One object version a mount served: its ObjectVersion id and version, and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedCopy {
    pub uid: String,
    pub version: String,
    pub served: Served,
}

/// An `optional` object that was not mounted because Key Vault has no enabled version of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its ObjectVersion id; reported with an empty version.
    pub uid: String,
    pub kind: ObjectType,
    pub reason: &'static str,
}

pub struct Provider {
    config: ProviderConfig,
    tokens: Tokens,
    keyvault: KeyVault,
    metrics: Arc<Metrics>,
    vault_limits: Mutex<HashMap<Url, Arc<Semaphore>>>,
    objects: Store<Object>,
    versions: Store<Vec<VersionItem>>,
}

/// When one mount must be done: its outbound calls stop at `calls`, and it answers by `end`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub calls: Deadline,
    end: tokio::time::Instant,
}

/// What every Key Vault call of one mount shares.
struct Scope<'a> {
    auth: MountAuth<'a>,
    deadline: Deadline,
    /// The identity the mount proved, for its log line.
    identity: OnceLock<Identity>,
}

impl Scope<'_> {
    fn record(&self, identity: &Identity) {
        let _ = self.identity.set(identity.clone());
    }
}

impl Provider {
    pub fn new(config: ProviderConfig, metrics: Arc<Metrics>) -> Result<Self, NetError> {
        let tls = net::tls_config(&config.net.extra_ca_files)?;
        let http = net::client(&config.net, tls.clone())?;
        Ok(Provider {
            tokens: Tokens::new(http.clone(), config.identity.clone(), tls, metrics.clone()),
            keyvault: KeyVault::new(http, metrics.clone()),
            metrics,
            objects: Store::new(
                "object",
                config.object_cache_max_bytes,
                config.serve_stale_on_error,
            ),
            versions: Store::new(
                "versions",
                config.object_cache_max_bytes / 4,
                config.serve_stale_on_error,
            ),
            config,
            vault_limits: Mutex::default(),
        })
    }

    /// The budget of a mount starting now (`--mount-timeout`).
    pub fn budget(&self) -> Budget {
        let budget = self.config.mount_timeout;
        // Outbound calls give up a little earlier than the mount, so a hop that does not answer
        // fails with an error naming its objects; the outer timeout is only the backstop.
        let calls = budget.saturating_sub((budget / 4).min(Duration::from_secs(2)));
        Budget {
            calls: Deadline::after(calls),
            end: tokio::time::Instant::now() + budget,
        }
    }

    /// Mounts `spec` within `--mount-timeout`.
    pub async fn mount(&self, spec: &MountSpec) -> Result<Mounted, MountError> {
        self.mount_in(spec, self.budget()).await
    }

    /// Mounts `spec` within what is left of `budget` (its caller may have spent some, e.g.
    /// reading the pod's ServiceAccount).
    pub async fn mount_in(&self, spec: &MountSpec, budget: Budget) -> Result<Mounted, MountError> {
        tokio::time::timeout_at(budget.end, self.mount_within(spec, budget.calls))
            .await
            .unwrap_or(Err(MountError::Timeout(self.config.mount_timeout)))
    }

    async fn mount_within(
        &self,
        spec: &MountSpec,
        deadline: Deadline,
    ) -> Result<Mounted, MountError> {
        if spec.objects.is_empty() {
            tracing::warn!(pod = %spec.pod.name, namespace = %spec.pod.namespace, "objects array is empty: nothing to mount (the driver will report missing object versions)");
            return Ok(Mounted::default());
        }
        let scope = Scope {
            auth: MountAuth {
                provider: self,
                spec,
                deadline,
            },
            deadline,
            identity: OnceLock::new(),
        };
        let proofs = self.prove_all(spec, plan::vaults(spec), &scope).await;
        let plans = join_all(
            spec.objects
                .iter()
                .zip(proofs)
                .map(|(object, proof)| self.plan(object, proof, &scope)),
        )
        .await;
        let fetched = self.fetch_all(plan::distinct(&plans), &scope).await;
        let outcomes = outcome::render_objects(spec, plans, &fetched, self.config.render);
        let mut mounted = outcome::collect(spec, outcomes)?;
        mounted.identity = scope.identity.into_inner();
        for skipped in &mounted.skipped {
            self.metrics.optional_skipped(skipped.kind);
        }
        outcome::check_size(spec, &mounted.files)?;
        Ok(mounted)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::cloud::CloudName;
    use crate::spec::{Credential, MountSpec, ObjectSpec, PodInfo};

    /// A mount of plain secrets from vault `kv-test` in the public cloud.
    pub fn spec(names: &[&str]) -> MountSpec {
        let CloudName::Known(cloud) = CloudName::parse("AzurePublicCloud").unwrap() else {
            unreachable!()
        };
        MountSpec {
            pod: PodInfo::default(),
            vault_name: "kv-test".into(),
            tenant_id: "tenant".into(),
            cloud,
            credential: Credential::VmManagedIdentity { client_id: None },
            objects: names.iter().map(|n| ObjectSpec::test_secret(n)).collect(),
            default_mode: 0o644,
        }
    }
}
