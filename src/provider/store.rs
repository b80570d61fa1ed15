//! What the provider keeps between mounts: Key Vault answers under the identity that fetched
//! them, fresh for the cache window (`--object-cache-ttl`), and, with `--serve-stale-on-error`,
//! the last good copy for the stale window, served only when Key Vault itself fails
//! (throttling after retries, server errors, timeouts, transport errors), never when it refuses.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cache::{Cache, CacheKey, Expiring, Source};
use crate::keyvault::KvError;
use crate::metrics::Metrics;

/// A Key Vault answer, when it was fetched, and until when it serves later mounts.
pub(super) struct Cached<T> {
    pub value: T,
    pub fetched_at: Instant,
    expires_at: Instant,
    weight: usize,
}

impl<T> Cached<T> {
    /// `value`, fresh for `ttl`, costing `weight` of the cache's bound.
    pub fn new(value: T, ttl: Duration, weight: usize) -> Cached<T> {
        let now = Instant::now();
        Cached {
            value,
            fetched_at: now,
            expires_at: now + ttl,
            weight,
        }
    }
}

impl<T> Expiring for Cached<T> {
    fn is_fresh(&self) -> bool {
        Instant::now() < self.expires_at
    }

    fn weight(&self) -> usize {
        self.weight
    }
}

/// The last good copy, kept for the stale window after it was fetched.
struct Stale<T> {
    copy: Arc<Cached<T>>,
    keep_until: Instant,
}

impl<T> Expiring for Stale<T> {
    fn is_fresh(&self) -> bool {
        Instant::now() < self.keep_until
    }

    fn weight(&self) -> usize {
        self.copy.weight
    }
}

/// Where a mount's copy of an object came from, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    KeyVault,
    Cache,
    /// The last good copy, this old, because Key Vault failed.
    Stale {
        age: Duration,
    },
}

/// An answer and where it came from.
pub(super) struct Got<T> {
    pub copy: Arc<Cached<T>>,
    pub served: Served,
}

/// One kind of answer (objects, or version listings): fresh copies and last good copies.
pub(super) struct Store<T> {
    /// `object` or `versions`, the metrics' name for it.
    name: &'static str,
    fresh: Cache<Cached<T>>,
    stale: Cache<Stale<T>>,
    stale_window: Duration,
}

impl<T> Store<T> {
    pub fn new(name: &'static str, max_bytes: usize, stale_window: Duration) -> Store<T> {
        Store {
            name,
            fresh: Cache::new(max_bytes),
            stale: Cache::new(max_bytes),
            stale_window,
        }
    }

    /// The copy `key` names: fresh from the cache, else from `fetch` (once for concurrent
    /// callers), else, if Key Vault failed and stale copies are allowed, the last good one.
    pub async fn get<F>(
        &self,
        key: CacheKey,
        ttl: Duration,
        metrics: &Metrics,
        fetch: impl FnOnce() -> F,
    ) -> Result<Got<T>, Arc<KvError>>
    where
        F: Future<Output = Result<Cached<T>, KvError>>,
    {
        let result = match ttl.is_zero() {
            true => fetch().await.map(|v| (Arc::new(v), Source::Upstream)),
            false => self.fresh.get_or_fetch(key, fetch).await,
        };
        match result {
            Ok((copy, source)) => {
                if !ttl.is_zero() {
                    metrics.cache_lookup(self.name, source == Source::Cache);
                }
                if source == Source::Upstream && !self.stale_window.is_zero() {
                    let keep_until = copy.fetched_at + self.stale_window;
                    self.stale.insert(
                        key,
                        Arc::new(Stale {
                            copy: copy.clone(),
                            keep_until,
                        }),
                    );
                }
                let served = match source {
                    Source::Upstream => Served::KeyVault,
                    Source::Cache => Served::Cache,
                };
                Ok(Got { copy, served })
            }
            Err(e) if e.is_outage() => match self.stale.peek(&key) {
                Some(stale) => {
                    let age = stale.copy.fetched_at.elapsed();
                    metrics.served_stale(self.name, age);
                    Ok(Got {
                        copy: stale.copy.clone(),
                        served: Served::Stale { age },
                    })
                }
                None => Err(Arc::new(e)),
            },
            Err(e) => Err(Arc::new(e)),
        }
    }
}
