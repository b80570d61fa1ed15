//! Fetching: each distinct object version once per mount and in parallel, bounded per vault,
//! through the object and version caches, on behalf of the mount's identity.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use super::{Provider, Scope};
use crate::cache::{Cache, CacheKey, Expiring, KeyBuilder, Source};
use crate::identity::{AccessToken, IdentityError, TokenRequest};
use crate::keyvault::{Authenticator, KvError, Object, ObjectRef, Vault, VersionItem};
use crate::retry::Deadline;
use crate::spec::MountSpec;

/// A Key Vault answer kept for later mounts of the same principal, and when it goes stale.
pub(super) struct Cached<T> {
    pub value: T,
    expires_at: tokio::time::Instant,
    weight: usize,
}

impl<T> Cached<T> {
    /// `value`, fresh for `ttl`, costing `weight` of the cache's bound.
    pub fn new(value: T, ttl: Duration, weight: usize) -> Cached<T> {
        Cached {
            value,
            expires_at: tokio::time::Instant::now() + ttl,
            weight,
        }
    }
}

impl<T> Expiring for Cached<T> {
    fn is_fresh(&self) -> bool {
        tokio::time::Instant::now() < self.expires_at
    }

    fn weight(&self) -> usize {
        self.weight
    }
}

/// Each distinct object's answer.
pub(super) type Fetched = HashMap<ObjectRef, Result<Arc<Cached<Object>>, Arc<KvError>>>;

/// A mount's identity as seen by the Key Vault client.
pub(super) struct MountAuth<'a> {
    pub provider: &'a Provider,
    pub spec: &'a MountSpec,
    pub deadline: Deadline,
}

impl Authenticator for MountAuth<'_> {
    async fn token(&self, scope: &str) -> Result<Arc<AccessToken>, IdentityError> {
        let req = TokenRequest {
            cloud: &self.spec.cloud,
            tenant: &self.spec.tenant_id,
            credential: &self.spec.credential,
            scope,
        };
        self.provider.tokens.token(&req, self.deadline).await
    }

    fn invalidate(&self, token: &Arc<AccessToken>) {
        self.provider.tokens.invalidate(token);
    }

    fn client_id(&self) -> Option<&str> {
        self.spec.credential.client_id()
    }
}

impl Provider {
    /// Fetches every distinct object in parallel.
    pub(super) async fn fetch_all(&self, objects: Vec<ObjectRef>, scope: &Scope<'_>) -> Fetched {
        let answers = join_all(objects.iter().map(|object| self.fetch(object, scope))).await;
        objects.into_iter().zip(answers).collect()
    }

    /// Fetches one object version, from the cache when this principal fetched it recently.
    async fn fetch(
        &self,
        object: &ObjectRef,
        scope: &Scope<'_>,
    ) -> Result<Arc<Cached<Object>>, Arc<KvError>> {
        let version = object.version.as_deref().unwrap_or("<latest>");
        let key = cache_key("object", object, version, &scope.principal);
        // A pinned version never changes content, so it may stay longer.
        let ttl = match object.version {
            Some(_) => self.config.object_cache_ttl * 5,
            None => self.config.object_cache_ttl,
        };
        let get = self.limited(&object.vault, async {
            let value = self
                .keyvault
                .get(object, &scope.auth, scope.deadline)
                .await?;
            let weight = value.weight();
            Ok(Cached::new(value, ttl, weight))
        });
        self.cached(&self.objects, "object", key, ttl, get).await
    }

    /// Lists an object's versions, from the cache when this principal listed them recently.
    pub(super) async fn list_versions(
        &self,
        object: &ObjectRef,
        scope: &Scope<'_>,
    ) -> Result<Arc<Cached<Vec<VersionItem>>>, Arc<KvError>> {
        let key = cache_key("versions", object, "", &scope.principal);
        let ttl = self.config.object_cache_ttl;
        let list = self.limited(&object.vault, async {
            let items = self
                .keyvault
                .list_versions(object, &scope.auth, scope.deadline)
                .await?;
            let weight = items.len() * 64;
            Ok(Cached::new(items, ttl, weight))
        });
        self.cached(&self.versions, "versions", key, ttl, list)
            .await
    }

    /// Runs `work` within the process-wide bound on concurrent requests to `vault`.
    async fn limited<T>(&self, vault: &Vault, work: impl Future<Output = T>) -> T {
        let limit = self
            .vault_limits
            .lock()
            .expect("vault limits lock")
            .entry(vault.url.clone())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(self.config.max_concurrent_per_vault.max(1)))
            })
            .clone();
        let _permit = limit.acquire_owned().await.expect("semaphore never closed");
        work.await
    }

    /// Runs `get` through `cache` unless caching is off, counting hits and misses.
    async fn cached<T>(
        &self,
        cache: &Cache<Cached<T>>,
        name: &'static str,
        key: CacheKey,
        ttl: Duration,
        get: impl Future<Output = Result<Cached<T>, KvError>>,
    ) -> Result<Arc<Cached<T>>, Arc<KvError>> {
        if ttl.is_zero() {
            return get.await.map(Arc::new).map_err(Arc::new);
        }
        let (value, source) = cache.get_or_fetch(key, get).await.map_err(Arc::new)?;
        self.metrics.cache_lookup(name, source == Source::Cache);
        Ok(value)
    }
}

/// What a cached answer is keyed by: what was asked (`tag`, vault, kind, name, `version`) and
/// who asked (the principal).
fn cache_key(tag: &str, object: &ObjectRef, version: &str, principal: &CacheKey) -> CacheKey {
    KeyBuilder::default()
        .part(tag)
        .part(object.vault.url.as_str())
        .part(object.kind.as_str())
        .part(&object.name)
        .part(version)
        .key(principal)
        .finish()
}
