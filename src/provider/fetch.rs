//! Fetching: each distinct object version once per mount and in parallel, bounded per vault,
//! through the object and version caches, on behalf of the mount's identity.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use super::store::{Cached, Got};
use super::{Provider, Scope};
use crate::cache::{CacheKey, KeyBuilder};
use crate::identity::{AccessToken, IdentityError, TokenRequest};
use crate::keyvault::{Authenticator, KvError, Object, ObjectRef, Vault, VersionItem};
use crate::retry::Deadline;
use crate::spec::MountSpec;

/// Each distinct object's answer.
pub(super) type Fetched = HashMap<ObjectRef, Result<Got<Object>, Arc<KvError>>>;

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
    /// Fetches every distinct object in parallel, each with the identity its vault was
    /// proven as.
    pub(super) async fn fetch_all(
        &self,
        objects: Vec<(ObjectRef, CacheKey)>,
        scope: &Scope<'_>,
    ) -> Fetched {
        let answers = join_all(
            objects
                .iter()
                .map(|(object, identity)| self.fetch(object, identity, scope)),
        )
        .await;
        objects
            .into_iter()
            .map(|(object, _)| object)
            .zip(answers)
            .collect()
    }

    /// Fetches one object version, from the cache when a mount that proved the same identity
    /// fetched it recently.
    async fn fetch(
        &self,
        object: &ObjectRef,
        identity: &CacheKey,
        scope: &Scope<'_>,
    ) -> Result<Got<Object>, Arc<KvError>> {
        let version = object.version.as_deref().unwrap_or("<latest>");
        let key = cache_key("object", object, version, identity);
        // A pinned version never changes content, so it may stay longer.
        let ttl = match object.version {
            Some(_) => self.config.object_cache_ttl * 5,
            None => self.config.object_cache_ttl,
        };
        // Boxed: only the caller that fetches allocates the request's state; the many that wait
        // for it (a burst of pods) stay small.
        let get = || {
            Box::pin(self.limited(&object.vault, async move {
                let value = self
                    .keyvault
                    .get(object, &scope.auth, scope.deadline)
                    .await?;
                let weight = value.weight();
                Ok(Cached::new(value, ttl, weight))
            }))
        };
        self.objects.get(key, ttl, &self.metrics, get).await
    }

    /// Lists an object's versions, from the cache when a mount that proved the same identity
    /// listed them recently.
    pub(super) async fn list_versions(
        &self,
        object: &ObjectRef,
        identity: &CacheKey,
        scope: &Scope<'_>,
    ) -> Result<Got<Vec<VersionItem>>, Arc<KvError>> {
        let key = cache_key("versions", object, "", identity);
        let ttl = self.config.object_cache_ttl;
        let list = || {
            Box::pin(self.limited(&object.vault, async move {
                let items = self
                    .keyvault
                    .list_versions(object, &scope.auth, scope.deadline)
                    .await?;
                let weight = items.len() * 64;
                Ok(Cached::new(items, ttl, weight))
            }))
        };
        self.versions.get(key, ttl, &self.metrics, list).await
    }

    /// The identity this mount proves for `object`'s vault: its own credential material has
    /// obtained a valid token for it (cached for that exact material, or fresh). A mount that
    /// cannot gets nothing from the caches.
    pub(super) async fn prove(
        &self,
        object: &ObjectRef,
        scope: &Scope<'_>,
    ) -> Result<CacheKey, Arc<KvError>> {
        let token = self
            .keyvault
            .authenticate(object, &scope.auth, scope.deadline)
            .await
            .map_err(Arc::new)?;
        scope.record(&token.identity);
        Ok(token.identity.key())
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
}

/// What a cached answer is keyed by: what was asked (`tag`, vault, kind, name, `version`) and
/// the identity that asked.
fn cache_key(tag: &str, object: &ObjectRef, version: &str, identity: &CacheKey) -> CacheKey {
    KeyBuilder::default()
        .part(tag)
        .part(object.vault.url.as_str())
        .part(object.kind.as_str())
        .part(&object.name)
        .part(version)
        .key(identity)
        .finish()
}
