//! Access-token cache with single flight.
//!
//! A token is reused only for a request presenting the same credential material: the key is a
//! SHA-256 over the mode, the endpoint or authority, tenant, client id, a hash of the secret or
//! the exact service-account token, and the scope. Raw secrets and tokens never become keys.
//! Concurrent requests for one key wait for a single upstream call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::secret::Secret;

/// Identifies credential material plus scope; also the "identity proof" of cached objects.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A short prefix is enough to correlate log lines and reveals nothing usable.
        write!(f, "CacheKey({})", hex::encode(&self.0[..4]))
    }
}

/// Builds a [`CacheKey`] from length-prefixed parts, so ("ab","c") and ("a","bc") differ.
#[derive(Default)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn part(mut self, part: &str) -> Self {
        self.0.update((part.len() as u64).to_be_bytes());
        self.0.update(part.as_bytes());
        self
    }

    pub fn finish(self) -> CacheKey {
        CacheKey(self.0.finalize().into())
    }
}

/// A bearer token and when it stops being usable.
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: Instant,
    /// When the token was obtained, to size the refresh margin to its lifetime.
    pub obtained_at: Instant,
    pub key: CacheKey,
}

impl AccessToken {
    /// Usable if it stays valid for a margin: 5 minutes as MSAL does, or half the lifetime for
    /// short-lived tokens, so a mount never starts with a token about to expire.
    pub fn is_fresh(&self) -> bool {
        let lifetime = self.expires_at.saturating_duration_since(self.obtained_at);
        let margin = Duration::from_secs(300).min(lifetime / 2);
        Instant::now() + margin < self.expires_at
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<AccessToken>>>>;

/// Bound on remembered keys; expired entries are swept when it is reached.
const SWEEP_AT: usize = 4096;

#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<CacheKey, Slot>>,
}

/// Whether a token came from the cache or from an upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Upstream,
}

impl TokenCache {
    /// Returns the fresh cached token for `key`, or runs `fetch` once for all concurrent callers.
    pub async fn get_or_fetch<F, E>(
        &self,
        key: CacheKey,
        fetch: F,
    ) -> Result<(Arc<AccessToken>, Source), E>
    where
        F: std::future::Future<Output = Result<AccessToken, E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().expect("token cache lock");
            if slots.len() >= SWEEP_AT && !slots.contains_key(&key) {
                slots.retain(|_, slot| match slot.try_lock() {
                    Ok(t) => t.as_ref().is_some_and(|t| t.is_fresh()),
                    Err(_) => true,
                });
            }
            slots.entry(key).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(token) = guard.as_ref().filter(|t| t.is_fresh()) {
            return Ok((token.clone(), Source::Cache));
        }
        let token = Arc::new(fetch.await?);
        *guard = Some(token.clone());
        Ok((token, Source::Upstream))
    }

    /// Forgets a token the resource server rejected, so the next request fetches a new one.
    pub fn invalidate(&self, key: &CacheKey) {
        self.slots.lock().expect("token cache lock").remove(key);
    }

    pub fn len(&self) -> usize {
        self.slots.lock().expect("token cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn token(key: CacheKey, lifetime: Duration) -> AccessToken {
        let now = Instant::now();
        AccessToken {
            token: Secret::new("t"),
            expires_at: now + lifetime,
            obtained_at: now,
            key,
        }
    }

    #[test]
    fn key_parts_are_unambiguous() {
        let a = KeyBuilder::default().part("ab").part("c").finish();
        let b = KeyBuilder::default().part("a").part("bc").finish();
        assert!(a != b);
        assert!(!format!("{a:?}").contains("ab"));
    }

    #[tokio::test]
    async fn single_flight_and_reuse() {
        let cache = Arc::new(TokenCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let key = KeyBuilder::default().part("k").finish();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_fetch(key, async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>(token(key, Duration::from_secs(3600)))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_before_expiry_and_after_invalidate() {
        let cache = TokenCache::default();
        let key = KeyBuilder::default().part("k").finish();
        let fetch = || async { Ok::<_, ()>(token(key, Duration::from_secs(600))) };
        assert_eq!(
            cache.get_or_fetch(key, fetch()).await.unwrap().1,
            Source::Upstream
        );
        assert_eq!(
            cache.get_or_fetch(key, fetch()).await.unwrap().1,
            Source::Cache
        );
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(
            cache.get_or_fetch(key, fetch()).await.unwrap().1,
            Source::Upstream
        );
        cache.invalidate(&key);
        assert_eq!(
            cache.get_or_fetch(key, fetch()).await.unwrap().1,
            Source::Upstream
        );
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = TokenCache::default();
        let key = KeyBuilder::default().part("k").finish();
        assert!(cache
            .get_or_fetch(key, async { Err::<AccessToken, _>("boom") })
            .await
            .is_err());
        let ok = cache
            .get_or_fetch(key, async {
                Ok::<_, ()>(token(key, Duration::from_secs(3600)))
            })
            .await;
        assert_eq!(ok.unwrap().1, Source::Upstream);
    }
}
